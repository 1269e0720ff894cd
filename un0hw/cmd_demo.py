"""`un0hw demo`: every room on the shipped model, one HTML/markdown report."""

from __future__ import annotations

import argparse
from pathlib import Path

from un0hw.options import PathOption, paths

ERRORS: tuple = ()


def cmd_demo(args: argparse.Namespace) -> int:
    from un0hw.demo import run_demo

    command = f"un0hw demo -o {args.output}" + (" --quick" if args.quick else "")
    index, steps = run_demo(args.output, quick=args.quick, progress=not args.no_progress, command=command)
    for s in steps:
        print(f"  {s.name:<8} {s.status:<8} {s.seconds:6.1f} s" + (f"  {s.reason}" if s.reason else ""))
    print(f"wrote {index} (and index.md beside it)")
    return 1 if any(s.status == "failed" for s in steps) else 0


def register(sub) -> None:
    p = sub.add_parser("demo", help="the end-to-end run on the shipped model: compile, simulate, score, "
                                    "SPICE cells, RTL tile, energy → report/index.html")
    p.add_argument("-o", "--output", type=Path, default=Path("report"), help="report folder (default: report)")
    p.add_argument("--quick", action="store_true", help="fewer samples everywhere (a smoke run, ~2 min)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_demo)
    paths(p, PathOption("output", "out-dir", "-o/--output"))
