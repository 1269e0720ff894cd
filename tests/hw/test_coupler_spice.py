"""The coupler DAC in ngspice: the sign picks the locked phase, K_eff grows with the code,
the Adler fit describes the drift, and the coupler's energy is the resistive V^2 G T it must be.

Skipped, with the reason, only where PySpice or libngspice is absent.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from hw.spice import run
from hw.tools import find_tool

_REASON = run.unavailable_reason()
pytestmark = pytest.mark.skipif(_REASON is not None, reason=f"ngspice-shared unavailable: {_REASON}")

VCTRL_V = 1.0
LOCK_TOL_RAD = np.radians(10)  # final psi within 10 deg of 0 or pi
SPREAD_TOL_RAD = np.radians(5)  # circular std of psi over the last 8 cycles: locked
PULL_MIN_RAD = np.radians(60)  # the start was at least this far from the locked phase
# |K(-c)| vs K(+c): the complementary paths are trimmed to match (CouplerDAC.r_neg_trim);
# what is left is the waveform-shape difference of the two node pairs.
SIGN_MATCH_REL = 0.15
# Adler fit: the residual of the 3-harmonic fit, relative to 2K; 0.09 measured on the worst code.
RESIDUAL_MAX = 0.2
# Coupler energy per cycle vs V^2 G T (both paths' conductance G at full code, one period T):
# two rail-to-rail square waves differ by VDD for |psi|/pi of a cycle, 1/2 on average over a
# uniform psi; finite edges and the swing's droop under the load lower it (0.29 measured).
COUPLER_ENERGY_WINDOW = (0.1, 0.6)


def _circ_dist(a: float, b: float) -> float:
    return float(abs(np.angle(np.exp(1j * (a - b)))))


@pytest.fixture(scope="module")
def osc():
    from hw.spice.cells import RingOscillator

    return RingOscillator()


@pytest.fixture(scope="module")
def kvco(osc):
    from hw.measure import measure_ring

    return (measure_ring(osc, vctrl_v=VCTRL_V + 0.02).f0_hz - measure_ring(osc, vctrl_v=VCTRL_V - 0.02).f0_hz) / 0.04


def _coupling(osc, kvco, code, k_guess):
    from hw.measure import measure_coupling
    from hw.spice.cells import CouplerDAC

    vb = VCTRL_V + 4 * k_guess / (2 * math.pi * kvco)  # lone-cell detuning 4K: a drift, Dw/2K ~ 1.5 loaded
    return measure_coupling(osc, CouplerDAC(code=code), vctrl_a_v=VCTRL_V, vctrl_b_v=vb, k_guess_rad_s=k_guess)


@pytest.mark.parametrize(("code", "target_rad", "b_offset_stages"), [(7, 0.0, 1), (-7, np.pi, 3)],
                         ids=["positive-in-phase", "negative-anti-phase"])
def test_dac_sign_sets_in_phase_or_anti_phase_lock(osc, code, target_rad, b_offset_stages):
    from hw.measure import measure_pair
    from hw.spice.cells import CouplerDAC

    m = measure_pair(osc, CouplerDAC(code=code), vctrl_a_v=VCTRL_V, b_offset_stages=b_offset_stages)
    assert _circ_dist(m.psi_rad[0], target_rad) > PULL_MIN_RAD, np.degrees(m.psi_rad[:5])
    assert _circ_dist(m.final_psi_rad, target_rad) < LOCK_TOL_RAD, np.degrees(m.psi_rad)
    assert m.psi_spread_rad < SPREAD_TOL_RAD
    assert m.f_a_hz == pytest.approx(m.f_b_hz, rel=1e-3)


def test_dac_detuned_beyond_the_locking_range_drifts(osc, kvco):
    # Lone-cell detuning 4 x 1.2e8 rad/s, about 2x the full code's locking range 2K.
    from hw.measure import measure_pair
    from hw.spice.cells import CouplerDAC

    vb = VCTRL_V + 4 * 1.2e8 / (2 * math.pi * kvco)
    m = measure_pair(osc, CouplerDAC(code=7), vctrl_a_v=VCTRL_V, vctrl_b_v=vb, cycles=60, tail_cycles=30)
    assert m.f_b_hz > m.f_a_hz * 1.02  # no common frequency
    assert m.psi_spread_rad > 4 * SPREAD_TOL_RAD


def test_code_zero_does_not_couple_and_sign_flips_k(osc, kvco):
    k7, k_7 = _coupling(osc, kvco, 7, 1.2e8), _coupling(osc, kvco, -7, 1.2e8)
    assert k7.fit.k_rad_s > 0 > k_7.fit.k_rad_s
    assert abs(k_7.fit.k_rad_s) == pytest.approx(k7.fit.k_rad_s, rel=SIGN_MATCH_REL)
    assert k7.fit.residual_rel < RESIDUAL_MAX and k_7.fit.residual_rel < RESIDUAL_MAX
    # the Adler picture: the fitted pull is a sine, higher harmonics under 20 % of it
    assert max(k7.fit.harmonics) < 0.2
    k0 = _coupling(osc, kvco, 0, 2e7)
    assert abs(k0.fit.k_rad_s) < 0.01 * k7.fit.k_rad_s


def test_coupler_energy_is_the_resistive_v2_g_t(osc, kvco):
    from hw.spice.cells import CouplerDAC

    m = _coupling(osc, kvco, 7, 1.2e8)
    dac = CouplerDAC(code=7)
    g_total = 2 * dac.path_conductance_s()
    bound = osc.process.vdd_v**2 * g_total * m.period_s
    lo, hi = COUPLER_ENERGY_WINDOW
    assert lo * bound < m.coupler_energy_per_cycle_j < hi * bound, m.coupler_energy_per_cycle_j / bound
    assert m.coupler_energy_per_cycle_j <= m.coupler_energy_max_j <= bound


@pytest.mark.slow
def test_k_eff_is_monotone_and_about_linear_in_the_code(osc, kvco):
    ks = []
    k_guess = 1.2e8
    for code in range(7, 0, -1):
        m = _coupling(osc, kvco, code, k_guess)
        ks.append(m.fit.k_rad_s)
        assert m.fit.residual_rel < RESIDUAL_MAX, (code, m.fit.residual_rel)
        k_guess = m.fit.k_rad_s * (code - 1) / code if code > 1 else k_guess
    ks = np.array(ks[::-1])  # codes 1..7
    assert np.all(np.diff(ks) > 0), ks
    # a binary-weighted conductance DAC: K(c) ~ c K(1), within 25 % (the load saturates it a little)
    np.testing.assert_allclose(ks / (np.arange(1, 8) * ks[0]), 1.0, atol=0.25)


@pytest.mark.slow
def test_jitter_grows_as_the_square_root_of_the_noise_psd(osc):
    from hw.measure import measure_jitter

    one = measure_jitter(osc, vctrl_v=VCTRL_V, cycles=200, seed=3)
    four = measure_jitter(osc, vctrl_v=VCTRL_V, cycles=200, seed=4, noise_scale=4.0)
    assert one.net_s > 5 * one.floor_s  # the noise, not the integrator, sets the jitter
    # white current noise: sigma_T ~ sqrt(PSD); 200 periods give sigma of sigma ~ 5 %, so 20 %
    assert four.net_s / one.net_s == pytest.approx(2.0, rel=0.2)
    # a few ps on a 2.6 ns period: 180 nm-class rings sit at 1e-4 .. 1e-3 of the period
    assert 1e-4 < one.net_s / one.period_s < 1e-3


def test_dac_settings_are_checked():
    from hw.spice.cells import CellError, CouplerDAC

    with pytest.raises(CellError, match=r"^code must be an integer in -7\.\.7 \(4-bit sign-magnitude\), not 8$"):
        CouplerDAC(code=8)
    with pytest.raises(CellError, match=r"^bits must be an integer in 2\.\.10, not 1$"):
        CouplerDAC(bits=1)
    dac = CouplerDAC(code=-5)
    assert dac.enable_levels() == {"ep0": False, "ep1": False, "ep2": False, "en0": True, "en1": False, "en2": True}
    assert dac.path_conductance_s(5) == pytest.approx(5 / dac.r_lsb_ohm)
    assert "Rp0a m_p0a k_p0a" in str(dac.subcircuit())


def test_dac_pair_deck_runs_in_batch_ngspice(osc, tmp_path):
    # The .cir a circuit designer gets: the two rings, the DAC subcircuit and its code tie-offs.
    import re
    import subprocess

    from hw.measure import measure_pair
    from hw.spice.cells import CouplerDAC, deck, pair_bench, pair_kick, period_measure_lines, write_cir

    locked = measure_pair(osc, CouplerDAC(code=7), vctrl_a_v=VCTRL_V, b_offset_stages=1)
    period_s = 1 / locked.f_a_hz
    text = deck(pair_bench(osc, CouplerDAC(code=7), vctrl_a_v=VCTRL_V, vctrl_b_v=VCTRL_V), step_s=period_s / 100,
                stop_s=30 * period_s, ic=pair_kick(osc, b_offset_stages=1),
                extra_lines=period_measure_lines("a0", osc.process.vdd_v / 2, first_rise=20))
    path = tmp_path / "pair.cir"
    write_cir(text, path)
    assert ".subckt un0_cdac4 " in text and "Xc_ab a0 a1 b0 b1 vddc 0 vddc vddc vddc 0 0 0 un0_cdac4" in text
    exe = find_tool("ngspice")
    if exe is None:
        pytest.skip("the ngspice command-line program is not on PATH (only the shared library is)")
    done = subprocess.run([exe, "-b", str(path)], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r"^tper_s\s*=\s*([-+0-9.eE]+)", done.stdout, re.MULTILINE)
    assert found, done.stdout[-2000:]
    # the locked pair's common frequency, through batch ngspice and through the shared library
    assert 1 / float(found.group(1)) == pytest.approx(locked.f_a_hz, rel=0.01)
