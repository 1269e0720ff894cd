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

import os
from dataclasses import dataclass, field

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

    def subcircuit(self) -> SubCircuit:
        """Ports: vctrl, vdd (ring), vddb (bias branch), vss, then the stage outputs p0..p{N-1}."""
        n = self.n_stages
        outs = [f"p{k}" for k in range(n)]
        sub = SubCircuit(self.subckt_name, "vctrl", "vdd", "vddb", "vss", *outs)
        pn, pp = self.process.nmos.name, self.process.pmos.name
        # Bias: NMOS at vctrl sinks I from a diode-connected PMOS; its gate voltage `pb` mirrors I.
        sub.M("bn", "pb", "vctrl", "vss", "vss", model=pn, w=self.wn_starve_m, l=self.l_starve_m,
              **self._diffusion(self.wn_starve_m))
        sub.M("bp", "pb", "pb", "vddb", "vddb", model=pp, w=self.wp_starve_m, l=self.l_starve_m,
              **self._diffusion(self.wp_starve_m))
        for k in range(n):
            a, y = outs[k - 1], outs[k]  # stage k inverts the previous output; p0 takes p{N-1}
            sub.M(f"sp{k}", f"tp{k}", "pb", "vdd", "vdd", model=pp, w=self.wp_starve_m,
                  l=self.l_starve_m, **self._diffusion(self.wp_starve_m))
            sub.M(f"ip{k}", y, a, f"tp{k}", "vdd", model=pp, w=self.wp_m, l=self.l_m,
                  **self._diffusion(self.wp_m))
            sub.M(f"in{k}", y, a, f"tn{k}", "vss", model=pn, w=self.wn_m, l=self.l_m,
                  **self._diffusion(self.wn_m))
            sub.M(f"sn{k}", f"tn{k}", "vctrl", "vss", "vss", model=pn, w=self.wn_starve_m,
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


def _add_models(circuit: Circuit, process: Process) -> None:
    card: MosModel
    for card in (process.nmos, process.pmos):
        circuit.model(card.name, card.polarity, **card.spice_params())


def ring_bench(osc: RingOscillator, *, vctrl_v: float) -> Circuit:
    """One cell between ideal supplies: Vdd (ring, metered), Vddb (bias), Vctrl.

    Nodes at the top level: `ctrl`, `vdd`, `vddb`, and the cell outputs `o0..o{N-1}`.
    """
    c = Circuit(f"{osc.subckt_name} tuning bench vctrl={vctrl_v:g}V")
    _add_models(c, osc.process)
    c.subcircuit(osc.subcircuit())
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
    from oscsim import atomic_path  # the shared helper; oscsim is an allowed import of hw/

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

    def add_to(self, circuit: Circuit, *, a: str, b: str) -> None:
        """Add the coupler between cells whose top-level outputs are `{a}0..` and `{b}0..`."""
        if self.sign > 0:
            circuit.R(f"c_{a}{b}", f"{a}0", f"{b}0", self.r_ohm)
        else:
            circuit.R(f"c_{a}{b}", f"{a}0", f"{b}1", self.r_ohm)
            circuit.R(f"c_{b}{a}", f"{b}0", f"{a}1", self.r_ohm)


def pair_bench(osc: RingOscillator, coupler: ResistiveCoupler, *, vctrl_a_v: float,
               vctrl_b_v: float) -> Circuit:
    """Two rings sharing Vdd/Vddb, each with its own control voltage, joined by a coupler.

    Top-level outputs: `a0..a{N-1}` and `b0..b{N-1}`.
    """
    c = Circuit(f"{osc.subckt_name} pair, coupler R={coupler.r_ohm:g} sign={coupler.sign:+d}")
    _add_models(c, osc.process)
    c.subcircuit(osc.subcircuit())
    for cell, ctrl in (("a", vctrl_a_v), ("b", vctrl_b_v)):
        outs = [f"{cell}{k}" for k in range(osc.n_stages)]
        c.X(cell, osc.subckt_name, f"ctrl_{cell}", "vdd", "vddb", c.gnd, *outs)
        c.V(f"ctrl_{cell}", f"ctrl_{cell}", c.gnd, ctrl)
    c.V("dd", "vdd", c.gnd, osc.process.vdd_v)
    c.V("ddb", "vddb", c.gnd, osc.process.vdd_v)
    coupler.add_to(c, a="a", b="b")
    return c


def pair_kick(osc: RingOscillator, *, b_offset_stages: int = 2) -> dict[str, float]:
    """Start A at p0 low / p1 high and B with the same pattern `b_offset_stages` stages on,
    so the two cells begin far from the phase the coupler pulls them to."""
    n, vdd = osc.n_stages, osc.process.vdd_v
    k = b_offset_stages % n
    return {"a0": 0.0, "a1": vdd, f"b{k}": 0.0, f"b{(k + 1) % n}": vdd}
