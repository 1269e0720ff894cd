"""The `un0hw` command line: one subcommand per job, errors as one line and exit code 2."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from tqdm import tqdm

from un0hw import __version__


class CliError(ValueError):
    """A bad option value: names the option, what arrived and what is valid."""


# --- shared option parsing ---------------------------------------------------------------
def _device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise CliError("--device cuda: no CUDA device is available here (use --device cpu)")
    try:
        return torch.device(name)
    except RuntimeError:
        raise CliError(f"--device must be cpu or cuda[:i], not {name!r}") from None


def _classes(text: str | None, num_classes: int, n: int) -> torch.Tensor:
    """--classes '0,3,7' (or 'all') → labels, each class repeated n times."""
    if text is None or text == "all":
        chosen = list(range(num_classes))
    else:
        try:
            chosen = [int(c) for c in text.split(",") if c.strip()]
        except ValueError:
            raise CliError(f"--classes must be comma-separated integers or 'all', not {text!r}") from None
        bad = [c for c in chosen if not 0 <= c < num_classes]
        if bad or not chosen:
            raise CliError(f"--classes {text!r}: this model has classes 0..{num_classes - 1}")
    return torch.tensor(chosen, dtype=torch.int64).repeat_interleave(n)


def _positive(name: str, value: int) -> int:
    if value < 1:
        raise CliError(f"{name} must be >= 1, not {value}")
    return value


def _published(size: str):
    """--size → its Un0Config, or the one-line error listing the sizes."""
    import models

    if size not in models.PUBLISHED:
        raise CliError(f"--size must be one of {', '.join(models.PUBLISHED)}; got {size!r}")
    return models.PUBLISHED[size]


def _load(args: argparse.Namespace):
    """The model of `args.checkpoint`: a checkpoint file, or a compiled IR folder (then
    the model runs the array's dequantised codes and the IR's decoder)."""
    import models

    device = _device(getattr(args, "device", "cpu"))
    if Path(args.checkpoint).is_dir():
        import compiler

        return compiler.load(args.checkpoint).to_model(device=device)
    return models.load(args.checkpoint, key_map=getattr(args, "key_map", None), device=device)


# --- subcommands ---------------------------------------------------------------------------
def cmd_info(args: argparse.Namespace) -> int:
    import models

    model = _load(args)
    cfg = model.config
    counted = {
        "oscillator": sum(p.numel() for p in model.dynamics.parameters()),
        "decoder": sum(p.numel() for p in model.decoder.parameters()),
    }
    counted["total"] = counted["oscillator"] + counted["decoder"]
    info = {
        "checkpoint": str(args.checkpoint),
        "config": cfg.to_dict(),
        "parameters": counted,
        "decoder_fraction": counted["decoder"] / counted["total"],
        "latent_grid": [cfg.latent_channels, cfg.latent_hw, cfg.latent_hw],
        "image_shape": list(cfg.image_shape),
        "flops_per_image_dynamics": 4 * cfg.n * cfg.n * cfg.num_steps,
    }
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{args.checkpoint}: {cfg.name} ({cfg.dataset})")
    print(f"  oscillators     N = {cfg.n} main, N_c = {cfg.n_cond} conditioning, {cfg.num_classes} classes")
    print(f"  dynamics        {cfg.solver}, {cfg.num_steps} steps to T = {cfg.integration_time:g}, "
          f"{cfg.parameterization} parameterization")
    print(f"  readout         {cfg.relativization}, {cfg.encoding} → latent {cfg.latent_channels}×{cfg.latent_hw}×{cfg.latent_hw}")
    print(f"  decoder         {cfg.num_upsamples} upsample blocks, widths {list(cfg.decoder_widths)} "
          f"→ {cfg.image_channels}×{cfg.image_size}×{cfg.image_size}")
    print(f"  parameters      {counted['total']:,} total = {counted['oscillator']:,} oscillator + "
          f"{counted['decoder']:,} decoder ({100 * info['decoder_fraction']:.1f}% decoder)")
    for name, c in models.PUBLISHED.items():
        if name in models.RELEASE_TABLE and (c.n, c.n_cond, c.num_classes) == (cfg.n, cfg.n_cond, cfg.num_classes):
            total, _, _, fid = models.RELEASE_TABLE[name]
            print(f"  release table   Un-0.{name}: {total:.2f}M parameters, FID@50k {fid}")
    print(f"  coupling FLOPs  {info['flops_per_image_dynamics'] / 1e9:.3f} GFLOP per image ({cfg.num_steps} steps × 4N²)")
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    import models

    config = _published(args.size)
    t0 = time.perf_counter()
    model = models.Un0.init(config, seed=args.seed)
    extra = {"seed": args.seed, "command": " ".join(["un0hw", *sys.argv[1:]]), "kind": "random init"}
    if args.format == "release":
        out = models.save_release(model, Path(args.output).with_suffix(".pt"))
    else:
        out = models.save(model, args.output, extra=extra)
    print(f"wrote {out} ({config.name}, {config.total_params:,} parameters, seed {args.seed}, "
          f"{time.perf_counter() - t0:.1f} s)")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from un0hw.images import save_grid

    n = _positive("-n", args.n)
    batch = _positive("--batch-size", args.batch_size)
    model = _load(args)
    labels = _classes(args.classes, model.config.num_classes, n)
    generator = torch.Generator().manual_seed(args.seed)
    theta0 = model.sample_theta0(len(labels), generator=generator).to(model.dynamics.K.device)
    images = []
    for i in tqdm(range(0, len(labels), batch), desc="sample", unit="batch", disable=len(labels) <= batch):
        images.append(model.generate(labels[i:i + batch], theta0[i:i + batch], steps=args.steps, method=args.method).cpu())
    rows = len(labels) // n
    out = save_grid(torch.cat(images), args.output, rows=rows)
    print(f"wrote {out}: {rows} classes × {n} samples, seed {args.seed}")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from oscsim import METHODS, order_parameter, simulate

    if args.method is not None and args.method not in METHODS:
        raise CliError(f"--method must be one of {', '.join(METHODS)}; got {args.method!r}")
    if args.steps is not None and args.steps < 0:
        raise CliError(f"--steps must be >= 0, not {args.steps}")
    if not args.T > 0:
        raise CliError(f"--T must be positive, not {args.T}")
    n = _positive("-n", args.n)
    batch = _positive("--batch-size", args.batch_size)
    model = _load(args)
    cfg = model.config
    steps = cfg.num_steps if args.steps is None else args.steps
    method = cfg.solver if args.method is None else args.method
    labels = _classes(args.classes, cfg.num_classes, n).to(model.dynamics.K.device)
    theta0 = model.sample_theta0(len(labels), generator=torch.Generator().manual_seed(args.seed))
    theta0 = theta0.to(model.dynamics.K.device)
    finals, elapsed = [], 0.0
    with torch.inference_mode():
        params = model.params()
        for i in tqdm(range(0, len(labels), batch), desc="simulate", unit="batch", disable=len(labels) <= batch):
            if theta0.is_cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            finals.append(simulate(params, theta0[i:i + batch], labels[i:i + batch], steps=steps, T=args.T, method=method).theta)
            if theta0.is_cuda:
                torch.cuda.synchronize()
            elapsed += time.perf_counter() - t0
    theta = torch.cat(finals)
    r0 = order_parameter(theta0[:, : cfg.n]).mean().item()
    r = order_parameter(theta[:, : cfg.n]).mean().item()
    flops = 4 * len(labels) * cfg.n * cfg.n * steps * (4 if method == "rk4" else 2 if method == "heun" else 1)
    print(f"{cfg.name}: {len(labels)} seeds × ({cfg.n} + {cfg.n_cond}) oscillators, {method}, "
          f"{steps} steps to T = {args.T:g} on {theta0.device}")
    print(f"  time            {elapsed:.3f} s ({len(labels) / elapsed:,.1f} samples/s"
          + (f", {flops / elapsed / 1e9:.1f} GFLOP/s coupling" if method != "adaptive" else "") + ")")
    print(f"  order parameter r = {r0:.3f} at t = 0 → {r:.3f} at T (mean over seeds)")
    if args.save:
        from safetensors.torch import save_file

        from oscsim import atomic_path

        with atomic_path(args.save) as tmp:
            save_file({"theta": theta.cpu().contiguous(), "theta0": theta0.cpu().contiguous(), "labels": labels.cpu()},
                      str(tmp), metadata={"steps": str(steps), "method": method, "T": str(args.T), "seed": str(args.seed)})
        print(f"  wrote {args.save} (theta, theta0, labels)")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    import models
    from models.data import cifar10, digits
    from models.train import Trainer, TrainOptions, pixel_encoder

    config = _published(args.size)
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
        steps=_positive("--steps", args.steps), seed=args.seed, lr=args.lr,
        classes_per_step=min(args.classes_per_step, config.num_classes), fake_per_class=args.fake_per_class,
        real_per_class=args.real_per_class, checkpoint_every=_positive("--checkpoint-every", args.checkpoint_every),
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


def cmd_fid(args: argparse.Namespace) -> int:
    from analysis.evaluate import digits_extractor, score_model
    from models.data import cifar10, digits

    model = _load(args)
    shape = model.config.image_shape
    if args.extractor == "digits":
        if shape != (1, 8, 8):
            raise CliError(f"--extractor digits scores 1×8×8 digits models; {args.checkpoint} makes {shape} (use --extractor inception)")
        ex, reference, floor_set = digits_extractor(), digits("test"), digits("train")
    else:
        from analysis.evaluate import Extractor
        from analysis.inception import inception_extractor

        features, eid = inception_extractor(args.inception_weights)
        ex = Extractor(features=features, id=eid, batch_size=64)
        if shape == (1, 8, 8):
            reference, floor_set = digits("test"), digits("train")
        elif args.data_root is None:
            raise CliError("--extractor inception on a CIFAR-10 model needs --data-root (cifar-10-batches-py)")
        else:
            reference, floor_set = cifar10(args.data_root, train=False), None
    t0 = time.perf_counter()
    score = score_model(model, ex, reference, floor_set=floor_set, per_class=_positive("--per-class", args.per_class),
                        seed=args.seed, steps=args.steps, progress=True)
    if args.json:
        print(json.dumps({**score.as_dict(), "reference": reference.name, "seconds": time.perf_counter() - t0}, indent=2))
        return 0
    print(f"{args.checkpoint}: {score.samples} samples against {reference.name}, feature space {score.extractor}")
    floor = f"   (data floor, {floor_set.name} vs {reference.name}: {score.floor:.3f})" if score.floor is not None else ""
    print(f"  FID              {score.fid:.3f}{floor}")
    print(f"  precision/recall {score.precision:.3f} / {score.recall:.3f} (k = 3)")
    if score.class_accuracy is not None:
        print(f"  class accuracy   {score.class_accuracy:.3f} (the feature network's classifier agrees with the requested class)")
    print(f"  time             {time.perf_counter() - t0:.1f} s")
    return 0


def cmd_ablate(args: argparse.Namespace) -> int:
    from analysis.ablation import run_ablation

    _published(args.size)
    seeds = tuple(range(_positive("--seeds", args.seeds)))
    summary = run_ablation(args.out, seeds=seeds, steps=_positive("--steps", args.steps), size=args.size,
                           per_class=_positive("--per-class", args.per_class), progress=not args.no_progress)
    print((Path(args.out) / "ablation.md").read_text())
    print(f"wrote {args.out}/ablation.csv, ablation.md, ablation.png, pr_over_time.csv ({len(summary)} variants)")
    return 0


# --- the parser ----------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="un0hw",
        description="Hardware co-design simulator and compiler for Un-0, the coupled-oscillator image generator.",
    )
    parser.add_argument("--version", action="version", version=f"un0hw {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_checkpoint(p: argparse.ArgumentParser) -> None:
        from models.checkpoint import SHIPPED

        p.add_argument("checkpoint", type=Path, nargs="?", default=SHIPPED,
                       help="X.safetensors (+ X.json), a release .pt, any file with --key-map, or a "
                            "compiled IR folder (default: the shipped trained digits model)")
        p.add_argument("--key-map", type=Path, default=None, help="JSON key-mapping file for other tensor names")
        p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")

    p = sub.add_parser("info", help="architecture, parameter counts and decoder share of a checkpoint")
    with_checkpoint(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("init", help="write a randomly initialised checkpoint of a published size")
    p.add_argument("--size", required=True, help="n1024, n2048, n4096, n6656, n10240, n16384, digits-n512, digits-n64")
    p.add_argument("-o", "--output", required=True, type=Path, help="output path (X → X.safetensors + X.json)")
    p.add_argument("--seed", type=int, default=0, help="initialisation seed (default 0)")
    p.add_argument("--format", choices=("un0hw", "release"), default="un0hw",
                   help="un0hw (safetensors + JSON, default) or the release's .pt layout")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("sample", help="generate images and write a PNG grid (a row per class)")
    with_checkpoint(p)
    p.add_argument("--classes", default=None, help="comma-separated classes, or 'all' (default)")
    p.add_argument("-n", type=int, default=8, help="samples per class (default 8)")
    p.add_argument("-o", "--output", type=Path, default=Path("samples.png"), help="PNG path (default samples.png)")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial phases (default 0)")
    p.add_argument("--steps", type=int, default=None, help="integration steps (default: as trained)")
    p.add_argument("--method", default=None, help="euler, heun, rk4 or adaptive (default: as trained)")
    p.add_argument("--batch-size", type=int, default=256, help="images per batch (default 256)")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("simulate", help="integrate the oscillators for a batch of seeds; timing and phases")
    with_checkpoint(p)
    p.add_argument("--classes", default=None, help="comma-separated classes, or 'all' (default)")
    p.add_argument("-n", type=int, default=16, help="seeds per class (default 16)")
    p.add_argument("--steps", type=int, default=None, help="integration steps (default: as trained)")
    p.add_argument("--method", default=None, help="euler, heun, rk4 or adaptive (default: as trained)")
    p.add_argument("--T", type=float, default=1.0, help="integration time in model units (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial phases (default 0)")
    p.add_argument("--batch-size", type=int, default=256, help="seeds per batch (default 256)")
    p.add_argument("--save", type=Path, default=None, help="write theta, theta0, labels to this .safetensors")
    p.set_defaults(func=cmd_simulate)

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

    p = sub.add_parser("fid", help="FID, precision/recall (and class accuracy) of a model's samples")
    with_checkpoint(p)
    p.add_argument("--extractor", choices=("digits", "inception"), default="digits",
                   help="feature space: the shipped digits CNN (FID-digits, default) or the FID Inception network")
    p.add_argument("--inception-weights", type=Path, default=None,
                   help="local Inception weights file (or $UN0HW_INCEPTION_WEIGHTS); never downloaded")
    p.add_argument("--data-root", type=Path, default=None, help="CIFAR-10 folder (reference set of CIFAR models)")
    p.add_argument("--per-class", type=int, default=100, help="samples per class (default 100)")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial phases (default 0)")
    p.add_argument("--steps", type=int, default=None, help="integration steps (default: as trained)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_fid)

    p = sub.add_parser("ablate", help="the release's dynamics ablation on digits (trained / reservoir / decoder only)")
    p.add_argument("--out", type=Path, required=True, help="folder for the runs and the report (resumable)")
    p.add_argument("--steps", type=int, default=1000, help="training steps of every run (default 1000)")
    p.add_argument("--seeds", type=int, default=3, help="seeds per variant (default 3)")
    p.add_argument("--size", default="digits-n512", help="model size (default digits-n512)")
    p.add_argument("--per-class", type=int, default=100, help="samples per class for scoring (default 100)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_ablate)

    for module in command_modules():
        module.register(sub)
    return parser


def command_modules() -> list:
    """The subcommands that live in modules of their own: every ``un0hw/cmd_*.py``, in
    name order. Each defines ``register(subparsers)`` (adds its parser and sets ``func``)
    and ``ERRORS``, the exception types that main reports as one line with exit code 2."""
    import importlib
    import pkgutil

    import un0hw

    names = sorted(m.name for m in pkgutil.iter_modules(un0hw.__path__) if m.name.startswith("cmd_"))
    return [importlib.import_module(f"un0hw.{name}") for name in names]


def main(argv: Sequence[str] | None = None) -> int:
    from models import CheckpointError, ConfigError
    from models.data import DataError
    from models.train import TrainError
    from analysis.inception import InceptionWeightsError
    from oscsim import OscsimError

    parser = build_parser()
    args = parser.parse_args(argv)
    errors = (CliError, CheckpointError, ConfigError, OscsimError, DataError, TrainError, InceptionWeightsError)
    errors += tuple(e for module in command_modules() for e in module.ERRORS)
    try:
        return args.func(args)
    except errors as exc:
        print(f"un0hw: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("un0hw: interrupted", file=sys.stderr)
        return 130
