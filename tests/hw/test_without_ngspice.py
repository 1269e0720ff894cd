"""What needs no ngspice: hw.measure on signals with exact answers, import hygiene, and
the error when libngspice is missing."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from hw.measure import (
    CharacterizeError,
    energy_per_cycle_j,
    fit_tuning,
    frequency_hz,
    phase_difference_rad,
    rising_crossings,
)

F_HZ = 123.4e6
PHASE_RAD = 0.7
POINTS_PER_PERIOD = 100
# Linear interpolation across a sine's crossing errs by O((w h)^3) of a period at the
# crossing: (2 pi / 100)^3 / 6 ~ 4e-5 of a period is the bound; 1e-4 leaves margin.
CROSSING_TOL_PERIODS = 1e-4


def _sine(cycles: int = 20, level: float = 0.9, amplitude: float = 0.8):
    t = np.arange(cycles * POINTS_PER_PERIOD) / (F_HZ * POINTS_PER_PERIOD)
    return t, level + amplitude * np.sin(2 * np.pi * F_HZ * t + PHASE_RAD)


def test_rising_crossings_match_the_analytic_sine():
    t, x = _sine()
    c = rising_crossings(t, x, level=0.9)
    # sin(2 pi f t + phi) rises through 0 at t_k = (k - phi / 2 pi) / f, k = 1, 2, ...
    k = np.arange(1, c.size + 1)
    exact = (k - PHASE_RAD / (2 * np.pi)) / F_HZ
    assert c.size == 20  # one per period: the phase puts each crossing inside the window
    np.testing.assert_allclose(c, exact, rtol=0, atol=CROSSING_TOL_PERIODS / F_HZ)


def test_frequency_from_zero_crossings_of_a_sine():
    t, x = _sine()
    assert frequency_hz(t, x, level=0.9, skip_cycles=2) == pytest.approx(F_HZ, rel=CROSSING_TOL_PERIODS)


def test_frequency_needs_enough_cycles():
    t, x = _sine(cycles=3)
    with pytest.raises(CharacterizeError, match=r"^need >= 3 whole cycles after skipping 2, got 0$"):
        frequency_hz(t, x, level=0.9, skip_cycles=2)


def test_energy_per_cycle_of_a_dc_plus_ripple_current():
    # I(t) = I0 + I1 sin(w t + phi): over whole cycles the ripple integrates to zero,
    # so E per cycle = V I0 / f exactly (up to the trapezoid rule on the ripple).
    t, _ = _sine(cycles=12)
    i0, i1, v = 40e-6, 300e-6, 1.8
    i = i0 + i1 * np.sin(2 * np.pi * F_HZ * t + PHASE_RAD)
    edges = np.arange(2, 11) / F_HZ + 0.13 / F_HZ  # 8 whole cycles, off the sample grid
    e = energy_per_cycle_j(t, i, supply_v=v, cycle_edges_s=edges)
    assert e == pytest.approx(v * i0 / F_HZ, rel=1e-3)


def test_fit_tuning_on_a_line_and_on_a_curve():
    v = np.linspace(0.6, 1.8, 7)
    line = fit_tuning(v, 1e8 + 5e8 * v)
    assert line.k_vco_hz_per_v == pytest.approx(5e8)
    assert line.linearity_error < 1e-9
    assert line.monotone
    curve = fit_tuning(v, 1e8 * (v - 0.4) ** 2)
    assert curve.monotone and curve.linearity_error > 0.05
    assert curve.tuning_ratio == pytest.approx((1.4 / 0.2) ** 2)
    assert not fit_tuning(v, np.array([1, 2, 3, 2.5, 4, 5, 6]) * 1e8).monotone


def test_fit_tuning_rejects_mismatched_inputs():
    with pytest.raises(CharacterizeError, match=re.escape("need >= 3 (vctrl, f0) pairs of one length")):
        fit_tuning([1.0, 2.0], [1.0, 2.0, 3.0])


@pytest.mark.parametrize("psi_rad", [0.0, 1.0, -2.0, np.pi - 0.01])
def test_phase_difference_of_two_sines(psi_rad):
    # theta_B = theta_A + psi: B leads by psi (psi > 0) or lags (psi < 0).
    t, xa = _sine()
    xb = 0.9 + 0.8 * np.sin(2 * np.pi * F_HZ * t + PHASE_RAD + psi_rad)
    _, psi = phase_difference_rad(t, xa, xb, level=0.9)
    assert psi.size >= 17
    # two crossings, each within CROSSING_TOL_PERIODS of a period
    err = np.angle(np.exp(1j * (psi - psi_rad)))
    np.testing.assert_allclose(err, 0.0, atol=2 * np.pi * 2 * CROSSING_TOL_PERIODS)


def test_importing_the_pure_rooms_does_not_load_pyspice():
    code = ("import sys, oscsim, hw, hw.measure, hw.characterization, hw.tools, hw.spice.process, hw.spice.run; "
            "print(sorted(m for m in sys.modules if m.startswith('PySpice')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def test_missing_libngspice_is_spice_unavailable_with_the_install_hint():
    code = ("from hw.spice import run\n"
            "try:\n    run.transient('.title x\\n.end\\n', stop_s=1e-9)\n"
            "except run.SpiceUnavailable as exc:\n    print('UNAVAILABLE', exc)\n")
    env = {**os.environ, "NGSPICE_LIBRARY_PATH": "/nonexistent/libngspice.so"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("UNAVAILABLE ")
    assert "apt-get install libngspice0-dev" in out.stdout and "NGSPICE_LIBRARY_PATH" in out.stdout
