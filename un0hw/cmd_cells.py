"""`un0hw cells characterize`: measure the oscillator and coupler cells in ngspice → hw.Calibration.
`un0hw cells corners`: the same cells at temperature and supply corners → corners.json (`hw.corners`).
`un0hw cells flicker`: the ring's flicker noise as a frequency offset since its last trim (`hw.flicker`).
`un0hw cells check-array`: a compiled array's cells (or random small arrays) in ngspice against oscsim."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from analysis.array_check import ArrayCheckError
from compiler.options import CompileError
from hw.calibration import CalibrationError
from hw.measure import CharacterizeError
from hw.spice.run import SpiceError
from un0hw.options import CliError, PathOption, paths

ERRORS = (CalibrationError, SpiceError, CharacterizeError, ArrayCheckError, CompileError)


def cmd_cells_characterize(args: argparse.Namespace) -> int:
    from hw.characterization import COUPLERS, characterize_all
    from hw.spice.process import PROCESSES
    from hw.spice.run import unavailable_reason

    if args.workers < 1:
        raise CliError(f"--workers must be >= 1, not {args.workers}")
    if args.process not in PROCESSES:
        raise CliError(f"--process must be one of {', '.join(PROCESSES)}, not {args.process!r}")
    if args.coupler not in COUPLERS:
        raise CliError(f"--coupler must be one of {', '.join(COUPLERS)}, not {args.coupler!r}")
    if args.gm_tap and args.coupler != "gm":
        raise CliError(f"--gm-tap goes with --coupler gm (the resistor DAC joins the p0 nodes), not {args.gm_tap}")
    if not 0 <= args.gm_tap < 5:
        raise CliError(f"--gm-tap must be a ring stage 0..4, not {args.gm_tap}")
    reason = unavailable_reason()
    if reason is not None:
        raise SpiceError(f"cannot characterise without ngspice: {reason}")
    with tempfile.TemporaryDirectory(prefix="un0hw-cells-") as scratch:
        out_dir = args.plots if args.plots is not None else Path(scratch)
        cal = characterize_all(out_dir, quick=args.quick, progress=not args.no_progress, seed=args.seed,
                               workers=args.workers, cal_path=args.output, process=args.process,
                               coupler=args.coupler, gm_tap=args.gm_tap)
    k = cal.coupler_k_rad_s
    print(f"wrote {args.output} (measured, ngspice {cal.ngspice_version}, process {args.process}, coupler {args.coupler})")
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


def _number_list(text: str, option: str) -> tuple[float, ...]:
    try:
        values = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise CliError(f"{option} must be a comma-separated list of numbers, not {text!r}") from None
    if not values:
        raise CliError(f"{option} must name at least one value")
    return values


def cmd_cells_corners(args: argparse.Namespace) -> int:
    from hw.characterization import COUPLERS
    from hw.corners import COMMERCIAL_C, corner_sweep
    from hw.spice.process import PROCESSES, ProcessError
    from hw.spice.run import unavailable_reason

    if args.process not in PROCESSES:
        raise CliError(f"--process must be one of {', '.join(PROCESSES)}, not {args.process!r}")
    if args.coupler not in COUPLERS:
        raise CliError(f"--coupler must be one of {', '.join(COUPLERS)}, not {args.coupler!r}")
    if args.workers < 1:
        raise CliError(f"--workers must be >= 1, not {args.workers}")
    if args.mc_rings < 2:
        raise CliError(f"--mc-rings must be >= 2 (the differential drift is a spread), not {args.mc_rings}")
    temps, scales = _number_list(args.temps, "--temps"), _number_list(args.vdd, "--vdd")
    proc = PROCESSES[args.process]
    for t in temps:
        try:
            proc.at(temp_c=t)
        except ProcessError as exc:
            raise CliError(f"--temps: {exc}") from None
    for v in scales:
        try:
            proc.at(vdd_scale=v)
        except ProcessError as exc:
            raise CliError(f"--vdd: {exc}") from None
    reason = unavailable_reason()
    if reason is not None:
        raise SpiceError(f"cannot run corners without ngspice: {reason}")
    sweep = corner_sweep(args.output, process=args.process, coupler=args.coupler, temps_c=temps, vdd_scales=scales,
                         mc_rings=args.mc_rings, seed=args.seed, workers=args.workers, progress=not args.no_progress)
    print(f"wrote {args.output / 'corners.json'} and corners.png ({args.process}/{args.coupler}, "
          f"{len(sweep.corners)} corners, {args.mc_rings} Monte Carlo cells, {sweep.wall_s:.0f} s)")
    trim = sweep.trim
    print("  corner        f0 (MHz)  common   K_VCO    K_eff    diff. drift σ")
    for c in sweep.corners:
        t = c.model_terms(trim)
        flag = "" if c.card_valid else "  (outside the cards' valid range)"
        print(f"  {c.temp_c:6g} C {c.vdd_scale:4.2f}V {c.f0_hz / 1e6:9.2f} {t['common_shift_rel']:+8.2%} "
              f"{t['tuning_gain']:7.3f}x {t['coupling_gain']:7.3f}x {1e6 * t['diff_drift_rel']:8.0f} ppm{flag}")
    lo, hi = COMMERCIAL_C
    inside = [c for c in sweep.corners if c.vdd_scale == 1.0 and lo <= c.temp_c <= hi and c.temp_c != 27.0]
    if inside:
        worst = max(inside, key=lambda c: c.model_terms(trim)["diff_drift_rel"])
        rate = worst.model_terms(trim)["diff_drift_rel"] / abs(worst.temp_c - 27.0)
        print(f"  differential drift in {lo:g}-{hi:g} C: {1e6 * rate:.1f} ppm of f0 per kelvin from the trim point")
    sys.stdout.flush()
    return 0


def cmd_cells_flicker(args: argparse.Namespace) -> int:
    from hw.flicker import FlickerError, ring_flicker
    from hw.spice.process import PROCESSES
    from hw.spice.run import unavailable_reason

    if args.process not in PROCESSES:
        raise CliError(f"--process must be one of {', '.join(PROCESSES)}, not {args.process!r}")
    ages = _number_list(args.since_trim, "--since-trim")
    if min(ages) <= 0:
        raise CliError(f"--since-trim must be times > 0 s, not {args.since_trim!r}")
    if not args.inference_s > 0:
        raise CliError(f"--inference-s must be > 0, not {args.inference_s}")
    reason = unavailable_reason()
    if reason is not None:
        raise SpiceError(f"cannot measure the ring's gains without ngspice: {reason}")
    model = ring_flicker(args.process)
    try:
        sigma = model.offset_sigma_hz(list(ages), args.inference_s)
    except FlickerError as exc:
        raise CliError(str(exc)) from None
    model.save(args.output)
    print(f"wrote {args.output} ({args.process}: f0 {model.f0_hz / 1e6:.1f} MHz, K_VCO {model.kvco_hz_per_v / 1e6:.0f} "
          f"MHz/V; S_f = {model.psd_coefficient_hz2:.3g} Hz^2 / f)")
    share = model.device_share()
    print("  share of S_f: " + ", ".join(f"{k} {v:.0%}" for k, v in sorted(share.items(), key=lambda kv: -kv[1])))
    print(f"  rms offset of the frequency over a {args.inference_s:g} s inference from its value at trim:")
    for age, sd in zip(ages, sigma):
        print(f"  {age:>10g} s after trim: {sd / 1e3:8.2f} kHz = {1e6 * sd / model.f0_hz:6.1f} ppm of f0")
    sys.stdout.flush()
    return 0


def _demo_array_a(calibration):
    """The shipped model compiled with the demo's array-A options (`un0hw.demo`)."""
    import compiler
    import models
    from models.checkpoint import SHIPPED
    from oscsim import sha256_file
    from un0hw.demo import OPERATING_POINTS, SEED

    model = models.load(SHIPPED)
    return compiler.compile(model, compiler.CompileOptions(**OPERATING_POINTS["A"], seed=SEED),
                            calibration=calibration, source=str(SHIPPED), source_sha256=sha256_file(SHIPPED))


def cmd_cells_check_array(args: argparse.Namespace) -> int:
    from analysis.array_check import check_random, run_check
    from compiler.emit import SPICE_ARRAY_MAX_CELLS, SPICE_ARRAY_MIN_CELLS
    from hw.calibration import Calibration
    from hw.spice.run import unavailable_reason

    if not SPICE_ARRAY_MIN_CELLS <= args.cells <= SPICE_ARRAY_MAX_CELLS:
        raise CliError(f"--cells must be in {SPICE_ARRAY_MIN_CELLS}..{SPICE_ARRAY_MAX_CELLS}, not {args.cells}")
    if args.random is not None and args.random < 1:
        raise CliError(f"--random must be >= 1, not {args.random}")
    if args.random is not None and args.ir is not None:
        raise CliError("--random runs random arrays; give no IR with it")
    if args.starts < 1:
        raise CliError(f"--starts must be >= 1, not {args.starts}")
    reason = unavailable_reason()
    if reason is not None:
        raise SpiceError(f"cannot run the array check without ngspice: {reason}")
    cal = Calibration.load(args.calibration) if args.calibration is not None else None
    out = Path(args.output)
    if args.random is not None:
        summary = check_random(args.random, out, calibration=cal or Calibration.default(), seed=args.seed,
                               quick=args.quick, trim=args.trim, progress=not args.no_progress)
        print(f"wrote {out / 'summary.json'}: {args.random} random arrays ({summary['coupling_model']})")
        print(f"  median final error {summary['median_final_circular_error_rad']:.3f} rad, run mean "
              f"{summary['median_mean_circular_error_rad']:.3f} rad; ratio to uncoupled "
              f"{summary['median_ratio_to_uncoupled']:.3f}; sine-only oscsim: final "
              f"{summary['median_sine_only_final_circular_error_rad']:.3f} rad")
        return 0
    if args.ir is not None:
        import compiler

        ir = compiler.ArrayIR.load(args.ir)
    else:
        ir = _demo_array_a(cal or Calibration.default())
    import numpy as np

    rng = np.random.default_rng(args.seed)
    reports = []
    for k in range(args.starts):
        theta0 = rng.uniform(-np.pi, np.pi, args.cells)
        where = out if args.starts == 1 else out / f"start{k:02d}"
        reports.append(run_check(ir, where, quick=args.quick, n_cells=args.cells, calibration=cal, theta0=theta0,
                                 trim=args.trim))
    for r in reports:
        print(f"wrote {r['report']}: cells {r['cells']}, {r['coupling_model']}")
        print(f"  final error {r['final_circular_error_rad']:.3f} rad (uncoupled "
              f"{r['uncoupled_final_circular_error_rad']:.3f}, sine-only {r['sine_only_final_circular_error_rad']:.3f}); "
              f"run mean {r['mean_circular_error_rad']:.3f} rad (uncoupled {r['uncoupled_mean_circular_error_rad']:.3f})")
    if args.starts > 1:
        from analysis.array_check import (
            SUMMARY,
            distribution,
            plot_distribution,
            write_json,
        )

        summary = {"ir": str(args.ir) if args.ir else "shipped model, demo array A", "cells": args.cells,
                   "seed": args.seed, **distribution(reports)}
        write_json(out / SUMMARY, summary)
        plot_distribution(summary, out / "summary.png", title=f"{args.cells} cells of {summary['ir']}, "
                          f"{args.starts} starts (seed {args.seed})")
        print(f"wrote {out / SUMMARY}: median final error {summary['median_final_circular_error_rad']:.3f} rad")
    return 0


def register(sub) -> None:
    p = sub.add_parser("cells", help="circuit-level oscillator and coupler cells (ngspice)")
    cells_sub = p.add_subparsers(dest="cells_command", required=True, metavar="{characterize,corners,flicker,check-array}")
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
    c.add_argument("--process", default="generic180", metavar="{generic180,ptm45}",
                   help="the model process the cells are built on (hw.spice.process): generic180, the level-1 "
                        "180 nm-class cards (default), or ptm45, the PTM 45 nm HP BSIM4 cards")
    c.add_argument("--coupler", default="resistive", metavar="{resistive,gm}",
                   help="the coupler: resistive, the resistor DAC behind transmission gates (default), or gm, "
                        "buffered taps driving a current-steering DAC that does not load the ring")
    c.add_argument("--gm-tap", type=int, default=0,
                   help="with --coupler gm: the sender's ring stage its tap buffer reads (default 0, p0; stage k "
                        "leads p0 by (5 - k) x 36 degrees, against the injection's lag)")
    c.add_argument("--no-progress", action="store_true", help="no progress bar")
    c.set_defaults(func=cmd_cells_characterize)
    paths(c, PathOption("output", "out-file", "-o/--output"), PathOption("plots", "out-dir", "--plots"))

    k = cells_sub.add_parser("corners",
                             help="the cells at temperature and supply corners in ngspice: f0, K_VCO, K_eff, the "
                                  "coupling function's lag and harmonics, and the differential drift (Monte Carlo)")
    k.add_argument("-o", "--output", type=Path, required=True, help="folder for corners.json and corners.png")
    k.add_argument("--process", default="generic180", metavar="{generic180,ptm45}", help="the model process")
    k.add_argument("--coupler", default="resistive", metavar="{resistive,gm}", help="the coupler")
    k.add_argument("--temps", default="-40,0,27,85,125",
                   help="temperatures (°C, comma-separated) at nominal supply (default -40,0,27,85,125)")
    k.add_argument("--vdd", default="0.9,1.0,1.1",
                   help="supplies as factors of nominal at 27 °C (comma-separated; default 0.9,1.0,1.1)")
    k.add_argument("--mc-rings", type=int, default=24,
                   help="Monte Carlo cells, the same draws at every corner (default 24)")
    k.add_argument("--seed", type=int, default=0, help="seed of the Monte Carlo draws")
    k.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    k.add_argument("--no-progress", action="store_true", help="no progress bar")
    k.set_defaults(func=cmd_cells_corners)
    paths(k, PathOption("output", "out-dir", "-o/--output"))

    fl = cells_sub.add_parser("flicker",
                              help="the ring's flicker (1/f) noise: each device's gain from ngspice, the sourced "
                                   "flicker coefficient, and the rms frequency offset at times since the trim")
    fl.add_argument("-o", "--output", type=Path, required=True, help="flicker.json to write")
    fl.add_argument("--process", default="generic180", metavar="{generic180,ptm45}", help="the model process")
    fl.add_argument("--since-trim", default="1,60,3600,86400",
                    help="times since the trim, s (comma-separated; default 1,60,3600,86400)")
    fl.add_argument("--inference-s", type=float, default=2.4e-6,
                    help="the inference's duration T·τ, s (default 2.4e-6: the shipped model on generic180)")
    fl.set_defaults(func=cmd_cells_flicker)
    paths(fl, PathOption("output", "out-file", "-o/--output"))

    a = cells_sub.add_parser("check-array",
                             help="a compiled array's cells as transistor-level rings and coupler DACs in ngspice "
                                  "against oscsim on the measured coupling function (or --random small arrays)")
    a.add_argument("ir", type=Path, nargs="?", default=None,
                   help="compiled IR folder (default: the shipped model compiled with the demo's array-A options)")
    a.add_argument("--cells", type=int, default=4, help="cells to build (4..8, default 4)")
    a.add_argument("--seed", type=int, default=0, help="seed of the initial phases (and the random arrays)")
    a.add_argument("--starts", type=int, default=1, help="initial phases to run (each in OUT/startNN; default 1)")
    a.add_argument("--random", type=int, default=None, metavar="M",
                   help="run M random arrays (4-8 cells, random codes of both signs, random starts) instead")
    a.add_argument("--calibration", type=Path, default=None,
                   help="calibration JSON (default: the one stored in the IR; the built-in default for --random)")
    a.add_argument("--trim", choices=("closed", "open"), default="closed",
                   help="how the cells are trimmed: against their closed couplers (default) or open ones")
    a.add_argument("--quick", action="store_true", help="40 cycles at 60 points per period and a 1e-3 trim")
    a.add_argument("-o", "--output", type=Path, required=True, help="folder for array-check.json, the plot and deck")
    a.add_argument("--no-progress", action="store_true", help="no progress bar")
    a.set_defaults(func=cmd_cells_check_array)
    paths(a, PathOption("ir", "dir", "IR"), PathOption("calibration", "file", "--calibration"),
          PathOption("output", "out-dir", "-o/--output"))
