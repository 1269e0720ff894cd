"""`un0hw compile` (checkpoint → ArrayIR folder) and `un0hw inspect` (a readable summary)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from compiler.options import CompileError
from hw.calibration import CalibrationError
from oscsim import sha256_file
from un0hw.options import CHECKPOINT_PATHS, PathOption, load_model, paths

ERRORS = (CompileError, CalibrationError)


def cmd_compile(args: argparse.Namespace) -> int:
    import compiler
    from hw.calibration import Calibration

    options = compiler.CompileOptions(
        bits=args.bits, omega_bits=args.omega_bits, drive_bits=args.drive_bits, granularity=args.granularity,
        scale_method=args.scale_method, percentile=args.percentile, rounding=args.rounding, prune=args.prune,
        keep=args.keep, topk=args.topk, tile=args.tile, target=args.target, links=args.links,
        partition=args.partition, place=args.place, tile_pitch_mm=args.tile_pitch_mm,
        weak_coupling=args.weak_coupling, tau_s=args.tau, couplers=args.couplers, distribution=args.distribution,
        tdm_phases_per_wire=args.tdm_phases_per_wire, tdm_word_bits=args.tdm_word_bits,
        link_bit_rate_gbps=args.link_bit_rate_gbps, low_swing_v=args.low_swing_v, link_jitter_ps=args.link_jitter_ps,
        seed=args.seed,
    )
    calibration = Calibration.load(args.calibration) if args.calibration else None
    model = load_model(args)
    timings: dict = {}
    t0 = time.perf_counter()
    ir = compiler.compile(model, options, calibration=calibration, source=str(args.checkpoint),
                          source_sha256=sha256_file(args.checkpoint) if Path(args.checkpoint).is_file() else None, progress=True, timings=timings)
    ir.save(args.output)
    total = time.perf_counter() - t0
    print(summary(ir, args.output))
    print("passes: " + ", ".join(f"{k} {v['seconds']:.2f} s" for k, v in timings.items())
          + f"; total {total:.1f} s, peak RSS {max(v['peak_rss_gb'] for v in timings.values()):.2f} GB")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    import compiler

    ir = compiler.load(args.ir)
    if args.json:
        doc = {k: v for k, v in ir.doc.items() if k != "tiles"}
        doc["tiles"] = [{"id": t["id"], "position": t["position"], "oscillators": len(t["oscillators"])} for t in ir.doc["tiles"]]
        print(json.dumps(doc, indent=2))
        return 0
    print(summary(ir, args.ir))
    return 0


def _si(x: float, unit: str) -> str:
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"), (1e-12, "p")):
        if abs(x) >= factor:
            return f"{x / factor:.3g} {prefix}{unit}"
    return f"{x:.3g} {unit}"


def _circuit_lines(section) -> list[str]:
    """The IR's circuit section (compiler.circuit) in two lines: what these cells realise at τ."""
    if not section:
        return []
    if "skipped" in section:
        return [f"  circuit         {section['skipped']}"]
    at_tau = section["ir"]["blocks"]["K"]
    resized = section["full_code"]["blocks"]["K"]
    return [
        f"  circuit         at τ the coupler realises {at_tau['couplers']:,} main couplers (the rest round to code 0"
        f"{'' if at_tau['couplers'] else ': below the DAC LSB'}); a DAC resized to the array: {resized['couplers']:,}, "
        f"{resized['couplers_beyond_load_table']:,} beyond the measured load table",
        f"                  coupling function {section['ir']['coupling_model']}; trims against the closed couplers "
        f"(largest shift {section['trim']['max_shift_model']:.3g} rad per model time)",
    ]


def summary(ir, where) -> str:
    d = ir.doc
    o, r, p, q = d["options"], d["resources"], d["physical"], d["passes"]
    dyn, place, part, route = d["dynamics"], q["placement"], q["partition"], q["routing"]
    cfg = d["source"]["config"]
    lines = [
        f"{where}: {cfg.get('name', 'custom')} compiled for {o['target']} tiles of {o['tile']} cells, {o['bits']}-bit couplings",
        f"  source          {d['source']['checkpoint']} (sha256 {str(d['source']['sha256'])[:12]}…)",
        f"  oscillators     {dyn['n']} main in {r['tiles']} tiles + {dyn['n_cond']} conditioning, {dyn['num_classes']} classes; "
        f"{dyn['steps']} {dyn['solver']} steps to T = {dyn['T']:g}",
        f"  couplers        {r['crossbars']} crossbars, {r['couplers_physical']:,} physical, {r['couplers_active']:,} active (non-zero code)"
        + (f", {r['inter_tile_links']:,} inter-tile links" if o["target"] == "sparse-routed" else ""),
        f"                  + {r['drive_couplers']:,} drive couplers × {r['drive_code_banks']} class code banks, "
        f"{r['conditioning_couplers']:,} conditioning couplers",
        f"  pruning         {q['prune']['method']}: kept {100 * q['prune']['kept_fraction']:.1f}% of couplings, "
        f"removed {100 * q['prune']['removed_mass']:.1f}% of Σ|K|; routing dropped {100 * route['dropped_couplings_mass']:.1f}% more",
        f"  partition       {part['method']}: {100 * part['intra_tile_weight_fraction']:.1f}% of Σ|K| inside tiles "
        f"(index order: {100 * part['index_order_intra_tile_weight_fraction']:.1f}%)",
        f"  placement       {place['grid'][0]}×{place['grid'][1]} grid at {place['tile_pitch_mm']:g} mm: wires "
        f"{place['wire_length_mm']:,.1f} mm {place.get('distribution', 'point-to-point')} (index layout "
        f"{place['index_layout_wire_length_mm']:,.1f} mm), busiest channel {place['congestion']['max_wires_per_channel']} "
        f"wires (point-to-point)"
        + ("".join(f"; {k} {v:,.1f} mm" for k, v in place["wire_length_by_distribution_mm"].items()
                   if k != place.get("distribution")) if "wire_length_by_distribution_mm" in place else ""),
    ]
    if place.get("links"):
        t = place["links"]
        tau = p["tau_s"]
        dist = place["distribution"]
        lines.append(
            f"  links           {dist}: {place['phase_drivers'][dist]:,} drivers, {place['phase_receivers'][dist]:,} "
            f"receivers; " + (f"frame {t['frame_s'] * 1e9:.3g} ns, the receivers hear phases {t['delay_s'] * 1e9:.3g} ns "
                              f"({t['delay_s'] / tau:.3g} model time) late, ±{t['word_error_rad']:.3g} rad rms per word"
                              if dist == "time-multiplexed" else f"receiver jitter {t['edge_jitter_s'] * 1e12:.3g} ps rms"))
    for name in ("K", "omega", "drive", "C", "nu"):
        e = q["quantization"][name]
        lines.append(f"  quantisation    {name:<6} {e['bits']:>2} bits: relative Frobenius error {e['rel_fro']:.2e}, "
                     f"max |error| {e['max_abs']:.2e}, clipped {100 * e['clipped_fraction']:.2f}%")
    c = p["coupler"]
    lines += [
        f"  time scale      τ = {_si(p['tau_s'], 's')} per unit of model time, set by {p['binding_limit']}; "
        f"latency T·τ = {_si(p['latency_s'], 's')} ({p['carrier_cycles_per_inference']:,.0f} carrier cycles at {_si(p['f0_hz'], 'Hz')})",
        "                  limits: " + ", ".join(f"{k} ≥ {_si(v, 's')}" for k, v in p["tau_limits_s"].items()),
        f"  coupler         {c['code_bits']}-bit codes on a {c['calibrated_bits']}-bit calibrated coupler"
        + ("" if c["resolution_ok"] else " — the codes need a finer coupler DAC than the calibration's")
        + f"; linearity error {100 * c['linearity_error']:.1f}%",
        f"  calibration     {ir.calibration.source}: {ir.calibration.process}"
        + (" (format 1: the sine-only approximation of the coupling function)" if ir.calibration.sine_only else ""),
        *_circuit_lines(d.get("circuit")),
        f"  decoder         digital, {d['decoder']['parameters']:,} parameters, {d['decoder']['macs_per_image']:,} MACs per image",
        f"  memory          {r['weight_memory_bits'] / 8e6:.2f} MB of coupling codes",
    ]
    return "\n".join(lines)


def register(sub) -> None:
    from models.checkpoint import SHIPPED

    p = sub.add_parser("compile", help="compile a checkpoint into an oscillator-array description (ArrayIR folder)")
    p.add_argument("checkpoint", type=Path, nargs="?", default=SHIPPED,
                   help="checkpoint to compile (default: the shipped trained digits model)")
    p.add_argument("-o", "--output", type=Path, required=True, help="IR folder to write (array.json + weights.safetensors)")
    p.add_argument("--key-map", type=Path, default=None, help="JSON key-mapping file for other tensor names")
    p.add_argument("--bits", type=int, default=8, help="coupling code bits, 1-16 (default 8)")
    p.add_argument("--omega-bits", type=int, default=None, help="frequency code bits (default: --bits)")
    p.add_argument("--drive-bits", type=int, default=None, help="conditioning-array code bits (default: --bits)")
    p.add_argument("--granularity", default="tile", help="scale per tile, row or tensor (default tile)")
    p.add_argument("--scale-method", default="max", help="clip scale by max, percentile or mse (default max)")
    p.add_argument("--percentile", type=float, default=99.9, help="percentile for --scale-method percentile")
    p.add_argument("--rounding", default="nearest", help="nearest or stochastic (default nearest)")
    p.add_argument("--prune", default="none", help="none, magnitude, topk or block (default none)")
    p.add_argument("--keep", type=float, default=1.0, help="fraction kept by magnitude/block pruning (default 1)")
    p.add_argument("--topk", type=int, default=0, help="couplings kept per row by --prune topk")
    p.add_argument("--tile", type=int, default=256, help="cells per tile (default 256)")
    p.add_argument("--target", default="dense-tiled", help="dense-tiled or sparse-routed (default dense-tiled)")
    p.add_argument("--links", type=int, default=64, help="couplings per tile pair for sparse-routed (default 64)")
    p.add_argument("--partition", default="auto", help="auto, index, metis, spectral or kl (default auto)")
    p.add_argument("--place", default="anneal", help="tile placement: anneal or index (default anneal)")
    p.add_argument("--tile-pitch-mm", type=float, default=0.5, help="tile pitch on the die in mm (default 0.5)")
    p.add_argument("--weak-coupling", type=float, default=0.02,
                   help="largest total coupling into a cell as a fraction of 2π f0 (default 0.02)")
    p.add_argument("--tau", type=float, default=None, help="force the time scale τ in seconds (default: smallest feasible)")
    p.add_argument("--couplers", default="auto",
                   help="reciprocal (one DAC per pair: K's symmetric part), directed (one one-way coupler per "
                        "direction: needs a one-way coupler's calibration, the gm cell) or auto (default: directed "
                        "where the calibration's coupler can)")
    p.add_argument("--distribution", default="point-to-point",
                   help="how phases travel between tiles: point-to-point (a wire per receiving tile, default), "
                        "broadcast-bus (one wire per phase through every tile that needs it), time-multiplexed "
                        "(the bus's routes, phases sharing wires as digital words: the receivers hear them late) "
                        "or low-swing (the bus's wires at a small swing: the receivers add jitter)")
    p.add_argument("--tdm-phases-per-wire", type=int, default=8,
                   help="time-multiplexed: phases sharing one wire (default 8)")
    p.add_argument("--tdm-word-bits", type=int, default=6, help="time-multiplexed: bits per phase word (default 6)")
    p.add_argument("--link-bit-rate-gbps", type=float, default=1.0,
                   help="time-multiplexed: serial bit rate per wire in Gb/s (default 1)")
    p.add_argument("--low-swing-v", type=float, default=0.2, help="low-swing: the wires' swing in volts (default 0.2)")
    p.add_argument("--link-jitter-ps", type=float, default=2.0,
                   help="low-swing: the receivers' edge jitter, ps rms (default 2)")
    p.add_argument("--calibration", type=Path, default=None,
                   help="hw.Calibration JSON (un0hw cells characterize); default: the built-in default calibration")
    p.add_argument("--seed", type=int, default=0, help="seed of stochastic rounding, partitioning and placement")
    p.add_argument("--device", default="cpu", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_compile)
    paths(p, *CHECKPOINT_PATHS, PathOption("calibration", "file", "--calibration"),
          PathOption("output", "out-dir", "-o/--output"))

    p = sub.add_parser("inspect", help="a readable summary of a compiled array (tiles, couplers, wires, τ, errors)")
    p.add_argument("ir", type=Path, help="IR folder written by un0hw compile")
    p.add_argument("--json", action="store_true", help="print array.json (tile member lists as counts)")
    p.set_defaults(func=cmd_inspect)
    paths(p, PathOption("ir", "dir", "IR"))
