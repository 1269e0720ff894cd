"""`un0hw cells characterize`: measure the oscillator and coupler cells in ngspice → hw.Calibration."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from hw.calibration import CalibrationError
from hw.measure import CharacterizeError
from hw.spice.run import SpiceError
from un0hw.options import CliError, PathOption, paths

ERRORS = (CalibrationError, SpiceError, CharacterizeError)


def cmd_cells_characterize(args: argparse.Namespace) -> int:
    from hw.characterization import characterize_all
    from hw.spice.run import unavailable_reason

    if args.workers < 1:
        raise CliError(f"--workers must be >= 1, not {args.workers}")
    reason = unavailable_reason()
    if reason is not None:
        raise SpiceError(f"cannot characterise without ngspice: {reason}")
    with tempfile.TemporaryDirectory(prefix="un0hw-cells-") as scratch:
        out_dir = args.plots if args.plots is not None else Path(scratch)
        cal = characterize_all(out_dir, quick=args.quick, progress=not args.no_progress, seed=args.seed,
                               workers=args.workers, cal_path=args.output)
    k = cal.coupler_k_rad_s
    print(f"wrote {args.output} (measured, ngspice {cal.ngspice_version})")
    print(f"  f0 {cal.f0_hz / 1e6:.1f} MHz, tuning {cal.f_min_hz / 1e6:.1f}-{cal.f_max_hz / 1e6:.1f} MHz, "
          f"nonlinearity {cal.tuning_nonlinearity:.1%}")
    print("  K_eff per code (rad/s): " + ", ".join(f"{x:.3g}" for x in k))
    print(f"  energy per cycle: cell {cal.cell_energy_per_cycle_j:.3g} J, bias {cal.bias_energy_per_cycle_j:.3g} J, "
          f"coupler at full code {cal.coupler_energy_per_cycle_j:.3g} J")
    print(f"  period jitter {cal.period_jitter_s:.3g} s ({cal.phase_noise_rad_per_sqrt_s:.3g} rad/sqrt(s)), "
          f"sigma f0 {cal.sigma_f0_rel:.2%}, sigma K {cal.sigma_k_rel:.2%}")
    if args.plots is not None:
        print(f"  plots, decks and raw figures in {args.plots}")
    sys.stdout.flush()
    return 0


def register(sub) -> None:
    p = sub.add_parser("cells", help="circuit-level oscillator and coupler cells (ngspice)")
    cells_sub = p.add_subparsers(dest="cells_command", required=True, metavar="{characterize}")
    c = cells_sub.add_parser("characterize",
                             help="measure f0, tuning, K_eff per coupler code, energy, jitter and mismatch "
                                  "in ngspice and write a measured hw.Calibration JSON")
    c.add_argument("-o", "--output", type=Path, required=True, help="calibration JSON to write (atomically)")
    c.add_argument("--quick", action="store_true",
                   help="smoke run: fewer tuning points, + codes only, short jitter run, small Monte Carlo")
    c.add_argument("--plots", type=Path, default=None,
                   help="folder for the PNG plots, the .cir decks and characterization.json (default: none kept)")
    c.add_argument("--seed", type=int, default=0, help="seed of the Monte Carlo draws and the transient noise")
    c.add_argument("--workers", type=int, default=2, help="processes for the Monte Carlo (default 2)")
    c.add_argument("--no-progress", action="store_true", help="no progress bar")
    c.set_defaults(func=cmd_cells_characterize)
    paths(c, PathOption("output", "out-file", "-o/--output"), PathOption("plots", "out-dir", "--plots"))
