"""`un0hw demo [CKPT]`: every room on a checkpoint (default: the shipped model), one HTML/markdown report."""

from __future__ import annotations

import argparse
from pathlib import Path

from un0hw.options import PathOption, paths

ERRORS: tuple = ()


def cmd_demo(args: argparse.Namespace) -> int:
    from un0hw.demo import run_demo

    from models.checkpoint import SHIPPED

    shipped = Path(args.checkpoint).resolve() == Path(SHIPPED).resolve()
    command = "un0hw demo" + ("" if shipped else f" {args.checkpoint}") + f" -o {args.output}" + (
        " --quick" if args.quick else "")
    if not shipped:  # a checkpoint that does not load stops here, before the report folder is touched
        import models

        models.load(args.checkpoint)
    index, steps = run_demo(args.output, quick=args.quick, progress=not args.no_progress, command=command,
                            checkpoint=args.checkpoint)
    for s in steps:
        print(f"  {s.name:<8} {s.status:<8} {s.seconds:6.1f} s" + (f"  {s.reason}" if s.reason else ""))
    print(f"wrote {index} (and index.md beside it)")
    return 1 if any(s.status == "failed" for s in steps) else 0


def register(sub) -> None:
    from models.checkpoint import SHIPPED

    p = sub.add_parser("demo", help="the end-to-end run on a checkpoint (default: the shipped model): compile, "
                                    "simulate, score, SPICE cells, RTL tile, energy → report/index.html",
                       description="Every room on one checkpoint: the shipped digits model (FID-digits) or any "
                                   "other, a release .pt included (chip fidelity against the ideal model, no data "
                                   "set needed).")
    p.add_argument("checkpoint", type=Path, nargs="?", default=SHIPPED,
                   help="X.safetensors (+ X.json) or a release .pt (default: the shipped trained digits model)")
    p.add_argument("-o", "--output", type=Path, default=Path("report"), help="report folder (default: report)")
    p.add_argument("--quick", action="store_true", help="fewer samples everywhere (a smoke run, ~2 min)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_demo)
    paths(p, PathOption("checkpoint", "file", "CHECKPOINT"), PathOption("output", "out-dir", "-o/--output"))
