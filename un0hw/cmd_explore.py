"""`un0hw explore SPEC.toml -o OUT`: a multi-objective design-space search (analysis.explore)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analysis.explore import ExploreError
from un0hw.options import PathOption, paths, positive

ERRORS = (ExploreError,)


def cmd_explore(args: argparse.Namespace) -> int:
    from analysis.explore import load_spec, run_explore

    jobs = positive("--jobs", args.jobs)
    spec = load_spec(args.spec)  # a bad file stops here, before OUT is touched
    if args.trials is not None:
        import dataclasses

        spec = dataclasses.replace(spec, trials=positive("--trials", args.trials))
    s = run_explore(spec, args.output, jobs=jobs, progress=not args.no_progress)
    print((Path(args.output) / "report.md").read_text(), end="")
    print(f"wrote {args.output}/pareto.csv, trials.csv, pareto.png, report.md, summary.json "
          f"({s['front']} designs on the front of {s['complete']} evaluated)")
    if not s["feasible"]:
        print("un0hw: no design met the constraints (report.md names the nearest)" if s["complete"] else
              "un0hw: no design could be built (report.md lists the compiler's reasons)", file=sys.stderr)
        return 1
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "explore",
        help="multi-objective design-space search (NSGA-II): quality, J/image, mm2, latency -> a Pareto front",
        description="Search the design choices a TOML spec lists (compile options, cells, phase distribution, "
                    "decoder; example: analysis/specs/explore/digits.toml) with Optuna's NSGA-II; writes the "
                    "Pareto front (pareto.csv, pareto.png), every design (trials.csv) and a report into OUT. "
                    "A rerun resumes OUT. Exit code 1 when no design meets the spec's constraints (or none can be built).",
    )
    p.add_argument("spec", type=Path, help="explore spec (TOML)")
    p.add_argument("-o", "--output", type=Path, required=True, help="output folder (a rerun resumes it)")
    p.add_argument("--trials", type=int, default=None, help="designs to evaluate in all (default: the spec's)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes evaluating designs in parallel (default 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_explore)
    paths(p, PathOption("spec", "file", "SPEC"), PathOption("output", "out-dir", "-o/--output", resumable=True))
