"""`un0hw finetune CKPT --nonideal SPEC -o OUT`: hardware-aware fine-tuning, scored before and after.

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
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from analysis.sweep import CIRCUIT_TRIMS, COUPLINGS, SweepError
from compiler.options import CompileError
from hw.calibration import CalibrationError
from un0hw.options import CliError, PathOption, paths, positive

ERRORS = (SweepError, CompileError, CalibrationError)
#: the run folder's record of the coupling a circuit run trains under (checked on resume)
COUPLING_FILE = "coupling.json"


@dataclass(frozen=True)
class CircuitCoupling:
    """What `--coupling circuit` trains under: the cells' `trim` and their calibration
    (`calibration` a file, None for the built-in measured one)."""

    trim: str = "closed"
    calibration: Path | None = None

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
                "operating_point": {"name": "A", **OPERATING_POINTS["A"], "seed": SEED}, "dac_scale": "full-code"}


def operating_point():
    """The demo's array-A CompileOptions (the circuit coupling's array)."""
    import compiler
    from un0hw.demo import OPERATING_POINTS, SEED

    return compiler.CompileOptions(**OPERATING_POINTS["A"], seed=SEED)


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
    same = lambda d: {k: v for k, v in d.items() if k != "calibration"}  # the file by content, not as typed
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


def finetune(checkpoint, nonideal, out: Path, *, steps: int, lr: float, seed: int, chips: int, per_class: int,
             progress: bool, circuit: CircuitCoupling | None = None) -> dict:
    """Fine-tune `checkpoint` with `nonideal` in the forward pass (and, with `circuit`, under
    the circuit's coupling function); returns the report's numbers."""
    import models

    model = models.load(checkpoint)
    if model.config.image_shape != (1, 8, 8):
        raise SweepError(f"{checkpoint}: finetune trains and scores digits models; this one makes {model.config.image_shape}")
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
    ir, shape = circuit_shape(model, operating_point(), cal, trim=circuit.trim)

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
    tuned_ir, tuned_shape = circuit_shape(tuned, operating_point(), cal, trim=circuit.trim)
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


def _hardware_text(nonideal: dict | None) -> str:
    from oscsim import NonIdeal

    off = NonIdeal().to_dict()
    base = {k: v for k, v in (nonideal or {}).items() if v != off[k]}
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
    from oscsim import NonIdeal

    off = NonIdeal().to_dict()
    base = {k: v for k, v in r["nonideal"].items() if v != off[k]}
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


def circuit_option(args: argparse.Namespace) -> CircuitCoupling | None:
    """--coupling, --trim and --calibration → the circuit coupling (None: sine), checked."""
    coupling = "sine" if args.coupling is None else args.coupling
    if coupling not in COUPLINGS:
        raise CliError(f"--coupling must be one of {', '.join(COUPLINGS)}, not {args.coupling!r}")
    if coupling == "sine":
        for flag, value in (("--trim", args.trim), ("--calibration", args.calibration)):
            if value is not None:
                raise CliError(f"{flag} goes with --coupling circuit (the sine coupling has no measured coupling "
                               "function, calibration or trim)")
        return None
    trim = "closed" if args.trim is None else args.trim
    if trim not in CIRCUIT_TRIMS:
        raise CliError(f"--trim must be one of {', '.join(CIRCUIT_TRIMS)}, not {args.trim!r}"
                       + (" (the trajectory trim only offsets the frequencies ω, which fine-tuning learns itself)"
                          if trim == "trajectory" else ""))
    circuit = CircuitCoupling(trim=trim, calibration=args.calibration)
    circuit.load()  # a bad or sine-only calibration stops here
    return circuit


def cmd_finetune(args: argparse.Namespace) -> int:
    from analysis.sweep import load_nonideal

    steps = positive("--steps", args.steps)
    chips = positive("--chips", args.chips)
    per_class = positive("--per-class", args.per_class)
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
    out = Path(args.output)
    result = finetune(args.checkpoint, nonideal, out, steps=steps, lr=args.lr, seed=args.seed, chips=chips,
                      per_class=per_class, progress=not args.no_progress, circuit=circuit)
    print((out / "finetune.md").read_text(), end="")
    print(f"wrote {result['tuned']}, {out}/finetune.md, finetune.json")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from models.checkpoint import SHIPPED
    from un0hw.demo import OPERATING_POINTS, SEED

    point = ", ".join(f"{k} {v}" for k, v in OPERATING_POINTS["A"].items())
    p = sub.add_parser("finetune", help="hardware-aware fine-tuning: train with non-idealities (or the circuit's "
                                        "coupling function) in the forward pass, FID before vs after",
                       description="Continue training a digits model with the [nonideal] table of a TOML file "
                                   "injected in every forward pass, and/or (--coupling circuit) under the circuit's "
                                   "measured coupling function; score it before and after on the same chips "
                                   "and seeds.")
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
    p.add_argument("-o", "--output", type=Path, required=True, help="run folder (resumes an interrupted run)")
    p.add_argument("--steps", type=int, default=300, help="training steps (default 300)")
    p.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate (default 0.001)")
    p.add_argument("--seed", type=int, default=0, help="seed of batches and phases (default 0)")
    p.add_argument("--chips", type=int, default=3, help="evaluation chips before and after (default 3)")
    p.add_argument("--per-class", type=int, default=100, help="samples per class and chip (default 100)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_finetune)
    paths(p, PathOption("checkpoint", "file-or-dir", "CHECKPOINT"), PathOption("nonideal", "file", "--nonideal"),
          PathOption("calibration", "file", "--calibration"), PathOption("output", "out-dir", "-o/--output", resumable=True))
