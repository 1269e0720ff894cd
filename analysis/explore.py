"""A multi-objective design-space search: the Pareto front of image quality, energy, area and latency.

`un0hw explore SPEC.toml -o OUT` searches the choices a hardware team makes for one model —
compile options, cells (calibration: node and coupler), the phase distribution, the decoder
arithmetic — with Optuna's NSGA-II and writes the non-dominated designs. The spec:

    title = "shipped digits model: quality / energy / area / latency"
    checkpoint = "shipped"            # a checkpoint file (relative to the spec), or
                                      # "published:n16384" (random init, seed 0; needs quality = "none")
    trials = 48                       # designs evaluated (a rerun resumes to this count)
    population = 12                   # NSGA-II population per generation
    seed = 0                          # sampler, chip draw and seed phases
    samples = 1000                    # samples per design for the quality figure
    quality = "auto"                  # "fid" (a data set), "fidelity" (chip vs ideal model), "auto", "none"
    objectives = ["quality", "energy_j", "area_mm2", "latency_s"]   # any subset (quality unless "none")
    gpu = "h100"                      # the GPU the report's ratios are against (h100, b200)
    tile_pitch = "auto"               # how wires are priced (analysis.energy.TILE_PITCHES)
    coupling = "circuit"              # every coupler under its cells' measured H ("sine": K sin x)
    [space]                           # a list: the choices; a table: a range {low, high, log, step}
    bits = [4, 6, 8]                  # any CompileOptions field
    tile = [64, 128, 256]
    distribution = ["point-to-point", "broadcast-bus"]
    cells = ["default", "../docs/cells/generic180-gm/calibration.json"]   # calibrations
    decoder = ["int8", "fp16"]        # the decoder's arithmetic (`DECODERS`)
    [compile]                         # fixed CompileOptions of every design
    seed = 0
    [nonideal]                        # NonIdeal fields over the array's own (`array_nonideal`)
    [constraints]
    fid_within = 0.10                 # quality within 10 % of the ideal model's on the same seeds
    max_area_mm2 = 800.0              # and/or max_energy_j, max_latency_s, max_quality

A design is faithful to the array the compiler builds for it: the model is compiled with
the design's options onto its cells, every coupler runs under the cells' measured coupling
function (``coupling = "circuit"``, closed trim), the chip draws the noise, mismatch and
trimmed frequency error its calibration implies at the array's τ (`compiler.mapping.
array_nonideal`, one chip: ``seed``), and the images are decoded by the design's decoder
(the int8 MAC array's own kernels for "int8", `models.lowbit`'s int4 arithmetic and PCM
crossbar for "int4" and "analog"; fp16/fp32 decode in float32, whose error is far below the
array's). Quality is FID against the data set where there is one (the shipped
digits for digits models), or the chip's FID against the ideal model's samples on the same
seeds. Energy and area are `analysis.energy.estimate` and `analysis.area.estimate_area` of
that IR; latency is the array's (τ × T).

Every trial is kept in an Optuna journal (``OUT/study.journal``): a killed run resumes where
it stopped and `jobs` worker processes evaluate designs in parallel (ask/tell: the sampler
runs in the main process). A design the sampler proposes again is not re-evaluated. A
design the compiler refuses (a forced τ out of range, a coupler that cannot be directed) is
a failed trial with its reason. Outputs, written atomically at the end: ``trials.csv``
(every design, its objectives and constraint values), ``pareto.csv`` (the feasible
non-dominated designs: a column per objective and per design choice), ``pareto.png`` (each
pair of objectives), ``report.md`` and ``summary.json``. When no design meets the
constraints, the report says so, names the nearest one, and `run_explore` returns
``feasible = 0``.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from analysis.energy import _fmt
from oscsim import NonIdeal, OscsimError, atomic_path

#: the decoder arithmetics a design may take: energy/area precision and the images' decoder
DECODERS = {"int8": ("int8", "int8"), "int4": ("int4", "int4"), "analog": ("analog", "analog"),
            "fp16": ("fp16", "float"), "fp32": ("fp32", "float")}
QUALITIES = ("auto", "fid", "fidelity", "none")
OBJECTIVES = ("quality", "energy_j", "area_mm2", "latency_s")
#: space keys that are not CompileOptions fields
DESIGN_KEYS = ("cells", "decoder")
CONSTRAINTS = ("fid_within", "max_quality", "max_energy_j", "max_area_mm2", "max_latency_s")
COUPLINGS = ("circuit", "sine")
PUBLISHED_PREFIX = "published:"
_KEYS = {"title", "checkpoint", "trials", "population", "seed", "samples", "quality", "objectives", "gpu",
         "tile_pitch", "coupling", "space", "compile", "nonideal", "constraints", "batch_size", "features",
         "data", "inception_weights"}
_TRIAL_FIELDS = ("trial", "state", "feasible", "quality", "energy_j", "area_mm2", "latency_s", "gpu_ratio",
                 "energy_binding", "area_binding", "tau_s", "error")


class ExploreError(ValueError):
    """An explore spec or output folder that cannot be used: names the file, key and problem."""


@dataclass(frozen=True)
class Choice:
    """One searched design choice: categorical `choices`, or a range [low, high]."""

    name: str
    choices: tuple = ()
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    integer: bool = False

    def distribution(self):
        import optuna

        if self.choices:
            return optuna.distributions.CategoricalDistribution(list(self.choices))
        if self.integer:
            return optuna.distributions.IntDistribution(int(self.low), int(self.high), log=self.log,
                                                        step=int(self.step or 1))
        return optuna.distributions.FloatDistribution(self.low, self.high, log=self.log, step=self.step)

    def to_dict(self) -> dict[str, Any]:
        if self.choices:
            return {"choices": list(self.choices)}
        return {"low": self.low, "high": self.high, "log": self.log, "step": self.step, "integer": self.integer}


@dataclass(frozen=True)
class ExploreSpec:
    """A validated explore description (see the module docstring for the file format)."""

    source: str
    space: tuple[Choice, ...]
    title: str = ""
    checkpoint: str = "shipped"
    trials: int = 48
    population: int = 12
    seed: int = 0
    samples: int = 1000
    quality: str = "auto"
    objectives: tuple[str, ...] = OBJECTIVES
    gpu: str = "h100"
    tile_pitch: str = "auto"
    coupling: str = "circuit"
    compile: dict[str, Any] = field(default_factory=dict)
    nonideal: dict[str, Any] = field(default_factory=dict)
    constraints: dict[str, float] = field(default_factory=dict)
    batch_size: int = 1000
    features: str = "auto"
    data: str | None = None
    inception_weights: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("source")
        d["space"] = {c.name: c.to_dict() for c in self.space}
        d["objectives"] = list(self.objectives)
        return d

    @property
    def published(self) -> str | None:
        return self.checkpoint[len(PUBLISHED_PREFIX):] if self.checkpoint.startswith(PUBLISHED_PREFIX) else None

    def sweep_spec(self):
        """The sweep spec whose scoring context (model, feature space, data sets, ideal
        samples) a design's quality uses (`analysis.sweep`)."""
        from analysis.sweep import SweepSpec

        metric = "auto" if self.quality == "none" else self.quality  # "none": only its checkpoint path is used
        return SweepSpec(kind="one-factor", source=self.source, checkpoint=self.checkpoint, seeds=1,
                         samples=self.samples, batch_size=self.batch_size, seed=self.seed, metric=metric,
                         features=self.features, data=self.data, inception_weights=self.inception_weights)


# --- the spec -------------------------------------------------------------------------------
def _int(src: str, key: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ExploreError(f"{src}: '{key}' must be an integer >= {low}, not {value!r}")
    return value


def _choice(src: str, name: str, value: Any, compile_fields: list[str]) -> Choice:
    where = f"{src} [space] {name}"
    if name not in compile_fields and name not in DESIGN_KEYS:
        raise ExploreError(f"{where}: not a design choice; valid: {', '.join(DESIGN_KEYS)} and the CompileOptions "
                           f"fields {', '.join(compile_fields)}")
    if isinstance(value, list):
        if not value:
            raise ExploreError(f"{where}: an empty list of choices")
        if len({json.dumps(v) for v in value}) != len(value):
            raise ExploreError(f"{where}: a choice is listed twice")
        if any(isinstance(v, (list, dict)) for v in value):
            raise ExploreError(f"{where}: choices must be numbers, strings or booleans")
        if name == "decoder":
            bad = [v for v in value if v not in DECODERS]
            if bad:
                raise ExploreError(f"{where}: {bad[0]!r} is not a decoder; valid: {', '.join(DECODERS)}")
        return Choice(name, choices=tuple(value))
    if isinstance(value, dict):
        if name in DESIGN_KEYS:
            raise ExploreError(f"{where}: takes a list of choices, not a range")
        unknown = sorted(set(value) - {"low", "high", "log", "step"})
        if unknown or "low" not in value or "high" not in value:
            raise ExploreError(f"{where}: a range is {{low, high, log, step}}; got {sorted(value)}")
        low, high, log, step = value["low"], value["high"], value.get("log", False), value.get("step")
        nums = [v for v in (low, high, step) if v is not None]
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) for v in nums):
            raise ExploreError(f"{where}: low, high and step must be finite numbers")
        if not isinstance(log, bool):
            raise ExploreError(f"{where}: log must be true or false")
        if not low < high or (log and low <= 0) or (step is not None and step <= 0):
            raise ExploreError(f"{where}: needs low < high (low > 0 on a log range) and a positive step")
        if log and step is not None:
            raise ExploreError(f"{where}: a log range has no step")
        integer = all(isinstance(v, int) for v in nums)
        return Choice(name, low=low, high=high, log=log, step=step, integer=integer)
    raise ExploreError(f"{where}: must be a list of choices or a table {{low, high}}, not {value!r}")


def _check_choices(src: str, space: tuple[Choice, ...], base: dict[str, Any]) -> None:
    """Every searched CompileOptions value is one the compiler takes (alone, over [compile])."""
    from compiler import CompileOptions

    for c in space:
        if c.name in DESIGN_KEYS:
            continue
        for v in c.choices or (c.low, c.high):
            try:
                CompileOptions(**{**base, c.name: v})
            except (ValueError, TypeError) as exc:
                raise ExploreError(f"{src} [space] {c.name}: {v!r}: {exc}") from None


def load_spec(path: str | Path) -> ExploreSpec:
    """Read and check an explore spec; ExploreError names the file and key."""
    from analysis.energy import GPUS, TILE_PITCHES
    from analysis.sweep import SweepError, _compile_base, _compile_fields, _load_calibration, _read_toml

    path = Path(path)
    src = str(path)
    try:
        data = _read_toml(path, missing="no such file")
    except SweepError as exc:
        raise ExploreError(str(exc)) from None
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ExploreError(f"{src}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(sorted(_KEYS))}")
    fields = _compile_fields()
    space_table = data.get("space")
    if not isinstance(space_table, dict) or not space_table:
        raise ExploreError(f"{src}: needs a [space] table of design choices (lists or ranges)")
    space = tuple(_choice(src, k, v, fields) for k, v in space_table.items())
    kw: dict[str, Any] = {"source": src, "space": space}
    for key in ("title", "checkpoint", "quality", "gpu", "tile_pitch", "coupling", "features", "data",
                "inception_weights"):
        if key in data:
            if not isinstance(data[key], str) or not data[key]:
                raise ExploreError(f"{src}: '{key}' must be a non-empty string, not {data[key]!r}")
            kw[key] = data[key]
    for key, low in (("trials", 1), ("population", 2), ("seed", 0), ("samples", 10), ("batch_size", 1)):
        if key in data:
            kw[key] = _int(src, key, data[key], low)
    spec = ExploreSpec(**kw)
    for key, valid in (("quality", QUALITIES), ("gpu", GPUS), ("tile_pitch", TILE_PITCHES), ("coupling", COUPLINGS)):
        if getattr(spec, key) not in valid:
            raise ExploreError(f"{src}: '{key}' must be one of {', '.join(valid)}, not {getattr(spec, key)!r}")
    if spec.published is not None:
        import models

        if spec.published not in models.PUBLISHED:
            raise ExploreError(f"{src}: 'checkpoint' {spec.checkpoint!r}: published sizes are "
                               f"{', '.join(models.PUBLISHED)}")
        if spec.quality != "none":
            raise ExploreError(f"{src}: a published size is random-init weights, whose images mean nothing; "
                               f"set quality = \"none\" (energy, area and latency only)")
    elif not spec.sweep_spec().checkpoint_path().is_file():
        raise ExploreError(f"{src}: 'checkpoint' {spec.checkpoint!r}: no such file")
    default_objectives = tuple(o for o in OBJECTIVES if spec.quality != "none" or o != "quality")
    objectives = data.get("objectives", list(default_objectives))
    if (not isinstance(objectives, list) or not objectives or any(o not in OBJECTIVES for o in objectives)
            or len(set(objectives)) != len(objectives)):
        raise ExploreError(f"{src}: 'objectives' must be a list of distinct names from {', '.join(OBJECTIVES)}, "
                           f"not {objectives!r}")
    if "quality" in objectives and spec.quality == "none":
        raise ExploreError(f"{src}: objective 'quality' needs quality other than \"none\"")
    try:
        compile_table = _compile_base(src, data.get("compile", {})) if "compile" in data else {}
    except SweepError as exc:
        raise ExploreError(str(exc)) from None
    _check_choices(src, space, compile_table)
    clash = sorted(set(compile_table) & {c.name for c in space})
    if clash:
        raise ExploreError(f"{src}: {', '.join(clash)} both fixed in [compile] and searched in [space]")
    nonideal = data.get("nonideal", {})
    try:
        NonIdeal.from_dict(nonideal, source=f"{src} [nonideal]")
    except OscsimError as exc:
        raise ExploreError(str(exc)) from None
    constraints = data.get("constraints", {})
    if not isinstance(constraints, dict):
        raise ExploreError(f"{src}: [constraints] must be a table")
    for key, value in constraints.items():
        if key not in CONSTRAINTS:
            raise ExploreError(f"{src} [constraints]: unknown key {key!r}; valid: {', '.join(CONSTRAINTS)}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value >= 0):
            raise ExploreError(f"{src} [constraints] {key}: must be a number >= 0, not {value!r}")
        if key in ("fid_within", "max_quality") and spec.quality == "none":
            raise ExploreError(f"{src} [constraints] {key}: needs quality other than \"none\"")
    spec = dataclasses.replace(spec, objectives=tuple(objectives), compile=compile_table, nonideal=dict(nonideal),
                               constraints={k: float(v) for k, v in constraints.items()})
    cells = next((c for c in space if c.name == "cells"), None)
    for name in (cells.choices if cells else ("default",)):
        if not isinstance(name, str):
            raise ExploreError(f"{src} [space] cells: {name!r} is not a calibration (\"default\" or a file)")
        try:
            cal = _load_calibration(src, name)
        except SweepError as exc:
            raise ExploreError(f"{exc} (in [space] cells)") from None
        if spec.coupling == "circuit" and spec.quality != "none" and cal.sine_only:
            raise ExploreError(f"{src} [space] cells: {name!r} is sine-only (format 1); coupling = \"circuit\" "
                               f"needs the measured coupling function")
    return spec


# --- one design -------------------------------------------------------------------------------
def design_key(design: dict[str, Any]) -> str:
    return json.dumps(design, sort_keys=True)


class Evaluator:
    """The model, its scoring context and the ideal model's samples, made once per process."""

    def __init__(self, spec: ExploreSpec) -> None:
        self.spec = spec
        self._model = None  # built when a design is first evaluated (the main process of a parallel run never does)
        if spec.quality == "none":
            self.ctx = None
        else:
            from analysis.sweep import _Context

            self.ctx = _Context(spec.sweep_spec())
            self._model = self.ctx.model
        self._ideal_scores: dict[str, Any] | None = None

    @property
    def model(self):
        if self._model is None:
            import models

            spec = self.spec
            self._model = (models.Un0.init(models.PUBLISHED[spec.published], seed=0) if spec.published
                           else models.load(spec.sweep_spec().checkpoint_path()))
        return self._model

    @property
    def quality_name(self) -> str:
        if self.ctx is None:
            return "none"
        return self.ctx.label

    def ideal_scores(self) -> dict[str, Any]:
        """The ideal model's own quality on the designs' seeds (the fid_within reference)."""
        if self._ideal_scores is None:
            if self.ctx is None:
                self._ideal_scores = {}
            elif self.ctx.metric == "fid":
                from analysis.sweep import _ideal_hits

                ref = self.ctx.ideal(self.spec.seed)
                self._ideal_scores = self.ctx.data_scores(ref.features(), _ideal_hits(ref), seed=self.spec.seed)
                self._ideal_scores["quality"] = self._ideal_scores["fid"]
            else:
                self._ideal_scores = {"quality": self.ctx.floor()}
        return self._ideal_scores

    def calibration(self, name: str):
        from analysis.sweep import _load_calibration

        return _load_calibration(self.spec.source, name)

    def evaluate(self, design: dict[str, Any]) -> dict[str, Any]:
        """Objectives and diagnostics of one design (CompileError and the like propagate)."""
        import compiler
        from analysis.area import estimate_area
        from analysis.energy import estimate
        from analysis.sweep import circuit_shape
        from compiler.mapping import array_nonideal

        t0 = time.perf_counter()
        spec = self.spec
        cal = self.calibration(design.get("cells", "default"))
        precision, images = DECODERS[design.get("decoder", "int8")]
        options = compiler.CompileOptions(**{**spec.compile, **{k: v for k, v in design.items()
                                                                 if k not in DESIGN_KEYS}})
        shape = None
        if self.ctx is not None and spec.coupling == "circuit":
            ir, shape = circuit_shape(self.model, options, cal, trim="closed")
        else:
            ir = compiler.compile(self.model, options, calibration=cal)
        est = estimate(ir, calibration=cal, precision=precision, tile_pitch=spec.tile_pitch)
        area = estimate_area(ir, calibration=cal, precision=precision)
        out: dict[str, Any] = {
            "energy_j": est.with_decoder_j, "area_mm2": area.total_mm2, "latency_s": est.latency_s,
            "gpu_ratio": est.ratio(spec.gpu, decoder=True), "energy_binding": "%s %.0f %%" % _pct(est.dominant()),
            "area_binding": "%s %.0f %%" % _pct(area.dominant()), "tau_s": est.tau_s,
            "tile_pitch_mm": est.settings["tile_pitch_mm"], "wire_length_mm": est.settings["wire_length_mm"],
        }
        if self.ctx is not None:
            from analysis.fidelity import paired_run

            chip = ir.to_model()
            if shape is not None:
                chip.dynamics.shape = shape
            nonideal = array_nonideal(ir, trimmed=True, **spec.nonideal)
            nonideal = nonideal.replace(chip_seed=nonideal.chip_seed + spec.seed,
                                        sample_seed=nonideal.sample_seed + spec.seed)
            acc = paired_run(self.ctx.ideal(spec.seed), chip, nonideal=nonideal, decoder=images)
            fidelity = acc.score()
            scores = self.ctx.data_scores(acc.features(), acc.class_hits(), seed=spec.seed)
            out.update({"fid": scores["fid"], "precision": scores["precision"], "recall": scores["recall"],
                        "class_accuracy": scores["class_accuracy"], "fid_vs_ideal": fidelity.fid_vs_ideal,
                        "phase_error_rad": fidelity.phase_error_rad})
            out["quality"] = scores["fid"] if self.ctx.metric == "fid" else fidelity.fid_vs_ideal
        out["seconds"] = time.perf_counter() - t0
        return out

    def constraint_values(self, result: dict[str, Any]) -> dict[str, float]:
        """Each constraint as (value − bound) / bound (≤ 0: met), `CONSTRAINTS`."""
        c = self.spec.constraints
        values: dict[str, float] = {}
        for key, bound in c.items():
            if key == "fid_within":
                ideal = self.ideal_scores()["quality"]
                # as the sweeps' yield: FID within the fraction of the ideal model's, or FID vs the
                # ideal model within the fraction of the sampling floor
                limit = (1 + bound) * ideal if self.ctx.metric == "fid" else bound * ideal
                values[key] = (result["quality"] - limit) / max(limit, 1e-12)
            else:
                name = key[len("max_"):]
                values[key] = (result[name] - bound) / max(bound, 1e-300)
        return values


def _pct(dominant: tuple[str, float]) -> tuple[str, float]:
    return dominant[0], 100 * dominant[1]


_WORKER: dict[str, Evaluator] = {}


def _worker_init(spec: ExploreSpec, threads: int) -> None:
    torch.set_num_threads(threads)
    _WORKER["ev"] = Evaluator(spec)


def _worker_evaluate(design: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    return _evaluate_or_reason(_WORKER["ev"], design)


def _evaluate_or_reason(ev: Evaluator, design: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """(result, None), or (None, the one-line reason the design cannot be built)."""
    from analysis.energy import EnergyError
    from analysis.sweep import SweepError
    from compiler import CompileError

    try:
        return ev.evaluate(design), None
    except (CompileError, EnergyError, SweepError, OscsimError) as exc:
        return None, str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


# --- the search ----------------------------------------------------------------------------
def _prepare(out: Path, spec: ExploreSpec) -> None:
    """Create OUT (or check that it holds a search of the same spec but for `trials`)."""
    from analysis.sweep import prepare_run_folder

    prepare_run_folder(out, spec.to_dict(), error=ExploreError, what="search", resumable_keys=("trials",))


def _study(out: Path, spec: ExploreSpec):
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = JournalStorage(JournalFileBackend(str(out / "study.journal")))
    sampler = optuna.samplers.NSGAIISampler(population_size=spec.population, seed=spec.seed)
    return optuna.create_study(study_name="explore", storage=storage, sampler=sampler, load_if_exists=True,
                               directions=["minimize"] * len(spec.objectives))


def run_explore(spec: ExploreSpec, out: str | Path, *, jobs: int = 1, progress: bool = True) -> dict[str, Any]:
    """Run (or resume) the search into `out`; returns the summary report.md shows."""
    from optuna.trial import TrialState

    out = Path(out)
    _prepare(out, spec)
    study = _study(out, spec)
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
        study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)  # a killed run's designs
    distributions = {c.name: c.distribution() for c in spec.space}
    ev = Evaluator(spec)
    ev.ideal_scores()
    done = {design_key(t.params): dict(t.user_attrs) for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))}
    finished = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE or t.user_attrs.get("error")]
    remaining = max(0, spec.trials - len(finished))
    bar = tqdm(total=spec.trials, initial=spec.trials - remaining, desc="explore", unit="design", disable=not progress)

    def tell(trial, result: dict[str, Any] | None, reason: str | None) -> None:
        if result is None:
            trial.set_user_attr("error", reason)
            study.tell(trial, state=TrialState.FAIL)
        else:
            for k, v in result.items():
                trial.set_user_attr(k, v)
            constraints = ev.constraint_values(result)
            trial.set_user_attr("constraints", constraints)
            for k, v in constraints.items():
                trial.set_constraint(k, v)
            study.tell(trial, [result[o] for o in spec.objectives])
            done[design_key(trial.params)] = result
        bar.update()

    def ask():
        trial = study.ask(distributions)
        key = design_key(trial.params)
        if key in done:  # proposed again: the stored result, not another evaluation
            tell(trial, dict(done[key]), None)
            return None
        return trial

    try:
        if jobs <= 1:
            while remaining > 0:
                trial = ask()
                remaining -= 1
                if trial is not None:
                    tell(trial, *_evaluate_or_reason(ev, dict(trial.params)))
        else:
            import multiprocessing
            from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

            threads = max(1, torch.get_num_threads() // jobs)
            with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                                     initializer=_worker_init, initargs=(spec, threads)) as pool:
                running: dict = {}
                while remaining > 0 or running:
                    while remaining > 0 and len(running) < jobs:
                        trial = ask()
                        remaining -= 1
                        if trial is not None:
                            running[pool.submit(_worker_evaluate, dict(trial.params))] = trial
                    if running:
                        finished_now, _ = wait(list(running), return_when=FIRST_COMPLETED)
                        for fut in finished_now:
                            tell(running.pop(fut), *fut.result())
    finally:
        bar.close()
    return _write_outputs(out, spec, ev, study)


# --- results ---------------------------------------------------------------------------------
def dominates(a, b) -> bool:
    """a dominates b (minimising every objective): no worse in all, better in one."""
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def _rows(spec: ExploreSpec, study) -> list[dict[str, Any]]:
    from optuna.trial import TrialState

    names = [c.name for c in spec.space]
    rows = []
    for t in study.get_trials(deepcopy=False):
        if t.state not in (TrialState.COMPLETE, TrialState.FAIL):
            continue
        a = t.user_attrs
        constraints = a.get("constraints") or {}
        row = {"trial": t.number, "state": "complete" if t.state == TrialState.COMPLETE else "failed",
               "feasible": t.state == TrialState.COMPLETE and all(v <= 0 for v in constraints.values()),
               **{k: a.get(k) for k in _TRIAL_FIELDS[3:]}, **{n: t.params.get(n) for n in names}}
        for k in ("fid", "precision", "recall", "class_accuracy", "fid_vs_ideal"):
            if k in a:
                row[k] = a[k]
        for key, v in constraints.items():
            row[f"constraint_{key}"] = v
        rows.append(row)
    return rows


def pareto(spec: ExploreSpec, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The feasible designs no other feasible design dominates, one row per distinct design,
    in order of the first objective."""
    names = [c.name for c in spec.space]
    feasible = [r for r in rows if r["feasible"]]
    vals = [[r[o] for o in spec.objectives] for r in feasible]
    front, seen = [], set()
    for r, v in zip(feasible, vals):
        key = json.dumps([r[n] for n in names])
        if key not in seen and not any(dominates(w, v) for w in vals):
            seen.add(key)
            front.append(r)
    return sorted(front, key=lambda r: [r[o] for o in spec.objectives])


def _write_csv(path: Path, rows: list[dict[str, Any]], fields: list[str]) -> None:
    import csv

    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)


def _fields(spec: ExploreSpec, rows) -> list[str]:
    extra = [k for k in ("fid", "precision", "recall", "class_accuracy", "fid_vs_ideal") if any(k in r for r in rows)]
    names = [c.name for c in spec.space]
    rest = [f for f in _TRIAL_FIELDS[3:] if f not in spec.objectives and not (f == "quality" and spec.quality == "none")]
    return [*_TRIAL_FIELDS[:3], *spec.objectives, *rest,
            *extra, *[f"constraint_{k}" for k in sorted(spec.constraints)], *names]


def _write_outputs(out: Path, spec: ExploreSpec, ev: Evaluator, study) -> dict[str, Any]:
    rows = _rows(spec, study)
    front = pareto(spec, rows)
    fields = _fields(spec, rows)
    _write_csv(out / "trials.csv", rows, fields)
    _write_csv(out / "pareto.csv", front, [f for f in fields if f not in ("state", "feasible", "error")])
    complete = [r for r in rows if r["state"] == "complete"]
    nearest = None
    if complete and not front:
        nearest = min(complete, key=lambda r: max(r.get(f"constraint_{k}", 0.0) for k in spec.constraints))
    summary = {
        "title": spec.title, "trials": len(rows), "complete": len(complete),
        "failed": sum(r["state"] == "failed" for r in rows), "feasible": sum(r["feasible"] for r in rows),
        "front": len(front), "quality": ev.quality_name, "ideal": ev.ideal_scores(),
        "constraints": spec.constraints, "objectives": list(spec.objectives), "nearest": nearest,
    }
    _plot(out / "pareto.png", spec, rows, front, ev)
    with atomic_path(out / "report.md") as tmp:
        tmp.write_text(_report(spec, ev, rows, front, summary))
    with atomic_path(out / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return summary


_LABELS = {"energy_j": "J / image", "area_mm2": "mm² per chip", "latency_s": "latency (s)"}


def _label(ev: Evaluator, o: str) -> str:
    return ev.quality_name if o == "quality" else _LABELS[o]


def _plot(path: Path, spec: ExploreSpec, rows, front, ev: Evaluator) -> None:
    from analysis.sweep import _plt, _save

    plt = _plt()
    pairs = list(itertools.combinations(spec.objectives, 2)) or [(spec.objectives[0], spec.objectives[0])]
    cols = min(3, len(pairs))
    nrows = math.ceil(len(pairs) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.6 * cols, 3.8 * nrows), squeeze=False)
    done = [r for r in rows if r["state"] == "complete"]
    for ax, (x, y) in zip(axes.flat, pairs):
        for group, style in (([r for r in done if not r["feasible"]], dict(marker="x", color="0.6", label="infeasible")),
                             ([r for r in done if r["feasible"]], dict(marker="o", color="0.35", s=14, label="feasible")),
                             (front, dict(marker="*", color="tab:red", s=70, label="Pareto front"))):
            if group:
                ax.scatter([r[x] for r in group], [r[y] for r in group], **style)
        ax.set_xlabel(_label(ev, x))
        ax.set_ylabel(_label(ev, y))
        for axis, o in (("x", x), ("y", y)):
            if o != "quality" and all((r[o] or 0) > 0 for r in done) and done:
                (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(pairs):]:
        ax.axis("off")
    if done:
        axes.flat[0].legend(fontsize=8)
    fig.suptitle(spec.title or "design-space search", fontsize=11)
    fig.tight_layout()
    _save(fig, path)


def _report(spec: ExploreSpec, ev: Evaluator, rows, front, s: dict[str, Any]) -> str:
    names = [c.name for c in spec.space]
    lines = [f"# {spec.title or 'Design-space search'}", "",
             f"Optuna NSGA-II (population {spec.population}, seed {spec.seed}) over "
             f"{', '.join(names)}; objectives {', '.join(_label(ev, o) for o in spec.objectives)} (all minimised). "
             f"{s['trials']} designs: {s['complete']} evaluated, {s['failed']} the compiler refused, "
             f"{s['feasible']} feasible, {s['front']} on the front.", ""]
    if ev.ctx is not None:
        lines += [f"Quality: {ev.quality_name}, {spec.samples} samples per design on one chip (seed {spec.seed}), "
                  f"coupling {spec.coupling}; the ideal model on the same seeds: {_fmt(s['ideal'].get('quality'))}.", ""]
    if spec.constraints:
        lines += ["Constraints: " + ", ".join(f"{k} = {v:g}" for k, v in spec.constraints.items()) + ".", ""]
    if not front:
        if s["nearest"] is not None:
            n = s["nearest"]
            lines += ["**No design met the constraints.** The nearest (trial %d: %s) misses by %s." % (
                n["trial"], ", ".join(f"{k} = {n[k]}" for k in names),
                ", ".join(f"{k} {100 * n[f'constraint_{k}']:+.0f} %" for k in sorted(spec.constraints)
                          if n.get(f"constraint_{k}", 0) > 0)), ""]
        else:
            lines += ["**No design could be evaluated.**", ""]
    else:
        cols = [*spec.objectives, "gpu_ratio", "energy_binding", "area_binding", *names]
        heads = [_label(ev, c) if c in OBJECTIVES else (f"{spec.gpu.upper()} / design" if c == "gpu_ratio" else c)
                 for c in cols]
        lines += ["## Pareto front", "", "| " + " | ".join(heads) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |" for r in front]
        lines += ["", f"`{spec.gpu.upper()} / design`: the GPU's estimated J/image over the design's (decoder "
                  "included on both sides); binding: the largest term of energy and of area, with its share.", ""]
        best = min(front, key=lambda r: r["energy_j"]) if "energy_j" in spec.objectives else front[0]
        lines += [f"Lowest energy on the front: {_fmt(best['energy_j'])} J/image, {_fmt(best['gpu_ratio'])}× below "
                  f"{spec.gpu.upper()} (trial {best['trial']}); its energy is bound by {best['energy_binding']}, its "
                  f"area by {best['area_binding']}. 1000× would need {_fmt(1000 / best['gpu_ratio'])}× less "
                  "energy than that design.", ""]
    failed = [r for r in rows if r["state"] == "failed" and r.get("error")]
    if failed:
        reasons: dict[str, int] = {}
        for r in failed:
            reasons[r["error"]] = reasons.get(r["error"], 0) + 1
        lines += ["Refused designs:", ""] + [f"- {n}× {reason}" for reason, n in sorted(reasons.items())] + [""]
    lines += ["Files: `pareto.csv` (the front), `trials.csv` (every design), `pareto.png`.", ""]
    return "\n".join(lines)
