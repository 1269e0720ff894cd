r"""Two oscillators: the Adler equation and its three regimes (the release's Figure 1a).

With K12 = K21 = K and Δω = ω2 − ω1, the phase difference ψ = θ2 − θ1 obeys

    dψ/dt = Δω − 2K sin ψ.

|Δω| < 2|K|: ψ locks at sin ψ* = Δω/2K (ψ* = arcsin(Δω/2K) for K > 0, in phase when
Δω = 0; π − arcsin(Δω/2K) for K < 0, anti-phase when Δω = 0). |Δω| > 2|K|: ψ drifts,
and its mean beat frequency is sqrt(Δω² − 4K²), not Δω.
Every case runs twice: with no conditioning block (labels None), and with one strongly
driving conditioning oscillator whose class is dropped (label −1), which must be inert.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from oscsim import KuramotoParams, order_parameter, simulate
from tests.oscsim.systems import F64, two_oscillators, wrap

# RK4 at h = 0.005 over T = 4: global error C h⁴, measured ≤ 9e-10 (worst case the
# fast drift Δω = −3, K = −1; 1.7e-8 at h = 0.01); DOP853 at rtol 1e-12 is far better.
ADLER_TRAJ_TOL = 1e-8
# Locked states converge like exp(−sqrt(4K² − Δω²) t); at T = 25 and rate ≥ 1.25 that
# is < 1e-13. RK4's fixed points are the ODE's (f = 0 makes every stage equal).
LOCK_TOL = 1e-9
# Beat period from crossing times read off a trajectory sampled at h = 0.02, located by
# linear interpolation where |ψ'| is largest: measured error ≤ 9e-7 of a period. Far
# below the gap between the true beat frequency and the bare Δω (≥ 9 %).
BEAT_RTOL = 1e-4

# A free-running oscillator under RK4: θ0 + ωT up to the round-off of 800 steps.
FREE_TOL = 1e-12

CONFIGS = ["no_cond", "dropped_label"]


def run(K: float, domega: float, psi0: list[float], config: str, *, T: float, steps: int, omega_mean=0.7):
    """rk4 in float64 from θ1 = −ψ0/2 + 0.4, θ2 = ψ0/2 + 0.4; returns the SimResult."""
    n_cond = 0 if config == "no_cond" else 1
    params = two_oscillators(K, domega, n_cond=n_cond, omega_mean=omega_mean)
    psi = torch.tensor(psi0, dtype=F64)
    theta0 = torch.stack([-psi / 2 + 0.4, psi / 2 + 0.4] + [torch.full_like(psi, 1.1)] * n_cond, dim=1)
    labels = None if n_cond == 0 else torch.full((len(psi0),), -1)
    return simulate(params, theta0, labels, steps=steps, T=T, method="rk4", record=True)


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize(
    ("K", "domega"),
    [(1.0, 0.0), (-0.7, 0.5), (1.0, 1.2), (0.5, 2.5), (-1.0, -3.0)],
    ids=["in-phase", "anti-phase", "locked-offset", "drift", "drift-negative"],
)
def test_trajectory_matches_scalar_adler_ode(K: float, domega: float, config: str) -> None:
    psi0 = [-2.5, 0.3, 3.0]
    T, steps = 4.0, 800
    res = run(K, domega, psi0, config, T=T, steps=steps)
    psi = (res.trajectory[:, :, 1] - res.trajectory[:, :, 0]).numpy()  # (steps+1, B)
    times = res.times.numpy()
    for b, p0 in enumerate(psi0):
        ref = solve_ivp(
            lambda _t, y: domega - 2 * K * np.sin(y), (0.0, T), [p0],
            method="DOP853", rtol=1e-12, atol=1e-12, t_eval=times,
        )
        assert ref.success
        np.testing.assert_allclose(psi[:, b], ref.y[0], rtol=0, atol=ADLER_TRAJ_TOL)


def locked_phase(K: float, domega: float) -> float:
    s = math.asin(domega / (2 * K))
    return s if K > 0 else math.pi - s


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize(
    ("K", "domega", "psi_star"),
    [
        (1.0, 0.0, 0.0),  # in phase
        (-1.0, 0.0, math.pi),  # anti-phase
        (1.0, 1.2, math.asin(0.6)),  # locked with an offset
        (0.8, -1.0, math.asin(-0.625)),
        (-1.0, 1.2, math.pi + math.asin(0.6)),  # K < 0: the other root of sin ψ = Δω/2K
    ],
    ids=["in-phase", "anti-phase", "offset", "offset-negative-domega", "offset-negative-K"],
)
def test_locking(K: float, domega: float, psi_star: float, config: str) -> None:
    assert psi_star == pytest.approx(locked_phase(K, domega))  # the table above is the formula
    # seeds spread over the circle, none on the unstable fixed point
    unstable = math.pi - math.asin(domega / (2 * K)) if K > 0 else math.asin(domega / (2 * K))
    psi0 = [unstable + d for d in (-2.9, -1.0, -0.05, 0.05, 1.0, 2.9)]
    T, steps = 25.0, 500
    res = run(K, domega, psi0, config, T=T, steps=steps, omega_mean=0.7)
    psi = res.main[:, 1] - res.main[:, 0]
    assert wrap(psi - psi_star).abs().max().item() < LOCK_TOL
    # locked: both oscillators turn at the mean frequency ω̄ = 0.7 (a frequency plateau)
    last_unit = res.trajectory[-1] - res.trajectory[-1 - steps // 25]  # over Δt = 1
    torch.testing.assert_close(last_unit[:, :2], torch.full((len(psi0), 2), 0.7, dtype=F64), rtol=0, atol=LOCK_TOL)
    # the order parameter of two phases is |cos(ψ/2)|: 1 in phase, 0 anti-phase
    r = order_parameter(res.main)
    torch.testing.assert_close(r, torch.full_like(r, abs(math.cos(psi_star / 2))), rtol=0, atol=LOCK_TOL)


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize(
    ("K", "domega", "periods"),
    [(0.5, 2.5, 6), (-1.0, -3.0, 6), (1.0, 2.05, 3)],
    ids=["drift", "drift-negative", "near-critical"],
)
def test_drift_beat_frequency(K: float, domega: float, periods: int, config: str) -> None:
    beat = math.sqrt(domega**2 - 4 * K**2)
    sign = math.copysign(1.0, domega)
    # start where |ψ'| = |Δω| + 2|K| is largest, so each crossing of ψ0 + 2πm is sharp
    psi0 = sign * math.copysign(math.pi / 2, -K)
    h = 0.02
    T = (periods + 0.5) * 2 * math.pi / beat
    steps = math.ceil(T / h)
    res = run(K, domega, [psi0], config, T=T, steps=steps)
    advance = sign * (res.trajectory[:, 0, 1] - res.trajectory[:, 0, 0] - psi0).numpy()
    assert np.all(np.diff(advance) > 0)  # drifting: ψ never turns back
    times = res.times.numpy()
    crossings = np.interp(2 * np.pi * np.arange(1, periods + 1), advance, times)
    # ψ advances by 2π in the same time every turn (autonomous ODE) ...
    np.testing.assert_allclose(np.diff(crossings, prepend=0.0), 2 * np.pi / beat, rtol=BEAT_RTOL)
    # ... so the mean beat frequency is the analytic one, well away from the bare Δω
    measured = 2 * np.pi * periods / crossings[-1]
    assert measured == pytest.approx(beat, rel=BEAT_RTOL)
    assert abs(measured - abs(domega)) > 100 * BEAT_RTOL * beat


def test_one_way_coupling_row_i_is_what_i_hears() -> None:
    """K = [[0, k], [0, 0]]: oscillator 2 runs free, oscillator 1 follows (Adler with 2K → k)."""
    k, omega = 1.5, 0.4
    params = KuramotoParams(
        K=torch.tensor([[0.0, k], [0.0, 0.0]], dtype=F64),
        omega=torch.tensor([omega, omega], dtype=F64),
        drive=torch.zeros(1, 2, 0, dtype=F64),
        C=torch.zeros(0, 0, dtype=F64),
        nu=torch.zeros(0, dtype=F64),
    )
    theta0 = torch.tensor([[0.0, 2.0]], dtype=F64)
    T = 20.0
    res = simulate(params, theta0, steps=800, T=T, method="rk4")
    free = theta0[0, 1] + omega * T
    assert res.main[0, 1].item() == pytest.approx(free.item(), abs=FREE_TOL)
    assert abs(wrap(res.main[0, 0] - free).item()) < LOCK_TOL


def test_identical_oscillators_with_positive_coupling_synchronize() -> None:
    """N = 32 identical oscillators, K_ij = 2/N > 0, seeds in an open half circle: r → 1."""
    n = 32
    params = KuramotoParams.from_raw(
        K=torch.full((n, n), 2.0 / n, dtype=F64),
        omega=torch.full((n,), 0.3, dtype=F64),
        drive=torch.zeros(1, n, 0, dtype=F64),
        C=torch.zeros(0, 0, dtype=F64),
        nu=torch.zeros(0, dtype=F64),
    )
    theta0 = torch.linspace(-1.4, 1.4, n, dtype=F64).unsqueeze(0)
    assert order_parameter(theta0).item() < 0.7
    res = simulate(params, theta0, steps=400, T=20.0, method="rk4")
    assert order_parameter(res.main).item() == pytest.approx(1.0, abs=LOCK_TOL)
