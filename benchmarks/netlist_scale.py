#!/usr/bin/env python
"""How long ngspice takes on the emitted hierarchical netlist, by tile size (a script).

From the repository root:

    .venv/bin/python benchmarks/netlist_scale.py                     # 16, 32, 64, 128 cells of tile 0
    .venv/bin/python benchmarks/netlist_scale.py --sizes 16 32       # the small ones only
    .venv/bin/python benchmarks/netlist_scale.py --ir report/arrays/A

The array is the shipped model compiled as the demo's array A (`un0hw compile` of the
shipped checkpoint with --bits 6 --tile 128 --target dense-tiled, seed 0, on the built-in
default calibration unless --calibration names another), or the IR folder given with
--ir. Its plan (`compiler.plan.array_plan`, class 0) is mapped at each --tau ('ir': the
IR's own τ, at which every coupling of array A rounds to code 0, so the tile is its rings
alone; 'coupler-range': the IR's coupler-range limit, the strongest coupling at full
code). For each size m the first m cells of tile 0 with the couplers among them
(`compiler.plan.restrict`, no conditioning array) are written as one deck
(`hw.spice.netlist.deck`, saving only every cell's p0) and run in libngspice for
--cycles carrier cycles at 100 points per period; the wall time includes parsing. A case
that passes --timeout seconds is halted and reported as such. One case runs at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import compiler  # noqa: E402
from compiler.plan import array_plan, restrict, summary  # noqa: E402

OPTIONS_A = {"bits": 6, "tile": 128, "target": "dense-tiled"}  # un0hw.demo.OPERATING_POINTS["A"]


def shipped_ir(calibration: Path | None, scratch: Path):
    """The shipped checkpoint compiled as the demo's array A (seed 0)."""
    import models
    from hw.calibration import Calibration
    from models.checkpoint import SHIPPED
    from un0hw.demo import OPERATING_POINTS, SEED

    assert OPERATING_POINTS["A"] == OPTIONS_A, "the demo's array A changed: update OPTIONS_A"
    cal = Calibration.load(calibration) if calibration else Calibration.default()
    ir = compiler.compile(models.load(SHIPPED), compiler.CompileOptions(**OPTIONS_A, seed=SEED), calibration=cal,
                          source=str(SHIPPED))
    ir.save(scratch / "A")
    return compiler.load(scratch / "A")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} x {os.cpu_count()}"
    except OSError:
        pass
    return platform.processor() or platform.machine()


def mosfets(n_cells: int, n_couplers: int) -> int:
    from hw.spice.cells import CouplerDAC, RingOscillator

    osc = RingOscillator()
    per_dac = sum(1 for ln in str(CouplerDAC(n_stages=osc.n_stages).subcircuit()).splitlines() if ln[:1] in "Mm")
    return n_cells * len(osc.device_names()) + n_couplers * per_dac


def run_case(plan: dict, members: list[int], m: int, cycles: float, timeout_s: float) -> dict:
    from hw.measure import rising_crossings
    from hw.spice import netlist, run

    sub = restrict(plan, members[:m], conditioning=False)
    n_coup = summary(sub)["couplers_inside_tiles"]
    stop = cycles / float(plan["carrier_hz"])
    nodes = netlist.p0_nodes(sub)
    text = netlist.deck(sub, stop_s=stop, save=nodes)
    row = {"cells": m, "couplers": n_coup, "mosfets": mosfets(m, n_coup), "deck_chars": len(text)}
    t0 = time.perf_counter()
    try:
        tr = run.transient(text, stop_s=stop, timeout_s=timeout_s)
    except run.SpiceTimeout:
        row.update(wall_s=None, note=f"halted at the {timeout_s:g} s limit")
        return row
    row["wall_s"] = time.perf_counter() - t0
    level = float(plan["vdd_v"]) / 2
    edges = [rising_crossings(tr.time_s, tr.v(n), level=level) for n in nodes]
    row["oscillating"] = sum(e.size >= 2 for e in edges)
    freqs = [(e.size - 1) / (e[-1] - e[0]) for e in edges if e.size >= 2]
    row["mean_f_mhz"] = sum(freqs) / len(freqs) / 1e6 if freqs else None
    row["timepoints"] = int(tr.time_s.size)
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--ir", type=Path, default=None, help="IR folder (default: compile the shipped model as array A)")
    ap.add_argument("--calibration", type=Path, default=None, help="calibration for that compile (default: built-in)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[16, 32, 64, 128], help="cells of tile 0 per case")
    ap.add_argument("--tau", nargs="+", default=["ir", "coupler-range"], help="'ir', 'coupler-range' or seconds")
    ap.add_argument("--cycles", type=float, default=5.0, help="carrier cycles simulated (default 5)")
    ap.add_argument("--timeout", type=float, default=480.0, help="wall-clock limit per case, s (default 480)")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = ap.parse_args()

    from hw.spice import run

    with tempfile.TemporaryDirectory(prefix="un0hw-netlist-scale-") as scratch:
        ir = compiler.load(args.ir) if args.ir else shipped_ir(args.calibration, Path(scratch))
        print(f"# {ir.name}: {ir.n} cells in {len(ir.tiles)} tiles of {ir.tile_size}; ngspice {run.ngspice_version()}, "
              f"{cpu_name()}; {args.cycles:g} carrier cycles per case")
        rows = []
        for tau_text in args.tau:
            tau = (None if tau_text == "ir" else float(ir.physical.tau_limits_s["coupler_range"])
                   if tau_text == "coupler-range" else float(tau_text))
            plan = array_plan(ir, 0, tau_s=tau)
            members = plan["tiles"][0]
            print(f"\n## tau {plan['tau_s']:.4g} s ({tau_text}); carrier {plan['carrier_hz'] / 1e6:.1f} MHz")
            print(f"{'cells':>6} {'couplers':>9} {'MOSFETs':>9} {'wall s':>9} {'s/cycle':>8} {'>=2 edges':>11} "
                  f"{'mean f MHz':>10}")
            for m in args.sizes:
                if m > len(members):
                    print(f"{m:>6}  (tile 0 has only {len(members)} cells)")
                    continue
                row = {"tau": tau_text, "tau_s": plan["tau_s"], **run_case(plan, members, m, args.cycles, args.timeout)}
                rows.append(row)
                if row["wall_s"] is None:
                    print(f"{m:>6} {row['couplers']:>9} {row['mosfets']:>9}   {row['note']}", flush=True)
                    continue
                f = f"{row['mean_f_mhz']:.1f}" if row["mean_f_mhz"] is not None else "-"
                print(f"{m:>6} {row['couplers']:>9} {row['mosfets']:>9} {row['wall_s']:>9.2f} "
                      f"{row['wall_s'] / args.cycles:>8.2f} {row['oscillating']:>6}/{m:<4} {f:>10}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
