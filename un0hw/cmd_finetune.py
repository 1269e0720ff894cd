"""`un0hw finetune CKPT --nonideal SPEC -o OUT`: hardware-aware fine-tuning, scored before and after."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from analysis.sweep import SweepError
from un0hw.options import CliError, PathOption, paths, positive

ERRORS = (SweepError,)


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
             progress: bool) -> dict:
    """Fine-tune `checkpoint` with `nonideal` in the forward pass; returns the report's numbers."""
    import models
    from analysis.features import digits_encoder, digits_feature_weights
    from models.data import digits
    from models.train import Trainer, TrainOptions
    from oscsim import atomic_path

    model = models.load(checkpoint)
    if model.config.image_shape != (1, 8, 8):
        raise SweepError(f"{checkpoint}: finetune trains and scores digits models; this one makes {model.config.image_shape}")
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
    with atomic_path(out / "finetune.json") as tmp:
        tmp.write_text(json.dumps(result, indent=2) + "\n")
    with atomic_path(out / "finetune.md") as tmp:
        tmp.write_text(_report(result))
    return result


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


def cmd_finetune(args: argparse.Namespace) -> int:
    from analysis.sweep import load_nonideal

    steps = positive("--steps", args.steps)
    chips = positive("--chips", args.chips)
    per_class = positive("--per-class", args.per_class)
    if not args.lr > 0:
        raise CliError(f"--lr must be > 0, not {args.lr}")
    nonideal = load_nonideal(args.nonideal)
    if nonideal.ideal:
        raise CliError(f"--nonideal {args.nonideal}: every non-ideality is off; nothing to fine-tune for")
    out = Path(args.output)
    result = finetune(args.checkpoint, nonideal, out, steps=steps, lr=args.lr, seed=args.seed, chips=chips,
                      per_class=per_class, progress=not args.no_progress)
    print((out / "finetune.md").read_text(), end="")
    print(f"wrote {result['tuned']}, {out}/finetune.md, finetune.json")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from models.checkpoint import SHIPPED

    p = sub.add_parser("finetune", help="hardware-aware fine-tuning: train with non-idealities in the forward pass, "
                                        "FID before vs after",
                       description="Continue training a digits model with the [nonideal] table of a TOML file "
                                   "injected in every forward pass; score it before and after on the same chips "
                                   "and seeds.")
    p.add_argument("checkpoint", type=Path, nargs="?", default=SHIPPED, help="model to fine-tune (default: shipped)")
    p.add_argument("--nonideal", type=Path, required=True, help="TOML file with a [nonideal] table (a sweep spec works)")
    p.add_argument("-o", "--output", type=Path, required=True, help="run folder (resumes an interrupted run)")
    p.add_argument("--steps", type=int, default=300, help="training steps (default 300)")
    p.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate (default 0.001)")
    p.add_argument("--seed", type=int, default=0, help="seed of batches and phases (default 0)")
    p.add_argument("--chips", type=int, default=3, help="evaluation chips before and after (default 3)")
    p.add_argument("--per-class", type=int, default=100, help="samples per class and chip (default 100)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_finetune)
    paths(p, PathOption("checkpoint", "file-or-dir", "CHECKPOINT"), PathOption("nonideal", "file", "--nonideal"),
          PathOption("output", "out-dir", "-o/--output", resumable=True))
