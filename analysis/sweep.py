"""Image quality on imperfect hardware: one-factor sweeps and Monte Carlo over chips.

A sweep is described by a TOML file (`load_spec`; examples in ``analysis/specs/``):

    kind = "one-factor"                  # or "monte-carlo"
    title = "FID-digits vs coupling bits"
    checkpoint = "shipped"               # or a path (relative to the spec file)
    factor = "coupling_bits"             # a NonIdeal field, or "compile.<CompileOptions field>"
    values = [2, 3, 4, 6, 8, 10, 12]
    seeds = 3                            # chips/seeds per point: the confidence band
    samples = 2000                       # generated samples per point and seed
    [nonideal]                           # the operating point the factor varies around
    phase_noise_rad_per_sqrt_t = 0.0
    [compile]                            # CompileOptions of a "compile.*" factor
    prune = "magnitude"

Seed s of every point runs on chip number ``nonideal.chip_seed + s`` with the seed phases
of seed s, and the ideal model is scored with the same phases (common random numbers):
differences between points are the hardware's, not the sampling's. Each finished
(value, seed) is appended to ``points.jsonl`` at once, so a killed sweep resumes where it
stopped; `jobs` > 1 scores points in worker processes. Outputs, written atomically at the
end: ``points.csv``, ``summary.csv`` (mean, sd and a 95 % Student-t interval per value),
``sweep.png`` and ``report.md``.

The circuit's coupling function (``coupling = "circuit"``, ``trim = "closed"`` or
``"open"``): every point runs under each coupler's measured H instead of K sin x — the
shape (`compiler.circuit.ArrayCircuit.shape`, full-code DAC scale) of the array that
`compiler.compile` builds with the spec's [compile] options (CompileOptions defaults
without a table) on the spec's ``calibration`` (the built-in measured one without it; a
calibration also sets the NonIdeal terms it implies, as always). A NonIdeal factor or a
Monte Carlo runs the checkpoint with that shape; a ``compile.*`` factor runs each
point's own array under its own shape (`ArrayIR.to_model(coupling="circuit")`). The ideal
reference stays the checkpoint's own sine-only equations, so ΔFID and the yield count the
coupling function's cost too. Default ``coupling = "sine"``: no compile, as before.

Every checkpoint family sweeps (digits, CIFAR-10, ImageNet-64; the release's ``.pt`` files
too). What a point scores (``metric``):

- **chip fidelity** (`analysis.fidelity`), always: the chip's images, phases and features
  against the ideal model's on the same seeds — final phase error, PSNR, per-sample feature
  distance, FID against the ideal model's own samples (and the classifier's label agreement
  where the feature space has one). No data set needed; the default for a model without one.
- **FID against a data set**, with precision/recall (and class accuracy): the shipped
  digits for digits models (FID-digits, as before), or ``data`` — a CIFAR-10 folder
  (``cifar-10-batches-py``; the train split is the reference, as in the release, the test
  split gives the floor) or an ImageNet-64 ``.npz`` — for the others.

``metric = "auto"`` (default) scores FID where there is a data set and chip fidelity alone
where there is none; ``"fidelity"`` drops the data set; ``"fid"`` demands one. ``features``
picks the feature space (`analysis.fidelity.FEATURE_SPACES`: the digits CNN, the FID
Inception network from ``inception_weights`` — a local file, never downloaded — or pooled
pixels; ``auto`` as `analysis.fidelity.feature_space`). Generation batches are
memory-bounded (`analysis.evaluate.bounded_batch`, a fixed budget, so every machine splits
— and draws noise — the same way), so an n16384 model runs on a small machine, slowly, with
a per-sample progress bar and its ETA.

Monte Carlo (``kind = "monte-carlo"``, ``chips``, ``samples`` per chip, ``yield_within``):
every chip gets the same seed phases; chips are simulated `chip_group` at a time on the
simulator's chip axis. Yield = share of chips whose FID is within ``yield_within`` (a
fraction) of the ideal model's on the same phases; with chip fidelity alone, share of
chips whose FID against the ideal model's samples is within ``yield_within`` of the
sampling floor (what two independent seed sets of the ideal model give: a chip passes
when its shift is that small a part of sampling's own). Outputs ``chips.csv``,
``montecarlo.png`` (histogram) and ``report.md``.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import statistics
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from compiler.mapping import nonideal_from_calibration
from oscsim import NonIdeal, OscsimError, atomic_path
from oscsim.fileio import PathCheckError, readable_file

KINDS = ("one-factor", "monte-carlo")
X_SCALES = ("linear", "log", "symlog")
#: NonIdeal fields a one-factor sweep may vary
FACTORS = (
    "phase_noise_rad_per_sqrt_t", "freq_mismatch_rad_per_t", "coupling_mismatch_sigma", "coupling_read_noise",
    "dead_coupler_fraction", "coupling_bits", "frequency_bits", "readout_bits", "readout_jitter_rad",
)
#: operating-point factors: the temperature (°C) or supply factor away from the trim point,
#: converted by the spec's measured ``corners`` (`hw.corners.CornerSweep.nonideal_terms`)
OPERATING_FACTORS = ("temperature_c", "vdd_scale")
#: the time since the cells' trim (s), converted by the spec's ``flicker`` model (`hw.flicker`:
#: the per-cell flicker offset, as the per-cell drift term)
FLICKER_FACTOR = "since_trim_s"
COMPILE_PREFIX = "compile."
_KEYS = {"corners", "flicker",
    "kind", "title", "checkpoint", "factor", "values", "seeds", "samples", "x_scale", "batch_size", "seed",
    "chips", "yield_within", "chip_group", "nonideal", "compile", "calibration", "tau_s", "coupling", "trim",
    "metric", "features", "data", "inception_weights",
}
#: what a point scores: FID where there is a data set (auto), chip fidelity alone, or FID demanded
METRICS = ("auto", "fid", "fidelity")
#: what a point's couplers add: the model's K sin x, or the circuit's measured coupling function
COUPLINGS = ("sine", "circuit")
#: the cells' frequency trims a sweep's shaped model runs ('trajectory', an offset on ω from the
#: model's own trajectories, is `ArrayIR.to_model`'s and check-array's)
CIRCUIT_TRIMS = ("closed", "open")
IDEAL = "ideal"
FIDELITY_FIELDS = ("phase_error_rad", "psnr_db", "feature_distance", "fid_vs_ideal", "label_agreement")
POINT_FIELDS = ("value", "seed", "fid", "precision", "recall", "class_accuracy", *FIDELITY_FIELDS, "seconds")
CHIP_FIELDS = ("chip", "fid", "precision", "recall", "class_accuracy", *FIDELITY_FIELDS)


class SweepError(ValueError):
    """A sweep spec or output folder that cannot be used: names the file, key and problem."""


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep description (see the module docstring for the file format)."""

    kind: str
    source: str
    title: str = ""
    checkpoint: str = "shipped"
    nonideal: NonIdeal = field(default_factory=NonIdeal)
    compile: dict[str, Any] | None = None
    factor: str | None = None
    values: tuple = ()
    seeds: int = 3
    samples: int = 2000
    x_scale: str = "linear"
    batch_size: int = 1000
    seed: int = 0
    chips: int = 50
    yield_within: float = 0.1
    chip_group: int = 10
    calibration: str | None = None
    tau_s: float | None = None
    coupling: str = "sine"
    trim: str | None = None
    metric: str = "auto"
    features: str = "auto"
    data: str | None = None
    inception_weights: str | None = None
    corners: str | None = None
    flicker: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["nonideal"] = self.nonideal.to_dict()
        d["values"] = list(self.values)
        d.pop("source")
        if self.coupling == "sine":  # a sine sweep's spec.json stays as it was (old folders resume)
            d.pop("coupling")
            d.pop("trim")
        for key, default in (("metric", "auto"), ("features", "auto"), ("data", None), ("inception_weights", None),
                             ("corners", None), ("flicker", None)):
            if d[key] == default:  # likewise for a spec without the quality keys
                d.pop(key)
        return d

    def path_of(self, key: str) -> Path | None:
        """The spec's file/folder `key` ('data', 'inception_weights'), relative to the spec file."""
        value = getattr(self, key)
        if value is None:
            return None
        path = Path(value)
        return path if path.is_absolute() else Path(self.source).parent / path

    def corner_terms(self, value: float) -> dict[str, float]:
        """The NonIdeal operating-point fields of an operating factor's value (`corners`)."""
        sweep = _corner_sweep(str(self.path_of("corners")))
        return sweep.nonideal_terms(self.tau_s, **{"temp_c" if self.factor == "temperature_c" else "vdd_scale": value})

    def flicker_terms(self, value: float) -> dict[str, float]:
        """The NonIdeal field of a time since trim (`flicker`): the cells' flicker offset."""
        return _ring_flicker(str(self.path_of("flicker"))).nonideal_terms(self.tau_s, float(value))

    def load_calibration(self):
        """The `hw.Calibration` the spec names (the built-in measured one without a name)."""
        return _load_calibration(self.source, self.calibration or "default")

    def checkpoint_path(self) -> Path:
        from models.checkpoint import SHIPPED

        if self.checkpoint == "shipped":
            return Path(SHIPPED)
        path = Path(self.checkpoint)
        return path if path.is_absolute() else Path(self.source).parent / path


def _int(src: str, key: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise SweepError(f"{src}: '{key}' must be an integer >= {low}, not {value!r}")
    return value


def _read_toml(path: Path, *, missing: str) -> dict[str, Any]:
    """A TOML file's table, or one SweepError line naming the file."""
    if not path.exists():
        raise SweepError(f"{path}: {missing}")
    try:
        readable_file(path)
        return tomllib.loads(path.read_text())
    except PathCheckError as exc:
        raise SweepError(str(exc)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SweepError(f"{path}: cannot read ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise SweepError(f"{path}: not valid TOML ({exc})") from None


def _corner_sweep(path: str):
    from hw.corners import CornerSweep

    return CornerSweep.load(path)


def _ring_flicker(path: str):
    from hw.flicker import RingFlicker

    return RingFlicker.load(path)


def load_spec(path: str | Path) -> SweepSpec:
    """Read and check a sweep spec; every problem is one line naming the file and key."""
    path = Path(path)
    src = str(path)
    data = _read_toml(path, missing="no such spec file")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise SweepError(f"{src}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(sorted(_KEYS))}")
    kind = data.get("kind")
    if kind not in KINDS:
        raise SweepError(f"{src}: 'kind' must be one of {', '.join(KINDS)}, not {kind!r}")
    calibration = tau_s = None
    derived: dict[str, Any] = {}
    coupling, trim = _coupling(src, data)
    if "calibration" in data:
        calibration, tau_s, derived = _from_calibration(src, data)
    elif "tau_s" in data:
        raise SweepError(f"{src}: 'tau_s' goes with 'calibration' (it converts the cells' figures to model time)")
    try:
        table = data.get("nonideal", {})
        nonideal = NonIdeal.from_dict({**derived, **table} if isinstance(table, dict) else table,
                                      source=f"{src} [nonideal]")
    except OscsimError as exc:
        raise SweepError(str(exc)) from None
    if nonideal.chips != 1:
        raise SweepError(f"{src} [nonideal]: 'chips' is set by the sweep, leave it out")
    kw: dict[str, Any] = {"kind": kind, "source": src, "nonideal": nonideal, "calibration": calibration,
                          "tau_s": tau_s, "coupling": coupling, "trim": trim, **_quality_keys(path, data)}
    for key in ("title", "checkpoint"):
        if key in data:
            if not isinstance(data[key], str) or not data[key]:
                raise SweepError(f"{src}: '{key}' must be a non-empty string, not {data[key]!r}")
            kw[key] = data[key]
    for key, low in (("seeds", 1), ("samples", 10), ("batch_size", 1), ("seed", 0), ("chips", 1), ("chip_group", 1)):
        if key in data:
            kw[key] = _int(src, key, data[key], low)
    if "x_scale" in data:
        if data["x_scale"] not in X_SCALES:
            raise SweepError(f"{src}: 'x_scale' must be one of {', '.join(X_SCALES)}, not {data['x_scale']!r}")
        kw["x_scale"] = data["x_scale"]
    if "yield_within" in data:
        y = data["yield_within"]
        if isinstance(y, bool) or not isinstance(y, (int, float)) or not 0 < y < 10:
            raise SweepError(f"{src}: 'yield_within' must be a fraction > 0 (0.1 = within 10 %), not {y!r}")
        kw["yield_within"] = float(y)
    if "compile" in data:
        kw["compile"] = _compile_base(src, data["compile"])
        try:
            _check_couplers(src, _compile_options(kw["compile"]), calibration if coupling == "circuit" else None)
        except ValueError as exc:
            raise SweepError(f"{src} [compile]: {exc}") from None
    if kind == "one-factor":
        factor = data.get("factor")
        compile_fields = _compile_fields()
        if not (factor in FACTORS or factor in OPERATING_FACTORS or factor == FLICKER_FACTOR
                or (isinstance(factor, str) and factor.startswith(COMPILE_PREFIX)
                    and factor[len(COMPILE_PREFIX):] in compile_fields)):
            raise SweepError(f"{src}: 'factor' must be one of {', '.join(FACTORS + OPERATING_FACTORS)}, "
                             f"{FLICKER_FACTOR} or compile.<field> ({', '.join(compile_fields)}), not {factor!r}")
        if factor in OPERATING_FACTORS:
            kw["corners"] = _corners_key(src, data)
        if factor == FLICKER_FACTOR:
            kw["flicker"] = _flicker_key(src, data)
        values = data.get("values")
        if not isinstance(values, list) or not values:
            raise SweepError(f"{src}: 'values' must be a non-empty list of the factor's values")
        if len(set(map(repr, values))) != len(values):
            raise SweepError(f"{src}: 'values' has repeated entries")
        for v in values:
            try:
                if factor in OPERATING_FACTORS:
                    if isinstance(v, bool) or not isinstance(v, (int, float)):
                        raise TypeError("must be a number")
                    nonideal.replace(**_corner_sweep(str(_relative(src, kw["corners"]))).nonideal_terms(
                        tau_s, **{"temp_c" if factor == "temperature_c" else "vdd_scale": float(v)}))
                elif factor == FLICKER_FACTOR:
                    if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
                        raise TypeError("must be a time > 0 s")
                    nonideal.replace(**_ring_flicker(str(_relative(src, kw["flicker"]))).nonideal_terms(tau_s, float(v)))
                elif factor.startswith(COMPILE_PREFIX):
                    _check_couplers(src, _compile_options({**(kw.get("compile") or {}), factor[len(COMPILE_PREFIX):]: v}),
                                    calibration if coupling == "circuit" else None)
                else:
                    nonideal.replace(**{factor: v})
            except (OscsimError, ValueError, TypeError) as exc:  # CharacterizeError is a ValueError
                raise SweepError(f"{src}: 'values' entry {v!r} for {factor}: {exc}") from None
        kw["factor"], kw["values"] = factor, tuple(values)
    else:
        for key in ("factor", "values"):
            if key in data:
                raise SweepError(f"{src}: '{key}' belongs to one-factor sweeps, not {kind}")
    if "corners" in data and kw.get("corners") is None:
        raise SweepError(f"{src}: 'corners' goes with an operating factor ({', '.join(OPERATING_FACTORS)})")
    if "flicker" in data and kw.get("flicker") is None:
        raise SweepError(f"{src}: 'flicker' goes with factor = \"{FLICKER_FACTOR}\"")
        kw.setdefault("samples", 1000)
    return SweepSpec(**kw)


def _relative(src: str, value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else Path(src).parent / path


def _corners_key(src: str, data: dict[str, Any]) -> str:
    """'corners': a corners.json of `un0hw cells corners`, with a 'calibration' for τ."""
    value = data.get("corners")
    if not isinstance(value, str) or not value:
        raise SweepError(f"{src}: an operating factor needs 'corners', the corners.json of un0hw cells corners")
    if "calibration" not in data:
        raise SweepError(f"{src}: an operating factor needs 'calibration' (its τ converts the corners to model time)")
    from hw.measure import CharacterizeError

    try:
        _corner_sweep(str(_relative(src, value)))
    except CharacterizeError as exc:
        raise SweepError(f"{src}: 'corners': {exc}") from None
    return value


def _flicker_key(src: str, data: dict[str, Any]) -> str:
    """'flicker': a flicker.json of `un0hw cells flicker`, with a 'calibration' for τ."""
    from hw.flicker import FlickerError

    value = data.get("flicker")
    if not isinstance(value, str) or not value:
        raise SweepError(f"{src}: factor \"{FLICKER_FACTOR}\" needs 'flicker', the flicker.json of un0hw cells flicker")
    if "calibration" not in data:
        raise SweepError(f"{src}: factor \"{FLICKER_FACTOR}\" needs 'calibration' (its τ converts the offsets to "
                         f"model time)")
    try:
        _ring_flicker(str(_relative(src, value)))
    except FlickerError as exc:
        raise SweepError(f"{src}: 'flicker': {exc}") from None
    return value


def _quality_keys(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    """'metric', 'features', 'data' and 'inception_weights' (module docstring), checked: the
    choices, and that the files are there (relative paths from the spec's folder)."""
    from analysis.fidelity import FEATURE_SPACES

    src, out = str(path), {}
    for key, choices in (("metric", METRICS), ("features", FEATURE_SPACES)):
        if key in data:
            if data[key] not in choices:
                raise SweepError(f"{src}: '{key}' must be one of {', '.join(choices)}, not {data[key]!r}")
            out[key] = data[key]
    for key, kind in (("data", "a CIFAR-10 folder or an ImageNet-64 .npz file"),
                      ("inception_weights", "the FID Inception weights file")):
        if key not in data:
            continue
        value = data[key]
        if not isinstance(value, str) or not value:
            raise SweepError(f"{src}: '{key}' must be a path to {kind}, not {value!r}")
        where = Path(value) if Path(value).is_absolute() else path.parent / value
        if not where.exists():
            raise SweepError(f"{src}: '{key}': {where} does not exist (expected {kind})")
        if key == "data" and not (where.is_dir() or (where.is_file() and where.suffix == ".npz")):
            raise SweepError(f"{src}: 'data': {where} is neither a folder nor a .npz file (expected {kind})")
        if key == "inception_weights":
            try:
                readable_file(where)
            except PathCheckError as exc:
                raise SweepError(f"{src}: 'inception_weights': {exc}") from None
        out[key] = value
    if out.get("metric") == "fidelity" and "data" in out:
        raise SweepError(f"{src}: 'data' goes unused with metric = \"fidelity\" (chip fidelity needs no data set)")
    return out


def _coupling(src: str, data: dict[str, Any]) -> tuple[str, str | None]:
    """'coupling' and 'trim' (module docstring), checked; a circuit coupling needs a
    calibration that measured the coupling function (format 2)."""
    coupling = data.get("coupling", "sine")
    if coupling not in COUPLINGS:
        raise SweepError(f"{src}: 'coupling' must be one of {', '.join(COUPLINGS)}, not {coupling!r}")
    if coupling == "sine":
        if "trim" in data:
            raise SweepError(f"{src}: 'trim' goes with coupling = \"circuit\" (the sine coupling has no constant "
                             "part to trim)")
        return coupling, None
    trim = data.get("trim", "closed")
    if trim not in CIRCUIT_TRIMS:
        raise SweepError(f"{src}: 'trim' must be one of {', '.join(CIRCUIT_TRIMS)}, not {trim!r}")
    cal = _load_calibration(src, data.get("calibration", "default"))
    if cal.sine_only:
        raise SweepError(f"{src}: coupling = \"circuit\" needs a calibration with the measured coupling function "
                         f"(format 2); {data.get('calibration')!r} is sine-only (format 1)")
    return coupling, trim


def _load_calibration(src: str, name: Any):
    """"default" (the built-in measured calibration) or a calibration file relative to the spec."""
    from hw.calibration import Calibration, CalibrationError

    if not isinstance(name, str) or not name:
        raise SweepError(f"{src}: 'calibration' must be \"default\" or a calibration file, not {name!r}")
    try:
        if name == "default":
            return Calibration.default()
        path = Path(name) if Path(name).is_absolute() else Path(src).parent / name
        return Calibration.load(path)
    except CalibrationError as exc:
        raise SweepError(f"{src}: 'calibration': {exc}") from None


def _from_calibration(src: str, data: dict[str, Any]) -> tuple[str, float, dict[str, Any]]:
    """'calibration' ("default" or a calibration file) and 'tau_s' (or the compiler's τ for
    the model with the spec's [compile] options and that calibration) → NonIdeal fields."""
    name = data["calibration"]
    cal = _load_calibration(src, name)
    tau_s = data.get("tau_s")
    if tau_s is None:  # the compiler picks τ for this model on these cells
        import compiler
        import models
        from models.checkpoint import SHIPPED

        ckpt = data.get("checkpoint", "shipped")
        path = Path(SHIPPED) if ckpt == "shipped" else (Path(ckpt) if Path(ckpt).is_absolute() else Path(src).parent / ckpt)
        options = _compile_options(_compile_base(src, data.get("compile", {})))
        tau_s = compiler.compile(models.load(path), options, calibration=cal).tau_s
    if isinstance(tau_s, bool) or not isinstance(tau_s, (int, float)) or not (math.isfinite(tau_s) and tau_s > 0):
        raise SweepError(f"{src}: 'tau_s' must be a positive number of seconds, not {tau_s!r}")
    derived = nonideal_from_calibration(cal, float(tau_s)).to_dict()
    keep = ("phase_noise_rad_per_sqrt_t", "freq_mismatch_rad_per_t", "coupling_mismatch_sigma", "coupling_bits")
    return name, float(tau_s), {k: derived[k] for k in keep}


def load_nonideal(path: str | Path) -> NonIdeal:
    """The [nonideal] table of a TOML file (a sweep spec or a file of its own)."""
    src = str(path)
    data = _read_toml(Path(path), missing="no such file")
    if "nonideal" not in data:
        raise SweepError(f"{src}: needs a [nonideal] table of NonIdeal fields")
    try:
        return NonIdeal.from_dict(data["nonideal"], source=f"{src} [nonideal]")
    except OscsimError as exc:
        raise SweepError(str(exc)) from None


def _compile_fields() -> list[str]:
    from compiler import CompileOptions

    return [f.name for f in dataclasses.fields(CompileOptions)]


def _compile_options(values: dict[str, Any]):
    from compiler import CompileOptions

    return CompileOptions(**values)


def _compile_base(src: str, table: Any) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise SweepError(f"{src}: [compile] must be a table of CompileOptions fields")
    unknown = sorted(set(table) - set(_compile_fields()))
    if unknown:
        raise SweepError(f"{src} [compile]: unknown key(s) {', '.join(unknown)}; valid: {', '.join(_compile_fields())}")
    try:
        _compile_options(table)
    except (ValueError, TypeError) as exc:
        raise SweepError(f"{src} [compile]: {exc}") from None
    return dict(table)


def _check_couplers(src: str, options, calibration: str | None) -> None:
    """The compile options' couplers on the cells the sweep's arrays are built of (the spec's
    calibration under the circuit coupling, the built-in one otherwise): CompileError if the
    coupler cannot realise them (--couplers directed on a reciprocal coupler)."""
    from compiler.circuit import directed_couplers

    directed_couplers(options.couplers, _load_calibration(src, calibration or "default"))


def circuit_shape(model, options: dict[str, Any] | None, calibration, *, trim: str):
    """(the IR, its `oscsim.shaped.ShapedCoupling`): `model` compiled with CompileOptions
    `options` on `calibration`'s cells, every coupler realised on them
    (`compiler.circuit.realise_ir`, full-code DAC scale — as `ArrayIR.to_model(coupling=
    "circuit")`), `trim` 'closed' (constant parts trimmed out) or 'open'. The shape's
    ratios fit the model's own couplings (same N, N_c, classes): put it on
    `model.dynamics.shape` to run or train the model under the measured coupling function."""
    import compiler
    from compiler.circuit import realise_ir

    if trim not in CIRCUIT_TRIMS:
        raise SweepError(f"trim must be one of {', '.join(CIRCUIT_TRIMS)}, not {trim!r}")
    if calibration.sine_only:
        raise SweepError("the circuit's coupling needs a calibration with the measured coupling function (format 2); "
                         "this one is sine-only (format 1)")
    if not isinstance(options, compiler.CompileOptions):
        options = _compile_options(dict(options or {}))
    ir = compiler.compile(model, options, calibration=calibration)
    shape = realise_ir(ir, calibration=calibration, trim=trim, scale="full-code").shape()
    return ir, shape


def shaped(model, shape):
    """A copy of `model` that runs under `shape` (the original keeps its own coupling)."""
    import copy

    twin = copy.deepcopy(model)
    twin.dynamics.shape = shape
    return twin


# --- the scoring context (one per process) ----------------------------------------------------
class _Context:
    """The model, feature space, data sets and the ideal model's samples, made once per process."""

    def __init__(self, spec: SweepSpec) -> None:
        import models
        from analysis.evaluate import bounded_batch
        from analysis.fidelity import FidelityError, feature_space
        from analysis.inception import InceptionWeightsError

        self.spec = spec
        self.model = models.load(spec.checkpoint_path())
        cfg = self.model.config
        try:
            self.ex = feature_space(spec.features, cfg.image_shape, inception_weights=spec.path_of("inception_weights"))
        except (FidelityError, InceptionWeightsError) as exc:
            raise SweepError(f"{spec.source}: 'features': {exc}") from None
        self.reference, self.floor_set = (None, None) if spec.metric == "fidelity" else _data_sets(spec, cfg)
        if spec.metric == "fid" and self.reference is None:
            raise SweepError(f"{spec.source}: metric = \"fid\" needs a data set: 'data' (a CIFAR-10 folder or an "
                             f"ImageNet-64 .npz) for {spec.checkpoint}'s {cfg.image_shape} images")
        self.metric = "fid" if self.reference is not None else "fidelity"
        self.batch = bounded_batch(cfg, spec.batch_size)
        self.bar = None  # a per-sample progress bar in a serial run
        self._ideal: dict[int, Any] = {}
        self._compiled: dict[str, Any] = {}
        self._circuit = None  # the checkpoint under the circuit's coupling, built when first needed

    # what is scored, in words (reports and plots)
    @property
    def primary(self) -> str:
        return "fid" if self.metric == "fid" else "fid_vs_ideal"

    @property
    def label(self) -> str:
        if self.metric == "fidelity":
            return f"FID vs the ideal model ({self.ex.id.split(':')[0]} features)"
        if self.reference.name.startswith("digits") and self.ex.id.startswith("digits-cnn"):
            return "FID-digits"
        return f"FID ({self.ex.id.split(':')[0]}) vs {self.reference.name}"

    def hardware_model(self):
        """The checkpoint as the hardware's points run it: itself (sine), or under the circuit's
        coupling function of its array with the spec's [compile] options."""
        spec = self.spec
        if spec.coupling == "sine":
            return self.model
        if self._circuit is None:
            _, shape = circuit_shape(self.model, spec.compile, spec.load_calibration(), trim=spec.trim)
            self._circuit = shaped(self.model, shape)
        return self._circuit

    def model_for(self, value: Any):
        """The model a point runs: the checkpoint (under the circuit's coupling when the spec
        asks), or the array the compiler built for it."""
        spec = self.spec
        if value == IDEAL:
            return self.model
        if not (spec.factor or "").startswith(COMPILE_PREFIX):
            return self.hardware_model()
        key = repr(value)
        if key not in self._compiled:
            import compiler

            options = _compile_options({**(spec.compile or {}), spec.factor[len(COMPILE_PREFIX):]: value})
            if spec.coupling == "sine":
                ir = compiler.compile(self.model, options)
                model = ir.to_model()
            else:
                ir, shape = circuit_shape(self.model, options, spec.load_calibration(), trim=spec.trim)
                model = ir.to_model()
                model.dynamics.shape = shape
            self._compiled = {key: model}  # one at a time: points arrive value by value
        return self._compiled[key]

    def nonideal_for(self, value: Any, seed: int) -> NonIdeal | None:
        spec = self.spec
        if value == IDEAL:
            return None
        base = spec.nonideal
        if spec.factor in FACTORS:
            base = base.replace(**{spec.factor: value})
        elif spec.factor in OPERATING_FACTORS:
            base = base.replace(**spec.corner_terms(value))
        elif spec.factor == FLICKER_FACTOR:
            base = base.replace(**spec.flicker_terms(value))
        return base.replace(chip_seed=base.chip_seed + seed, sample_seed=base.sample_seed + seed)

    def per_class(self) -> int:
        return max(1, self.spec.samples // self.model.config.num_classes)

    def ideal(self, plan_seed: int, *, chips: int = 1):
        """The ideal model's samples on the seed phases of `plan_seed` (`IdealReference`),
        batched so that `chips` chips of a batch fit the memory bound; kept while they fit it."""
        from analysis.evaluate import GENERATION_MEMORY_BYTES, bounded_batch
        from analysis.fidelity import IdealReference

        key = (plan_seed, chips)
        if key not in self._ideal:
            cfg = self.model.config
            batch = self.batch if chips == 1 else bounded_batch(cfg, self.spec.batch_size, chips=chips)
            held = sum(len(r.labels) for r in self._ideal.values())
            samples = self.per_class() * cfg.num_classes
            keep = IdealReference.held_bytes(cfg, held + samples) <= GENERATION_MEMORY_BYTES // 2
            self._ideal[key] = IdealReference.of_plan(self.model, self.ex, per_class=self.per_class(), seed=plan_seed,
                                                      batch_size=batch, keep=keep)
        return self._ideal[key]

    def data_scores(self, feats, hits, *, seed: int) -> dict[str, Any]:
        """FID, precision/recall and class accuracy of a chip's features against the data set
        (None without one; class accuracy needs only the feature space's classifier)."""
        from analysis.evaluate import score_features

        accuracy = None if hits is None else float(hits.float().mean())
        if self.reference is None:
            return {"fid": None, "precision": None, "recall": None, "class_accuracy": accuracy}
        s = score_features(feats, hits, self.ex, self.reference, seed=seed)
        return {"fid": s.fid, "precision": s.precision, "recall": s.recall, "class_accuracy": s.class_accuracy}

    def score_point(self, value: Any, seed: int) -> dict[str, Any]:
        from analysis.fidelity import paired_run

        t0 = time.perf_counter()
        plan_seed = self.spec.seed + 1000 * seed
        acc = paired_run(self.ideal(plan_seed), self.model_for(value), nonideal=self.nonideal_for(value, seed),
                         progress=self.bar)
        fidelity = acc.score()
        return {"value": value, "seed": seed, **self.data_scores(acc.features(), acc.class_hits(), seed=plan_seed),
                **{k: getattr(fidelity, k) for k in FIDELITY_FIELDS}, "seconds": time.perf_counter() - t0}

    def floor(self) -> float | None:
        """With a data set: its own floor (another real split against the reference; None
        without one). With chip fidelity alone: the sampling floor of FID vs ideal (the ideal
        model on seed 0's phases against another seed set of the same size)."""
        from analysis.evaluate import reference_stats
        from analysis.fid import frechet_distance
        from analysis.fidelity import sampling_floor

        if self.metric == "fid":
            if self.floor_set is None:
                return None
            return frechet_distance(reference_stats(self.floor_set, self.ex)[0],
                                    reference_stats(self.reference, self.ex)[0])
        other = self.spec.seed + 1000 * max(self.spec.seeds, 1) + 1
        return sampling_floor(self.ideal(self.spec.seed), self.ideal(other))

    def floor_label(self) -> str:
        if self.metric == "fidelity":
            return "sampling floor (two seed sets of the ideal model)"
        return f"data floor ({self.floor_set.name} vs {self.reference.name})" if self.floor_set else "data floor"


def _data_sets(spec: SweepSpec, cfg):
    """(reference, floor set) of the spec's model: the shipped digits splits for digits models;
    the spec's 'data' for the others — CIFAR-10's train split as the reference (the release's),
    its test split for the floor; an ImageNet-64 file alone — ((None, None) without data)."""
    from models.data import DataError, digits, image_data

    where = spec.path_of("data")
    if where is None:
        return (digits("test"), digits("train")) if tuple(cfg.image_shape) == (1, 8, 8) else (None, None)
    try:
        return image_data(where, cfg.image_shape, flag="'data'")
    except DataError as exc:
        raise SweepError(f"{spec.source}: {exc}") from None


_WORKER: dict[str, _Context] = {}


def _worker_init(spec: SweepSpec, threads: int) -> None:
    torch.set_num_threads(threads)
    _WORKER["ctx"] = _Context(spec)


def _worker_point(value: Any, seed: int) -> dict[str, Any]:
    return _WORKER["ctx"].score_point(value, seed)


def _worker_chips(group: int) -> list[dict[str, Any]]:
    return _score_chip_group(_WORKER["ctx"], group)


# --- the folder ----------------------------------------------------------------------------
def prepare_run_folder(out: Path, mine: dict[str, Any], *, error: type[Exception] = SweepError, what: str = "sweep",
                       resumable_keys: tuple[str, ...] = ()) -> bool:
    """Create OUT holding `mine` as spec.json, or check that it holds a run of the same spec
    (keys in `resumable_keys` may differ); True for a new run. `error` names what is wrong."""
    stored = out / "spec.json"
    if stored.is_file():
        try:
            theirs = json.loads(stored.read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            raise error(f"{stored}: unreadable or truncated; use a new output folder") from None
        if not isinstance(theirs, dict):
            raise error(f"{stored}: holds a JSON {type(theirs).__name__}, not a {what} spec; use a new output folder")
        differ = sorted(k for k in set(mine) | set(theirs) if k not in resumable_keys and mine.get(k) != theirs.get(k))
        if differ:
            raise error(f"{out}: holds a {what} of another spec (differs in {', '.join(differ)}); "
                        f"use a new output folder")
        return False
    if stored.exists() or stored.is_symlink():
        raise error(f"{stored}: is not a regular file; use a new output folder")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise error(f"{out}: exists and is not a {what} folder; use a new output folder")
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(stored) as tmp:
        tmp.write_text(json.dumps(mine, indent=2) + "\n")
    return True


def _prepare(out: Path, spec: SweepSpec) -> bool:
    """Create OUT (or check that it holds a run of the same spec); True for a new run."""
    return prepare_run_folder(out, spec.to_dict())


def _read_log(path: Path) -> list[dict[str, Any]]:
    """Finished entries; a line cut short by a kill is ignored (its job reruns)."""
    rows = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


def _append(path: Path, rows: list[dict[str, Any]]) -> None:
    with open(path, "a") as fh:
        fh.writelines(json.dumps(row) + "\n" for row in rows)
        fh.flush()


def _run_jobs(jobs: list[tuple], fn_serial: Callable, fn_worker: Callable, *, spec: SweepSpec, workers: int,
              log: Path, progress: bool, desc: str) -> None:
    """Run `jobs` (argument tuples) serially or over worker processes, logging each result."""
    bar = tqdm(total=len(jobs), desc=desc, unit="job", disable=not progress)
    try:
        if workers <= 1 or len(jobs) <= 1:
            for job in jobs:
                result = fn_serial(*job)
                _append(log, result if isinstance(result, list) else [result])
                bar.update()
            return
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        threads = max(1, torch.get_num_threads() // workers)
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_worker_init, initargs=(spec, threads)) as pool:
            futures = [pool.submit(fn_worker, *job) for job in jobs]
            for fut in as_completed(futures):
                result = fut.result()
                _append(log, result if isinstance(result, list) else [result])
                bar.update()
    finally:
        bar.close()


# --- one-factor ------------------------------------------------------------------------------
def _value_key(value: Any) -> str:
    return json.dumps(value)


def run_sweep(spec: SweepSpec, out: str | Path, *, jobs: int = 1, progress: bool = True) -> dict[str, Any]:
    """Run (or resume) a sweep into `out`; returns the summary that report.md shows."""
    out = Path(out)
    fresh = _prepare(out, spec)
    try:
        return _run(spec, out, jobs=jobs, progress=progress)
    except BaseException:
        # a new run that failed before its first result leaves nothing that blocks a rerun
        if fresh and not any(p.name != "spec.json" for p in out.iterdir()):
            (out / "spec.json").unlink(missing_ok=True)
        raise


def _sample_bar(ctx: _Context, total: int, progress: bool):
    """A per-sample bar (with its ETA) under the job bar, for serial runs."""
    ctx.bar = tqdm(total=total, desc="samples", unit="sample", position=1, leave=False, disable=not progress)
    return ctx.bar


def _run(spec: SweepSpec, out: Path, *, jobs: int, progress: bool) -> dict[str, Any]:
    if spec.kind == "monte-carlo":
        return _run_monte_carlo(spec, out, jobs=jobs, progress=progress)
    log = out / "points.jsonl"
    done = {(_value_key(r["value"]), r["seed"]) for r in _read_log(log)}
    todo = [(v, s) for v in (IDEAL, *spec.values) for s in range(spec.seeds) if (_value_key(v), s) not in done]
    ctx = _Context(spec) if jobs <= 1 or not todo else None
    serial = ctx.score_point if ctx is not None else None
    bar = _sample_bar(ctx, len(todo) * ctx.per_class() * ctx.model.config.num_classes, progress) if ctx else None
    try:
        _run_jobs(todo, serial, _worker_point, spec=spec, workers=jobs, log=log, progress=progress, desc="sweep")
    finally:
        if bar is not None:
            bar.close()
            ctx.bar = None
    ctx = ctx or _Context(spec)
    rows = _read_log(log)
    latest = {(_value_key(r["value"]), r["seed"]): r for r in rows}
    order = {_value_key(v): i for i, v in enumerate((IDEAL, *spec.values))}
    rows = sorted(latest.values(), key=lambda r: (order[_value_key(r["value"])], r["seed"]))
    summary = summarise(rows, spec)
    floor = ctx.floor()
    _write_csv(out / "points.csv", rows, POINT_FIELDS)
    _write_csv(out / "summary.csv", summary, SUMMARY_FIELDS)
    _plot_sweep(out / "sweep.png", spec, ctx, summary, floor)
    report = _report_sweep(spec, ctx, summary, floor, rows)
    with atomic_path(out / "report.md") as tmp:
        tmp.write_text(report)
    return {"summary": summary, "floor": floor, "metric": ctx.metric, "label": ctx.label,
            "feature_space": ctx.ex.id}


#: every figure a point or chip has, in the order the summaries list them
METRIC_KEYS = ("fid", "precision", "recall", "class_accuracy", *FIDELITY_FIELDS)
#: the figures whose mean gets a 95 % interval
INTERVAL_KEYS = ("fid", "fid_vs_ideal")
SUMMARY_FIELDS = ("value", "runs", *(f for k in METRIC_KEYS for f in (
    (k, k + "_sd", k + "_lo", k + "_hi") if k in INTERVAL_KEYS else (k, k + "_sd"))), "dfid", "dfid_sd", "seconds")


def _t95(n: int) -> float:
    """Two-sided 95 % Student-t quantile for n − 1 degrees of freedom."""
    from scipy.stats import t

    return float(t.ppf(0.975, n - 1)) if n > 1 else float("nan")


def _mean_sd(values: list[float]) -> tuple[float | None, float]:
    """Mean and sample sd; an infinite PSNR (identical images) is a mean of ∞ with sd 0 when
    every run has it, and ∞ with an undefined (NaN) sd when only some do."""
    if not values:
        return None, 0.0
    if any(math.isinf(v) for v in values):
        return math.inf, 0.0 if all(v == math.inf for v in values) else math.nan
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summarise(rows: list[dict[str, Any]], spec: SweepSpec) -> list[dict[str, Any]]:
    """Per value (ideal first): mean and sd of every figure over seeds, a 95 % Student-t
    interval of the mean FID (and FID vs ideal), and ΔFID paired with the ideal model."""
    out = []
    ideal = {r["seed"]: r["fid"] for r in rows if r["value"] == IDEAL and r.get("fid") is not None}
    for value in (IDEAL, *spec.values):
        sub = [r for r in rows if _value_key(r["value"]) == _value_key(value)]
        if not sub:
            continue
        entry: dict[str, Any] = {"value": value, "runs": len(sub)}
        for key in (*METRIC_KEYS, "seconds"):
            entry[key], entry[key + "_sd"] = _mean_sd([r[key] for r in sub if r.get(key) is not None])
        for key in INTERVAL_KEYS:
            if entry[key] is None:
                entry[key + "_lo"] = entry[key + "_hi"] = None
                continue
            half = _t95(len(sub)) * entry[key + "_sd"] / math.sqrt(len(sub)) if len(sub) > 1 else 0.0
            entry[key + "_lo"], entry[key + "_hi"] = entry[key] - half, entry[key] + half
        # paired with the ideal model on the same seed phases: the hardware's own effect
        deltas = [r["fid"] - ideal[r["seed"]] for r in sub if r["seed"] in ideal and r.get("fid") is not None]
        entry["dfid"] = statistics.fmean(deltas) if deltas else None
        entry["dfid_sd"] = statistics.stdev(deltas) if len(deltas) > 1 else 0.0
        out.append(entry)
    return out


def _write_csv(path: Path, rows: list[dict[str, Any]], fields) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(fields), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    _plt().close(fig)


def _plot_sweep(path: Path, spec: SweepSpec, ctx: _Context, summary: list[dict[str, Any]], floor: float | None) -> None:
    plt = _plt()
    key = ctx.primary
    pts = [e for e in summary if e["value"] != IDEAL]
    ideal = next((e for e in summary if e["value"] == IDEAL), None)
    # a categorical factor (compile.target, compile.couplers, ...) is plotted at positions 0..k-1
    categorical = not all(isinstance(e["value"], (int, float)) and not isinstance(e["value"], bool) for e in pts)
    x = list(range(len(pts))) if categorical else [float(e["value"]) for e in pts]
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 3.8), dpi=120)
    ax0.plot(x, [e[key] for e in pts], "-o", ms=3, color="#4c72b0", label="on the hardware (mean)")
    ax0.fill_between(x, [e[key + "_lo"] for e in pts], [e[key + "_hi"] for e in pts], color="#4c72b0", alpha=0.25,
                     label=f"95 % interval ({spec.seeds} chips/seeds)")
    if ideal is not None and ctx.metric == "fid":
        ax0.axhline(ideal["fid"], color="#55a868", lw=1.2, label=f"ideal model {ideal['fid']:.2f}")
        ax0.axhspan(ideal["fid_lo"], ideal["fid_hi"], color="#55a868", alpha=0.15)
    if floor is not None:
        ax0.axhline(floor, color="k", ls="--", lw=1, label=f"{ctx.floor_label().split(' (')[0]} {floor:.3g}")
    ax0.set_ylabel(f"{ctx.label} (lower is better)", fontsize=8)
    if all(e[key] > 0 for e in pts) and (floor is None or floor > 0):
        ax0.set_yscale("log")
    if ctx.metric == "fid":
        for k, style in (("precision", "-o"), ("recall", "--s")):
            ax1.plot(x, [e[k] for e in pts], style, ms=3, label=k)
            ax1.fill_between(x, [e[k] - e[k + "_sd"] for e in pts], [e[k] + e[k + "_sd"] for e in pts], alpha=0.15)
            if ideal is not None:
                ax1.axhline(ideal[k], ls=":", lw=1, color="grey")
        ax1.set_ylim(0, 1)
        ax1.set_ylabel("precision / recall (±1 sd; dotted: ideal)")
        ax1.legend(fontsize=7)
    else:
        finite = [(v, e["psnr_db"]) for v, e in zip(x, pts) if math.isfinite(e["psnr_db"])]
        ax1.plot([v for v, _ in finite], [p for _, p in finite], "-o", ms=3, color="#4c72b0", label="PSNR vs ideal")
        ax1.set_ylabel("PSNR of the chip's images vs the model's (dB)")
        twin = ax1.twinx()
        twin.plot(x, [e["phase_error_rad"] for e in pts], "--s", ms=3, color="#c44e52", label="final phase error")
        twin.set_ylabel("mean circular phase error (rad)")
        lines = ax1.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
        ax1.legend(lines, [ln.get_label() for ln in lines], fontsize=7)
    for ax in (ax0, ax1):
        ax.set_xlabel(spec.factor)
        if categorical:
            ax.set_xticks(x, [str(e["value"]) for e in pts])
            ax.set_xlim(-0.5, len(pts) - 0.5)
        elif spec.x_scale == "log":
            ax.set_xscale("log")
        elif spec.x_scale == "symlog":
            positive = [v for v in x if v > 0]
            ax.set_xscale("symlog", linthresh=min(positive) if positive else 1.0)
        ax.grid(alpha=0.3)
    ax0.legend(fontsize=7)
    fig.suptitle(spec.title or f"{ctx.label} vs {spec.factor}", fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def _fmt(x: Any, digits: int = 2) -> str:
    if x is None:
        return "–"
    return "∞" if x == math.inf else f"{x:.{digits}f}"


def _sig(x: Any) -> str:
    """Three significant figures (FID vs ideal spans decades)."""
    return "–" if x is None else f"{x:.3g}"


def _coupling_note(spec: SweepSpec) -> str:
    """The report's sentence on the circuit's coupling ('' for the sine coupling)."""
    if spec.coupling == "sine":
        return ""
    return (f" Every point runs under the circuit's measured coupling function (calibration "
            f"{spec.calibration or 'default'}, trim {spec.trim}; each coupler's shape from the array of the "
            f"compile options {json.dumps(spec.compile or {})}, full-code DAC scale); the ideal model is the "
            "sine-only checkpoint.")


def _fidelity_note(ctx: _Context) -> list[str]:
    """What the chip-fidelity columns mean (the report's legend)."""
    from analysis.fidelity import meaning

    names = {"phase_error_rad": "phase error", "psnr_db": "PSNR", "feature_distance": "feature distance",
             "fid_vs_ideal": "FID vs ideal", "label_agreement": "label agreement"}
    text = meaning()
    keys = [k for k in FIDELITY_FIELDS if k != "label_agreement" or ctx.ex.classify is not None]
    return ["Chip fidelity (paired with the ideal model on the same seeds and labels; feature space "
            f"`{ctx.ex.id}`):", "", *[f"- {names[k]}: {text[k]}" for k in keys], ""]


def _report_sweep(spec: SweepSpec, ctx: _Context, summary: list[dict[str, Any]], floor: float | None,
                  rows: list[dict[str, Any]]) -> str:
    base = {k: v for k, v in spec.nonideal.to_dict().items() if v != getattr(NonIdeal(), k)}
    floor_text = f"{ctx.floor_label()[0].upper()}{ctx.floor_label()[1:]}: " + (
        "none (the data set has one split)" if floor is None else f"{floor:.3f}") + "."
    lines = [
        f"# {spec.title or ctx.label + ' vs ' + str(spec.factor)}", "",
        f"Model `{spec.checkpoint}` ({ctx.model.config.name}, {'×'.join(map(str, ctx.model.config.image_shape))}); "
        f"factor `{spec.factor}`; {spec.seeds} chips/seeds per point, "
        f"{ctx.per_class() * ctx.model.config.num_classes} samples each; operating point "
        f"{json.dumps(base) if base else 'all other terms off'}"
        + (f"; compile options {json.dumps(spec.compile)}" if spec.compile else "") + "." + _coupling_note(spec),
        f"{floor_text} Interval: 95 % Student-t over seeds.", "",
    ]
    if ctx.metric == "fid":
        lines += [
            "ΔFID: minus the ideal model's FID on the same seed phases (paired; mean ± sd over seeds).", "",
            f"| value | {ctx.label} | 95 % interval | ΔFID vs ideal | precision | recall | class accuracy "
            "| phase error (rad) | PSNR (dB) | s/point |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for e in summary:
            lines.append(f"| {e['value']} | {_fmt(e['fid'])} ± {_fmt(e['fid_sd'])} | {_fmt(e['fid_lo'])} – "
                         f"{_fmt(e['fid_hi'])} | {_fmt(e['dfid'])} ± {_fmt(e['dfid_sd'])} "
                         f"| {_fmt(e['precision'], 3)} | {_fmt(e['recall'], 3)} | {_fmt(e['class_accuracy'], 3)} "
                         f"| {_fmt(e['phase_error_rad'], 3)} | {_fmt(e['psnr_db'], 1)} | {_fmt(e['seconds'], 1)} |")
    else:
        agree = ctx.ex.classify is not None
        lines += [
            "No data set: every point is scored against the ideal model it implements (chip fidelity).", "",
            "| value | FID vs ideal | 95 % interval | phase error (rad) | PSNR (dB) | feature distance "
            + ("| label agreement " if agree else "") + "| s/point |",
            "|---|---|---|---|---|---|" + ("---|" if agree else "") + "---|",
        ]
        for e in summary:
            lines.append(f"| {e['value']} | {_sig(e['fid_vs_ideal'])} ± {_sig(e['fid_vs_ideal_sd'])} "
                         f"| {_sig(e['fid_vs_ideal_lo'])} – {_sig(e['fid_vs_ideal_hi'])} "
                         f"| {_fmt(e['phase_error_rad'], 3)} | {_fmt(e['psnr_db'], 1)} "
                         f"| {_fmt(e['feature_distance'], 3)} "
                         + (f"| {_fmt(e['label_agreement'], 3)} " if agree else "") + f"| {_fmt(e['seconds'], 1)} |")
    lines += ["", *_fidelity_note(ctx), f"{len(rows)} scored points in `points.csv`; plot `sweep.png`."]
    return "\n".join(lines) + "\n"


# --- Monte Carlo over chips ----------------------------------------------------------------
def _score_chip_group(ctx: _Context, group: int) -> list[dict[str, Any]]:
    """Score chips [group·G, …) of the spec, the group's chips side by side on the simulator's
    chip axis, batch by batch of the sample plan (memory-bounded for the group)."""
    from analysis.evaluate import batch_nonideal
    from analysis.fidelity import Paired, run_batch, split_chips

    spec = ctx.spec
    first = group * spec.chip_group
    count = min(spec.chip_group, spec.chips - first)
    ref = ctx.ideal(spec.seed, chips=spec.chip_group)
    ni = spec.nonideal.replace(chips=count, chip_seed=spec.nonideal.chip_seed + first,
                               sample_seed=spec.nonideal.sample_seed + group)
    accs = [Paired(extractor=ctx.ex.id, relativization=ctx.model.config.relativization) for _ in range(count)]
    for k, i in enumerate(ref.starts):
        labels, theta0 = ref.labels[i:i + ref.batch_size], ref.theta0[i:i + ref.batch_size]
        # batch 0 draws with the group's own seed; batch k > 0 with one derived from it
        batch = run_batch(ctx.hardware_model(), ctx.ex, labels.repeat(count), theta0.repeat(count, 1),
                          nonideal=ni if k == 0 else batch_nonideal(ni, k))
        for acc, part in zip(accs, split_chips(batch, count)):
            acc.add(ref.batch(k), part)
        if ctx.bar is not None:
            ctx.bar.update(count * len(labels))
    rows = []
    for c, acc in enumerate(accs):
        fidelity = acc.score()
        rows.append({"chip": spec.nonideal.chip_seed + first + c,
                     **ctx.data_scores(acc.features(), acc.class_hits(), seed=spec.seed),
                     **{k: getattr(fidelity, k) for k in FIDELITY_FIELDS}})
    return rows


def _run_monte_carlo(spec: SweepSpec, out: Path, *, jobs: int, progress: bool) -> dict[str, Any]:
    log = out / "chips.jsonl"
    groups = math.ceil(spec.chips / spec.chip_group)
    done_chips = {r["chip"] for r in _read_log(log)}
    todo = []
    for g in range(groups):
        first = spec.nonideal.chip_seed + g * spec.chip_group
        wanted = set(range(first, first + min(spec.chip_group, spec.chips - g * spec.chip_group)))
        if not wanted <= done_chips:
            todo.append((g,))
    ctx = _Context(spec)
    samples = ctx.per_class() * ctx.model.config.num_classes
    bar = _sample_bar(ctx, samples * sum(min(spec.chip_group, spec.chips - g * spec.chip_group) for (g,) in todo),
                      progress and jobs <= 1)
    try:
        _run_jobs(todo, lambda g: _score_chip_group(ctx, g), _worker_chips, spec=spec, workers=jobs, log=log,
                  progress=progress, desc="chips")
    finally:
        bar.close()
        ctx.bar = None
    rows = sorted({r["chip"]: r for r in _read_log(log)}.values(), key=lambda r: r["chip"])
    key = ctx.primary
    values = [r[key] for r in rows]
    floor = ctx.floor()
    summary: dict[str, Any] = {"chips": len(rows), "metric": ctx.metric, "label": ctx.label,
                               "feature_space": ctx.ex.id, "floor": floor, "yield_within": spec.yield_within}
    if ctx.metric == "fid":
        ref = ctx.ideal(spec.seed, chips=spec.chip_group)
        ideal = ctx.data_scores(ref.features(), _ideal_hits(ref), seed=spec.seed)
        limit = ideal["fid"] * (1 + spec.yield_within)
        summary.update({"ideal_fid": ideal["fid"], "ideal_precision": ideal["precision"],
                        "ideal_recall": ideal["recall"], "fid_limit": limit,
                        "precision_mean": statistics.fmean(r["precision"] for r in rows),
                        "recall_mean": statistics.fmean(r["recall"] for r in rows)})
    else:
        limit = spec.yield_within * floor
        summary.update({"sampling_floor": floor, "fid_vs_ideal_limit": limit})
    summary.update({
        "limit": limit, "yield": sum(v <= limit for v in values) / len(values),
        f"{key}_mean": statistics.fmean(values), f"{key}_median": statistics.median(values),
        f"{key}_p5": _quantile(values, 0.05), f"{key}_p95": _quantile(values, 0.95),
        f"{key}_min": min(values), f"{key}_max": max(values),
        "phase_error_rad_mean": statistics.fmean(r["phase_error_rad"] for r in rows),
        "psnr_db_median": statistics.median(r["psnr_db"] for r in rows),
    })
    _write_csv(out / "chips.csv", rows, CHIP_FIELDS)
    _plot_monte_carlo(out / "montecarlo.png", spec, ctx, values, summary)
    with atomic_path(out / "report.md") as tmp:
        tmp.write_text(_report_monte_carlo(spec, ctx, summary))
    with atomic_path(out / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _ideal_hits(ref) -> Any:
    """Whether the classifier names the requested class on each ideal sample (or None)."""
    batches = [ref.batch(k) for k in range(len(ref.starts))]
    if batches[0].classes is None:
        return None
    return torch.cat([b.classes == b.labels for b in batches])


def _quantile(values: list[float], q: float) -> float:
    return float(torch.quantile(torch.tensor(values, dtype=torch.float64), q))


def _plot_monte_carlo(path: Path, spec: SweepSpec, ctx: _Context, values: list[float], s: dict[str, Any]) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=120)
    ax.hist(values, bins=min(30, max(5, len(values) // 3)), color="#4c72b0", alpha=0.8, label=f"{len(values)} chips")
    if ctx.metric == "fid":
        ax.axvline(s["ideal_fid"], color="#55a868", lw=1.5, label=f"ideal model {s['ideal_fid']:.2f}")
        limit_label = f"ideal +{100 * spec.yield_within:g} %"
    else:
        limit_label = f"{100 * spec.yield_within:g} % of the sampling floor"
    ax.axvline(s["limit"], color="#c44e52", ls="--", lw=1.2, label=f"{limit_label}: yield {100 * s['yield']:.0f} %")
    if s["floor"] is not None:
        ax.axvline(s["floor"], color="k", ls=":", lw=1, label=f"{ctx.floor_label().split(' (')[0]} {s['floor']:.3g}")
    ax.set_xlabel(f"{ctx.label} of a chip", fontsize=8)
    ax.set_ylabel("chips")
    ax.legend(fontsize=7)
    ax.set_title(spec.title or "Monte Carlo over simulated chips", fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def _report_monte_carlo(spec: SweepSpec, ctx: _Context, s: dict[str, Any]) -> str:
    base = {k: v for k, v in spec.nonideal.to_dict().items() if v != getattr(NonIdeal(), k)}
    key = ctx.primary
    lines = [
        f"# {spec.title or 'Monte Carlo over chips'}", "",
        f"Model `{spec.checkpoint}` ({ctx.model.config.name}); operating point {json.dumps(base)}; {s['chips']} chips, "
        f"{ctx.per_class() * ctx.model.config.num_classes} samples each (the same seed phases on every chip)."
        + _coupling_note(spec), "",
    ]
    if ctx.metric == "fid":
        lines += [
            f"| | {ctx.label} | precision | recall |", "|---|---|---|---|",
            f"| ideal model | {s['ideal_fid']:.2f} | {s['ideal_precision']:.3f} | {s['ideal_recall']:.3f} |",
            f"| chips: mean | {s['fid_mean']:.2f} | {s['precision_mean']:.3f} | {s['recall_mean']:.3f} |",
        ]
        rule = f"FID within {100 * spec.yield_within:g} % of the ideal model's, ≤ {s['limit']:.2f}"
    else:
        lines += ["| | FID vs ideal |", "|---|---|", "| ideal model | 0 (by definition) |",
                  f"| chips: mean | {s['fid_vs_ideal_mean']:.3g} |"]
        rule = (f"FID vs the ideal model within {100 * spec.yield_within:g} % of the sampling floor "
                f"{s['floor']:.3f}, ≤ {s['limit']:.3f}")
    lines += [
        f"| chips: median | {s[key + '_median']:.3f} |" + (" | |" if ctx.metric == "fid" else ""),
        f"| chips: 5th – 95th percentile | {s[key + '_p5']:.3f} – {s[key + '_p95']:.3f} |"
        + (" | |" if ctx.metric == "fid" else ""),
        f"| chips: best – worst | {s[key + '_min']:.3f} – {s[key + '_max']:.3f} |"
        + (" | |" if ctx.metric == "fid" else ""), "",
        f"**Yield** ({rule}): **{100 * s['yield']:.0f} %** of {s['chips']} chips. "
        + (f"{ctx.floor_label()[0].upper()}{ctx.floor_label()[1:]}: {s['floor']:.3f}." if s["floor"] is not None
           else ""),
        f"Chip fidelity: mean final phase error {s['phase_error_rad_mean']:.3f} rad, median PSNR "
        f"{_fmt(s['psnr_db_median'], 1)} dB against the ideal model's images.", "",
        *_fidelity_note(ctx), "Per chip: `chips.csv`; histogram: `montecarlo.png`.", "",
    ]
    return "\n".join(lines)
