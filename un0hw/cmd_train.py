"""`un0hw train` (the drifting loss, resumable) and `un0hw ablate` (the release's dynamics
ablation on digits)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from un0hw.options import CliError, PathOption, paths, positive, published

ERRORS: tuple = ()


def cmd_train(args: argparse.Namespace) -> int:
    import models
    from models.data import cifar10, digits
    from models.train import Trainer, TrainOptions, pixel_encoder

    config = published(args.size)
    if args.integration_steps is not None:
        if args.integration_steps < 0:
            raise CliError(f"--integration-steps must be >= 0, not {args.integration_steps}")
        config = config.replace(num_steps=args.integration_steps)
    if args.data == "digits":
        data = digits("train", seed=args.split_seed)
    else:
        if args.data_root is None:
            raise CliError("--data cifar10 needs --data-root (a folder holding cifar-10-batches-py)")
        data = cifar10(args.data_root, train=True)
    if args.encoder == "digits":
        from analysis.features import digits_encoder, digits_feature_weights

        if args.data != "digits":
            raise CliError("--encoder digits only fits --data digits (use --encoder pixels)")
        encoder = digits_encoder("digits-train")
        weights = digits_feature_weights(args.pixel_weight)
    else:
        encoder, weights = pixel_encoder, (1.0,)
    options = TrainOptions(
        steps=positive("--steps", args.steps), seed=args.seed, lr=args.lr,
        classes_per_step=min(args.classes_per_step, config.num_classes), fake_per_class=args.fake_per_class,
        real_per_class=args.real_per_class, checkpoint_every=positive("--checkpoint-every", args.checkpoint_every),
        freeze_dynamics=args.freeze_dynamics, feature_weights=weights,
    )
    model = models.Un0.init(config, seed=args.seed)
    provenance = {"command": " ".join(["un0hw", *sys.argv[1:]]), "data": data.name, "encoder": args.encoder}
    trainer = Trainer(model, data, encoder, options, args.out, provenance=provenance)
    if trainer.try_resume():
        print(f"resuming {args.out} at step {trainer.step}", file=sys.stderr)
    out = trainer.run(progress=not args.no_progress)
    print(f"wrote {out} (EMA weights, step {trainer.step}); log {args.out}/metrics.jsonl, plot {args.out}/loss.png")
    return 0


def cmd_ablate(args: argparse.Namespace) -> int:
    from analysis.ablation import AblationError, parse_variants, run_ablation

    published(args.size)
    try:
        variants = parse_variants(args.variants)
    except AblationError as exc:
        raise CliError(f"--variants: {exc}") from None
    seeds = tuple(range(positive("--seeds", args.seeds)))
    summary = run_ablation(args.out, variants=variants, seeds=seeds, steps=positive("--steps", args.steps),
                           size=args.size, per_class=positive("--per-class", args.per_class),
                           progress=not args.no_progress)
    print((Path(args.out) / "ablation.md").read_text())
    print(f"wrote {args.out}/ablation.csv, ablation.md, ablation.png, pr_over_time.csv ({len(summary)} variants)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from analysis.features import DIGITS_PIXEL_WEIGHT
    from models.train import TrainOptions

    p = sub.add_parser("train", help="train an Un-0 with the drifting loss (resumes an interrupted run)")
    p.add_argument("--size", default="digits-n512", help="model size (default digits-n512)")
    p.add_argument("--data", choices=("digits", "cifar10"), default="digits", help="training data (default digits)")
    p.add_argument("--data-root", type=Path, default=None, help="folder with cifar-10-batches-py (for --data cifar10)")
    p.add_argument("--encoder", choices=("digits", "pixels"), default="digits",
                   help="frozen feature encoder of the loss: the digits CNN + pixels, or pixels only")
    p.add_argument("--out", type=Path, required=True, help="run folder (state, EMA checkpoint, metrics, plot)")
    p.add_argument("--steps", type=int, default=TrainOptions.steps, help=f"optimizer steps (default {TrainOptions.steps})")
    p.add_argument("--seed", type=int, default=0, help="seed of init, batches and phases (default 0)")
    p.add_argument("--lr", type=float, default=TrainOptions.lr, help=f"AdamW learning rate (default {TrainOptions.lr:g})")
    p.add_argument("--classes-per-step", type=int, default=TrainOptions.classes_per_step, help=f"classes in each batch (default {TrainOptions.classes_per_step})")
    p.add_argument("--fake-per-class", type=int, default=TrainOptions.fake_per_class, help=f"generated samples per class and step (default {TrainOptions.fake_per_class})")
    p.add_argument("--real-per-class", type=int, default=TrainOptions.real_per_class, help=f"real samples per class and step (default {TrainOptions.real_per_class})")
    p.add_argument("--pixel-weight", type=float, default=DIGITS_PIXEL_WEIGHT, help=f"weight of the raw-pixel feature set (default {DIGITS_PIXEL_WEIGHT})")
    p.add_argument("--checkpoint-every", type=int, default=TrainOptions.checkpoint_every, help=f"steps between checkpoints (default {TrainOptions.checkpoint_every})")
    p.add_argument("--integration-steps", type=int, default=None, help="Euler steps of the dynamics (0: decoder only)")
    p.add_argument("--freeze-dynamics", action="store_true", help="reservoir: K, ω, conditioning frozen at init")
    p.add_argument("--split-seed", type=int, default=0, help="seed of the digits train/test split (default 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)
    paths(p, PathOption("data_root", "dir", "--data-root"), PathOption("out", "out-dir", "--out", resumable=True))

    from analysis.ablation import VARIANTS

    p = sub.add_parser("ablate", help="the release's dynamics ablation on digits (trained / reservoir / decoder only)")
    p.add_argument("--out", type=Path, required=True, help="folder for the runs and the report (resumable)")
    p.add_argument("--variants", default="all",
                   help=f"the variants to run, comma-separated (default: all): {', '.join(VARIANTS)}")
    p.add_argument("--steps", type=int, default=1000, help="training steps of every run (default 1000)")
    p.add_argument("--seeds", type=int, default=3, help="seeds per variant (default 3)")
    p.add_argument("--size", default="digits-n512", help="model size (default digits-n512)")
    p.add_argument("--per-class", type=int, default=100, help="samples per class for scoring (default 100)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_ablate)
    paths(p, PathOption("out", "out-dir", "--out", resumable=True))
