"""`un0hw finetune CKPT --nonideal SPEC -o OUT`: hardware-aware fine-tuning, scored before and after.

Digits models (1×8×8) train with the drifting loss against the shipped digits data on the
digits CNN's features and are scored by FID-digits. Every other checkpoint (CIFAR-10
3×32×32, ImageNet-64 3×64×64 with 1000 classes, the release's `.pt` files, a random-init
model) needs no data set: it is a distillation of the ideal model into the imperfect chip,
on multi-scale pixel features (`multiscale_pixel_encoder`, no weights). By default
(`--objective paired`) the chip and the untouched ideal model run on the same labels and
seed phases every step and the loss is their images' mean squared difference
(`models.train.paired_loss`): it targets each sample's error, fresh seeds every step.
`--objective drifting` instead drifts batches toward a fixed set of **the ideal model's own
samples** (`ideal_samples`: class-balanced, memory-bounded batches, deterministic from the
seed); it compares distributions, so it cannot see a chip whose shift is below the
sampling noise of its batches. It is scored by chip fidelity (`analysis.fidelity`): on each evaluation
chip, the model on that hardware against the untouched ideal model on the same seeds and
labels (FID vs ideal, PSNR, phase error, feature distance), with the sampling floor for
scale; the share of the loss won back is that of FID vs ideal. With `--data-root` (a
CIFAR-10 folder or an ImageNet-64 .npz) it trains toward the data instead and adds FID
against the data (the drifting objective), whose loss is then the one won back.

`--coupling circuit` fine-tunes under the circuit's measured coupling function instead of
(or as well as) the [nonideal] terms: CKPT is compiled at the demo's array-A operating
point (`un0hw.demo.OPERATING_POINTS["A"]`, seed `un0hw.demo.SEED`) on the calibration's
cells, every coupler realised on them (`analysis.sweep.circuit_shape`, full-code DAC
scale), and that `ShapedCoupling` rides on the model in every training forward pass and
in the before/after scores (it is not in the state dict: the tuned model gets it again
after loading). The report adds the ideal sine score of both models and the tuned model
recompiled at the same point under its own array's coupling function.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from analysis.fidelity import FidelityError
from analysis.sweep import CIRCUIT_TRIMS, COUPLINGS, SweepError
from compiler.options import CompileError
from hw.calibration import CalibrationError
from un0hw.options import CliError, PathOption, paths, positive

ERRORS = (SweepError, CompileError, CalibrationError, FidelityError)
#: the run folder's record of the coupling a circuit run trains under (checked on resume)
COUPLING_FILE = "coupling.json"


@dataclass(frozen=True)
class CircuitCoupling:
    """What `--coupling circuit` trains under: the cells' `trim`, their calibration
    (`calibration` a file, None for the built-in measured one) and how the array's couplers
    realise K (`couplers`, `CompileOptions.couplers`)."""

    trim: str = "closed"
    calibration: Path | None = None
    couplers: str = "auto"

    def load(self):
        from hw.calibration import Calibration

        cal = Calibration.default() if self.calibration is None else Calibration.load(self.calibration)
        if cal.sine_only:
            raise CliError(f"--calibration {self.calibration}: a sine-only (format 1) calibration has no measured "
                           "coupling function to fine-tune under; use a format-2 one (un0hw cells characterize)")
        return cal

    def record(self) -> dict:
        """JSON-ready: the coupling, trim, calibration (and its checksum) and operating point."""
        from oscsim import sha256_file
        from un0hw.demo import OPERATING_POINTS, SEED

        return {"coupling": "circuit", "trim": self.trim,
                "calibration": "built-in (hw.Calibration.default)" if self.calibration is None else str(self.calibration),
                "calibration_sha256": None if self.calibration is None else sha256_file(self.calibration),
                "operating_point": {"name": "A", **OPERATING_POINTS["A"], "seed": SEED}, "dac_scale": "full-code",
                "couplers": self.couplers}

    def options(self):
        """The array's CompileOptions: the demo's array A with these couplers."""
        return operating_point(couplers=self.couplers)


def operating_point(*, couplers: str = "auto"):
    """The demo's array-A CompileOptions (the circuit coupling's array)."""
    import compiler
    from un0hw.demo import OPERATING_POINTS, SEED

    return compiler.CompileOptions(**OPERATING_POINTS["A"], seed=SEED, couplers=couplers)


def _check_folder(out: Path, record: dict | None) -> None:
    """A run folder resumes only under the coupling it was started with."""
    from models.train import STATE_FILE

    path, started = out / COUPLING_FILE, (out / STATE_FILE).exists()
    if not started:
        return
    if path.is_file():
        try:
            theirs = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            raise SweepError(f"{path}: unreadable or truncated; use a new output folder") from None
    else:
        theirs = None
    if record is None and theirs is not None:
        raise SweepError(f"{out}: holds a fine-tuning run under the circuit's coupling ({path}); resume it with "
                         "the same --coupling/--trim/--calibration or use a new output folder")
    # the file by content, not as typed; records before --couplers were all 'auto'
    same = lambda d: {"couplers": "auto", **{k: v for k, v in d.items() if k != "calibration"}}
    if record is not None and (not isinstance(theirs, dict) or same(theirs) != same(record)):
        what = "the sine coupling" if theirs is None else f"another circuit coupling ({path})"
        raise SweepError(f"{out}: holds a fine-tuning run under {what}; use a new output folder")


def _score(model, nonideal, *, chips: int, per_class: int) -> list[dict]:
    """FID-digits etc. on evaluation chips 0 … chips−1 of the operating point (chip s with
    seed phases s and sample seed s), or of the ideal model (nonideal None) on the same phases."""
    from analysis.evaluate import score_digits

    rows = []
    for s in range(chips):
        hw = None if nonideal is None else nonideal.replace(chip_seed=nonideal.chip_seed + s,
                                                             sample_seed=nonideal.sample_seed + s)
        score = score_digits(model, per_class=per_class, seed=1000 * s, nonideal=hw)
        rows.append({"chip": s, "fid": score.fid, "precision": score.precision, "recall": score.recall,
                     "class_accuracy": score.class_accuracy, "floor": score.floor})
    return rows


def _mean_sd(rows: list[dict], key: str) -> tuple[float, float]:
    values = [r[key] for r in rows]
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def finetune(checkpoint, nonideal, out: Path, *, steps: int, lr: float, seed: int, chips: int,
             per_class: int | None, progress: bool, circuit: CircuitCoupling | None = None,
             data_root: Path | None = None, features: str = "auto", ideal_count: int | None = None,
             objective: str | None = None) -> dict:
    """Fine-tune `checkpoint` with `nonideal` in the forward pass (and, with `circuit`, under
    the circuit's coupling function); returns the report's numbers. Digits models train on
    the digits data and score FID-digits; every other model goes to `_finetune_family`
    (`data_root`, `features`, `ideal_count`, `objective`: its data set, feature space,
    ideal-sample count and objective, None for the default: paired without a data set,
    drifting with one). `per_class` None: `SAMPLES_PER_CHIP` samples per chip."""
    import models

    model = models.load(checkpoint)
    cfg = model.config
    if per_class is None:
        per_class = max(1, SAMPLES_PER_CHIP // cfg.num_classes)
    if tuple(cfg.image_shape) != (1, 8, 8):
        return _finetune_family(checkpoint, model, nonideal, out, circuit, steps=steps, lr=lr, seed=seed, chips=chips,
                                per_class=per_class, progress=progress, data_root=data_root, features=features,
                                ideal_count=ideal_count, objective=family_objective(objective, data_root, ideal_count))
    for flag, value, why in (("--data-root", data_root, "a digits model trains on the shipped digits data"),
                             ("--objective", objective, "a digits model trains on the shipped digits data with the "
                                                        "drifting loss"),
                             ("--ideal-per-class", ideal_count, "a digits model trains on the shipped digits data"),
                             ("--features", None if features == "auto" else features,
                              "a digits model is scored by FID-digits in the digits CNN's features")):
        if value is not None:
            raise CliError(f"{flag} goes with non-digits models; {why}")
    if circuit is not None:
        return _finetune_circuit(checkpoint, model, nonideal, out, circuit, steps=steps, lr=lr, seed=seed, chips=chips,
                                 per_class=per_class, progress=progress)
    _check_folder(out, None)
    from analysis.features import digits_encoder, digits_feature_weights
    from models.data import digits
    from models.train import Trainer, TrainOptions

    before = {"hardware": _score(model, nonideal, chips=chips, per_class=per_class),
              "ideal": _score(model, None, chips=chips, per_class=per_class)}
    options = TrainOptions(steps=steps, lr=lr, warmup=max(1, min(20, steps // 10)), seed=seed, nonideal=nonideal,
                           feature_weights=digits_feature_weights(), checkpoint_every=max(1, min(250, steps)))
    provenance = {"command": " ".join(["un0hw", *sys.argv[1:]]), "finetuned_from": str(checkpoint),
                  "nonideal": nonideal.to_dict()}
    trainer = Trainer(model.train(), digits("train"), digits_encoder("digits-train"), options, out, provenance=provenance)
    t0 = time.perf_counter()
    tuned_path = trainer.run(progress=progress)
    seconds = time.perf_counter() - t0
    tuned = models.load(tuned_path)
    after = {"hardware": _score(tuned, nonideal, chips=chips, per_class=per_class),
             "ideal": _score(tuned, None, chips=chips, per_class=per_class)}
    hw_before, hw_after = _mean_sd(before["hardware"], "fid")[0], _mean_sd(after["hardware"], "fid")[0]
    ideal_before = _mean_sd(before["ideal"], "fid")[0]
    lost = hw_before - ideal_before
    result = {"checkpoint": str(checkpoint), "tuned": str(tuned_path), "nonideal": nonideal.to_dict(),
              "steps": steps, "lr": lr, "seed": seed, "chips": chips, "samples_per_chip": per_class * 10,
              "train_seconds": seconds, "before": before, "after": after,
              "won_back": (hw_before - hw_after) / lost if lost > 0 else None}
    return _write_result(out, result, _report(result))


def _write_result(out: Path, result: dict, report: str) -> dict:
    """OUT/finetune.json and OUT/finetune.md, each atomically; returns `result`."""
    from oscsim import atomic_path

    with atomic_path(out / "finetune.json") as tmp:
        tmp.write_text(json.dumps(result, indent=2) + "\n")
    with atomic_path(out / "finetune.md") as tmp:
        tmp.write_text(report)
    return result


def _finetune_circuit(checkpoint, model, nonideal, out: Path, circuit: CircuitCoupling, *, steps: int, lr: float,
                      seed: int, chips: int, per_class: int, progress: bool) -> dict:
    """`finetune` under the circuit's coupling function (module docstring)."""
    import models
    from analysis.features import digits_encoder, digits_feature_weights
    from analysis.sweep import circuit_shape
    from models.data import digits
    from models.train import Trainer, TrainOptions
    from oscsim import atomic_path

    cal = circuit.load()
    record = circuit.record()
    _check_folder(out, record)
    ir, shape = circuit_shape(model, circuit.options(), cal, trim=circuit.trim)

    def scores(m, array_ir, array_shape) -> dict:
        array = array_ir.to_model()
        array.dynamics.shape = array_shape
        m.dynamics.shape = None
        ideal = _score(m, None, chips=chips, per_class=per_class)
        m.dynamics.shape = shape  # both models under the shape the training ran with
        return {"hardware": _score(m, nonideal, chips=chips, per_class=per_class),
                "array": _score(array, nonideal, chips=chips, per_class=per_class), "ideal": ideal}

    before = scores(model, ir, shape)
    model.dynamics.shape = shape  # the training forward pass runs under the measured coupling function
    options = TrainOptions(steps=steps, lr=lr, warmup=max(1, min(20, steps // 10)), seed=seed, nonideal=nonideal,
                           feature_weights=digits_feature_weights(), checkpoint_every=max(1, min(250, steps)))
    provenance = {"command": " ".join(["un0hw", *sys.argv[1:]]), "finetuned_from": str(checkpoint),
                  "nonideal": None if nonideal is None else nonideal.to_dict(), "coupling": record}
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / COUPLING_FILE) as tmp:
        tmp.write_text(json.dumps(record, indent=2) + "\n")
    trainer = Trainer(model.train(), digits("train"), digits_encoder("digits-train"), options, out, provenance=provenance)
    t0 = time.perf_counter()
    tuned_path = trainer.run(progress=progress)
    seconds = time.perf_counter() - t0
    tuned = models.load(tuned_path)
    tuned_ir, tuned_shape = circuit_shape(tuned, circuit.options(), cal, trim=circuit.trim)
    after = scores(tuned, tuned_ir, tuned_shape)  # 'array': recompiled, its own codes' coupling function
    hw_before, hw_after = _mean_sd(before["hardware"], "fid")[0], _mean_sd(after["hardware"], "fid")[0]
    lost = hw_before - _mean_sd(before["ideal"], "fid")[0]
    result = {"checkpoint": str(checkpoint), "tuned": str(tuned_path), "coupling": record,
              "tau_s": {"before": ir.tau_s, "after": tuned_ir.tau_s},
              "nonideal": None if nonideal is None else nonideal.to_dict(),
              "steps": steps, "lr": lr, "seed": seed, "chips": chips, "samples_per_chip": per_class * 10,
              "train_seconds": seconds, "before": before, "after": after,
              "won_back": (hw_before - hw_after) / lost if lost > 0 else None}
    return _write_result(out, result, _report_circuit(result))


def _set_terms(nonideal: dict | None) -> dict:
    """The terms of a NonIdeal dict that differ from the field defaults."""
    from oscsim import NonIdeal

    off = NonIdeal()
    return {k: v for k, v in (nonideal or {}).items() if v != getattr(off, k)}


def _hardware_text(nonideal: dict | None) -> str:
    base = _set_terms(nonideal)
    return json.dumps(base) if base else ""


def _report_circuit(r: dict) -> str:
    c = r["coupling"]
    op = {k: v for k, v in c["operating_point"].items() if k not in ("name", "seed")}
    hw = _hardware_text(r["nonideal"])
    where = "chips" if hw else "seeds"
    trim = ("closed: each cell's frequency trimmed against its closed couplers, the constant part b0 taken out"
            if c["trim"] == "closed" else "open: trimmed with the couplers open, so each coupler's constant part b0 acts")
    lines = [
        "# Fine-tuning under the circuit's coupling function", "",
        f"`{r['checkpoint']}` fine-tuned for {r['steps']} steps (lr {r['lr']:g}, seed {r['seed']}, "
        f"{r['train_seconds']:.0f} s) with every coupler's measured coupling function H in the forward pass"
        + (f", and the hardware {hw} (a fresh training chip per step)" if hw else "") + ". "
        f"Calibration: {c['calibration']}; trim {trim}. Each coupler's shape (its terms over a1) is that of "
        f"the array the compiler builds at the demo's operating point {c['operating_point']['name']} "
        f"({json.dumps(op)}, seed {c['operating_point']['seed']}; full-code DAC scale), held fixed while the "
        f"couplings learn. Scored before and after on the same {r['chips']} evaluation {where}, "
        f"{r['samples_per_chip']} samples each, same seed phases:", "",
        "- **circuit**: the model under that coupling function" + (" on that hardware" if hw else "")
        + " (what it trained with);",
        "- **array**: the model compiled again at that operating point, its own codes and their coupling function "
        "(`ArrayIR.to_model(coupling=\"circuit\")`: what the chip would run);",
        "- **ideal sine**: the model's own equations, K sin x, no hardware.", "",
        "| | FID-digits, circuit | FID-digits, array | FID-digits, ideal sine | precision (circuit) "
        "| recall (circuit) | class accuracy (circuit) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in ("before", "after"):
        row = r[name]
        cells = []
        for key in ("hardware", "array", "ideal"):
            m, sd = _mean_sd(row[key], "fid")
            cells.append(f"{m:.2f} ± {sd:.2f}")
        hw_rows = row["hardware"]
        lines.append(f"| {name} | {' | '.join(cells)} | {_mean_sd(hw_rows, 'precision')[0]:.3f} "
                     f"| {_mean_sd(hw_rows, 'recall')[0]:.3f} | {_mean_sd(hw_rows, 'class_accuracy')[0]:.3f} |")
    won = r["won_back"]
    lines += ["", f"mean ± sd over {where}; data floor {r['before']['ideal'][0]['floor']:.3f}; "
              f"τ {r['tau_s']['before']:.3g} s before, {r['tau_s']['after']:.3g} s after.", "",
              ("Share of the FID lost to the circuit's coupling (before: circuit − ideal sine) won back by "
               f"fine-tuning: **{100 * won:.0f} %**." if won is not None else
               "The circuit's coupling did not raise the FID: nothing to win back."), ""]
    return "\n".join(lines)


def _report(r: dict) -> str:
    base = _set_terms(r["nonideal"])
    lines = [
        "# Hardware-aware fine-tuning", "",
        f"`{r['checkpoint']}` fine-tuned for {r['steps']} steps (lr {r['lr']:g}, seed {r['seed']}, "
        f"{r['train_seconds']:.0f} s) with the hardware {json.dumps(base)} in every forward pass (a fresh training chip "
        "per step; quantisation straight-through). Scored before and after on the same "
        f"{r['chips']} evaluation chips (never trained on), {r['samples_per_chip']} samples each, same seed phases.", "",
        "| | FID-digits on the hardware | FID-digits ideal | precision (hw) | recall (hw) | class accuracy (hw) |",
        "|---|---|---|---|---|---|",
    ]
    for name in ("before", "after"):
        hw, ideal = r[name]["hardware"], r[name]["ideal"]
        m, sd = _mean_sd(hw, "fid")
        mi, sdi = _mean_sd(ideal, "fid")
        lines.append(f"| {name} | {m:.2f} ± {sd:.2f} | {mi:.2f} ± {sdi:.2f} | {_mean_sd(hw, 'precision')[0]:.3f} "
                     f"| {_mean_sd(hw, 'recall')[0]:.3f} | {_mean_sd(hw, 'class_accuracy')[0]:.3f} |")
    won = r["won_back"]
    lines += ["", "mean ± sd over chips; data floor "
              f"{r['before']['ideal'][0]['floor']:.3f}.", "",
              ("Share of the FID lost on the hardware (before: hardware − ideal) won back by fine-tuning: "
               f"**{100 * won:.0f} %**." if won is not None else
               "The hardware did not raise the FID at this operating point: nothing to win back."), ""]
    return "\n".join(lines)


# --- every other family: chip fidelity against the ideal model (data-free by default) -------------
#: the ideal model's training set is drawn from sample-plan seeds from here on (evaluation
#: chip s uses seed 1000·s, so the two never share seed phases)
IDEAL_SET_SEED_FROM = 1_000_000
#: memory the ideal model's training set may take (float32 images), bytes
IDEAL_SET_BYTES = 2**30
#: at most this many ideal samples per class (the trainer draws `real_per_class` a step, with replacement)
IDEAL_SET_MAX_PER_CLASS = 256
#: samples per evaluation chip when --per-class is not given (100 per class for 10 classes)
SAMPLES_PER_CHIP = 1000
#: the primary figure (whose loss is won back) with and without a data set
PRIMARY = {"fidelity": "fid_vs_ideal", "data": "fid"}


def ideal_per_class(config) -> int:
    """Default size (per class) of the ideal model's training set: `IDEAL_SET_MAX_PER_CLASS`,
    or fewer where the classes' images would pass `IDEAL_SET_BYTES` (1000-class models)."""
    image = 4 * config.image_channels * config.image_size**2
    return max(1, min(IDEAL_SET_MAX_PER_CLASS, IDEAL_SET_BYTES // (image * config.num_classes)))


@torch.no_grad()
def ideal_samples(model, *, per_class: int, seed: int, progress: bool = False):
    """The ideal model's own samples as a class-balanced `ImageSet` (per_class of every
    class, seed phases of `sample_plan(seed)`, memory-bounded batches): the "real" set of
    data-free fine-tuning. Deterministic from `seed`."""
    from tqdm import tqdm

    from analysis.evaluate import bounded_batch, sample_plan
    from models.data import ImageSet

    batch = bounded_batch(model.config, 1000)
    labels, theta0, starts = sample_plan(model, per_class=per_class, seed=seed, batch_size=batch)
    images = torch.empty((len(labels), *model.config.image_shape))
    for i in tqdm(starts, desc="ideal samples", unit="batch", disable=not progress):
        images[i:i + batch] = model.generate(labels[i:i + batch], theta0[i:i + batch]).float().cpu()
    return ImageSet(name=f"ideal-samples-seed{seed}", images=images, labels=labels,
                    num_classes=model.config.num_classes)


def multiscale_pixel_encoder(images):
    """Raw pixels at full resolution and average-pooled by 2, 4, … down to 4×4: the drifting
    loss sees the image's coarse layout as well as its detail (no weights, no download)."""
    import torch.nn.functional as F

    feats, side = [images.flatten(1)], images.shape[-1]
    while side > 4:
        side //= 2
        feats.append(F.adaptive_avg_pool2d(images, side).flatten(1))
    return feats


def _data_sets(root: Path, shape: tuple) -> tuple:
    """(training set, reference, floor set) of --data-root for a `shape` model: a CIFAR-10
    folder (train, test, train) or an ImageNet-64 .npz (the file for all three; no floor)."""
    from models.data import image_data

    train, test = image_data(root, shape)
    return (train, test, train) if test is not None else (train, train, None)


class FidelityScorer:
    """Scores of any model on evaluation chips 0 … chips−1 against the ideal model it started
    from (`analysis.fidelity`): chip s runs the plan of seed 1000·s with the hardware's chip
    and sample seeds offset by s, as the digits scores do; each chip's `IdealReference` (the
    untouched model's samples on those seeds) is made once and reused before and after.
    With `reference` (a data set) each chip's samples are also scored against it (FID,
    precision, recall) in the same feature space."""

    def __init__(self, model, *, chips: int, per_class: int, features: str, reference=None, floor_set=None) -> None:
        import copy

        from analysis.evaluate import GENERATION_MEMORY_BYTES, bounded_batch
        from analysis.fidelity import IdealReference, feature_space

        self.model = copy.deepcopy(model).eval()  # the ideal model, untouched by training
        self.model.dynamics.shape = None
        cfg = self.model.config
        self.ex = feature_space(features, cfg.image_shape)
        self.reference, self.floor_set = reference, floor_set
        self.chips, self.per_class = chips, per_class
        batch = bounded_batch(cfg, 1000)
        keep = IdealReference.held_bytes(cfg, (chips + 1) * per_class * cfg.num_classes) <= GENERATION_MEMORY_BYTES // 2

        def ref(seed):
            return IdealReference.of_plan(self.model, self.ex, per_class=per_class, seed=seed, batch_size=batch,
                                          keep=keep)

        self.plans = [1000 * s for s in range(chips)]
        self.refs = [ref(seed) for seed in self.plans]
        self._other = ref(1000 * chips + 1)  # the sampling floor's second seed set

    @property
    def metric(self) -> str:
        return "data" if self.reference is not None else "fidelity"

    @property
    def primary(self) -> str:
        return PRIMARY[self.metric]

    def rows(self, model, nonideal) -> list[dict]:
        from analysis.evaluate import score_features
        from analysis.fidelity import FIELDS, paired_run

        if nonideal is None and self._is_reference(model):
            model = self.model  # the reference's own samples: no second run
        rows = []
        for s, (ref, plan) in enumerate(zip(self.refs, self.plans)):
            hw = None if nonideal is None else nonideal.replace(chip_seed=nonideal.chip_seed + s,
                                                                 sample_seed=nonideal.sample_seed + s)
            acc = paired_run(ref, model, nonideal=hw)
            fidelity = acc.score()
            row = {"chip": s, **{k: getattr(fidelity, k) for k in FIELDS if k != "label_agreement"}}
            if self.reference is not None:
                d = score_features(acc.features(), acc.class_hits(), self.ex, self.reference, seed=plan)
                row.update(fid=d.fid, precision=d.precision, recall=d.recall)
            rows.append(row)
        return rows

    def _is_reference(self, model) -> bool:
        if model.config != self.model.config or model.dynamics.shape is not None:
            return False
        mine = self.model.state_dict()
        return all(torch.equal(v, mine[k]) for k, v in model.state_dict().items())

    def floors(self) -> dict:
        """The sampling floor of FID vs ideal (two seed sets of the ideal model, one chip's
        count) and, with a data set with a floor split, the data's own floor."""
        from analysis.evaluate import reference_stats
        from analysis.fid import frechet_distance
        from analysis.fidelity import sampling_floor

        out = {"sampling_floor": sampling_floor(self.refs[0], self._other)}
        if self.floor_set is not None and self.reference is not None:
            out["data_floor"] = frechet_distance(reference_stats(self.floor_set, self.ex)[0],
                                                 reference_stats(self.reference, self.ex)[0])
        return out

    def record(self) -> dict:
        """JSON-ready: which figures, in which feature space, against what, and what they mean."""
        from analysis.fidelity import meaning

        means = {k: v for k, v in meaning().items() if k != "label_agreement"}
        if self.reference is not None:
            means["fid"] = f"Fréchet distance of the chip's samples to the data set {self.reference.name} (same features)"
        return {"name": self.primary, "feature_space": self.ex.id,
                "against": "the data set " + self.reference.name if self.reference is not None else
                           "the ideal model (the untouched checkpoint, no hardware) on the same seeds and labels",
                "meaning": means}


def family_objective(objective: str | None, data_root, ideal_count) -> str:
    """The objective of a non-digits fine-tune, checked against the other options: paired
    by default without a data set (distillation on common seeds), drifting with one."""
    from models.train import OBJECTIVES

    if objective is None:
        objective = "drifting" if data_root is not None else "paired"
    elif objective not in OBJECTIVES:
        raise CliError(f"--objective must be one of {', '.join(OBJECTIVES)}, not {objective!r}")
    if objective == "paired" and data_root is not None:
        raise CliError("--objective paired distils the ideal model on common seeds and takes no --data-root "
                       "(a data set has no image per seed); use --objective drifting with --data-root")
    if objective == "paired" and ideal_count is not None:
        raise CliError("--ideal-per-class sizes the drifting objective's set of ideal samples (give --objective "
                       "drifting); the paired objective, the default without --data-root, draws fresh seeds every step")
    return objective


def _train_options(steps: int, lr: float, seed: int, nonideal, *, weights: tuple, ema_decay: float,
                   objective: str = "drifting"):
    from models.train import TrainOptions

    return TrainOptions(steps=steps, lr=lr, warmup=max(1, min(20, steps // 10)), seed=seed, nonideal=nonideal,
                        feature_weights=weights, ema_decay=ema_decay, checkpoint_every=max(1, min(250, steps)),
                        objective=objective)


def family_ema_decay(steps: int) -> float:
    """EMA decay of a non-digits fine-tune: the default 0.995 (a ~200-step average) for
    long runs, shorter for short ones so the EMA weights hold what the run learnt
    (at most a fifth of the run: 1 − 5/steps)."""
    return min(0.995, max(0.0, 1.0 - 5.0 / steps))


def _finetune_family(checkpoint, model, nonideal, out: Path, circuit: CircuitCoupling | None, *, steps: int,
                     lr: float, seed: int, chips: int, per_class: int, progress: bool, data_root: Path | None,
                     features: str, ideal_count: int | None, objective: str) -> dict:
    """`finetune` of a CIFAR-10, ImageNet-64 (or any non-digits) model: with `data_root`
    against its data; without, against the ideal model's own samples (distillation of the
    ideal model into the imperfect chip). Scored by chip fidelity (module docstring)."""
    import models
    from models.train import Trainer
    from oscsim import atomic_path

    cfg = model.config
    shape = tuple(cfg.image_shape)
    record = None if circuit is None else circuit.record()
    _check_folder(out, record)
    data = reference = floor_set = None
    if data_root is not None:
        data, reference, floor_set = _data_sets(Path(data_root), shape)
    scorer = FidelityScorer(model, chips=chips, per_class=per_class, features=features, reference=reference,
                            floor_set=floor_set)
    ir = tuned_ir = None
    if circuit is not None:
        from analysis.sweep import circuit_shape, shaped

        cal = circuit.load()
        ir, coupling = circuit_shape(model, circuit.options(), cal, trim=circuit.trim)

        def scores(m, array_ir, array_coupling) -> dict:
            array = array_ir.to_model()
            array.dynamics.shape = array_coupling
            m.dynamics.shape = None
            ideal = scorer.rows(m, None)
            return {"hardware": scorer.rows(shaped(m, coupling), nonideal),
                    "array": scorer.rows(array, nonideal), "ideal": ideal}
    else:
        def scores(m, *_):
            return {"hardware": scorer.rows(m, nonideal), "ideal": scorer.rows(m, None)}

    floors = scorer.floors()
    before = scores(model, ir, None if ir is None else coupling)
    teacher = None
    if objective == "paired":
        teacher = scorer.model  # frozen, ideal equations, same seeds and labels as the student every step
        target = {"kind": "ideal model, paired (same seeds and labels every step; distillation)",
                  "name": "the untouched checkpoint"}
    elif data is None:
        count = ideal_per_class(cfg) if ideal_count is None else ideal_count
        data = ideal_samples(scorer.model, per_class=count, seed=IDEAL_SET_SEED_FROM + seed, progress=progress)
        target = {"kind": "ideal model samples (distillation)", "name": data.name, "per_class": count,
                  "plan_seed": IDEAL_SET_SEED_FROM + seed}
    else:
        target = {"kind": "data set", "name": data.name, "images": len(data)}
    trained = models.load(checkpoint)  # the copy that learns; `model` and the scorer's stay as they were
    if circuit is not None:
        trained.dynamics.shape = coupling
    options = _train_options(steps, lr, seed, nonideal, weights=(), ema_decay=family_ema_decay(steps),
                             objective=objective)
    provenance = {"command": " ".join(["un0hw", *sys.argv[1:]]), "finetuned_from": str(checkpoint),
                  "nonideal": None if nonideal is None else nonideal.to_dict(), "target": target,
                  **({"coupling": record} if record is not None else {})}
    out.mkdir(parents=True, exist_ok=True)
    if record is not None:
        with atomic_path(out / COUPLING_FILE) as tmp:
            tmp.write_text(json.dumps(record, indent=2) + "\n")
    trainer = Trainer(trained.train(), data, multiscale_pixel_encoder, options, out, provenance=provenance,
                      teacher=teacher)
    t0 = time.perf_counter()
    tuned_path = trainer.run(progress=progress)
    seconds = time.perf_counter() - t0
    tuned = models.load(tuned_path)
    if circuit is not None:
        tuned_ir, tuned_coupling = circuit_shape(tuned, circuit.options(), cal, trim=circuit.trim)
        after = scores(tuned, tuned_ir, tuned_coupling)
    else:
        after = scores(tuned)
    key = scorer.primary
    hw_before, hw_after = _spread(before["hardware"], key)[0], _spread(after["hardware"], key)[0]
    lost = hw_before - _spread(before["ideal"], key)[0]
    result = {"checkpoint": str(checkpoint), "tuned": str(tuned_path), "image_shape": list(shape),
              "num_classes": cfg.num_classes, "metric": scorer.record(), "target": target,
              "encoder": "multi-scale pixels (models: un0hw.cmd_finetune.multiscale_pixel_encoder)",
              **({"coupling": record, "tau_s": {"before": ir.tau_s, "after": tuned_ir.tau_s}} if record else {}),
              "nonideal": None if nonideal is None else nonideal.to_dict(),
              "objective": objective, "steps": steps, "lr": lr, "ema_decay": options.ema_decay, "seed": seed,
              "chips": chips,
              "samples_per_chip": per_class * cfg.num_classes, "train_seconds": seconds, **floors,
              "before": before, "after": after, "won_back": (hw_before - hw_after) / lost if lost > 0 else None,
              "won_back_image_error": image_error_won_back(before["hardware"], after["hardware"])}
    return _write_result(out, result, _report_family(result))


def image_error_won_back(before: list[dict], after: list[dict]) -> float | None:
    """Share of the chip's per-sample image error (the MSE against the ideal model's image on
    the same seeds, from each chip's PSNR: PEAK² · 10^(−PSNR/10), averaged over chips) won
    back; None where the chip's images equal the ideal's before (nothing lost)."""
    from analysis.fidelity import PEAK

    def mse(rows):
        return statistics.fmean(PEAK**2 * 10 ** (-r["psnr_db"] / 10) for r in rows)

    lost = mse(before)
    return (lost - mse(after)) / lost if lost > 0 else None


def _report_family(r: dict) -> str:
    """The report of `_finetune_family`."""
    m = r["metric"]
    hw = _hardware_text(r["nonideal"])
    circuit = "coupling" in r
    space = m["feature_space"].split(":")[0]
    data = m["name"] == "fid"
    t = r["target"]
    paired = r.get("objective") == "paired"
    what = ("the drifting loss pulling toward "
            + (f"the data set {t['name']} ({t['images']} images)" if t["kind"] == "data set" else
               f"the ideal model's own samples ({t['per_class']} per class, seed phases of plan seed "
               f"{t['plan_seed']}): data-free, a distillation of the ideal model into the imperfect chip")
            if not paired else
            "the paired loss (mean squared difference to the untouched ideal model's images on the same labels and "
            "seed phases, fresh ones every step): data-free, a distillation of the ideal model into the imperfect "
            "chip")
    under = " and ".join(x for x in (
        f"the hardware {hw} (a fresh training chip per step; quantisation straight-through)" if hw else "",
        "every coupler's measured coupling function H (demo operating point A, trim "
        f"{r['coupling']['trim']}; calibration {r['coupling']['calibration']})" if circuit else "") if x)
    lines = [
        "# Hardware-aware fine-tuning" + (" under the circuit's coupling function" if circuit else ""), "",
        f"`{r['checkpoint']}` ({'×'.join(map(str, r['image_shape']))}, {r['num_classes']} classes) fine-tuned for "
        f"{r['steps']} steps (lr {r['lr']:g}, EMA decay {r['ema_decay']:g}, seed {r['seed']}, "
        f"{r['train_seconds']:.0f} s) with {under} in every forward pass, {what}, "
        "on multi-scale pixel features. "
        f"Scored before and after on the same {r['chips']} evaluation "
        f"{'chips' if hw else 'seed sets'} (never trained on), {r['samples_per_chip']} samples each, against "
        f"{m['against']} in {space} features ({m['feature_space']}).", "",
        "Rows: **hardware**, the model on the chip" + (" under the circuit's coupling function" if circuit else "")
        + ("; **array**, the model compiled again at that point under its own codes' coupling function"
           if circuit else "") + "; **ideal**, the model's own equations, no hardware (before: the reference "
        "itself, so 0 and ∞).", "",
    ]
    cols = ["fid_vs_ideal", "psnr_db", "phase_error_rad", "feature_distance"] + (["fid", "precision", "recall"]
                                                                                 if data else [])
    names = {"fid_vs_ideal": "FID vs ideal", "psnr_db": "PSNR dB", "phase_error_rad": "phase error rad",
             "feature_distance": "feature distance", "fid": f"FID vs {r['target']['name'] if data else ''}",
             "precision": "precision", "recall": "recall"}
    if data:
        names["fid"] = f"FID vs {m['against'].removeprefix('the data set ')}"
    lines += ["| | | " + " | ".join(names[c] for c in cols) + " |", "|---|---|" + "---|" * len(cols)]
    for when in ("before", "after"):
        for row in ("hardware", "array", "ideal"):
            if row not in r[when]:
                continue
            cells = []
            for c in cols:
                mean, sd = _spread(r[when][row], c)
                cells.append(f"{mean:.3f} ± {sd:.3f}" if math.isfinite(mean) else "∞")
            lines.append(f"| {when} | {row} | " + " | ".join(cells) + " |")
    floor = f"sampling floor of FID vs ideal {r['sampling_floor']:.3f} (two independent seed sets of the ideal model)"
    if "data_floor" in r:
        floor += f"; data floor {r['data_floor']:.3f}"
    won, label = r["won_back"], "FID vs the data" if data else "FID vs ideal"
    lines += ["", f"mean ± sd over {'chips' if hw else 'seed sets'}; {floor}.", ""]
    if not data and _spread(r["before"]["hardware"], "fid_vs_ideal")[0] < r["sampling_floor"]:
        lines += ["Before fine-tuning the chip's FID vs ideal is already below the sampling floor: the chip's shift "
                  "is smaller than what two seed sets of the ideal model differ by, so FID vs ideal cannot resolve "
                  "it" + (" (the paired loss still sees each sample's error: read PSNR and the image error "
                          "won back)" if paired else
                          ", nor can the drifting loss (which compares batches of samples): fine-tuning is not "
                          "expected to gain on it; the paired objective targets each sample's error") + ".", ""]
    lines += [
              "What the figures say: " + "; ".join(f"{names.get(k, k)}: {v}" for k, v in m["meaning"].items()) + ".",
              "",
              (f"Share of the {label} lost on the hardware (before: hardware − ideal) won back by fine-tuning: "
               f"**{100 * won:.0f} %**." if won is not None else
               f"The hardware did not raise the {label}: nothing to win back."), ""]
    if r.get("won_back_image_error") is not None:
        lines += [f"Share of the per-sample image error (MSE to the ideal model's image on the same seeds, from PSNR) "
                  f"won back: **{100 * r['won_back_image_error']:.0f} %**.", ""]
    return "\n".join(lines)


def _spread(rows: list[dict], key: str) -> tuple[float, float]:
    """Mean and sd of `key` over rows; an infinite PSNR (identical images) gives (∞, 0)."""
    values = [r[key] for r in rows]
    if not all(math.isfinite(v) for v in values):
        return (math.inf if all(v == math.inf for v in values) else math.nan), 0.0
    return _mean_sd(rows, key)


def circuit_option(args: argparse.Namespace) -> CircuitCoupling | None:
    """--coupling, --trim and --calibration → the circuit coupling (None: sine), checked."""
    coupling = "sine" if args.coupling is None else args.coupling
    if coupling not in COUPLINGS:
        raise CliError(f"--coupling must be one of {', '.join(COUPLINGS)}, not {args.coupling!r}")
    if coupling == "sine":
        for flag, value in (("--trim", args.trim), ("--calibration", args.calibration), ("--couplers", args.couplers)):
            if value is not None:
                raise CliError(f"{flag} goes with --coupling circuit (the sine coupling has no measured coupling "
                               "function, calibration or trim)")
        return None
    trim = "closed" if args.trim is None else args.trim
    if trim not in CIRCUIT_TRIMS:
        raise CliError(f"--trim must be one of {', '.join(CIRCUIT_TRIMS)}, not {args.trim!r}"
                       + (" (the trajectory trim only offsets the frequencies ω, which fine-tuning learns itself)"
                          if trim == "trajectory" else ""))
    circuit = CircuitCoupling(trim=trim, calibration=args.calibration,
                              couplers="auto" if args.couplers is None else args.couplers)
    try:
        from compiler.circuit import directed_couplers

        directed_couplers(circuit.couplers, circuit.load())  # a bad or sine-only calibration stops here too
    except CompileError as exc:
        raise CliError(str(exc)) from None
    return circuit


def cmd_finetune(args: argparse.Namespace) -> int:
    from analysis.sweep import load_nonideal

    steps = positive("--steps", args.steps)
    chips = positive("--chips", args.chips)
    per_class = None if args.per_class is None else positive("--per-class", args.per_class)
    if not args.lr > 0:
        raise CliError(f"--lr must be > 0, not {args.lr}")
    circuit = circuit_option(args)
    if args.nonideal is None:
        if circuit is None:
            raise CliError("--nonideal is required (the hardware to fine-tune for) unless --coupling circuit is given")
        nonideal = None
    else:
        nonideal = load_nonideal(args.nonideal)
        if nonideal.ideal:
            if circuit is None:
                raise CliError(f"--nonideal {args.nonideal}: every non-ideality is off; nothing to fine-tune for")
            nonideal = None  # the circuit's coupling alone
    from analysis.fidelity import FEATURE_SPACES

    if args.features not in FEATURE_SPACES:
        raise CliError(f"--features must be one of {', '.join(FEATURE_SPACES)}, not {args.features!r}")
    ideal_count = None if args.ideal_per_class is None else positive("--ideal-per-class", args.ideal_per_class)
    out = Path(args.output)
    result = finetune(args.checkpoint, nonideal, out, steps=steps, lr=args.lr, seed=args.seed, chips=chips,
                      per_class=per_class, progress=not args.no_progress, circuit=circuit, data_root=args.data_root,
                      features=args.features, ideal_count=ideal_count, objective=args.objective)
    print((out / "finetune.md").read_text(), end="")
    print(f"wrote {result['tuned']}, {out}/finetune.md, finetune.json")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from analysis.fidelity import FEATURE_SPACES
    from models.checkpoint import SHIPPED
    from un0hw.demo import OPERATING_POINTS, SEED

    point = ", ".join(f"{k} {v}" for k, v in OPERATING_POINTS["A"].items())
    p = sub.add_parser("finetune", help="hardware-aware fine-tuning: train with non-idealities (or the circuit's "
                                        "coupling function) in the forward pass, FID before vs after",
                       description="Continue training a model with the [nonideal] table of a TOML file "
                                   "injected in every forward pass, and/or (--coupling circuit) under the circuit's "
                                   "measured coupling function; score it before and after on the same chips "
                                   "and seeds. Digits models train on the digits data and score FID-digits; any "
                                   "other model (CIFAR-10, ImageNet-64, release .pt) trains data-free toward the "
                                   "ideal model's own samples (a distillation of the ideal model into the chip) "
                                   "and is scored by chip fidelity against the ideal model (FID vs ideal, PSNR, "
                                   "phase error), or trains toward --data-root and adds FID against it.")
    p.add_argument("checkpoint", type=Path, nargs="?", default=SHIPPED, help="model to fine-tune (default: shipped)")
    p.add_argument("--nonideal", type=Path, default=None, metavar="SPEC.toml",
                   help="TOML file with a [nonideal] table (a sweep spec works); required unless --coupling circuit")
    p.add_argument("--coupling", default=None, metavar="{sine,circuit}",
                   help="sine (default): every coupler K sin x; circuit: every coupler's measured coupling function "
                        f"H, shaped as on the array the compiler builds from CHECKPOINT at the demo's operating "
                        f"point A ({point}, seed {SEED}) on --calibration's cells")
    p.add_argument("--trim", default=None, metavar="{closed,open}",
                   help="with --coupling circuit: closed (default; the couplers' constant part trimmed out) or open")
    p.add_argument("--calibration", type=Path, default=None, metavar="CAL.json",
                   help="with --coupling circuit: a format-2 calibration JSON (default: the built-in measured one)")
    p.add_argument("--couplers", default=None, metavar="{auto,reciprocal,directed}",
                   help="with --coupling circuit: how the array's couplers realise K (default auto: one-way couplers "
                        "keep both directions where the calibration's coupler can, reciprocal DACs K's symmetric part)")
    p.add_argument("-o", "--output", type=Path, required=True, help="run folder (resumes an interrupted run)")
    p.add_argument("--steps", type=int, default=300, help="training steps (default 300)")
    p.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate (default 0.001)")
    p.add_argument("--seed", type=int, default=0, help="seed of batches and phases (default 0)")
    p.add_argument("--chips", type=int, default=3, help="evaluation chips before and after (default 3)")
    p.add_argument("--per-class", type=int, default=None,
                   help=f"samples per class and chip (default {SAMPLES_PER_CHIP} per chip: 100 for 10 classes, "
                        "1 for 1000)")
    p.add_argument("--data-root", type=Path, default=None, metavar="DATA",
                   help="non-digits models: train toward this data set instead of the ideal model's samples, and "
                        "score FID against it too: a CIFAR-10 folder (cifar-10-batches-py; 3×32×32 models) or an "
                        "ImageNet-64 .npz (3×64×64 models)")
    p.add_argument("--features", default="auto", metavar="{auto,pixels,inception}",
                   help="non-digits models: the feature space of the scores (analysis.fidelity.feature_space; "
                        "default auto: Inception with $UN0HW_INCEPTION_WEIGHTS, 8×8-pooled pixels otherwise)")
    p.add_argument("--ideal-per-class", type=int, default=None, metavar="N",
                   help="non-digits models without --data-root: ideal-model samples per class to distil from "
                        f"(default {IDEAL_SET_MAX_PER_CLASS}, fewer where they would pass "
                        f"{IDEAL_SET_BYTES // 2**20} MiB)")
    p.add_argument("--objective", default=None, metavar="{paired,drifting}",
                   help="non-digits models: paired (default without --data-root): the chip against the untouched "
                        "ideal model on the same seeds and labels every step, mean squared image difference; "
                        "drifting (default with --data-root): the drifting loss toward --data-root, or toward "
                        "--ideal-per-class ideal samples")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_finetune)
    paths(p, PathOption("checkpoint", "file-or-dir", "CHECKPOINT"), PathOption("nonideal", "file", "--nonideal"),
          PathOption("calibration", "file", "--calibration"), PathOption("data_root", "file-or-dir", "--data-root"),
          PathOption("output", "out-dir", "-o/--output", resumable=True))
