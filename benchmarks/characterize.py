#!/usr/bin/env python
"""Benchmark of the circuit-level characterisation (a script, not a test).

From the repository root:

    .venv/bin/python benchmarks/characterize.py            # full characterisation + locking test
    .venv/bin/python benchmarks/characterize.py --quick    # the --quick plan instead of the full one
    .venv/bin/python benchmarks/characterize.py --process ptm45 --coupler gm --gm-tap 4 --skip-locking

1. The full characterisation, `hw.characterization.characterize_all` (tuning, K_eff per code
   for both signs, locking regimes, transient-noise jitter, Monte Carlo in 2 worker
   processes), wall time; target < 10 min on 2 cores.
2. The two-cell locking test alone: a lone-cell run for the period plus one two-cell
   transient per sign at full code (`measure_pair`, what tests/hw/test_coupler_spice.py
   runs), wall time, median of `--rounds`; target < 30 s.
Prints the figures and the calibration's values; writes nothing outside a temporary
folder unless --out is given.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _locking_once() -> float:
    from hw.measure import measure_pair
    from hw.spice.cells import CouplerDAC, RingOscillator

    osc = RingOscillator()
    t0 = time.perf_counter()
    pos = measure_pair(osc, CouplerDAC(code=7), vctrl_a_v=1.0, b_offset_stages=1)
    neg = measure_pair(osc, CouplerDAC(code=-7), vctrl_a_v=1.0, b_offset_stages=3)
    elapsed = time.perf_counter() - t0
    assert abs(pos.final_psi_rad) < 0.2 and abs(abs(neg.final_psi_rad) - 3.14159) < 0.2, "did not lock"
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--quick", action="store_true", help="the --quick characterisation plan")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the locking test (median quoted)")
    parser.add_argument("--workers", type=int, default=2, help="Monte Carlo processes (default 2)")
    parser.add_argument("--out", type=Path, default=None, help="keep the calibration, plots and decks here")
    parser.add_argument("--process", default="generic180", help="generic180 or ptm45 (default generic180)")
    parser.add_argument("--coupler", default="resistive", help="resistive or gm (default resistive)")
    parser.add_argument("--gm-tap", type=int, default=0, help="with --coupler gm: the tap stage (default 0)")
    parser.add_argument("--skip-locking", action="store_true", help="skip the two-cell locking test (generic180 cells)")
    args = parser.parse_args()

    from hw.characterization import characterize_all
    from hw.spice.run import ngspice_version, unavailable_reason

    reason = unavailable_reason()
    if reason:
        print(f"ngspice unavailable: {reason}", file=sys.stderr)
        return 2
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, "
          f"python {platform.python_version()}, ngspice {ngspice_version()}")

    if not args.skip_locking:
        lock_s = [_locking_once() for _ in range(args.rounds)]
        print(f"two-cell locking test (lone-cell run + pair at code +7 and -7): median {statistics.median(lock_s):.2f} s "
              f"over {args.rounds} rounds (min {min(lock_s):.2f}, max {max(lock_s):.2f}); target < 30 s")

    with tempfile.TemporaryDirectory(prefix="un0hw-bench-") as scratch:
        out = args.out or Path(scratch)
        t0 = time.perf_counter()
        cal = characterize_all(out, quick=args.quick, progress=True, workers=args.workers, process=args.process,
                               coupler=args.coupler, gm_tap=args.gm_tap)
        full_s = time.perf_counter() - t0
        steps = json.loads((Path(out) / "characterization.json").read_text()).get("step_seconds", {})
    plan = "quick" if args.quick else "full"
    print(f"characterize_all ({args.process}/{args.coupler}, {plan} plan, {args.workers} Monte Carlo workers): "
          f"{full_s:.1f} s; target < 600 s")
    print("  by step: " + ", ".join(f"{k} {v:.0f} s" for k, v in steps.items()))
    print(f"  f0 {cal.f0_hz / 1e6:.1f} MHz, range {cal.f_min_hz / 1e6:.1f}-{cal.f_max_hz / 1e6:.1f} MHz, "
          f"nonlinearity {cal.tuning_nonlinearity:.1%}")
    print("  K_eff per code (rad/s): " + ", ".join(f"{k:.3g}" for k in cal.coupler_k_rad_s))
    print("  harmonics |a_k|/|a_1|, k=2,3: " + ", ".join(f"{h:.3f}" for h in cal.coupling_harmonics))
    print(f"  J/cycle: cell {cal.cell_energy_per_cycle_j:.3g}, bias {cal.bias_energy_per_cycle_j:.3g}, "
          f"coupler (full code) {cal.coupler_energy_per_cycle_j:.3g}")
    print(f"  period jitter {cal.period_jitter_s * 1e12:.3g} ps -> {cal.phase_noise_rad_per_sqrt_s:.3g} rad/sqrt(s); "
          f"sigma f0 {cal.sigma_f0_rel:.2%}, sigma K {cal.sigma_k_rel:.2%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
