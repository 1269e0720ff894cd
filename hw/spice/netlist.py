"""A compiled array's plan (`compiler.plan.array_plan`) as a hierarchical ngspice netlist.

The netlist is two files, a library and a runnable top (`write`):

``array.lib`` — the library, everything a designer instantiates:

- the process cards (`hw.spice.process`, through `cells.add_models`);
- the leaf cells, as `hw.spice.cells` builds them: the current-starved ring
  (`RingOscillator.subcircuit`, ``un0_ring5``) and the resistor coupler DAC
  (`CouplerDAC.subcircuit`, ``un0_cdac4``);
- their programmable wrappers, with the trim and the code as instance parameters:
  ``un0_cell vdd vddb vss p0..p4 params: vctrl=1`` drives its ring's control input from
  an internal source of value ``{vctrl}``; ``un0_coupler a0 a1 b0 b1 vddc vss params:
  code=0`` decodes the sign-magnitude ``code`` into the DAC's enable lines, each a
  voltage-controlled source ``vddc × bit(code)`` (the configuration register's level);
- one subcircuit per tile, ``un0_tile<t>``: its cells (one ``un0_cell`` instance per
  cell, at its control voltage) and the couplers between two cells of the tile. Ports:
  ``vdd vddb vddc vss`` and the p0, p1 of every cell (``c<i>_0 c<i>_1``, plan cell index
  i), the nodes every coupler and link attaches to.

``array.cir`` — the top level (``.include array.lib``): the supplies (``.param vdd``),
one instance per tile, the inter-tile links (couplers between cells of two tiles), the
conditioning array (its cells ``q<a>_*``, its couplers, and the drive couplers from
conditioning cells into main cells for the plan's class), a start-up ``.ic`` that
kicks every ring out of its metastable point, ``.options``, and a commented ``.tran``
stub: as written the file parses and sets up; uncomment the stub and run
``ngspice -b -r array.raw array.cir`` (or type ``tran`` in interactive ngspice) to run it.

Top-level nodes: main cell i's p0/p1 are ``c<i>_0``/``c<i>_1``; its other stages are
``xt<t>.c<i>_2`` .. (inside its tile); a conditioning cell's stages are ``q<a>_0..``.
Codes of 0 get no coupler instance. `deck` gives the same circuit as one self-contained
text with an active ``.tran`` (what `hw.spice.run.transient` loads).

PySpice (through `hw.spice.cells`) is imported where a netlist is built, so `NetlistError`
imports without it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # hw.spice.cells imports PySpice: loaded where a netlist is built
    from hw.spice.cells import CouplerDAC, RingOscillator

PLAN_FORMAT = "un0hw-array-plan"  # compiler.plan.PLAN_FORMAT (hw does not import the compiler)
LIBRARY, TOP = "array.lib", "array.cir"
CELL, COUPLER = "un0_cell", "un0_coupler"
DECK_OPTIONS = {"reltol": 1e-3, "abstol": 1e-12, "vntol": 1e-6}  # as `cells.deck`


class NetlistError(ValueError):
    """A plan cannot be written as a netlist (wrong format, indices out of range, codes
    beyond the coupler's bits)."""


def _checked(plan: Any) -> dict[str, Any]:
    if not isinstance(plan, dict) or plan.get("format") != PLAN_FORMAT:
        got = plan.get("format") if isinstance(plan, dict) else type(plan).__name__
        raise NetlistError(f"need a plan from compiler.plan.array_plan (format {PLAN_FORMAT!r}), not {got!r}")
    n = len(plan["cells"]["vctrl_v"])
    n_c = len(plan["conditioning"]["vctrl_v"])
    members = sorted(c for t in plan["tiles"] for c in t)
    if members != list(range(n)):
        raise NetlistError(f"the plan's tiles must hold every cell 0..{n - 1} exactly once")
    top = plan["coupler"]["max_code"]
    for kind, n_a, n_b in (("main", n, n), ("conditioning", n_c, n_c), ("drive", n_c, n)):
        for a, b, code in plan["couplers"][kind]:
            if not (0 <= a < n_a and 0 <= b < n_b) or (kind != "drive" and a == b):
                raise NetlistError(f"{kind} coupler ({a}, {b}) joins cells outside the plan")
            if not (isinstance(code, int) and 0 < abs(code) <= top):
                raise NetlistError(f"{kind} coupler ({a}, {b}) has code {code!r}, not in ±1..{top}")
    return plan


def parts(plan: dict[str, Any]) -> tuple[RingOscillator, CouplerDAC]:
    """The cell and the coupler the plan is built of: the nominal ring and a DAC of the
    plan's coupler bits. Arrays are built of generic180 rings and resistor DACs; a plan of
    another process or coupler (its calibration's) is refused rather than built of the wrong
    cells. Plans written before they named them are of those cells."""
    from hw.spice.cells import CellError, CouplerDAC, RingOscillator

    osc = RingOscillator()
    process = plan.get("process", osc.process.name)
    kind = plan["coupler"].get("kind", "resistive")
    if process != osc.process.name or kind != "resistive":
        raise NetlistError(f"the plan is of {process} cells with '{kind}' couplers (its calibration's); SPICE arrays "
                           f"are built of {osc.process.name} rings and resistive couplers only")
    try:
        dac = CouplerDAC(n_stages=osc.n_stages, bits=int(plan["coupler"]["bits"]))
    except CellError as exc:
        raise NetlistError(f"the plan's coupler: {exc}") from None
    return osc, dac


def _cell_wrapper(osc: RingOscillator) -> str:
    outs = " ".join(f"p{k}" for k in range(osc.n_stages))
    return "\n".join([
        "* a cell: the ring with its control voltage as an instance parameter (V)",
        f".subckt {CELL} vdd vddb vss {outs} params: vctrl=1.0",
        "Vctrl ctl vss dc {vctrl}",
        f"Xring ctl vdd vddb vss {outs} {osc.subckt_name}",
        f".ends {CELL}",
    ])


def _coupler_wrapper(dac: CouplerDAC) -> str:
    """The DAC with its code as a parameter: enable line ep<i> (en<i>) is high when the code
    is positive (negative) and bit i of |code| is set, as `CouplerDAC.enable_levels`."""
    m = dac.bits - 1
    lines = [(f"* a coupler: the {dac.bits}-bit sign-magnitude resistor DAC, code -{dac.max_code}..{dac.max_code} "
             "an instance parameter;"),
             "* each enable line is vddc x (its bit of the code), the configuration register's level",
             f".subckt {COUPLER} a0 a1 b0 b1 vddc vss params: code=0"]
    for sign, prefix, test in ((1, "ep", "(code > 0)"), (-1, "en", "(code < 0)")):
        for i in range(m):
            bit = f"(floor(abs(code)/{2 ** i}) - 2*floor(abs(code)/{2 ** (i + 1)}))"
            lines.append(f"E{prefix}{i} {prefix}{i} vss vddc vss {{{test} * {bit}}}")
    ens = " ".join([f"ep{i}" for i in range(m)] + [f"en{i}" for i in range(m)])
    lines += [f"Xdac a0 a1 b0 b1 vddc vss {ens} {dac.subckt_name}", f".ends {COUPLER}"]
    return "\n".join(lines)


def _wrap(line: str, width: int = 100) -> str:
    """A long card broken into SPICE continuation lines (``+ ...``) of about `width` characters."""
    if len(line) <= width:
        return line
    out, cur = [], ""
    for tok in line.split():
        if cur and len(cur) + 1 + len(tok) > width:
            out.append(cur)
            cur = "+ " + tok
        else:
            cur = f"{cur} {tok}" if cur else tok
    return "\n".join([*out, cur])


def _coupler_line(name: str, a: str, b: str, code: int, supply: str = "vddc", vss: str = "vss") -> str:
    return f"X{name} {a}_0 {a}_1 {b}_0 {b}_1 {supply} {vss} {COUPLER} code={int(code)}"


def _cell_line(name: str, node: str, vctrl: float, n_stages: int, vss: str = "vss") -> str:
    outs = " ".join(f"{node}_{k}" for k in range(n_stages))
    return f"X{name} vdd vddb {vss} {outs} {CELL} vctrl={float(vctrl):.6f}"


def _tile_ports(members: Sequence[int]) -> list[str]:
    return [f"c{i}_{k}" for i in members for k in (0, 1)]


def tile_of(plan: dict[str, Any]) -> dict[int, int]:
    return {c: t for t, members in enumerate(plan["tiles"]) for c in members}


def library(plan: dict[str, Any]) -> str:
    """The library text: process cards, leaf subcircuits, wrappers, one subcircuit per tile."""
    from PySpice.Spice.Netlist import Circuit

    from hw.spice.cells import add_models

    plan = _checked(plan)
    osc, dac = parts(plan)
    models = Circuit("models")
    add_models(models, osc.process)
    cards = [ln for ln in str(models).splitlines() if ln.lower().startswith(".model")]
    src = plan["source"]
    out = [
        (f"* un0hw array library: {src['model']} ({src['n']} main cells in {len(plan['tiles'])} tiles, "
        f"{src['n_cond']} conditioning cells), class {plan['label']}, tau {plan['tau_s']:.4g} s"),
        (f"* carrier {plan['carrier_hz'] / 1e6:.4g} MHz; codes from calibration '{src['calibration']}'; "
        f"controls from {plan['tuning']['source']}"),
        "",
        f"* ---- process: {osc.process.name} (hw.spice.process)",
        *cards,
        "",
        "* ---- leaf cells (hw.spice.cells)",
        str(osc.subcircuit()).strip(),
        str(dac.subcircuit()).strip(),
        "",
        "* ---- programmable cells: trims and codes as instance parameters",
        _cell_wrapper(osc),
        _coupler_wrapper(dac),
        "",
        "* ---- tiles: their cells and the couplers inside each tile",
    ]
    where = tile_of(plan)
    inside: list[list[tuple[int, int, int]]] = [[] for _ in plan["tiles"]]
    for i, j, code in plan["couplers"]["main"]:
        if where[i] == where[j]:
            inside[where[i]].append((i, j, code))
    vctrl = plan["cells"]["vctrl_v"]
    for t, members in enumerate(plan["tiles"]):
        out.append(f"* tile {t}: {len(members)} cells, {len(inside[t])} couplers")
        out.append(_wrap(f".subckt un0_tile{t} vdd vddb vddc vss " + " ".join(_tile_ports(members))))
        out += [_cell_line(f"c{i}", f"c{i}", vctrl[i], osc.n_stages) for i in members]
        out += [_coupler_line(f"k{i}_{j}", f"c{i}", f"c{j}", code) for i, j, code in inside[t]]
        out.append(f".ends un0_tile{t}")
    return "\n".join(out) + "\n"


def top(plan: dict[str, Any], *, include: str | None = LIBRARY, tran: tuple[float, float] | None = None,
        save: Sequence[str] = ()) -> str:
    """The top-level text: supplies, tiles, inter-tile links, the conditioning array and the
    drive, the start-up `.ic`, `.options` and the analysis.

    `include`: the library file to `.include` (None: the caller puts the library in front).
    `tran`: (step, stop) seconds for an active ``.tran``; None writes the commented stub
    (five carrier cycles). `save`: nodes to keep (``.save``; default all).
    """
    plan = _checked(plan)
    osc, _ = parts(plan)
    vdd = float(plan["vdd_v"])
    where = tile_of(plan)
    links = [(i, j, c) for i, j, c in plan["couplers"]["main"] if where[i] != where[j]]
    n_c = len(plan["conditioning"]["vctrl_v"])
    out = [(f"* un0hw array top level: {len(plan['tiles'])} tiles, {len(links)} inter-tile links, "
           f"{n_c} conditioning cells, {len(plan['couplers']['conditioning'])} conditioning couplers, "
           f"{len(plan['couplers']['drive'])} drive couplers (class {plan['label']})")]
    if include is not None:
        out.append(f".include {include}")
    out += ["", "* ---- supplies: rings, bias branches, coupler switch drivers",
            f".param vdd={vdd:g}",
            "Vdd vdd 0 {vdd}", "Vddb vddb 0 {vdd}", "Vddc vddc 0 {vdd}", "",
            "* ---- tiles"]
    for t, members in enumerate(plan["tiles"]):
        out.append(_wrap(f"Xt{t} vdd vddb vddc 0 " + " ".join(_tile_ports(members)) + f" un0_tile{t}"))
    out += ["", "* ---- inter-tile links"]
    out += [_coupler_line(f"l{i}_{j}", f"c{i}", f"c{j}", code, vss="0") for i, j, code in links]
    out += ["", "* ---- conditioning array: cells, their couplers, the drive into main cells"]
    out += [_cell_line(f"q{a}", f"q{a}", v, osc.n_stages, vss="0") for a, v in enumerate(plan["conditioning"]["vctrl_v"])]
    out += [_coupler_line(f"kq{a}_{b}", f"q{a}", f"q{b}", code, vss="0")
            for a, b, code in plan["couplers"]["conditioning"]]
    out += [_coupler_line(f"d{a}_{i}", f"q{a}", f"c{i}", code, vss="0") for a, i, code in plan["couplers"]["drive"]]
    ic = []
    for node in [f"c{i}" for i in range(len(plan["cells"]["vctrl_v"]))] + [f"q{a}" for a in range(n_c)]:
        ic += [f"v({node}_0)=0", f"v({node}_1)={vdd:g}"]
    out += ["", "* ---- start-up: p0 low, p1 high in every ring (off the metastable DC point)"]
    out += [".ic " + " ".join(ic[k:k + 8]) for k in range(0, len(ic), 8)]
    out += [".options " + " ".join(f"{k}={v:g}" for k, v in DECK_OPTIONS.items())]
    if save:
        out += [".save " + " ".join(f"v({n})" for n in save[k:k + 8]) for k in range(0, len(save), 8)]
    period = 1 / float(plan["carrier_hz"])
    if tran is None:
        out += ["", ("* ---- analysis: uncomment to run in batch (ngspice -b -r array.raw array.cir: batch mode needs"
                " -r or a .print to simulate), or type it in interactive ngspice"),
                f"* five carrier cycles at 100 points per period ({plan['carrier_hz'] / 1e6:.4g} MHz):",
                f"*.tran {period / 100:.6g} {5 * period:.6g}"]
    else:
        step, stop = tran
        if not 0 < step < stop:
            raise NetlistError(f"need 0 < step < stop, got {step!r}, {stop!r}")
        out += ["", f".tran {step:.12g} {stop:.12g}"]
    out.append(".end")
    return "\n".join(out) + "\n"


def deck(plan: dict[str, Any], *, stop_s: float, step_s: float | None = None, save: Sequence[str] = ()) -> str:
    """Library and top level as one text with an active ``.tran`` (`step_s` default a
    hundredth of a carrier period): what `hw.spice.run.transient` loads."""
    step = step_s if step_s is not None else 1 / (100 * float(plan["carrier_hz"]))
    lib = library(plan)
    return "* un0hw array netlist (library and top in one deck)\n" + lib + "\n" + top(
        plan, include=None, tran=(step, stop_s), save=save)


def write(plan: dict[str, Any], out_dir: str | os.PathLike) -> list[Path]:
    """Write ``array.lib`` and ``array.cir`` into `out_dir`, each atomically; returns their paths."""
    from oscsim import atomic_path

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    texts = {LIBRARY: library(plan), TOP: top(plan)}
    paths = []
    for name, text in texts.items():
        with atomic_path(out / name) as tmp:
            tmp.write_text(text)
        paths.append(out / name)
    return paths


def p0_nodes(plan: dict[str, Any]) -> list[str]:
    """Top-level p0 node of every main cell, then of every conditioning cell."""
    return ([f"c{i}_0" for i in range(len(plan["cells"]["vctrl_v"]))]
            + [f"q{a}_0" for a in range(len(plan["conditioning"]["vctrl_v"]))])
