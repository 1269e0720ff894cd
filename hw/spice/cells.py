"""Oscillator cells as PySpice netlists, and their plain `.cir` decks for ngspice.

The cell is a current-starved CMOS ring: N (odd) inverters, each with a PMOS starving
device on top and an NMOS one below. A control voltage `vctrl` sets the NMOS bias
current I; a diode-connected PMOS mirrors it to the PMOS starving devices. Each output
node is charged and discharged at about I, so

    f0 ~ I / (2 N C_node V_sw),   I ~ KP/2 (W/L) (V_ctrl - V_TH)^2,

f0 rises monotonically with V_ctrl. The ring draws its current from `vdd` and the bias
branch from `vddb`, so the test bench can meter them apart (the ring's switching energy
is the C V^2 part; the bias branch is a static current).

PySpice is imported here; `hw.spice` is only imported by code that runs circuits.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from PySpice.Spice.Netlist import Circuit, SubCircuit

from hw.spice.process import GENERIC_180NM, MosModel, Process


class CellError(ValueError):
    """A cell was asked for with settings that cannot build a working netlist."""


@dataclass(frozen=True, kw_only=True)
class RingOscillator:
    """Sizes of the current-starved ring (metres, farads); defaults are a small 180 nm cell."""

    n_stages: int = 5
    wn_m: float = 0.5e-6  # inverter NMOS
    wp_m: float = 1.0e-6  # inverter PMOS (~2x for the hole mobility)
    l_m: float = 0.18e-6  # inverter channel length (L_min)
    wn_starve_m: float = 0.5e-6  # NMOS starving device and the bias NMOS (1:1)
    wp_starve_m: float = 3.0e-6  # PMOS starving device and the bias diode (1:1); wide so
    # the mirror keeps V_SG below VDD at the top of the control range
    l_starve_m: float = 0.36e-6  # 2 L_min: square-law is fair, lambda smaller
    c_load_f: float = 5e-15  # explicit MIM load per output node: sets f0 with known C
    process: Process = field(default=GENERIC_180NM)

    def __post_init__(self) -> None:
        if not (isinstance(self.n_stages, int) and self.n_stages >= 3 and self.n_stages % 2 == 1):
            raise CellError(f"n_stages must be an odd integer >= 3, not {self.n_stages!r}")
        for name in ("wn_m", "wp_m", "l_m", "wn_starve_m", "wp_starve_m", "l_starve_m"):
            if not getattr(self, name) > 0:
                raise CellError(f"{name} must be > 0, not {getattr(self, name)!r}")
        if self.c_load_f < 0:
            raise CellError(f"c_load_f must be >= 0, not {self.c_load_f!r}")

    @property
    def subckt_name(self) -> str:
        return f"un0_ring{self.n_stages}"

    def node_capacitance_f(self) -> float:
        """Estimated capacitance of one output node, swung rail to rail each cycle.

        C_node = C_load
               + Cox L (Wn + Wp)                 next stage's gate (Meyer, full Cox W L: upper end)
               + (CGSO + CGDO)(Wn + Wp)          next stage's gate overlaps
               + 2 CGDO (Wn + Wp)                own drain overlap, Miller-doubled
               + CJ AD + CJSW PD (N and P)       own drain junctions (zero-bias: upper end)
        The starving devices' internal nodes swing only partly and are left out; the C V^2
        window in the tests is wide enough to hold both.
        """
        p = self.process
        w_sum = self.wn_m + self.wp_m
        c_gate = p.cox_f_per_m2 * self.l_m * w_sum
        c_ov = (p.nmos.cgso_f_per_m + p.nmos.cgdo_f_per_m) * w_sum + 2 * p.nmos.cgdo_f_per_m * w_sum
        c_junction = 0.0
        for w, card in ((self.wn_m, p.nmos), (self.wp_m, p.pmos)):
            c_junction += card.cj_f_per_m2 * w * p.l_diff_m + card.cjsw_f_per_m * 2 * (w + p.l_diff_m)
        return self.c_load_f + c_gate + c_ov + c_junction

    def switched_capacitance_f(self) -> float:
        """C_total = N C_node: what the ring charges from VDD once per cycle (E ~ C_total VDD^2)."""
        return self.n_stages * self.node_capacitance_f()

    def device_names(self) -> list[tuple[str, str, float, float]]:
        """(device, polarity, W, L) of every MOSFET in the subcircuit, in netlist order."""
        devs = [("bn", "nmos", self.wn_starve_m, self.l_starve_m), ("bp", "pmos", self.wp_starve_m, self.l_starve_m)]
        for k in range(self.n_stages):
            devs += [(f"sp{k}", "pmos", self.wp_starve_m, self.l_starve_m), (f"ip{k}", "pmos", self.wp_m, self.l_m),
                     (f"in{k}", "nmos", self.wn_m, self.l_m), (f"sn{k}", "nmos", self.wn_starve_m, self.l_starve_m)]
        return devs

    def subcircuit(self, *, name: str | None = None, cards: dict[str, MosModel] | None = None) -> SubCircuit:
        """Ports: vctrl, vdd (ring), vddb (bias branch), vss, then the stage outputs p0..p{N-1}.

        `cards` maps a device name (`device_names`) to its own model card, for Monte Carlo
        mismatch; the others use the process cards. `name` overrides the subcircuit name
        (two mismatched cells in one netlist need two names).
        """
        n = self.n_stages
        outs = [f"p{k}" for k in range(n)]
        sub = SubCircuit(name or self.subckt_name, "vctrl", "vdd", "vddb", "vss", *outs)
        cards = cards or {}

        def model(dev: str, default: MosModel) -> str:
            return cards[dev].name if dev in cards else default.name

        nc, pc = self.process.nmos, self.process.pmos
        # Bias: NMOS at vctrl sinks I from a diode-connected PMOS; its gate voltage `pb` mirrors I.
        sub.M("bn", "pb", "vctrl", "vss", "vss", model=model("bn", nc), w=self.wn_starve_m, l=self.l_starve_m,
              **self._diffusion(self.wn_starve_m))
        sub.M("bp", "pb", "pb", "vddb", "vddb", model=model("bp", pc), w=self.wp_starve_m, l=self.l_starve_m,
              **self._diffusion(self.wp_starve_m))
        for k in range(n):
            a, y = outs[k - 1], outs[k]  # stage k inverts the previous output; p0 takes p{N-1}
            sub.M(f"sp{k}", f"tp{k}", "pb", "vdd", "vdd", model=model(f"sp{k}", pc), w=self.wp_starve_m,
                  l=self.l_starve_m, **self._diffusion(self.wp_starve_m))
            sub.M(f"ip{k}", y, a, f"tp{k}", "vdd", model=model(f"ip{k}", pc), w=self.wp_m, l=self.l_m,
                  **self._diffusion(self.wp_m))
            sub.M(f"in{k}", y, a, f"tn{k}", "vss", model=model(f"in{k}", nc), w=self.wn_m, l=self.l_m,
                  **self._diffusion(self.wn_m))
            sub.M(f"sn{k}", f"tn{k}", "vctrl", "vss", "vss", model=model(f"sn{k}", nc), w=self.wn_starve_m,
                  l=self.l_starve_m, **self._diffusion(self.wn_starve_m))
            if self.c_load_f > 0:
                sub.C(f"l{k}", y, "vss", self.c_load_f)
        return sub

    def _diffusion(self, w_m: float) -> dict[str, float]:
        """AD/AS/PD/PS for a drain/source of width w and the process diffusion length."""
        ld = self.process.l_diff_m
        area, perim = w_m * ld, 2 * (w_m + ld)
        return {"drain_area": area, "source_area": area, "drain_perimeter": perim,
                "source_perimeter": perim}


def add_models(circuit: Circuit, process: Process) -> None:
    """Add the process's two MOSFET cards to a circuit (every bench needs them)."""
    card: MosModel
    for card in (process.nmos, process.pmos):
        circuit.model(card.name, card.polarity, **card.spice_params())


def ring_bench(osc: RingOscillator, *, vctrl_v: float, cards: dict[str, MosModel] | None = None) -> Circuit:
    """One cell between ideal supplies: Vdd (ring, metered), Vddb (bias), Vctrl.

    Nodes at the top level: `ctrl`, `vdd`, `vddb`, and the cell outputs `o0..o{N-1}`.
    `cards`: per-device model cards (Monte Carlo mismatch, see `RingOscillator.subcircuit`).
    """
    c = Circuit(f"{osc.subckt_name} tuning bench vctrl={vctrl_v:g}V")
    add_models(c, osc.process)
    for card in (cards or {}).values():
        c.model(card.name, card.polarity, **card.spice_params())
    c.subcircuit(osc.subcircuit(cards=cards))
    outs = [f"o{k}" for k in range(osc.n_stages)]
    c.X("osc", osc.subckt_name, "ctrl", "vdd", "vddb", c.gnd, *outs)
    c.V("dd", "vdd", c.gnd, osc.process.vdd_v)
    c.V("ddb", "vddb", c.gnd, osc.process.vdd_v)
    c.V("ctrl", "ctrl", c.gnd, vctrl_v)
    return c


def ring_kick(osc: RingOscillator) -> dict[str, float]:
    """Initial conditions that break the ring's symmetric (metastable) DC point."""
    return {"o0": 0.0, "o1": osc.process.vdd_v}


def deck(circuit: Circuit, *, step_s: float, stop_s: float, ic: dict[str, float] | None = None,
         options: dict[str, float] | None = None, extra_lines: tuple[str, ...] = ()) -> str:
    """The full input deck of a transient run: the netlist, .options, .ic, .tran, extras, .end.

    The same text is what `run.transient` loads into libngspice and what `write_cir` puts on
    disk, so a plain `ngspice -b file.cir` reproduces the run.
    """
    if not (0 < step_s < stop_s):
        raise CellError(f"need 0 < step_s < stop_s, got step_s={step_s!r}, stop_s={stop_s!r}")
    body = str(circuit).rstrip()
    if body.endswith(".end"):
        body = body[: -len(".end")].rstrip()
    lines = [body]
    opts = {"reltol": 1e-3, "abstol": 1e-12, "vntol": 1e-6, **(options or {})}
    lines.append(".options " + " ".join(f"{k}={v:g}" for k, v in opts.items()))
    if ic:
        lines.append(".ic " + " ".join(f"v({node})={v:g}" for node, v in ic.items()))
    lines.append(f".tran {step_s:.12g} {stop_s:.12g}")
    lines.extend(extra_lines)
    lines.append(".end")
    return "\n".join(lines) + "\n"


def period_measure_lines(node: str, level_v: float, *, first_rise: int = 3) -> tuple[str, ...]:
    """`.meas` lines that make batch ngspice print the period at `node` (as `tper_s`)."""
    return (f".meas tran tper_s trig v({node}) val={level_v:g} rise={first_rise} "
            f"targ v({node}) val={level_v:g} rise={first_rise + 1}",)


def write_cir(deck_text: str, path: str | os.PathLike) -> None:
    """Write a deck as a plain `.cir` file, atomically (a reader never sees half of one)."""
    from oscsim import (
        atomic_path,  # the shared helper; oscsim is an allowed import of hw/
    )

    with atomic_path(path) as tmp:
        tmp.write_text(deck_text)


@dataclass(frozen=True, kw_only=True)
class ResistiveCoupler:
    """A resistive coupler between two rings, with a sign.

    sign = +1 ties like nodes: R from A.p0 to B.p0 pulls the pair in phase.
    sign = -1 ties a node to the complementary one. An odd ring has no exactly inverted
    node: in an N-stage ring p1 lags p0 by pi (1 + 1/N) (216 deg for N = 5). So the
    negative coupler is a symmetric pair, R from A.p0 to B.p1 and from B.p0 to A.p1: their
    pulls towards +pi(1+1/N) and -pi(1+1/N) sum to -2 cos(pi/N) sin(psi), an anti-phase
    (negative-K) coupling with strength cos(pi/N) per resistor.
    """

    r_ohm: float
    sign: int

    def __post_init__(self) -> None:
        if self.sign not in (1, -1):
            raise CellError(f"sign must be +1 or -1, not {self.sign!r}")
        if not self.r_ohm > 0:
            raise CellError(f"r_ohm must be > 0, not {self.r_ohm!r}")

    def describe(self) -> str:
        return f"coupler R={self.r_ohm:g} sign={self.sign:+d}"

    def add_to(self, circuit: Circuit, *, a: str, b: str, supply: str = "vddc") -> None:
        """Add the coupler between cells whose top-level outputs are `{a}0..` and `{b}0..`."""
        if self.sign > 0:
            circuit.R(f"c_{a}{b}", f"{a}0", f"{b}0", self.r_ohm)
        else:
            circuit.R(f"c_{a}{b}", f"{a}0", f"{b}1", self.r_ohm)
            circuit.R(f"c_{b}{a}", f"{b}0", f"{a}1", self.r_ohm)


@dataclass(frozen=True, kw_only=True)
class CouplerDAC:
    """A programmable coupler: a binary-weighted resistor DAC with b-1 magnitude bits and a sign.

    Code c in -(2^(b-1)-1) .. 2^(b-1)-1 (sign-magnitude). Magnitude bit i switches in, on each
    of two paths, a resistor R_i = r_lsb / 2^i through a transmission gate, so the coupling
    conductance per path is |c| / r_lsb (a binary-weighted conductance DAC: K about linear in
    |c|). The sign picks the paths:

    - c > 0 (like nodes, in-phase): A.p0 - B.p0 and A.p1 - B.p1, each R_i.
    - c < 0 (complementary, anti-phase): A.p0 - B.p1 and B.p0 - A.p1, each R_i cos(pi/N)
      times a measured trim (`r_neg_trim`). An
      odd ring has no exactly inverted node (p1 lags p0 by pi(1 + 1/N)); that symmetric pair
      pulls with cos(pi/N) of a like-node pull (see `ResistiveCoupler`), so its resistors are
      scaled by cos(pi/N) to make |K| the same for +c and -c.
    Both signs load each of A.p0, A.p1, B.p0, B.p1 with one branch, so the frequency pulling
    of a code does not depend on its sign.

    Values and why:
    - r_lsb_ohm = 1.4 MOhm: a 100 kOhm like-node resistor gives K ~ 1.2e8 rad/s at 379 MHz
      (measured, first slice), 5 % of the carrier's 2.4e9 rad/s. The full code (7 of 3 bits)
      on two paths is 2 x 200 kOhm, about the same K (measured ~1e8 rad/s): the
      weak-coupling regime (K << 2 pi f0) where the phase model holds, and the LSB still
      couples ~1.7e7 rad/s, well above parasitic coupling. High-resistance poly (~1 kOhm/sq,
      hw.spice.process.R_SHEET_HIPOLY_OHM) makes 1.4 MOhm a 0.4 um x 560 um meander.
    - switches: minimum-size transmission gates, NMOS 0.22/0.18 um and PMOS 0.44/0.18 um in
      parallel, R_on ~ 6 kOhm mid-rail, ~3 % of the smallest resistor (r_lsb / 2^(b-2)),
      ~0.6 fF of overlap and junction per side. One at each end of every resistor: a single
      switch at one end would load one cell more than the other and detune the pair.
    - the code's enable lines are driven by static levels (a configuration register outside
      this cell, tied to `vddc` or ground in the bench); a local inverter per line makes the
      PMOS gate's complement, powered from `vddc` so its (leakage-only) energy is metered
      apart from the rings.
    """

    bits: int = 4
    r_lsb_ohm: float = 1.4e6
    n_stages: int = 5  # of the rings it joins: sets the complementary node's cos(pi/N) scale
    wn_switch_m: float = 0.22e-6
    wp_switch_m: float = 0.44e-6
    l_switch_m: float = 0.18e-6
    # Trim of the complementary paths on top of cos(pi/N): with cos(pi/N) alone this
    # project's characterisation measured |K(-7)| / |K(+7)| = 0.83 (the rings' edges are
    # not sines, so the sine-model scale is not exact); 0.83 brings the two signs together.
    # `un0hw cells characterize` reports the remaining sign asymmetry.
    r_neg_trim: float = 0.83
    code: int = 0
    process: Process = field(default=GENERIC_180NM)
    # Relative error of each resistor, by branch name (`branch_names`), for Monte Carlo.
    r_errors: tuple[tuple[str, float], ...] = ()
    # Measurement mode: every resistor x 1e9 (open), the switches still set by the code, so
    # a cell keeps exactly the load its couplers put on it but is not coupled: the bench in
    # which `hw.measure.trim_array` measures each cell's loaded free-running frequency.
    open_resistors: bool = False

    def __post_init__(self) -> None:
        if not (isinstance(self.bits, int) and 2 <= self.bits <= 10):
            raise CellError(f"bits must be an integer in 2..10, not {self.bits!r}")
        if not self.r_lsb_ohm > 0:
            raise CellError(f"r_lsb_ohm must be > 0, not {self.r_lsb_ohm!r}")
        if not (isinstance(self.n_stages, int) and self.n_stages >= 3 and self.n_stages % 2 == 1):
            raise CellError(f"n_stages must be an odd integer >= 3, not {self.n_stages!r}")
        if isinstance(self.code, bool) or not isinstance(self.code, int) or abs(self.code) > self.max_code:
            raise CellError(f"code must be an integer in -{self.max_code}..{self.max_code} "
                            f"({self.bits}-bit sign-magnitude), not {self.code!r}")

    @property
    def max_code(self) -> int:
        return 2 ** (self.bits - 1) - 1

    @property
    def subckt_name(self) -> str:
        return f"un0_cdac{self.bits}" + ("_open" if self.open_resistors else "")

    def with_code(self, code: int) -> CouplerDAC:
        return replace(self, code=code)

    def describe(self) -> str:
        return f"coupler DAC {self.bits} bits, code {self.code:+d}"

    def branch_resistance_ohm(self, bit: int, sign: int) -> float:
        """Nominal resistor of magnitude bit `bit` on a path of `sign` (+1 like, -1 complementary)."""
        r = self.r_lsb_ohm / 2**bit
        return r if sign > 0 else r * math.cos(math.pi / self.n_stages) * self.r_neg_trim

    def path_conductance_s(self, code: int | None = None) -> float:
        """Nominal resistor conductance on one path at `code` (switches not counted)."""
        code = self.code if code is None else code
        if code == 0:
            return 0.0
        sign = 1 if code > 0 else -1
        return sum(1 / self.branch_resistance_ohm(i, sign) for i in range(self.bits - 1) if abs(code) >> i & 1)

    def branch_names(self) -> list[tuple[str, int, int, str, str]]:
        """(name, sign, bit, from port, to port) of every resistor branch."""
        out = []
        for i in range(self.bits - 1):
            out += [(f"p{i}a", +1, i, "a0", "b0"), (f"p{i}b", +1, i, "a1", "b1"),
                    (f"n{i}a", -1, i, "a0", "b1"), (f"n{i}b", -1, i, "b0", "a1")]
        return out

    def subcircuit(self) -> SubCircuit:
        """Ports: a0 a1 b0 b1 (the two rings' p0, p1), vddc, vss, then enables ep0.. en0.. ."""
        m = self.bits - 1
        ports = ["a0", "a1", "b0", "b1", "vddc", "vss"] + [f"ep{i}" for i in range(m)] + [f"en{i}" for i in range(m)]
        sub = SubCircuit(self.subckt_name, *ports)
        errors = dict(self.r_errors)
        pn, pp = self.process.nmos.name, self.process.pmos.name
        for i in range(m):
            for line in (f"ep{i}", f"en{i}"):  # the PMOS gates' complement of each enable line
                sub.M(f"vn_{line}", f"{line}_b", line, "vss", "vss", model=pn, w=self.wn_switch_m, l=self.l_switch_m)
                sub.M(f"vp_{line}", f"{line}_b", line, "vddc", "vddc", model=pp, w=self.wp_switch_m,
                      l=self.l_switch_m)
        for name, sign, bit, src, dst in self.branch_names():
            line = f"{'ep' if sign > 0 else 'en'}{bit}"
            # A switch at each end, the resistor between: the resistor's ends see only a
            # switch's on-resistance to a driven ring node, so no RC delay builds up at the
            # carrier (a switch in the middle puts ~2 fF behind R/2 = 700 kOhm: a ~1.7 ns
            # lag, most of a period, which turned the LSB's coupling anti-phase). Every ring
            # node touches 2 (b-1) switches whatever the code, so both cells carry one load.
            m1, m2 = f"m_{name}", f"k_{name}"
            r = self.branch_resistance_ohm(bit, sign) * (1 + errors.get(name, 0.0))
            if self.open_resistors:
                r *= 1e9
            self._switch(sub, f"{name}s", src, m1, line)
            sub.R(name, m1, m2, r)
            self._switch(sub, f"{name}d", m2, dst, line)
        return sub

    def _switch(self, sub: SubCircuit, name: str, x: str, y: str, line: str) -> None:
        """A transmission gate x - y, on when `line` is high (its complement drives the PMOS)."""
        pn, pp = self.process.nmos.name, self.process.pmos.name
        ld = self.process.l_diff_m
        for dev, w, model, gate, bulk in (("n", self.wn_switch_m, pn, line, "vss"),
                                          ("p", self.wp_switch_m, pp, f"{line}_b", "vddc")):
            area, perim = w * ld, 2 * (w + ld)
            sub.M(f"t{dev}_{name}", x, gate, y, bulk, model=model, w=w, l=self.l_switch_m, drain_area=area,
                  source_area=area, drain_perimeter=perim, source_perimeter=perim)

    def enable_levels(self) -> dict[str, bool]:
        """Which enable lines the code drives high."""
        m = self.bits - 1
        mag, sign = abs(self.code), (1 if self.code > 0 else -1)
        return {f"{'ep' if s > 0 else 'en'}{i}": bool(self.code != 0 and s == sign and mag >> i & 1)
                for s in (1, -1) for i in range(m)}

    def add_to(self, circuit: Circuit, *, a: str, b: str, supply: str = "vddc", tag: str = "") -> None:
        """Add the DAC between cells whose top-level outputs are `{a}0..` and `{b}0..`.

        The enable lines are tied to `supply` (high) or ground (low) per the code; the
        subcircuit definition is added to `circuit` once. `tag` tells apart several DACs
        on one pair (instance `c_{a}{b}{tag}`).
        """
        if self.subckt_name not in {sub.name for sub in circuit.subcircuits}:
            circuit.subcircuit(self.subcircuit())
        levels = self.enable_levels()
        m = self.bits - 1
        ens = [supply if levels[f"ep{i}"] else circuit.gnd for i in range(m)]
        ens += [supply if levels[f"en{i}"] else circuit.gnd for i in range(m)]
        circuit.X(f"c_{a}{b}{tag}", self.subckt_name, f"{a}0", f"{a}1", f"{b}0", f"{b}1", supply, circuit.gnd, *ens)


Coupler = ResistiveCoupler | CouplerDAC


def pair_bench(osc: RingOscillator, coupler: Coupler, *, vctrl_a_v: float, vctrl_b_v: float,
               cells: tuple[tuple[str, dict[str, MosModel]], tuple[str, dict[str, MosModel]]] | None = None,
               ) -> Circuit:
    """Two rings sharing Vdd/Vddb, each with its own control voltage, joined by a coupler.

    Top-level outputs: `a0..a{N-1}` and `b0..b{N-1}`; supplies Vdd (rings), Vddb (bias),
    Vddc (the coupler's switch drivers). `cells` gives each cell its own subcircuit name
    and per-device cards (Monte Carlo mismatch); by default both share the nominal cell.
    """
    describe = coupler.describe() if hasattr(coupler, "describe") else repr(coupler)
    c = Circuit(f"{osc.subckt_name} pair, {describe}")
    add_models(c, osc.process)
    names = {}
    for cell, spec in zip("ab", cells or ((None, {}), (None, {}))):
        name, cards = spec
        for card in cards.values():
            c.model(card.name, card.polarity, **card.spice_params())
        c.subcircuit(osc.subcircuit(name=name, cards=cards))
        names[cell] = name or osc.subckt_name
    for cell, ctrl in (("a", vctrl_a_v), ("b", vctrl_b_v)):
        outs = [f"{cell}{k}" for k in range(osc.n_stages)]
        c.X(cell, names[cell], f"ctrl_{cell}", "vdd", "vddb", c.gnd, *outs)
        c.V(f"ctrl_{cell}", f"ctrl_{cell}", c.gnd, ctrl)
    c.V("dd", "vdd", c.gnd, osc.process.vdd_v)
    c.V("ddb", "vddb", c.gnd, osc.process.vdd_v)
    c.V("ddc", "vddc", c.gnd, osc.process.vdd_v)
    coupler.add_to(c, a="a", b="b")
    return c


def array_bench(osc: RingOscillator, *, vctrl_v: list[float] | tuple[float, ...],
                couplings: dict[tuple[int, int], int], dac: CouplerDAC | None = None,
                loads: Sequence[tuple[int, int, int]] = ()) -> Circuit:
    """N rings, each with its own control voltage, and a coupler DAC per listed pair.

    Cell i's outputs are `n{i}_0..n{i}_{N-1}`; `couplings[(i, j)] = code` puts one DAC at
    that signed code between cells i and j. A resistor is reciprocal, so one DAC gives
    K_ij = K_ji: an asymmetric K needs its symmetric part here. `loads` adds, per
    (i, j, code), a DAC at that code with its resistors open: the load of a coupler on
    both cells (its switches, set by the code), without its coupling — the fan-out of a
    cell in a larger array. Supplies as in `pair_bench`.
    """
    dac = dac or CouplerDAC(n_stages=osc.n_stages)
    n = len(vctrl_v)
    c = Circuit(f"{osc.subckt_name} array of {n} cells, {len(couplings)} couplers ({dac.bits}-bit DAC)")
    add_models(c, osc.process)
    c.subcircuit(osc.subcircuit())
    for i, ctrl in enumerate(vctrl_v):
        c.X(f"n{i}", osc.subckt_name, f"ctrl{i}", "vdd", "vddb", c.gnd, *[f"n{i}_{k}" for k in range(osc.n_stages)])
        c.V(f"ctrl{i}", f"ctrl{i}", c.gnd, float(ctrl))
    c.V("dd", "vdd", c.gnd, osc.process.vdd_v)
    c.V("ddb", "vddb", c.gnd, osc.process.vdd_v)
    c.V("ddc", "vddc", c.gnd, osc.process.vdd_v)
    for (i, j), code in sorted(couplings.items()):
        if not (0 <= i < n and 0 <= j < n and i != j):
            raise CellError(f"coupling ({i}, {j}) must join two different cells of 0..{n - 1}")
        dac.with_code(int(code)).add_to(c, a=f"n{i}_", b=f"n{j}_")
    for k, (i, j, code) in enumerate(loads):
        if not (0 <= i < n and 0 <= j < n and i != j):
            raise CellError(f"load coupler ({i}, {j}) must join two different cells of 0..{n - 1}")
        replace(dac, open_resistors=True, code=int(code)).add_to(c, a=f"n{i}_", b=f"n{j}_", tag=f"l{k}")
    return c


def pair_kick(osc: RingOscillator, *, b_offset_stages: int = 2) -> dict[str, float]:
    """Start A at p0 low / p1 high and B with the same pattern `b_offset_stages` stages on,
    so the two cells begin far from the phase the coupler pulls them to."""
    n, vdd = osc.n_stages, osc.process.vdd_v
    k = b_offset_stages % n
    return {"a0": 0.0, "a1": vdd, f"b{k}": 0.0, f"b{(k + 1) % n}": vdd}


def noise_lines(nodes: list[str], *, psd_a2_per_hz: float, sample_s: float, seed_tag: str = "n") -> tuple[str, ...]:
    """White current-noise sources (ngspice `trnoise`) from each node to ground.

    `trnoise(NA NT 0 0)` holds a new Gaussian value of rms NA every NT seconds: a white
    one-sided PSD of 2 NA^2 NT up to ~1/(2 NT). So NA = sqrt(PSD / (2 NT)) for the requested
    one-sided current PSD (A^2/Hz). Lines go into `deck(extra_lines=...)`.
    """
    if not (psd_a2_per_hz >= 0 and sample_s > 0):
        raise CellError(f"need psd_a2_per_hz >= 0 and sample_s > 0, got {psd_a2_per_hz!r}, {sample_s!r}")
    na = math.sqrt(psd_a2_per_hz / (2 * sample_s))
    return tuple(f"I{seed_tag}{k} {node} 0 dc 0 trnoise({na:.6g} {sample_s:.6g} 0 0)" for k, node in enumerate(nodes))
