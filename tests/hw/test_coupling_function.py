"""The coupling function of a coupler, fitted on each cell's own phase velocity.

Without SPICE: phase records of two cells integrated from a known H (scipy, tight tolerance)
must give back H's coefficients, and the window-integrated regression must remove the sinc
bias that a point-value regression has. With SPICE (slow): the resistive DAC's H has the
even part and lag this project measured (docs/cells.md).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from hw.measure import CharacterizeError, fit_coupling_function

H_TRUE = np.array([0.8, 1.0, -0.7, 0.03, 0.02, 0.04, -0.03]) * 1e8  # b0, a1, b1, a2, b2, a3, b3 (rad/s)
W = 2 * np.pi * 300e6


def _h(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    return c[0] + sum(c[2 * k - 1] * np.sin(k * x) + c[2 * k] * np.cos(k * x) for k in (1, 2, 3))


def _pair(detune: float, coef_a=H_TRUE, coef_b=H_TRUE, cycles: int = 120):
    wa, wb = W - detune / 2, W + detune / 2

    def rhs(_t, y):
        return [wa + _h(y[1] - y[0], coef_a), wb + _h(y[0] - y[1], coef_b)]

    t = np.linspace(0, cycles / 300e6, cycles * 40)
    sol = solve_ivp(rhs, (t[0], t[-1]), [0.0, 2.0], t_eval=t, rtol=1e-11, atol=1e-9, method="DOP853")
    return t, sol.y[0], sol.y[1], wa, wb


@pytest.mark.parametrize("detune", [3.2e8, 6e8])
def test_the_fit_returns_the_coupling_function_of_each_cell(detune) -> None:
    other = H_TRUE * np.array([1.1, 0.9, 1.2, 1, 1, 1, 1])  # the two cells' H may differ (loads)
    t, tha, thb, wa, wb = _pair(detune, H_TRUE, other)
    period = 1 / 300e6
    fa = fit_coupling_function(t, tha, t, thb, period_s=period, omega_open_rad_s=wa)
    fb = fit_coupling_function(t, thb, t, tha, period_s=period, omega_open_rad_s=wb)
    assert np.asarray(fa.coef) == pytest.approx(H_TRUE, abs=2e-3 * 1e8)
    assert np.asarray(fb.coef) == pytest.approx(other, abs=2e-3 * 1e8)
    assert fa.residual_rel < 1e-3 and fa.coverage == 1.0
    assert fa.lag_rad == pytest.approx(np.arctan2(0.7, 1.0), abs=3e-3)
    # what a point-value regression would have shrunk: sinc(k ẋ T/2) < 1, more for higher k
    assert 0.0 < fa.window_bias[2] < fa.window_bias[1] < fa.window_bias[0] < 1.0


def test_a_point_value_fit_is_biased_and_this_one_is_not() -> None:
    t, tha, thb, wa, _ = _pair(9e8)
    period = 1 / 300e6
    fit = fit_coupling_function(t, tha, t, thb, period_s=period, omega_open_rad_s=wa)
    # the naive regression: windowed velocity against sin kx, cos kx at the window's centre
    grid = np.arange(t[0] + period, t[-1] - period, period / 4)
    y = (np.interp(grid + period / 2, t, tha) - np.interp(grid - period / 2, t, tha)) / period
    x = np.interp(grid, t, thb) - np.interp(grid, t, tha)
    X = np.stack([np.ones_like(x)] + [f(k * x) for k in (1, 2, 3) for f in (np.sin, np.cos)], axis=1)
    naive, *_ = np.linalg.lstsq(X, y, rcond=None)
    c3_true, c3_naive = np.hypot(H_TRUE[5], H_TRUE[6]), np.hypot(naive[5], naive[6])
    c3_fit = np.hypot(fit.coef[5], fit.coef[6])
    assert abs(c3_naive / c3_true - 1) > 0.2 and abs(c3_fit / c3_true - 1) < 0.02
    assert fit.window_bias[2] < 0.8  # the fit says how much a point-value fit would have lost


def test_a_locked_pair_is_refused() -> None:
    t, tha, thb, wa, _ = _pair(2e7)  # far inside the locking range: ψ does not move
    with pytest.raises(CharacterizeError, match="did not drift; detune it further"):
        fit_coupling_function(t, tha, t, thb, period_s=1 / 300e6, omega_open_rad_s=wa)


@pytest.mark.slow
def test_the_resistive_dac_has_an_even_part_and_a_lag() -> None:
    from hw.spice import run

    if run.unavailable_reason():
        pytest.skip(f"ngspice unavailable: {run.unavailable_reason()}")
    from hw.measure import measure_coupling_function, measure_ring
    from hw.spice.cells import RingOscillator

    osc = RingOscillator()
    kvco = (measure_ring(osc, vctrl_v=1.05).f0_hz - measure_ring(osc, vctrl_v=0.95).f0_hz) / 0.1
    m1 = measure_coupling_function(osc, code=4, carrier_hz=302.8e6, kvco_hz_per_v=kvco, k_guess_rad_s=6.7e7, slips=3)
    for fit in (m1.a, m1.b):
        b0, a1 = fit.coef[:2]
        assert 5e7 < a1 < 8e7 and 0.6 < b0 / a1 < 0.9 and 0.5 < fit.lag_rad < 0.75
        assert fit.residual_rel < 0.1 and max(abs(c) for c in fit.coef[3:]) < 0.06 * a1
    assert m1.closing_shift_hz[0] == pytest.approx(m1.a.coef[0] / (2 * np.pi))
    loaded = measure_coupling_function(osc, code=-4, carrier_hz=302.8e6, kvco_hz_per_v=kvco, k_guess_rad_s=5e7,
                                       m_a=3, slips=3)
    a1 = loaded.a.coef[1]
    assert a1 < 0 and abs(a1) < 0.85 * abs(m1.a.coef[1])  # three couplers on the cell: a weaker fundamental
    assert loaded.a.coef[0] > 0  # b0 > 0 for a negative code too
