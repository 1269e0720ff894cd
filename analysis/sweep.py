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

Monte Carlo (``kind = "monte-carlo"``, ``chips``, ``samples`` per chip, ``yield_within``):
every chip gets the same seed phases; chips are simulated `chip_group` at a time on the
simulator's chip axis. Yield = share of chips whose FID is within ``yield_within`` (a
fraction) of the ideal model's on the same phases. Outputs ``chips.csv``,
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
COMPILE_PREFIX = "compile."
_KEYS = {
    "kind", "title", "checkpoint", "factor", "values", "seeds", "samples", "x_scale", "batch_size", "seed",
    "chips", "yield_within", "chip_group", "nonideal", "compile", "calibration", "tau_s", "coupling", "trim",
}
#: what a point's couplers add: the model's K sin x, or the circuit's measured coupling function
COUPLINGS = ("sine", "circuit")
#: the cells' frequency trims a sweep's shaped model runs ('trajectory', an offset on ω from the
#: model's own trajectories, is `ArrayIR.to_model`'s and check-array's)
CIRCUIT_TRIMS = ("closed", "open")
IDEAL = "ideal"
POINT_FIELDS = ("value", "seed", "fid", "precision", "recall", "class_accuracy", "seconds")
CHIP_FIELDS = ("chip", "fid", "precision", "recall", "class_accuracy")


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

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["nonideal"] = self.nonideal.to_dict()
        d["values"] = list(self.values)
        d.pop("source")
        if self.coupling == "sine":  # a sine sweep's spec.json stays as it was (old folders resume)
            d.pop("coupling")
            d.pop("trim")
        return d

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
                          "tau_s": tau_s, "coupling": coupling, "trim": trim}
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
    if kind == "one-factor":
        factor = data.get("factor")
        compile_fields = _compile_fields()
        if not (factor in FACTORS or (isinstance(factor, str) and factor.startswith(COMPILE_PREFIX)
                                      and factor[len(COMPILE_PREFIX):] in compile_fields)):
            raise SweepError(f"{src}: 'factor' must be one of {', '.join(FACTORS)} or compile.<field> "
                             f"({', '.join(compile_fields)}), not {factor!r}")
        values = data.get("values")
        if not isinstance(values, list) or not values:
            raise SweepError(f"{src}: 'values' must be a non-empty list of the factor's values")
        if len(set(map(repr, values))) != len(values):
            raise SweepError(f"{src}: 'values' has repeated entries")
        for v in values:
            try:
                if factor.startswith(COMPILE_PREFIX):
                    _compile_options({**(kw.get("compile") or {}), factor[len(COMPILE_PREFIX):]: v})
                else:
                    nonideal.replace(**{factor: v})
            except (OscsimError, ValueError, TypeError) as exc:
                raise SweepError(f"{src}: 'values' entry {v!r} for {factor}: {exc}") from None
        kw["factor"], kw["values"] = factor, tuple(values)
    else:
        for key in ("factor", "values"):
            if key in data:
                raise SweepError(f"{src}: '{key}' belongs to one-factor sweeps, not {kind}")
        kw.setdefault("samples", 1000)
    return SweepSpec(**kw)


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
    """The model, feature network and data sets, loaded once per process."""

    def __init__(self, spec: SweepSpec) -> None:
        import models
        from analysis.evaluate import digits_extractor
        from models.data import digits

        self.spec = spec
        self.model = models.load(spec.checkpoint_path())
        if self.model.config.image_shape != (1, 8, 8):
            raise SweepError(f"{spec.source}: sweeps score FID-digits; {spec.checkpoint} makes "
                             f"{self.model.config.image_shape} images")
        self.ex = digits_extractor()
        self.reference, self.floor_set = digits("test"), digits("train")
        self._compiled: dict[str, Any] = {}
        self._circuit = None  # the checkpoint under the circuit's coupling, built when first needed

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
        return base.replace(chip_seed=base.chip_seed + seed, sample_seed=base.sample_seed + seed)

    def per_class(self) -> int:
        return max(1, self.spec.samples // self.model.config.num_classes)

    def score_point(self, value: Any, seed: int) -> dict[str, Any]:
        from analysis.evaluate import score_model

        t0 = time.perf_counter()
        score = score_model(self.model_for(value), self.ex, self.reference, per_class=self.per_class(),
                            seed=self.spec.seed + 1000 * seed, nonideal=self.nonideal_for(value, seed),
                            )
        return {"value": value, "seed": seed, "fid": score.fid, "precision": score.precision, "recall": score.recall,
                "class_accuracy": score.class_accuracy, "seconds": time.perf_counter() - t0}

    def floor(self) -> float:
        from analysis.evaluate import reference_stats
        from analysis.fid import frechet_distance

        return frechet_distance(reference_stats(self.floor_set, self.ex)[0], reference_stats(self.reference, self.ex)[0])


_WORKER: dict[str, _Context] = {}


def _worker_init(spec: SweepSpec, threads: int) -> None:
    torch.set_num_threads(threads)
    _WORKER["ctx"] = _Context(spec)


def _worker_point(value: Any, seed: int) -> dict[str, Any]:
    return _WORKER["ctx"].score_point(value, seed)


def _worker_chips(group: int) -> list[dict[str, Any]]:
    return _score_chip_group(_WORKER["ctx"], group)


# --- the folder ----------------------------------------------------------------------------
def _prepare(out: Path, spec: SweepSpec) -> bool:
    """Create OUT (or check that it holds a run of the same spec); True for a new run."""
    stored = out / "spec.json"
    mine = spec.to_dict()
    if stored.is_file():
        try:
            theirs = json.loads(stored.read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            raise SweepError(f"{stored}: unreadable or truncated; use a new output folder") from None
        if not isinstance(theirs, dict):
            raise SweepError(f"{stored}: holds a JSON {type(theirs).__name__}, not a sweep spec; use a new output folder")
        differ = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
        if differ:
            raise SweepError(f"{out}: holds a sweep of another spec (differs in {', '.join(differ)}); "
                             f"use a new output folder")
        return False
    if stored.exists() or stored.is_symlink():
        raise SweepError(f"{stored}: is not a regular file; use a new output folder")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SweepError(f"{out}: exists and is not a sweep folder; use a new output folder")
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(stored) as tmp:
        tmp.write_text(json.dumps(mine, indent=2) + "\n")
    return True


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


def _run(spec: SweepSpec, out: Path, *, jobs: int, progress: bool) -> dict[str, Any]:
    if spec.kind == "monte-carlo":
        return _run_monte_carlo(spec, out, jobs=jobs, progress=progress)
    log = out / "points.jsonl"
    done = {(_value_key(r["value"]), r["seed"]) for r in _read_log(log)}
    todo = [(v, s) for v in (IDEAL, *spec.values) for s in range(spec.seeds) if (_value_key(v), s) not in done]
    ctx = _Context(spec) if jobs <= 1 or not todo else None
    serial = ctx.score_point if ctx is not None else None
    _run_jobs(todo, serial, _worker_point, spec=spec, workers=jobs, log=log, progress=progress, desc="sweep")
    ctx = ctx or _Context(spec)
    rows = _read_log(log)
    latest = {(_value_key(r["value"]), r["seed"]): r for r in rows}
    order = {_value_key(v): i for i, v in enumerate((IDEAL, *spec.values))}
    rows = sorted(latest.values(), key=lambda r: (order[_value_key(r["value"])], r["seed"]))
    summary = summarise(rows, spec)
    floor = ctx.floor()
    _write_csv(out / "points.csv", rows, POINT_FIELDS)
    _write_csv(out / "summary.csv", summary, SUMMARY_FIELDS)
    _plot_sweep(out / "sweep.png", spec, summary, floor)
    report = _report_sweep(spec, summary, floor, rows)
    with atomic_path(out / "report.md") as tmp:
        tmp.write_text(report)
    return {"summary": summary, "floor": floor}


SUMMARY_FIELDS = ("value", "runs", "fid", "fid_sd", "fid_lo", "fid_hi", "dfid", "dfid_sd", "precision", "precision_sd", "recall",
                  "recall_sd", "class_accuracy", "seconds")


def _t95(n: int) -> float:
    """Two-sided 95 % Student-t quantile for n − 1 degrees of freedom."""
    from scipy.stats import t

    return float(t.ppf(0.975, n - 1)) if n > 1 else float("nan")


def summarise(rows: list[dict[str, Any]], spec: SweepSpec) -> list[dict[str, Any]]:
    """Per value (ideal first): mean, sd, 95 % interval of the mean FID over seeds."""
    out = []
    ideal = {r["seed"]: r["fid"] for r in rows if r["value"] == IDEAL}
    for value in (IDEAL, *spec.values):
        sub = [r for r in rows if _value_key(r["value"]) == _value_key(value)]
        if not sub:
            continue
        entry: dict[str, Any] = {"value": value, "runs": len(sub)}
        for key in ("fid", "precision", "recall", "class_accuracy", "seconds"):
            vals = [r[key] for r in sub if r[key] is not None]
            entry[key] = statistics.fmean(vals) if vals else None
            entry[key + "_sd"] = statistics.stdev(vals) if len(vals) > 1 else 0.0
        half = _t95(len(sub)) * entry["fid_sd"] / math.sqrt(len(sub)) if len(sub) > 1 else 0.0
        entry["fid_lo"], entry["fid_hi"] = entry["fid"] - half, entry["fid"] + half
        # paired with the ideal model on the same seed phases: the hardware's own effect
        deltas = [r["fid"] - ideal[r["seed"]] for r in sub if r["seed"] in ideal]
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


def _plot_sweep(path: Path, spec: SweepSpec, summary: list[dict[str, Any]], floor: float) -> None:
    plt = _plt()
    pts = [e for e in summary if e["value"] != IDEAL]
    ideal = next((e for e in summary if e["value"] == IDEAL), None)
    x = [float(e["value"]) for e in pts]
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 3.8), dpi=120)
    ax0.plot(x, [e["fid"] for e in pts], "-o", ms=3, color="#4c72b0", label="on the hardware (mean)")
    ax0.fill_between(x, [e["fid_lo"] for e in pts], [e["fid_hi"] for e in pts], color="#4c72b0", alpha=0.25,
                     label=f"95 % interval ({spec.seeds} chips/seeds)")
    if ideal is not None:
        ax0.axhline(ideal["fid"], color="#55a868", lw=1.2, label=f"ideal model {ideal['fid']:.2f}")
        ax0.axhspan(ideal["fid_lo"], ideal["fid_hi"], color="#55a868", alpha=0.15)
    ax0.axhline(floor, color="k", ls="--", lw=1, label=f"data floor {floor:.2f}")
    ax0.set_ylabel("FID-digits (lower is better)")
    ax0.set_yscale("log")
    for key, style in (("precision", "-o"), ("recall", "--s")):
        ax1.plot(x, [e[key] for e in pts], style, ms=3, label=key)
        ax1.fill_between(x, [e[key] - e[key + "_sd"] for e in pts], [e[key] + e[key + "_sd"] for e in pts], alpha=0.15)
        if ideal is not None:
            ax1.axhline(ideal[key], ls=":", lw=1, color="grey")
    ax1.set_ylim(0, 1)
    ax1.set_ylabel("precision / recall (±1 sd; dotted: ideal)")
    for ax in (ax0, ax1):
        ax.set_xlabel(spec.factor)
        if spec.x_scale == "log":
            ax.set_xscale("log")
        elif spec.x_scale == "symlog":
            positive = [v for v in x if v > 0]
            ax.set_xscale("symlog", linthresh=min(positive) if positive else 1.0)
        ax.grid(alpha=0.3)
    ax0.legend(fontsize=7)
    ax1.legend(fontsize=7)
    fig.suptitle(spec.title or f"FID-digits vs {spec.factor}", fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def _fmt(x: Any, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _coupling_note(spec: SweepSpec) -> str:
    """The report's sentence on the circuit's coupling ('' for the sine coupling)."""
    if spec.coupling == "sine":
        return ""
    return (f" Every point runs under the circuit's measured coupling function (calibration "
            f"{spec.calibration or 'default'}, trim {spec.trim}; each coupler's shape from the array of the "
            f"compile options {json.dumps(spec.compile or {})}, full-code DAC scale); the ideal model is the "
            "sine-only checkpoint.")


def _report_sweep(spec: SweepSpec, summary: list[dict[str, Any]], floor: float, rows: list[dict[str, Any]]) -> str:
    base = {k: v for k, v in spec.nonideal.to_dict().items() if v != getattr(NonIdeal(), k)}
    lines = [
        f"# {spec.title or 'FID-digits vs ' + str(spec.factor)}", "",
        f"Model `{spec.checkpoint}`; factor `{spec.factor}`; {spec.seeds} chips/seeds per point, "
        f"{spec.samples} samples each; operating point {json.dumps(base) if base else 'all other terms off'}"
        + (f"; compile options {json.dumps(spec.compile)}" if spec.compile else "") + "." + _coupling_note(spec),
        f"Data floor (train vs test): {floor:.3f}. Interval: 95 % Student-t over seeds.", "",
        "ΔFID: minus the ideal model's FID on the same seed phases (paired; mean ± sd over seeds).", "",
        "| value | FID-digits | 95 % interval | ΔFID vs ideal | precision | recall | class accuracy | s/point |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for e in summary:
        lines.append(f"| {e['value']} | {_fmt(e['fid'])} ± {_fmt(e['fid_sd'])} | {_fmt(e['fid_lo'])} – {_fmt(e['fid_hi'])} "
                     f"| {_fmt(e['dfid'])} ± {_fmt(e['dfid_sd'])} "
                     f"| {_fmt(e['precision'], 3)} | {_fmt(e['recall'], 3)} | {_fmt(e['class_accuracy'], 3)} "
                     f"| {_fmt(e['seconds'], 1)} |")
    lines += ["", f"{len(rows)} scored points in `points.csv`; plot `sweep.png`."]
    return "\n".join(lines) + "\n"


# --- Monte Carlo over chips ----------------------------------------------------------------
def _score_chip_group(ctx: _Context, group: int) -> list[dict[str, Any]]:
    """Score chips [group·G, …) of the spec in one simulator call (chip axis)."""
    from analysis.evaluate import _features, sample_plan, score_features

    spec = ctx.spec
    first = group * spec.chip_group
    count = min(spec.chip_group, spec.chips - first)
    labels, theta0, _ = sample_plan(ctx.model, per_class=ctx.per_class(), seed=spec.seed, batch_size=spec.batch_size)
    ni = spec.nonideal.replace(chips=count, chip_seed=spec.nonideal.chip_seed + first,
                               sample_seed=spec.nonideal.sample_seed + group)
    with torch.no_grad():
        images = ctx.hardware_model().generate(labels.repeat(count), theta0.repeat(count, 1), nonideal=ni)
        feats = _features(ctx.ex, images).view(count, len(labels), -1)
    rows = []
    for c in range(count):
        hits = ctx.ex.classify(feats[c]).argmax(1) == labels if ctx.ex.classify is not None else None
        score = score_features(feats[c], hits, ctx.ex, ctx.reference, seed=spec.seed)
        rows.append({"chip": spec.nonideal.chip_seed + first + c, "fid": score.fid, "precision": score.precision,
                     "recall": score.recall, "class_accuracy": score.class_accuracy})
    return rows


def _run_monte_carlo(spec: SweepSpec, out: Path, *, jobs: int, progress: bool) -> dict[str, Any]:
    from analysis.evaluate import score_model

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
    _run_jobs(todo, lambda g: _score_chip_group(ctx, g), _worker_chips, spec=spec, workers=jobs, log=log,
              progress=progress, desc="chips")
    rows = sorted({r["chip"]: r for r in _read_log(log)}.values(), key=lambda r: r["chip"])
    ideal = score_model(ctx.model, ctx.ex, ctx.reference, per_class=ctx.per_class(), seed=spec.seed)
    floor = ctx.floor()
    fids = [r["fid"] for r in rows]
    limit = ideal.fid * (1 + spec.yield_within)
    summary = {
        "chips": len(rows), "ideal_fid": ideal.fid, "floor": floor, "yield_within": spec.yield_within,
        "yield": sum(f <= limit for f in fids) / len(fids), "fid_limit": limit,
        "fid_mean": statistics.fmean(fids), "fid_median": statistics.median(fids),
        "fid_p5": _quantile(fids, 0.05), "fid_p95": _quantile(fids, 0.95), "fid_min": min(fids), "fid_max": max(fids),
        "precision_mean": statistics.fmean(r["precision"] for r in rows),
        "recall_mean": statistics.fmean(r["recall"] for r in rows),
        "ideal_precision": ideal.precision, "ideal_recall": ideal.recall,
    }
    _write_csv(out / "chips.csv", rows, CHIP_FIELDS)
    _plot_monte_carlo(out / "montecarlo.png", spec, fids, summary)
    with atomic_path(out / "report.md") as tmp:
        tmp.write_text(_report_monte_carlo(spec, summary))
    with atomic_path(out / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _quantile(values: list[float], q: float) -> float:
    return float(torch.quantile(torch.tensor(values, dtype=torch.float64), q))


def _plot_monte_carlo(path: Path, spec: SweepSpec, fids: list[float], s: dict[str, Any]) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=120)
    ax.hist(fids, bins=min(30, max(5, len(fids) // 3)), color="#4c72b0", alpha=0.8, label=f"{len(fids)} chips")
    ax.axvline(s["ideal_fid"], color="#55a868", lw=1.5, label=f"ideal model {s['ideal_fid']:.2f}")
    ax.axvline(s["fid_limit"], color="#c44e52", ls="--", lw=1.2,
               label=f"ideal +{100 * spec.yield_within:g} %: yield {100 * s['yield']:.0f} %")
    ax.axvline(s["floor"], color="k", ls=":", lw=1, label=f"data floor {s['floor']:.2f}")
    ax.set_xlabel("FID-digits of a chip")
    ax.set_ylabel("chips")
    ax.legend(fontsize=7)
    ax.set_title(spec.title or "FID over simulated chips", fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def _report_monte_carlo(spec: SweepSpec, s: dict[str, Any]) -> str:
    base = {k: v for k, v in spec.nonideal.to_dict().items() if v != getattr(NonIdeal(), k)}
    return "\n".join([
        f"# {spec.title or 'Monte Carlo over chips'}", "",
        f"Model `{spec.checkpoint}`; operating point {json.dumps(base)}; {s['chips']} chips, "
        f"{spec.samples} samples each (the same seed phases on every chip)." + _coupling_note(spec), "",
        "| | FID-digits | precision | recall |", "|---|---|---|---|",
        f"| ideal model | {s['ideal_fid']:.2f} | {s['ideal_precision']:.3f} | {s['ideal_recall']:.3f} |",
        f"| chips: mean | {s['fid_mean']:.2f} | {s['precision_mean']:.3f} | {s['recall_mean']:.3f} |",
        f"| chips: median | {s['fid_median']:.2f} | | |",
        f"| chips: 5th – 95th percentile | {s['fid_p5']:.2f} – {s['fid_p95']:.2f} | | |",
        f"| chips: best – worst | {s['fid_min']:.2f} – {s['fid_max']:.2f} | | |", "",
        f"**Yield** (FID within {100 * spec.yield_within:g} % of the ideal model's, ≤ {s['fid_limit']:.2f}): "
        f"**{100 * s['yield']:.0f} %** of {s['chips']} chips. Data floor {s['floor']:.3f}.",
        "", "Per chip: `chips.csv`; histogram: `montecarlo.png`.", "",
    ])
