"""`un0hw emit`: a compiled array in the forms other tools read.

- ``--rtl-tile T|all``: one tile's memory image for the digital RTL tile
  (`compiler.emit.rtl_tile`: ``tile<T>.memh``, ``.bus.json``, ``.json``);
- ``--spice``: the whole array as a hierarchical ngspice netlist (`compiler.plan.array_plan`
  → `hw.spice.netlist`: ``array.lib``, ``array.cir``) and its summary
  ``array_netlist.json``; see docs/netlist.md.

Without either option the RTL image of tile 0 is written (as before ``--spice`` existed).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from compiler.options import CompileError
from hw.spice.netlist import NetlistError
from hw.spice.run import SpiceError
from un0hw.options import CliError, PathOption, paths

ERRORS = (CompileError, NetlistError, SpiceError)
SIDECAR = "array_netlist.json"


def cmd_emit(args: argparse.Namespace) -> int:
    import compiler

    if args.tau is not None and not args.spice:
        raise CliError("--tau applies to --spice (the RTL tile runs in model time)")
    rtl = args.rtl_tile if args.rtl_tile is not None else (None if args.spice else "0")
    if rtl is not None and rtl != "all":
        _tile_index(rtl)  # a bad index is refused before anything is written
    ir = compiler.load(args.ir)
    tau = _tau(args.tau, ir)
    if args.spice:
        emit_spice(ir, args.output, label=0 if args.label is None else args.label, tau_s=tau)
    if rtl is not None:
        from compiler.emit import rtl_tile

        tiles = range(len(ir.tiles)) if rtl == "all" else [_tile_index(rtl)]
        for t in tiles:
            info = rtl_tile(ir, t, args.output, label=args.label)
            p = info["rtl_parameters"]
            print(f"wrote {args.output}/tile{t}.memh, .bus.json, .json: {p['N_CELLS']} cells, "
                  f"{p['WEIGHT_BITS']}-bit weights, {info['cycles_per_step']} cycles per Euler step")
    return 0


def emit_spice(ir, out: Path, *, label: int, tau_s: float | None) -> dict:
    """Plan → ``array.lib`` + ``array.cir`` + ``array_netlist.json`` in `out`; prints a summary."""
    from compiler.plan import array_plan, summary
    from hw.spice import netlist
    from hw.spice.run import SpiceUnavailable
    from oscsim import atomic_path

    classes = ir.dynamics.num_classes
    if not 0 <= label < classes:
        raise CliError(f"--label {label}: this model has classes 0..{classes - 1}")
    plan = array_plan(ir, label, tau_s=tau_s)
    try:  # hw.spice.cells (the subcircuit builders) loads PySpice here
        files = netlist.write(plan, out)
    except ImportError as exc:
        raise SpiceUnavailable(f"writing a netlist needs PySpice (pip install PySpice==1.5): {exc}") from None
    counts = summary(plan)
    doc = {"format": "un0hw-array-netlist", "files": [f.name for f in files], "top": netlist.TOP,
           "library": netlist.LIBRARY, "label": plan["label"], "tau_s": plan["tau_s"], "tau_rule": plan["tau_rule"],
           "carrier_hz": plan["carrier_hz"], "coupler": plan["coupler"], "tuning_source": plan["tuning"]["source"],
           "summary": counts, "dropped": plan["dropped"], "source": plan["source"]}
    with atomic_path(Path(out) / SIDECAR) as tmp:
        tmp.write_text(json.dumps(doc, indent=1) + "\n")
    n_coup = counts["couplers_inside_tiles"] + counts["inter_tile_links"]
    print(f"wrote {out}/{netlist.LIBRARY}, {netlist.TOP}, {SIDECAR}: {counts['cells']} cells in "
          f"{len(counts['tiles'])} tiles, {n_coup} couplers ({counts['inter_tile_links']} inter-tile links), "
          f"{counts['conditioning_cells']} conditioning cells, {counts['conditioning_couplers']} conditioning and "
          f"{counts['drive_couplers']} drive couplers (class {plan['label']}), tau {plan['tau_s']:.4g} s")
    zero = plan["dropped"]["rounded_to_zero"]
    if n_coup == 0 and zero["main"]:
        limit = ir.physical.tau_limits_s.get("coupler_range")
        hint = f" ({limit:.3g} s)" if isinstance(limit, float) else ""
        print(f"  note: all {zero['main']} main couplings are below half the coupler's LSB at this tau and got "
              f"code 0 (no instances); --tau coupler-range{hint} puts the strongest at full code")
    clipped = plan["dropped"]["vctrl_clipped"]
    if clipped:
        f = plan["cells"]["f_hz"]
        print(f"  note: {clipped} cells' trims leave the tuning curve and are clipped to its ends (main targets "
              f"{min(f) / 1e6:.4g}..{max(f) / 1e6:.4g} MHz): their closed couplers' constant parts (the closing "
              f"shift) or their switch load exceed what the cell can tune; this array cannot be trimmed as compiled")
    return doc


def _tau(text: str | None, ir) -> float | None:
    """--tau: seconds, 'ir' (the IR's own τ, the default) or 'coupler-range' (the IR's
    coupler-range limit: its strongest coupling at the coupler's full code)."""
    if text is None or text == "ir":
        return None
    if text == "coupler-range":
        limit = ir.physical.tau_limits_s.get("coupler_range")
        if not (isinstance(limit, float) and math.isfinite(limit) and limit > 0):
            raise CliError(f"--tau coupler-range: this IR records no positive coupler-range limit ({limit!r})")
        return limit
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (math.isfinite(value) and value > 0):
        raise CliError(f"--tau must be a positive number of seconds, 'ir' or 'coupler-range', not {text!r}")
    return value


def _tile_index(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise CliError(f"--rtl-tile must be a tile index or 'all', not {text!r}") from None


def register(sub) -> None:
    p = sub.add_parser("emit", help="write a compiled array for other tools: a tile's RTL memory image "
                                    "(--rtl-tile) or the whole array as a hierarchical SPICE netlist (--spice)")
    p.add_argument("ir", type=Path, help="IR folder written by un0hw compile")
    p.add_argument("--rtl-tile", default=None,
                   help="tile index, or 'all': the RTL tile's tile<T>.memh/.bus.json/.json (default 0 without --spice)")
    p.add_argument("--spice", action="store_true",
                   help="write the whole array as a hierarchical ngspice netlist: array.lib (cells, couplers, "
                        "tiles), array.cir (top level) and array_netlist.json")
    p.add_argument("--label", type=int, default=None,
                   help="class whose drive is loaded (default: none for the RTL tile, 0 for --spice)")
    p.add_argument("--tau", default=None,
                   help="--spice: seconds per unit of model time the codes and trims are mapped at: a number, "
                        "'ir' (default, the IR's own tau) or 'coupler-range' (the strongest coupling at full code)")
    p.add_argument("-o", "--output", type=Path, required=True, help="folder to write into")
    p.set_defaults(func=cmd_emit)
    paths(p, PathOption("ir", "dir", "IR"), PathOption("output", "out-dir", "-o/--output"))
