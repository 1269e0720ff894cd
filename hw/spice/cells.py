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

from hw.spice.process import GENERIC_180NM, PTM_45NM, Card, MosModel, Process, process_named


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
    # The control's operating point: the carrier's control (mid-range, where tuning is
    # steepest both ways) and the range the characterisation sweeps (above V_TH, up to VDD).
    vctrl_nominal_v: float = 1.0
    vctrl_range_v: tuple[float, float] = (0.6, 1.8)
    #: (device, volts): a DC source in series with that device's gate (`device_names`), for
    #: the frequency's sensitivity to each device (`hw.measure.gate_sensitivities`)
    gate_offsets_v: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        if not (isinstance(self.n_stages, int) and self.n_stages >= 3 and self.n_stages % 2 == 1):
            raise CellError(f"n_stages must be an odd integer >= 3, not {self.n_stages!r}")
        names = {d[0] for d in self.device_names()}
        for entry in self.gate_offsets_v:
            dev, volts = entry if isinstance(entry, tuple) and len(entry) == 2 else (entry, None)
            if dev not in names or isinstance(volts, bool) or not isinstance(volts, (int, float)) \
                    or not math.isfinite(volts):
                raise CellError(f"gate_offsets_v entries must be (device, finite volts) with a device of "
                                f"{', '.join(sorted(names))}; got {entry!r}")
        lo, hi = self.vctrl_range_v
        if not (0 < lo < self.vctrl_nominal_v < hi <= self.process.vdd_v * 1.2):
            raise CellError(f"need 0 < vctrl_range_v[0] < vctrl_nominal_v < vctrl_range_v[1] <= 1.2 VDD, got "
                            f"{self.vctrl_range_v!r} and {self.vctrl_nominal_v!r} (VDD {self.process.vdd_v} V)")
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
        c_gate = p.cox_f_per_m2 * (self.l_m + p.nmos.dl_m) * w_sum  # effective L (BSIM4: L + XL - 2 LINT)
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

    def subcircuit(self, *, name: str | None = None, cards: dict[str, Card] | None = None) -> SubCircuit:
        """Ports: vctrl, vdd (ring), vddb (bias branch), vss, then the stage outputs p0..p{N-1}.

        `cards` maps a device name (`device_names`) to its own model card, for Monte Carlo
        mismatch; the others use the process cards. `name` overrides the subcircuit name
        (two mismatched cells in one netlist need two names).
        """
        n = self.n_stages
        outs = [f"p{k}" for k in range(n)]
        sub = SubCircuit(name or self.subckt_name, "vctrl", "vdd", "vddb", "vss", *outs)
        cards = cards or {}

        def model(dev: str, default: Card) -> str:
            return cards[dev].name if dev in cards else default.name

        offsets = dict(self.gate_offsets_v)

        def gate(dev: str, node: str) -> str:
            if dev not in offsets:
                return node
            sub.V(f"g{dev}", f"g_{dev}", node, offsets[dev])  # v(g_dev) = v(node) + offset
            return f"g_{dev}"

        nc, pc = self.process.nmos, self.process.pmos
        # Bias: NMOS at vctrl sinks I from a diode-connected PMOS; its gate voltage `pb` mirrors I.
        sub.M("bn", "pb", gate("bn", "vctrl"), "vss", "vss", model=model("bn", nc), w=self.wn_starve_m,
              l=self.l_starve_m, **self._diffusion(self.wn_starve_m))
        sub.M("bp", "pb", gate("bp", "pb"), "vddb", "vddb", model=model("bp", pc), w=self.wp_starve_m,
              l=self.l_starve_m, **self._diffusion(self.wp_starve_m))
        for k in range(n):
            a, y = outs[k - 1], outs[k]  # stage k inverts the previous output; p0 takes p{N-1}
            sub.M(f"sp{k}", f"tp{k}", gate(f"sp{k}", "pb"), "vdd", "vdd", model=model(f"sp{k}", pc), w=self.wp_starve_m,
                  l=self.l_starve_m, **self._diffusion(self.wp_starve_m))
            sub.M(f"ip{k}", y, gate(f"ip{k}", a), f"tp{k}", "vdd", model=model(f"ip{k}", pc), w=self.wp_m, l=self.l_m,
                  **self._diffusion(self.wp_m))
            sub.M(f"in{k}", y, gate(f"in{k}", a), f"tn{k}", "vss", model=model(f"in{k}", nc), w=self.wn_m, l=self.l_m,
                  **self._diffusion(self.wn_m))
            sub.M(f"sn{k}", f"tn{k}", gate(f"sn{k}", "vctrl"), "vss", "vss", model=model(f"sn{k}", nc), w=self.wn_starve_m,
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


def ring_for(process: Process | str) -> RingOscillator:
    """The ring sized for a process (a `Process` or its registry name).

    generic180: the defaults above. ptm45 (VDD 1.0 V, drawn L 45 nm, L_eff 17.5 nm):
    - inverters at L_min, NMOS 0.18 um (4 L_min) and PMOS 0.36 um (2x: the PTM PMOS's
      u0 is 0.37 of the NMOS's, strain narrows the gap in the on-current to ~2x);
    - starving devices at 2 L_min (90 nm drawn, 62.5 nm effective), NMOS 0.18 um, PMOS
      0.9 um wide so the mirror's V_SG stays below VDD at the top of the control range (the
      ratio of the 180 nm cell);
    - 1 fF of explicit load per node: nodes of ~1.5 fF, f0 a few GHz at mid-control;
    - control over 0.45-1.0 V (VDD), the carrier's control at 0.7 V (mid-range).
    """
    process = process_named(process) if isinstance(process, str) else process
    if process.key == "generic180":
        return RingOscillator(process=process)
    if process.key == "ptm45":
        return RingOscillator(process=process, wn_m=0.18e-6, wp_m=0.36e-6, l_m=45e-9, wn_starve_m=0.18e-6,
                              wp_starve_m=0.9e-6, l_starve_m=90e-9, c_load_f=1e-15, vctrl_nominal_v=0.7,
                              vctrl_range_v=(0.45, 1.0))
    raise CellError(f"no ring is sized for process {process.key!r}")


def add_models(circuit: Circuit, process: Process) -> None:
    """Add the process's two MOSFET cards to a circuit (every bench needs them), and its
    operating temperature as a `.temp` line (`Process.at`: the trim point is 27 °C)."""
    card: Card
    for card in (process.nmos, process.pmos):
        circuit.model(card.name, card.polarity, **card.spice_params())
    circuit.raw_spice += f".temp {process.temp_c:g}\n"


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


def _check_dac_words(dac, codes: tuple[str, ...]) -> None:
    """The sign-magnitude DACs' shared checks: `bits` in 2..10, an odd `n_stages` >= 3, and
    each named code field (None skipped) an integer within ±max_code."""
    if not (isinstance(dac.bits, int) and 2 <= dac.bits <= 10):
        raise CellError(f"bits must be an integer in 2..10, not {dac.bits!r}")
    if not (isinstance(dac.n_stages, int) and dac.n_stages >= 3 and dac.n_stages % 2 == 1):
        raise CellError(f"n_stages must be an odd integer >= 3, not {dac.n_stages!r}")
    q = 2 ** (dac.bits - 1) - 1
    for name in codes:
        c = getattr(dac, name)
        if c is not None and (isinstance(c, bool) or not isinstance(c, int) or abs(c) > q):
            raise CellError(f"{name} must be an integer in -{q}..{q} ({dac.bits}-bit sign-magnitude), not {c!r}")


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
    # The characterisation's first guess of K for its first code: a like-node resistor of
    # r_ref_ohm coupled two cells with about k_ref_rad_s (measured, first slice at 180 nm);
    # K scales with the conductance of the two paths.
    k_ref_rad_s: float = 1.2e8
    r_ref_ohm: float = 100e3

    def __post_init__(self) -> None:
        _check_dac_words(self, ())
        if not self.r_lsb_ohm > 0:
            raise CellError(f"r_lsb_ohm must be > 0, not {self.r_lsb_ohm!r}")
        _check_dac_words(self, ("code",))

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

    #: the raw-figure key of `strength` at full code (both paths); what the notes say of energy and load
    STRENGTH_KEY = "coupler_conductance_full_s"
    ENERGY_NOTE = "resistor dissipation"
    LOAD_NOTE = "The coupler's switches load each ring node they touch (2(b-1) gates per coupler)"

    def summary(self) -> str:
        """One phrase for the calibration's notes."""
        return f"sign-magnitude resistor DAC (r_lsb {self.r_lsb_ohm:g} ohm)"

    def mismatched(self, rng) -> CouplerDAC:
        """This DAC with every resistor drawn from its Pelgrom matching (Monte Carlo)."""
        from hw.spice.process import sigma_resistor_rel

        errors = tuple((name, float(rng.normal(0, sigma_resistor_rel(self.branch_resistance_ohm(bit, sign),
                                                                       process=self.process))))
                       for name, sign, bit, _, _ in self.branch_names())
        return replace(self, r_errors=errors)

    def strength(self, code: int | None = None) -> float:
        """What K scales with from code to code: the path conductance, S."""
        return self.path_conductance_s(code)

    def k_guess_rad_s(self, code: int) -> float:
        """A first guess of K_eff at `code` (before anything is measured)."""
        return self.k_ref_rad_s * (2 * self.path_conductance_s(code) * self.r_ref_ohm)

    def power_w(self, tr, *, ports: dict[str, str] | None = None):
        """The coupler's dissipation over a transient of `pair_bench`: Σ over the enabled
        branches of V_branch² / R_branch (nominal R; the switches' R_on is ~1 % of it)."""
        import numpy as np

        levels = self.enable_levels()
        errors = dict(self.r_errors)
        power = np.zeros_like(tr.time_s)
        ports = ports or {"a0": "a0", "a1": "a1", "b0": "b0", "b1": "b1"}
        for name, sign, bit, src, dst in self.branch_names():
            if levels[f"{'ep' if sign > 0 else 'en'}{bit}"]:
                r = self.branch_resistance_ohm(bit, sign) * (1 + errors.get(name, 0.0))
                power += (tr.v(ports[src]) - tr.v(ports[dst])) ** 2 / r
        return power

    def device_count(self) -> dict[str, float]:
        """Area proxy of one coupler: transistors and their drawn gate area (m²), and the
        high-resistance poly's drawn area (m²: squares x the resistor width²)."""
        from hw.spice.process import matching_of

        m = self.bits - 1
        match = matching_of(self.process)
        squares = sum(2 * (self.branch_resistance_ohm(i, 1) + self.branch_resistance_ohm(i, -1))
                      for i in range(m)) / match.r_sheet_ohm
        w = self.wn_switch_m + self.wp_switch_m
        # 2 m enable lines with an inverter each; 4 m branches with a transmission gate at each end
        return {"transistors": 2 * 2 * m + 4 * m * 2 * 2, "gate_area_m2": (2 * m + 8 * m) * w * self.l_switch_m,
                "resistor_area_m2": squares * match.w_res_m**2}

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


@dataclass(frozen=True, kw_only=True)
class GmCouplerDAC:
    """A coupler that does not load the ring: buffered taps and a current-steering DAC.

    Each cell's p0 drives one tap buffer (two minimum inverters on the coupler supply, shared
    by all the cell's outgoing couplers: `x` = p0, `xb` = its complement). A coupler between
    cells a and b is two one-way injectors, a -> b at `code` and b -> a at `reverse_code`
    (default: the same), so K_ij != K_ji is one setting away. An injector is a sign-magnitude
    current DAC: magnitude bit i switches in (series enable switch, static level) an NMOS sink
    and a PMOS source of 2^i x `i_lsb_a`, mirrored from two reference diodes fed by the
    tile's bias (`i_lsb_a` each); the summed tail currents are steered, by a differential
    pair on each side, either into the receiving cell's p0 or into a dummy (the other rail):

        i_into_b(t) = -I(code) sgn(g(t)),   I(code) = |code| i_lsb_a,

    with the steering gate g = xb of the sender for c > 0 (current flows in while the
    sender's p0 is high: pulls the receiver's p0 towards the sender's, in phase) and g = x
    for c < 0 (anti-phase): the sign is the tap choice. The receiving node sees only the two
    steering switches' drains per coupler, the sending ring only its one buffer whatever its
    fan-out: the load by fan-out that the resistor DAC's 12 transmission-gate devices per
    node put on the ring (20 % of f0 per coupler at 180 nm) is gone, to a few switch drains.

    Energy: the tails run all the time (steered, never off): 2 I(code) from the coupler
    supply, and the sunk half is charge the receiving ring's supply put on its node
    (`power_w` counts both), plus the buffers' C V^2 and the reference branches.

    `open_resistors` (the name the trim and load benches use for "coupling off, load kept"):
    the reference currents are zero, so no tail current flows; switches, buffers and their
    toggling stay. `i_errors`: relative error of each bit's current, by source device name
    (`source_names`), for Monte Carlo (applied as that device's width).
    """

    bits: int = 4
    i_lsb_a: float = 1.0e-6
    n_stages: int = 5
    code: int = 0
    reverse_code: int | None = None  # b -> a; None: the same as a -> b (symmetric)
    # the sender's ring stage its tap buffer reads (0: p0, the node the injector drives on
    # the receiver). Stage k < N leads p0 by (N - k) stage delays, (N - k) pi / N of phase,
    # with (N - k) inversions (taken out by the steering choice): a lead against the
    # injection's own lag (a current into a node is integrated by its capacitance)
    tap_stage: int = 0
    process: Process = field(default=GENERIC_180NM)
    # current sources (long channel: matching, output resistance), enable and steering switches, tap buffer
    wn_src_m: float = 0.5e-6  # unit NMOS sink: KP/2 W/L V_ov^2 = 1 uA at V_ov ~ 0.15 V (generic180)
    wp_src_m: float = 1.5e-6  # unit PMOS source (holes ~1/2.8)
    l_src_m: float = 1.0e-6
    wn_switch_m: float = 0.22e-6
    wp_switch_m: float = 0.44e-6
    l_switch_m: float = 0.18e-6
    open_resistors: bool = False
    i_errors: tuple[tuple[str, float], ...] = ()
    # first guess of K at full code (measured at 180 nm: K(+7) = 7.8e7 rad/s, Adler fit, first run)
    k_full_guess_rad_s: float = 7.8e7
    v_ov_src_v: float = 0.15  # the sources' overdrive: current mismatch 2 sigma(VTH) / V_ov
    cascode_gate_rel: float = 0.5  # NMOS output cascode's gate at this x VDD, the PMOS one's at 1 - this

    STRENGTH_KEY = "coupler_current_full_a"
    ENERGY_NOTE = "energy from the coupler supply plus the charge it sinks from the receiving node, x VDD"
    LOAD_NOTE = ("The coupler loads a ring only by the two steering-switch drains on the receiving node (and a "
                 "cell's p0 by its one shared tap buffer)")

    def __post_init__(self) -> None:
        _check_dac_words(self, ())
        if not self.i_lsb_a > 0:
            raise CellError(f"i_lsb_a must be > 0, not {self.i_lsb_a!r}")
        _check_dac_words(self, ("code", "reverse_code"))
        if isinstance(self.tap_stage, bool) or not isinstance(self.tap_stage, int) \
                or not 0 <= self.tap_stage < self.n_stages:
            raise CellError(f"tap_stage must be a ring stage 0..{self.n_stages - 1}, not {self.tap_stage!r}")

    @property
    def tap_lead_rad(self) -> float:
        """The phase the tap leads the sender's p0 by (0 for p0 itself)."""
        return 0.0 if self.tap_stage == 0 else (self.n_stages - self.tap_stage) * math.pi / self.n_stages

    @property
    def tap_inverted(self) -> bool:
        """Whether the tap is p0's complement (an odd number of stages from it)."""
        return self.tap_stage != 0 and (self.n_stages - self.tap_stage) % 2 == 1

    @property
    def max_code(self) -> int:
        return 2 ** (self.bits - 1) - 1

    @property
    def subckt_name(self) -> str:
        return f"un0_gmdac{self.bits}" + ("_off" if self.open_resistors else "")

    def with_code(self, code: int) -> GmCouplerDAC:
        return replace(self, code=code)

    def describe(self) -> str:
        back = "" if self.reverse_code is None else f", reverse {self.reverse_code:+d}"
        tap = "" if self.tap_stage == 0 else f", tap p{self.tap_stage}"
        return f"gm coupler DAC {self.bits} bits, code {self.code:+d}{back}{tap}"

    def summary(self) -> str:
        tap = ("p0" if self.tap_stage == 0 else
               f"p{self.tap_stage} (leads p0 by {math.degrees(self.tap_lead_rad):.0f} deg)")
        return (f"sign-magnitude current-steering (gm) DAC behind buffered taps of {tap} (i_lsb {self.i_lsb_a:g} A, "
                f"one-way injectors both ways)")

    def strength(self, code: int | None = None) -> float:
        """What K scales with from code to code: the injected current I(code), A."""
        code = self.code if code is None else code
        return abs(code) * self.i_lsb_a

    def k_guess_rad_s(self, code: int) -> float:
        return self.k_full_guess_rad_s * abs(code) / self.max_code

    def source_names(self) -> list[tuple[str, str, int]]:
        """(device, polarity, bit) of every bit current source of one injector."""
        return [(f"{pol[0]}s{i}", pol, i) for i in range(self.bits - 1) for pol in ("nmos", "pmos")]

    def mismatched(self, rng) -> GmCouplerDAC:
        """Every bit current drawn from Pelgrom: sigma(I)/I = sqrt((2 sigma_VTH / V_ov)^2 + sigma_beta^2)."""
        from hw.spice.process import sigma_beta_rel, sigma_vth_v

        errors = []
        for name, pol, bit in self.source_names():
            w = (self.wn_src_m if pol == "nmos" else self.wp_src_m) * 2**bit
            s = math.hypot(2 * sigma_vth_v(w, self.l_src_m, process=self.process) / self.v_ov_src_v,
                           sigma_beta_rel(w, self.l_src_m, process=self.process))
            errors.append((name, float(rng.normal(0.0, s))))
        return replace(self, i_errors=tuple(errors))

    def _diffusion(self, w_m: float) -> dict[str, float]:
        ld = self.process.l_diff_m
        area, perim = w_m * ld, 2 * (w_m + ld)
        return {"drain_area": area, "source_area": area, "drain_perimeter": perim, "source_perimeter": perim}

    def tap_subcircuit(self) -> SubCircuit:
        """Ports: p (the ring's p0), x (= p, buffered), xb (= not p), vddc, vss."""
        sub = SubCircuit(f"un0_gmtap_{self.process.key}", "p", "x", "xb", "vddc", "vss")
        pn, pp = self.process.nmos.name, self.process.pmos.name
        for k, (inp, out) in enumerate((("p", "xb"), ("xb", "x"))):
            sub.M(f"n{k}", out, inp, "vss", "vss", model=pn, w=self.wn_switch_m, l=self.l_switch_m,
                  **self._diffusion(self.wn_switch_m))
            sub.M(f"p{k}", out, inp, "vddc", "vddc", model=pp, w=self.wp_switch_m, l=self.l_switch_m,
                  **self._diffusion(self.wp_switch_m))
        return sub

    def subcircuit(self) -> SubCircuit:
        """One injector. Ports: g, gb (steering gate and its complement), out (the receiving
        node, through the bench's current probe), vddc, vss, vkn, vkp (the cascodes' gates: the
        tile's bias, or vss / vddc to cut the injector off its node), then the enables e0.. (static)."""
        m = self.bits - 1
        sub = SubCircuit(self.subckt_name, "g", "gb", "out", "vddc", "vss", "vkn", "vkp", *[f"e{i}" for i in range(m)])
        pn, pp = self.process.nmos.name, self.process.pmos.name
        errors = dict(self.i_errors)
        i_ref = 0.0 if self.open_resistors else self.i_lsb_a
        # references: the tile's bias current into an NMOS diode (nb) and out of a PMOS diode (pb)
        sub.I("rn", "vddc", "nb", i_ref)
        sub.M("dn", "nb", "nb", "vss", "vss", model=pn, w=self.wn_src_m, l=self.l_src_m, **self._diffusion(self.wn_src_m))
        sub.I("rp", "pb", "vss", i_ref)
        sub.M("dp", "pb", "pb", "vddc", "vddc", model=pp, w=self.wp_src_m, l=self.l_src_m,
              **self._diffusion(self.wp_src_m))
        for i in range(m):
            # the enable's complement for the PMOS switch, as in the resistor DAC
            sub.M(f"vn{i}", f"e{i}_b", f"e{i}", "vss", "vss", model=pn, w=self.wn_switch_m, l=self.l_switch_m)
            sub.M(f"vp{i}", f"e{i}_b", f"e{i}", "vddc", "vddc", model=pp, w=self.wp_switch_m, l=self.l_switch_m)
            wn = self.wn_src_m * 2**i * (1 + errors.get(f"ns{i}", 0.0))
            wp = self.wp_src_m * 2**i * (1 + errors.get(f"ps{i}", 0.0))
            sub.M(f"ns{i}", f"sn{i}", "nb", "vss", "vss", model=pn, w=wn, l=self.l_src_m, **self._diffusion(wn))
            sub.M(f"en{i}", "tn", f"e{i}", f"sn{i}", "vss", model=pn, w=self.wn_switch_m, l=self.l_switch_m,
                  **self._diffusion(self.wn_switch_m))
            sub.M(f"ps{i}", f"sp{i}", "pb", "vddc", "vddc", model=pp, w=wp, l=self.l_src_m, **self._diffusion(wp))
            sub.M(f"ep{i}", "tp", f"e{i}_b", f"sp{i}", "vddc", model=pp, w=self.wp_switch_m, l=self.l_switch_m,
                  **self._diffusion(self.wp_switch_m))
        # steering: g high -> the NMOS tail sinks from `out`, the PMOS tail dumps to vss;
        #           g low  -> the PMOS tail sources into `out`, the NMOS tail draws from vddc
        sw_n, sw_p = self._diffusion(self.wn_switch_m), self._diffusion(self.wp_switch_m)
        sub.M("on", "cn", "g", "tn", "vss", model=pn, w=self.wn_switch_m, l=self.l_switch_m, **sw_n)
        sub.M("dun", "cnd", "gb", "tn", "vss", model=pn, w=self.wn_switch_m, l=self.l_switch_m, **sw_n)
        sub.M("op", "cp", "g", "tp", "vddc", model=pp, w=self.wp_switch_m, l=self.l_switch_m, **sw_p)
        sub.M("dup", "cpd", "gb", "tp", "vddc", model=pp, w=self.wp_switch_m, l=self.l_switch_m, **sw_p)
        # cascodes at a fixed gate (the tile's bias, VDD/2 here) on both branches of each pair:
        # the receiving node sees the output cascodes' two drains only, the steering switches'
        # gate swing stays behind them, and the tail nodes sit at one voltage whichever branch
        # conducts (a dummy branch straight to the rail swung the tail by ~1 V, which the tail
        # current had to slew: measured, the injected current then lagged by most of half a period)
        sub.M("kn", "out", "vkn", "cn", "vss", model=pn, w=self.wn_switch_m, l=self.l_switch_m, **sw_n)
        sub.M("kdn", "vddc", "vkn", "cnd", "vss", model=pn, w=self.wn_switch_m, l=self.l_switch_m, **sw_n)
        sub.M("kp", "out", "vkp", "cp", "vddc", model=pp, w=self.wp_switch_m, l=self.l_switch_m, **sw_p)
        sub.M("kdp", "vss", "vkp", "cpd", "vddc", model=pp, w=self.wp_switch_m, l=self.l_switch_m, **sw_p)
        return sub

    def enable_levels(self, code: int | None = None) -> list[bool]:
        code = self.code if code is None else code
        return [bool(abs(code) >> i & 1) for i in range(self.bits - 1)]

    @staticmethod
    def probe_name(src: str, dst: str, tag: str = "") -> str:
        """The 0 V source that meters the current an injector puts into cell `dst` (its branch
        current is that current, positive into the cell)."""
        return f"gi_{src}{dst}{tag}"

    def add_to(self, circuit: Circuit, *, a: str, b: str, supply: str = "vddc", tag: str = "") -> None:
        """Add the two one-way injectors between cells whose top-level outputs are `{a}0..` and
        `{b}0..`, and each cell's tap buffer unless it has one (one per cell, `Xtap_{cell}`)."""
        names = {sub.name for sub in circuit.subcircuits}
        tap = self.tap_subcircuit()
        if tap.name not in names:
            circuit.subcircuit(tap)
        if self.subckt_name not in names:
            circuit.subcircuit(self.subcircuit())
        for cell in (a, b):
            try:
                circuit.element(f"Xtap_{cell}")
            except KeyError:
                circuit.X(f"tap_{cell}", tap.name, f"{cell}{self.tap_stage}", f"{cell}_x", f"{cell}_xb", supply,
                          circuit.gnd)
        back = self.code if self.reverse_code is None else self.reverse_code
        try:  # the cascodes' bias, one pair of levels for every injector in the bench
            circuit.element("Vgm_kn")
        except KeyError:
            circuit.V("gm_kn", "gm_kn", circuit.gnd, self.process.vdd_v * self.cascode_gate_rel)
            circuit.V("gm_kp", "gm_kp", circuit.gnd, self.process.vdd_v * (1 - self.cascode_gate_rel))
        for src, dst, code in ((a, b, self.code), (b, a, back)):
            g, gb = (f"{src}_xb", f"{src}_x") if (code >= 0) != self.tap_inverted else (f"{src}_x", f"{src}_xb")
            probe = self.probe_name(src, dst, tag)
            ens = [supply if on else circuit.gnd for on in self.enable_levels(code)]
            # code 0, or coupling off: the cascodes are cut off (gates to the rails), so the
            # steering switches' gate swing cannot pump charge through the floating tails into
            # the node (measured: with the cascodes biased, a code-0 injector locked a pair
            # detuned by 4 K(1)); the node keeps the cascode drains' load
            cut = code == 0 or self.open_resistors
            kn, kp = (circuit.gnd, supply) if cut else ("gm_kn", "gm_kp")
            circuit.X(f"g_{src}{dst}{tag}", self.subckt_name, g, gb, f"{probe}_n", supply, circuit.gnd, kn, kp, *ens)
            circuit.V(probe, f"{probe}_n", f"{dst}0", 0)

    def probes(self, a: str = "a", b: str = "b", tag: str = "") -> tuple[str, str]:
        return self.probe_name(a, b, tag), self.probe_name(b, a, tag)

    def power_w(self, tr, *, a: str = "a", b: str = "b"):
        """Power the coupler costs over a transient of `pair_bench`: VDD x (the current it draws
        from its supply `vddc` + the current it sinks from the receiving nodes, which their
        rings' supply put there)."""
        import numpy as np

        vdd = self.process.vdd_v
        p = vdd * -tr.i("vddc")
        for probe in self.probes(a, b):
            p = p + vdd * np.maximum(-tr.i(f"v{probe}"), 0.0)
        return p

    def device_count(self) -> dict[str, float]:
        """Area proxy of one coupler, both injectors: transistors and their drawn gate area
        (m²), and resistor area (none). The per-cell tap buffer (4 devices) is shared by the
        cell's whole fan-out and left out."""
        m = self.bits - 1
        w_sw, w_src = self.wn_switch_m + self.wp_switch_m, self.wn_src_m + self.wp_src_m
        # reference diodes 2, per bit: enable inverter 2, sources 2, enable switches 2; steering 4, cascodes 4
        per_injector = 2 + 6 * m + 4 + 4
        gate = w_src * self.l_src_m * (1 + (2**m - 1)) + w_sw * self.l_switch_m * (2 * m + 2 + 2)
        return {"transistors": 2 * per_injector, "gate_area_m2": 2 * gate, "resistor_area_m2": 0.0}

def dac_for(process: Process | str, *, n_stages: int = 5) -> CouplerDAC:
    """The resistor coupler DAC sized for a process (a `Process` or its registry name).

    generic180: the defaults above. ptm45: switches NMOS 0.09/0.045 um and PMOS 0.18/0.045 um
    (R_on ~ 10-20 kOhm, a few % of the smallest resistor); r_lsb 1.0 MOhm. Why 1.0 MOhm: a
    coupler's K relative to the carrier scales as G / (2 pi f0 C_node); at 45 nm the cell's
    2 pi f0 C_node (2.5 GHz x 2.2 fF = 3.5e-5 S) is ~1.3x the 180 nm cell's (2.7e-5 S), so
    1.4 MOhm / 1.3 ~ 1.0 MOhm keeps K_max at a few % of the carrier (measured: K(+7) = 4.95e8
    rad/s, 3.1 % of 2 pi f0, with a 2 x 143 kOhm full code; hence the K guess 3.5e8 rad/s for
    a 100 kOhm resistor).
    """
    process = process_named(process) if isinstance(process, str) else process
    if process.key == "generic180":
        return CouplerDAC(n_stages=n_stages, process=process)
    if process.key == "ptm45":
        return CouplerDAC(n_stages=n_stages, process=process, r_lsb_ohm=1.0e6, wn_switch_m=0.09e-6,
                          wp_switch_m=0.18e-6, l_switch_m=45e-9, k_ref_rad_s=3.5e8)
    raise CellError(f"no coupler DAC is sized for process {process.key!r}")


def gm_dac_for(process: Process | str, *, n_stages: int = 5) -> GmCouplerDAC:
    """The gm (current-steering) coupler sized for a process.

    generic180: the defaults above. ptm45: unit sources NMOS 0.2/0.2 um and PMOS 0.5/0.2 um
    (V_ov ~ 0.15 V at 1 uA), switches and buffers at 0.09/0.045 um and 0.18/0.045 um.
    """
    process = process_named(process) if isinstance(process, str) else process
    if process.key == "generic180":
        return GmCouplerDAC(n_stages=n_stages, process=process)
    if process.key == "ptm45":
        return GmCouplerDAC(n_stages=n_stages, process=process, wn_src_m=0.2e-6, wp_src_m=0.5e-6, l_src_m=0.2e-6,
                            wn_switch_m=0.09e-6, wp_switch_m=0.18e-6, l_switch_m=45e-9, k_full_guess_rad_s=2.4e8)
    raise CellError(f"no gm coupler is sized for process {process.key!r}")


#: the couplers by name: `un0hw cells characterize --coupler NAME`
COUPLERS = ("resistive", "gm")


def coupler_for(process: Process | str, kind: str = "resistive", *, n_stages: int = 5,
                gm_tap: int = 0) -> CouplerDAC | GmCouplerDAC:
    """The coupler DAC of `kind` ("resistive" or "gm") sized for a process; `gm_tap`: the gm
    coupler's tap stage (`GmCouplerDAC.tap_stage`; the resistor DAC has none)."""
    if kind == "resistive":
        if gm_tap:
            raise CellError(f"gm_tap {gm_tap!r} goes with the gm coupler; the resistor DAC joins the p0 nodes")
        return dac_for(process, n_stages=n_stages)
    if kind == "gm":
        return replace(gm_dac_for(process, n_stages=n_stages), tap_stage=gm_tap)
    raise CellError(f"coupler must be one of {', '.join(COUPLERS)}, not {kind!r}")


Coupler = ResistiveCoupler | CouplerDAC | GmCouplerDAC


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
    dac = dac or dac_for(osc.process, n_stages=osc.n_stages)
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


def noise_lines(nodes: list[str], *, psd_a2_per_hz: float, sample_s: float, seed_tag: str = "n",
                flicker_a2: float = 0.0) -> tuple[str, ...]:
    """Current-noise sources (ngspice `trnoise`) from each node to ground: white, plus 1/f.

    White: `trnoise(NA NT ...)` holds a new Gaussian value of rms NA every NT seconds, a white
    one-sided PSD of 2 NA^2 NT up to ~1/(2 NT). So NA = sqrt(PSD / (2 NT)) for the requested
    one-sided current PSD (A^2/Hz).

    Flicker: `flicker_a2` is K of a one-sided PSD K / f (A^2). ngspice draws 1/f^alpha noise
    (alpha = 1 here) of amplitude NAMP; its one-sided PSD measured in ngspice 39 is
    NAMP^2 / (pi f) (`tests/hw/test_flicker.py` checks slope and level), so NAMP = sqrt(pi K).
    Lines go into `deck(extra_lines=...)`.
    """
    if not (psd_a2_per_hz >= 0 and sample_s > 0 and flicker_a2 >= 0):
        raise CellError(f"need psd_a2_per_hz >= 0, sample_s > 0 and flicker_a2 >= 0, got {psd_a2_per_hz!r}, "
                        f"{sample_s!r}, {flicker_a2!r}")
    na = math.sqrt(psd_a2_per_hz / (2 * sample_s))
    alpha, namp = (1, math.sqrt(math.pi * flicker_a2)) if flicker_a2 > 0 else (0, 0)
    return tuple(f"I{seed_tag}{k} {node} 0 dc 0 trnoise({na:.6g} {sample_s:.6g} {alpha} {namp:.6g})"
                 for k, node in enumerate(nodes))
