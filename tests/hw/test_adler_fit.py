"""The Adler fit and the edge-based ring phase on signals with known answers (no ngspice)."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest

from hw.measure import (
    CharacterizeError,
    fit_adler,
    period_jitter_s,
    phase_dynamics,
    ring_phase,
)

F0_HZ = 379e6
K_RAD_S = 4e7
H2 = 0.1  # second-harmonic pull, relative to the first
# Averaging dψ/dt over one period attenuates the first harmonic by sinc(δψ/2), δψ the
# largest advance per period (~0.5 rad here): < 1 %. 2 % leaves margin.
K_TOL_REL = 0.02


def _adler_drift(delta_omega: float, *, psi0: float = -2.0, duration_s: float = 400e-9):
    """Two 5-stage 'rings' whose phase difference obeys
    dψ/dt = Δω − 2K sin ψ + 2K·H2 sin 2ψ (forward Euler at T/200)."""
    dt = 1 / (F0_HZ * 200)
    n = int(duration_s / dt)
    t = np.arange(n) * dt
    psi = np.empty(n)
    psi[0] = psi0
    for i in range(n - 1):
        psi[i + 1] = psi[i] + dt * (delta_omega - 2 * K_RAD_S * np.sin(psi[i]) + 2 * K_RAD_S * H2 * np.sin(2 * psi[i]))
    theta_a = 2 * np.pi * F0_HZ * t

    def stages(theta):  # stage k lags stage 0 by k pi (1 + 1/5), square-ish edges
        return [0.9 + 0.9 * np.tanh(3 * np.sin(theta - k * np.pi * 1.2)) for k in range(5)]

    return t, stages(theta_a), stages(theta_a + psi)


def test_adler_fit_recovers_k_delta_omega_and_the_second_harmonic():
    dw = 1.6 * 2 * K_RAD_S
    t, a, b = _adler_drift(dw)
    ta, tha = ring_phase(t, a, level=0.9)
    tb, thb = ring_phase(t, b, level=0.9)
    assert np.all(np.diff(tha) > 0)  # 10 edges per cycle, in order
    assert tha.size == pytest.approx(10 * (ta[-1] - ta[0]) * F0_HZ, abs=10)
    _, psi, dpsi = phase_dynamics(ta, tha, tb, thb, period_s=1 / F0_HZ)
    fit = fit_adler(psi, dpsi)
    assert fit.k_rad_s == pytest.approx(K_RAD_S, rel=K_TOL_REL)
    assert fit.delta_omega_rad_s == pytest.approx(dw, rel=K_TOL_REL)
    assert fit.harmonics[0] == pytest.approx(H2, abs=0.01)
    assert fit.harmonics[1] < 0.01 and abs(fit.phase_lag_rad) < 0.01
    assert fit.residual_rel < 0.01 and fit.coverage == 1.0


def test_a_locked_pair_cannot_be_fitted():
    t, a, b = _adler_drift(0.5 * 2 * K_RAD_S)  # inside the locking range: ψ settles
    ta, tha = ring_phase(t, a, level=0.9)
    tb, thb = ring_phase(t, b, level=0.9)
    _, psi, dpsi = phase_dynamics(ta, tha, tb, thb, period_s=1 / F0_HZ)
    with pytest.raises(CharacterizeError, match=r"^psi covers \d+% of the circle \(< 75%\): the pair did not drift"):
        fit_adler(psi, dpsi)


def test_negative_coupling_gives_negative_k():
    rng = np.random.default_rng(0)
    psi = rng.uniform(-np.pi, np.pi, 500)
    dpsi = 3e8 + 2 * 5e7 * np.sin(psi)  # dψ/dt = Δω − 2K sin ψ with K = −5e7
    fit = fit_adler(psi, dpsi, harmonics=2)
    assert fit.k_rad_s == pytest.approx(-5e7)
    assert abs(abs(fit.phase_lag_rad) - np.pi) < 1e-9


def test_period_jitter_of_gaussian_periods():
    rng = np.random.default_rng(1)
    periods = 2.6e-9 + 1e-12 * rng.standard_normal(20000)
    mean, sigma = period_jitter_s(np.concatenate(([0.0], np.cumsum(periods))))
    assert mean == pytest.approx(2.6e-9, rel=1e-5)
    assert sigma == pytest.approx(1e-12, rel=0.03)  # σ of σ = 1/sqrt(2n) = 0.5 %


def test_a_hanging_monte_carlo_worker_is_stopped_at_its_limit(monkeypatch):
    from tqdm import tqdm

    from hw import characterization
    from hw.spice.run import SpiceTimeout

    monkeypatch.setattr(characterization, "MC_TIMEOUT_S", 2.0)
    t0 = time.monotonic()
    with pytest.raises(SpiceTimeout, match=re.escape("Monte Carlo workers ran past their 2 s-per-task limit")):
        characterization._run_pool(time.sleep, [(60,)], workers=1, bar=tqdm(disable=True))
    assert time.monotonic() - t0 < 2.0 + 10.0  # the limit plus a spawned interpreter's start-up
