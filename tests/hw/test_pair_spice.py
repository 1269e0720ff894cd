"""Two ring cells joined by a resistive coupler in ngspice: the sign picks the locked phase.

Positive coupling (like nodes tied) must lock in phase, negative (a node tied to the
complementary one) in anti-phase, each from a start far from that phase. The phase
difference is taken from zero crossings, psi = theta_B - theta_A per cycle of A.
"""

from __future__ import annotations

import numpy as np
import pytest

from hw.spice import run

_REASON = run.unavailable_reason()
pytestmark = pytest.mark.skipif(_REASON is not None, reason=f"ngspice-shared unavailable: {_REASON}")

R_COUPLER_OHM = 100e3  # weak enough that locking takes several cycles (visible pull-in)
LOCK_TOL_RAD = np.radians(10)  # final psi within 10 deg of 0 or pi
SPREAD_TOL_RAD = np.radians(5)  # circular std of psi over the last 8 cycles: locked, not drifting
PULL_MIN_RAD = np.radians(60)  # the start was at least this far from the locked phase


def _circ_dist(a: float, b: float) -> float:
    return float(abs(np.angle(np.exp(1j * (a - b)))))


@pytest.mark.parametrize(
    ("sign", "target_rad", "b_offset_stages"),
    [(+1, 0.0, 1), (-1, np.pi, 3)],  # offsets chosen so psi starts ~ -130 deg / ~ -90 deg
    ids=["positive-in-phase", "negative-anti-phase"],
)
def test_coupler_sign_sets_in_phase_or_anti_phase_lock(sign, target_rad, b_offset_stages):
    from hw.measure import measure_pair
    from hw.spice.cells import ResistiveCoupler, RingOscillator

    osc = RingOscillator()
    m = measure_pair(osc, ResistiveCoupler(r_ohm=R_COUPLER_OHM, sign=sign), vctrl_a_v=1.0,
                     b_offset_stages=b_offset_stages)
    assert _circ_dist(m.psi_rad[0], target_rad) > PULL_MIN_RAD, np.degrees(m.psi_rad[:5])
    assert _circ_dist(m.final_psi_rad, target_rad) < LOCK_TOL_RAD, np.degrees(m.psi_rad)
    assert m.psi_spread_rad < SPREAD_TOL_RAD
    assert m.f_a_hz == pytest.approx(m.f_b_hz, rel=1e-3)  # locked: one common frequency


def test_coupler_settings_are_checked():
    from hw.spice.cells import CellError, ResistiveCoupler

    with pytest.raises(CellError, match=r"^sign must be \+1 or -1, not 0$"):
        ResistiveCoupler(r_ohm=1e3, sign=0)
    with pytest.raises(CellError, match=r"^r_ohm must be > 0, not 0$"):
        ResistiveCoupler(r_ohm=0, sign=1)


def test_detuned_beyond_the_locking_range_drifts():
    # B's control 0.4 V above A's: ~ +50 % in f0, far outside what 100 kOhm can pull.
    from hw.measure import measure_pair
    from hw.spice.cells import ResistiveCoupler, RingOscillator

    m = measure_pair(RingOscillator(), ResistiveCoupler(r_ohm=R_COUPLER_OHM, sign=+1), vctrl_a_v=1.0,
                     vctrl_b_v=1.4)
    assert m.f_b_hz > 1.2 * m.f_a_hz  # no common frequency
    assert m.psi_spread_rad > 4 * SPREAD_TOL_RAD  # psi slips round the circle (62 deg measured)
