"""The gm coupler (buffered taps, current-steering DAC): its settings, its netlist, and in
ngspice that it couples both signs, one way when asked (K_ij != K_ji), and loads the ring
far less per attached coupler than the resistor DAC. The ngspice tests are slow: --runslow."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hw.spice import run

_REASON = run.unavailable_reason()
needs_ngspice = pytest.mark.skipif(_REASON is not None, reason=f"ngspice-shared unavailable: {_REASON}")
cells = pytest.importorskip("hw.spice.cells")

# The resistor DAC lowers a 180 nm cell's f0 by ~20 % per attached coupler (docs/cells.md);
# the gm coupler puts two switch drains on the receiving node and one shared buffer on the
# sender: its shift must be measurably smaller — a third of the resistor's at most.
GM_SHIFT_MAX_OF_RESISTIVE = 1 / 3
LOCK_TOL_DEG = 15.0  # locked pairs settle within this of 0 / 180 deg (the coupler's lag sits inside)


def test_gm_settings_are_checked():
    with pytest.raises(cells.CellError, match=r"^code must be an integer in -7\.\.7 \(4-bit sign-magnitude\), not 8$"):
        cells.GmCouplerDAC(code=8)
    with pytest.raises(cells.CellError, match=r"^reverse_code must be an integer in -7\.\.7"):
        cells.GmCouplerDAC(code=1, reverse_code=-9)
    with pytest.raises(cells.CellError, match=r"^i_lsb_a must be > 0, not 0$"):
        cells.GmCouplerDAC(i_lsb_a=0)
    with pytest.raises(cells.CellError, match=r"^coupler must be one of resistive, gm, not 'rc'$"):
        cells.coupler_for("generic180", "rc")
    g = cells.gm_dac_for("ptm45").with_code(-5)
    assert g.strength() == pytest.approx(5 * g.i_lsb_a) and g.process.key == "ptm45"


def test_gm_netlist_has_one_tap_per_cell_and_a_probe_per_direction():
    osc = cells.RingOscillator()
    gm = cells.gm_dac_for("generic180")
    bench = cells.array_bench(osc, vctrl_v=[1.0, 1.0, 1.0], couplings={(0, 1): 3}, dac=gm,
                              loads=[(0, 2, 4), (0, 2, 4)])
    names = [e.name for e in bench.elements]
    assert sorted(n for n in names if n.startswith("Xtap")) == ["Xtap_n0_", "Xtap_n1_", "Xtap_n2_"]
    probes = [n for n in names if n.startswith("Vgi_")]
    assert len(probes) == 2 * 3  # one coupler and two loads, each two one-way injectors
    text = str(bench)
    assert "un0_gmdac4_off" in text  # the loads' drive is off (reference currents 0)
    # K_ij != K_ji is a setting: the reverse injector gets its own enables
    one_way = cells.pair_bench(osc, dataclasses.replace(gm, code=7, reverse_code=0), vctrl_a_v=1.0, vctrl_b_v=1.0)
    lines = [ln for ln in str(one_way).splitlines() if ln.startswith("Xg_")]
    assert lines[0].split()[-4:-1] == ["vddc", "vddc", "vddc"] and lines[1].split()[-4:-1] == ["0", "0", "0"]
    assert lines[0].split()[6:8] == ["gm_kn", "gm_kp"] and lines[1].split()[6:8] == ["0", "vddc"]  # code 0: cut off


def test_the_tap_stage_leads_p0_and_keeps_the_sign_convention():
    import math

    osc = cells.RingOscillator()
    with pytest.raises(cells.CellError, match=r"^tap_stage must be a ring stage 0\.\.4, not 5$"):
        cells.GmCouplerDAC(tap_stage=5)
    with pytest.raises(cells.CellError, match=r"^gm_tap 4 goes with the gm coupler"):
        cells.coupler_for("generic180", "resistive", gm_tap=4)
    leads = {k: cells.GmCouplerDAC(tap_stage=k) for k in range(5)}
    assert [round(math.degrees(g.tap_lead_rad)) for g in leads.values()] == [0, 144, 108, 72, 36]
    assert [g.tap_inverted for g in leads.values()] == [False, False, True, False, True]
    steering = {}
    for k in (0, 4, 3):
        gm = cells.coupler_for("generic180", "gm", gm_tap=k).with_code(5)
        lines = str(cells.pair_bench(osc, gm, vctrl_a_v=1.0, vctrl_b_v=1.0)).splitlines()
        tap_a = next(ln for ln in lines if ln.startswith("Xtap_a"))
        assert tap_a.split()[1] == f"a{k}"  # the buffer reads the sender's stage k
        steering[k] = next(ln for ln in lines if ln.startswith("Xg_ab")).split()[1]
    # c > 0 steers by p0's complement; p4 is p0's complement (one stage before it), p3 is not
    assert steering == {0: "a_xb", 4: "a_x", 3: "a_xb"}


@needs_ngspice
@pytest.mark.slow
def test_gm_f0_shift_per_attached_coupler_is_smaller_than_the_resistor_dacs():
    from hw.measure import measure_fanout_loading

    osc = cells.RingOscillator()
    res = measure_fanout_loading(osc, cells.coupler_for("generic180", "resistive"), m_max=2)
    gm = measure_fanout_loading(osc, cells.coupler_for("generic180", "gm"), m_max=2)
    assert np.all(np.isfinite(gm.f_hz)) and res.shift_per_coupler_rel > 0.05  # the resistor DAC loads (~20 %)
    assert abs(gm.shift_per_coupler_rel) < GM_SHIFT_MAX_OF_RESISTIVE * res.shift_per_coupler_rel, (gm, res)


@needs_ngspice
@pytest.mark.slow
@pytest.mark.parametrize("code, target_deg", [(7, 0.0), (-7, 180.0)])
def test_gm_pair_locks_in_phase_and_anti_phase(code, target_deg):
    from hw.measure import measure_pair

    osc = cells.RingOscillator()
    m = measure_pair(osc, cells.gm_dac_for("generic180").with_code(code), vctrl_a_v=1.0,
                     b_offset_stages=1 if code > 0 else 3, cycles=40)
    off = abs(np.degrees(np.angle(np.exp(1j * (m.final_psi_rad - np.radians(target_deg))))))
    assert off < LOCK_TOL_DEG and np.degrees(m.psi_spread_rad) < 5, (np.degrees(m.final_psi_rad), m.psi_spread_rad)


@needs_ngspice
@pytest.mark.slow
def test_gm_coupler_can_couple_one_way():
    """K_ij != K_ji: with the reverse injector at code 0, the coupler drives b from a and
    (almost) not a from b — the coupling function into each cell says so."""
    from hw.measure import measure_coupling_function, measure_ring

    osc = cells.RingOscillator()
    dac = dataclasses.replace(cells.gm_dac_for("generic180"), reverse_code=0)
    v = osc.vctrl_nominal_v
    f0 = measure_ring(osc, vctrl_v=v).f0_hz
    kvco = (measure_ring(osc, vctrl_v=v + 0.02).f0_hz - measure_ring(osc, vctrl_v=v - 0.02).f0_hz) / 0.04
    m = measure_coupling_function(osc, code=7, carrier_hz=0.93 * f0, kvco_hz_per_v=kvco, k_guess_rad_s=dac.k_guess_rad_s(7),
                                  dac=dac, slips=3.0)
    a1_into_b, a1_into_a = m.b.coef[1], m.a.coef[1]
    assert a1_into_b > 0  # in phase: a pulls b towards itself
    assert abs(a1_into_a) < 0.1 * a1_into_b, (m.a.coef, m.b.coef)
