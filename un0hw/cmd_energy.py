"""`un0hw energy`: joules per image on the compiled oscillator array against H100/B200 GPUs."""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path

from analysis.energy import EnergyError
from compiler.options import CompileError
from hw.calibration import CalibrationError
from un0hw.options import CliError, PathOption, load_model, paths

ERRORS = (EnergyError, CompileError, CalibrationError)


def _measured(model, args) -> dict | None:
    from analysis.energy import gpu_unavailable_reason, measure_gpu

    if args.no_measure:
        return None
    reason = gpu_unavailable_reason()
    if reason is not None:
        print(f"  GPU measured: skipped, {reason}")
        return None
    m = measure_gpu(model, batch=args.gpu_batch, repeats=args.gpu_repeats)
    print(f"  GPU measured: {m['j_per_image']:.3g} J/image on {m['device']} (batch {m['batch']}, "
          f"{m['mean_power_w']:.0f} W mean)")
    return m


def _one(name: str, model, ir, cal, constants, args):
    from dataclasses import replace

    from analysis.energy import estimate

    est = estimate(ir, calibration=cal, constants=constants, precision=args.precision,
                   coupler_model=args.coupler_model, name=name, tile_pitch=args.tile_pitch)
    measured = _measured(model, args) if model is not None else None
    est = replace(est, gpu_measured=measured)
    dom, share = est.dominant()
    print(f"{name}: array {est.array_total_j:.3g} J + decoder {est.decoder_j:.3g} J per image; "
          f"H100 est. {est.gpu_estimated['h100']:.3g} J ({est.ratio('h100', decoder=True):.3g}× with decoder, "
          f"{est.ratio('h100', decoder=False):.3g}× without); dominant: {dom} ({share:.0%}); "
          f"{est.settings['distribution']} wires {est.settings['wire_length_mm']:,.0f} mm at a "
          f"{est.settings['tile_pitch_mm']:.3g} mm tile pitch ({est.settings['tile_pitch_from']})")
    sys.stdout.flush()
    return est


def _area(name: str, ir, cal, constants, args):
    from analysis.area import estimate_area

    est = estimate_area(ir, calibration=cal, constants=constants, precision=args.precision, name=name)
    dom, share = est.dominant()
    print(f"{name}: {est.total_mm2:.3g} mm² ({est.process} {est.coupler} cells: array {est.array_mm2:.3g} mm², "
          f"decoder {est.decoder_mm2:.3g} mm²); largest: {dom} ({share:.0%})")
    sys.stdout.flush()
    return est


def cmd_energy(args: argparse.Namespace) -> int:
    import compiler
    import models
    from analysis import area, energy
    from hw.calibration import Calibration

    if args.gpu_batch < 1 or args.gpu_repeats < 1:
        raise CliError(f"--gpu-batch and --gpu-repeats must be >= 1, not {args.gpu_batch} and {args.gpu_repeats}")
    if not Path(args.checkpoint).exists():
        raise CliError(f"CKPT_OR_IR {args.checkpoint}: no such checkpoint file or IR folder")
    constants = energy.load_constants(args.constants)
    given = Calibration.load(args.calibration) if args.calibration else None
    cal = given or Calibration.default()  # the cells checkpoints are compiled onto
    options = compiler.CompileOptions(distribution=args.distribution)

    estimates, irs, areas = [], {}, []
    if args.published:
        for size in ("n1024", "n2048", "n4096", "n6656", "n10240", "n16384"):
            model = models.Un0.init(models.PUBLISHED[size], seed=0)
            ir = compiler.compile(model, options, calibration=cal, source=f"models.Un0.init({size}, seed=0)")
            est = _one(f"Un-0.{size}", model, ir, cal, constants, args)
            estimates.append(est)
            areas.append(_area(est.name, ir, cal, constants, args))
            irs[est.name] = ir
            del model
            gc.collect()
    if Path(args.checkpoint).is_dir():
        ir = compiler.load(args.checkpoint)
        cal = given or ir.calibration  # an IR carries the cells it was compiled onto
        model = ir.to_model() if not args.no_measure and energy.gpu_unavailable_reason() is None else None
    else:
        model = load_model(args)
        ir = compiler.compile(model, options, calibration=cal, source=str(args.checkpoint))
    name = ir.doc["source"]["config"].get("name") or Path(args.checkpoint).stem
    est = _one(name, model, ir, cal, constants, args)
    estimates.append(est)
    areas.append(_area(est.name, ir, cal, constants, args))
    irs[est.name] = ir

    table = energy.markdown_table(estimates)
    area_table = area.markdown_table(areas)
    if args.output is None:
        print(table, end="")
        print(f"\nArea per chip (array at its cells' node, decoder at 45 nm):\n\n{area_table}", end="")
        return 0
    out = args.output
    out.mkdir(parents=True, exist_ok=True)
    energy.write_csv(estimates, out / "energy.csv")
    area.write_csv(areas, out / "area.csv")
    energy.plot_breakdown(estimates, out / "breakdown.png")
    focus = max(estimates, key=lambda e: e.n)
    rows = energy.sensitivity(irs[focus.name], calibration=cal, constants=constants, precision=args.precision,
                              coupler_model=args.coupler_model, tile_pitch=args.tile_pitch)
    energy.plot_tornado(rows, out / "tornado.png",
                        title=f"{focus.name}: GPU (H100) / array ratio, each constant at ½× and 2×")
    from oscsim import atomic_path

    sens = ["constant,ratio_at_half,ratio_at_double,ratio_base"] + [
        f"{r['name']},{r['low']:.6g},{r['high']:.6g},{r['base']:.6g}" for r in rows]
    with atomic_path(out / "sensitivity.csv") as tmp:
        tmp.write_text("\n".join(sens) + "\n")
    meas = next((e.gpu_measured for e in estimates if e.gpu_measured), None)
    text = (f"# Energy per image: oscillator array vs GPU\n\n"
            f"Settings: decoder precision {args.precision}, coupler model {args.coupler_model}, "
            f"calibration {cal.source} ({cal.process}), constants {constants.origin}, "
            f"compile options: defaults (dense-tiled, tile {options.tile}, {options.k_bits}-bit codes, "
            f"{options.distribution} phase wires); wires priced at the tile pitch: {args.tile_pitch} "
            f"(area: the side of one tile on these cells, analysis.area).\n"
            f"GPU measured: {'on ' + meas['device'] if meas else 'not measured (' + (energy.gpu_unavailable_reason() or 'disabled with --no-measure') + ')'}.\n\n"
            f"{table}\n## Area per chip\n\nThe array at its cells' node (devices read off the SPICE subcircuits of "
            f"the calibration's cells), the decoder at 45 nm ({args.precision}, "
            f"{int(constants['decoder_mac_units'])} MAC units); mm²:\n\n{area_table}"
            f"\n## Sensitivity ({focus.name}, ratio H100/array with decoder)\n\n"
            "| constant | ½× | 2× |\n|---|---|---|\n"
            + "".join(f"| `{r['name']}` | {r['low']:.3g}× | {r['high']:.3g}× |\n" for r in rows if r["swing"] > 1e-9)
            + f"\n## Constants\n\n{constants.markdown()}")
    with atomic_path(out / "energy.md") as tmp:
        tmp.write_text(text)
    print(f"wrote {out}/energy.csv, area.csv, energy.md, breakdown.png, tornado.png, sensitivity.csv")
    return 0


def register(sub) -> None:
    from models.checkpoint import SHIPPED

    p = sub.add_parser("energy", help="joules per image and mm² per chip: the compiled oscillator array (and its digital decoder) "
                                      "against H100/B200 GPUs, every constant sourced")
    p.add_argument("checkpoint", nargs="?", default=str(SHIPPED), metavar="CKPT_OR_IR",
                   help="checkpoint file (compiled with default options) or compiled IR folder "
                        "(default: the shipped digits model)")
    p.add_argument("--calibration", type=Path, default=None,
                   help="hw.Calibration JSON (default: the built-in default, the measured 180 nm-class cells)")
    p.add_argument("--constants", type=Path, default=None,
                   help="constants table TOML (default: the shipped analysis/energy_constants.toml)")
    p.add_argument("--published", action="store_true",
                   help="also every published size n1024..n16384 (random init, seed 0, default compile options)")
    p.add_argument("--tile-pitch", choices=("auto", "area", "compiled"), default="auto",
                   help="the tile pitch the inter-tile wires are priced at: the side of one tile's area on the "
                        "calibration's cells (area), the compile option's (compiled), or auto (default: area where "
                        "the cells are this project's)")
    p.add_argument("--distribution", choices=("point-to-point", "broadcast-bus", "time-multiplexed", "low-swing"),
                   default="point-to-point",
                   help="phase wires of the arrays this command compiles (an IR folder keeps its own; default "
                        "point-to-point)")
    p.add_argument("--precision", choices=("int8", "int4", "fp16", "fp32", "analog"), default="int8",
                   help="the on-chip decoder's arithmetic (default int8 with int32 accumulation; analog: PCM "
                        "crossbars, models.lowbit)")
    p.add_argument("--coupler-model", choices=("conductance", "full-code"), default="conductance",
                   help="coupler energy proportional to the coupling it realises (default) or full-code for every "
                        "active coupler")
    p.add_argument("--gpu-batch", type=int, default=1024, help="batch of the measured GPU run (default 1024)")
    p.add_argument("--gpu-repeats", type=int, default=10, help="batches timed in the measured GPU run (default 10)")
    p.add_argument("--no-measure", action="store_true", help="skip the measured GPU run even where a GPU is present")
    p.add_argument("-o", "--output", type=Path, default=None,
                   help="folder for energy.csv, energy.md, breakdown.png, tornado.png, sensitivity.csv "
                        "(default: print the table only)")
    p.set_defaults(func=cmd_energy)
    paths(p, PathOption("checkpoint", "file-or-dir", "CKPT_OR_IR"), PathOption("calibration", "file", "--calibration"),
          PathOption("constants", "file", "--constants"), PathOption("output", "out-dir", "-o/--output"))
