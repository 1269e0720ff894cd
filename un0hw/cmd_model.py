"""`un0hw info | init | sample | simulate`: one checkpoint's architecture, a fresh one of a
published size, its images, and its oscillators integrated with timing."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from un0hw.options import (CHECKPOINT_PATHS, CliError, PathOption, add_checkpoint, check_run_memory, chosen_classes,
                           classes, load_model, paths, positive, published)

ERRORS: tuple = ()


def cmd_info(args: argparse.Namespace) -> int:
    import models

    model = load_model(args)
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

    config = published(args.size)
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

    n = positive("-n", args.n)
    batch = positive("--batch-size", args.batch_size)
    model = load_model(args)
    check_run_memory(model.config, n * len(chosen_classes(args.classes, model.config.num_classes)), batch, images=True)
    labels = classes(args.classes, model.config.num_classes, n)
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
    n = positive("-n", args.n)
    batch = positive("--batch-size", args.batch_size)
    model = load_model(args)
    cfg = model.config
    steps = cfg.num_steps if args.steps is None else args.steps
    method = cfg.solver if args.method is None else args.method
    check_run_memory(cfg, n * len(chosen_classes(args.classes, cfg.num_classes)), batch, images=False)
    labels = classes(args.classes, cfg.num_classes, n).to(model.dynamics.K.device)
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


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="architecture, parameter counts and decoder share of a checkpoint")
    add_checkpoint(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=cmd_info)
    paths(p, *CHECKPOINT_PATHS)

    p = sub.add_parser("init", help="write a randomly initialised checkpoint of a published size")
    p.add_argument("--size", required=True, help="n1024, n2048, n4096, n6656, n10240, n16384, digits-n512, digits-n64")
    p.add_argument("-o", "--output", required=True, type=Path, help="output path (X → X.safetensors + X.json)")
    p.add_argument("--seed", type=int, default=0, help="initialisation seed (default 0)")
    p.add_argument("--format", choices=("un0hw", "release"), default="un0hw",
                   help="un0hw (safetensors + JSON, default) or the release's .pt layout")
    p.set_defaults(func=cmd_init)
    paths(p, PathOption("output", "out-checkpoint", "-o/--output"))

    p = sub.add_parser("sample", help="generate images and write a PNG grid (a row per class)")
    add_checkpoint(p)
    p.add_argument("--classes", default=None, help="comma-separated classes, or 'all' (default)")
    p.add_argument("-n", type=int, default=8, help="samples per class (default 8)")
    p.add_argument("-o", "--output", type=Path, default=Path("samples.png"), help="PNG path (default samples.png)")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial phases (default 0)")
    p.add_argument("--steps", type=int, default=None, help="integration steps (default: as trained)")
    p.add_argument("--method", default=None, help="euler, heun, rk4 or adaptive (default: as trained)")
    p.add_argument("--batch-size", type=int, default=256, help="images per batch (default 256)")
    p.set_defaults(func=cmd_sample)
    paths(p, *CHECKPOINT_PATHS, PathOption("output", "out-file", "-o/--output"))

    p = sub.add_parser("simulate", help="integrate the oscillators for a batch of seeds; timing and phases")
    add_checkpoint(p)
    p.add_argument("--classes", default=None, help="comma-separated classes, or 'all' (default)")
    p.add_argument("-n", type=int, default=16, help="seeds per class (default 16)")
    p.add_argument("--steps", type=int, default=None, help="integration steps (default: as trained)")
    p.add_argument("--method", default=None, help="euler, heun, rk4 or adaptive (default: as trained)")
    p.add_argument("--T", type=float, default=1.0, help="integration time in model units (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial phases (default 0)")
    p.add_argument("--batch-size", type=int, default=256, help="seeds per batch (default 256)")
    p.add_argument("--save", type=Path, default=None, help="write theta, theta0, labels to this .safetensors")
    p.set_defaults(func=cmd_simulate)
    paths(p, *CHECKPOINT_PATHS, PathOption("save", "out-file", "--save"))
