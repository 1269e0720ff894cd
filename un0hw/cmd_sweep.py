"""`un0hw sweep SPEC.toml -o OUT`: image quality on imperfect hardware (analysis.sweep)."""

from __future__ import annotations

import argparse
from pathlib import Path

from analysis.sweep import SweepError
from un0hw.options import PathOption, paths, positive

ERRORS = (SweepError,)


def cmd_sweep(args: argparse.Namespace) -> int:
    from analysis.sweep import load_spec, run_sweep

    jobs = positive("--jobs", args.jobs)
    spec = load_spec(args.spec)  # a bad file stops here, before OUT is touched
    result = run_sweep(spec, args.output, jobs=jobs, progress=not args.no_progress)
    print((Path(args.output) / "report.md").read_text(), end="")
    if spec.kind == "monte-carlo":
        print(f"wrote {args.output}/chips.csv, montecarlo.png, report.md, summary.json "
              f"(yield {100 * result['yield']:.0f} % of {result['chips']} chips)")
    else:
        print(f"wrote {args.output}/points.csv, summary.csv, sweep.png, report.md ({len(result['summary'])} points)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        help="FID/precision/recall on simulated imperfect hardware: one-factor sweeps, Monte Carlo over chips",
        description="Run (or resume) the sweep a TOML spec describes (examples: analysis/specs/*.toml); "
                    "writes CSV, PNG and a markdown report into OUT.",
    )
    p.add_argument("spec", type=Path, help="sweep spec (TOML)")
    p.add_argument("-o", "--output", type=Path, required=True, help="output folder (a rerun resumes it)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes scoring points in parallel (default 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_sweep)
    paths(p, PathOption("spec", "file", "SPEC"), PathOption("output", "out-dir", "-o/--output"))
