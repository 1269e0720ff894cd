"""Runge–Kutta tableaus, their orders in practice, and Euler's error at Un-0's 10 steps."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from oscsim import EULER, HEUN, METHODS, RK4, TABLEAUS, ButcherTableau, simulate
from oscsim.solvers import rk_step
from tests.oscsim.systems import F64, random_labels, random_phases, random_system

# Tableau coefficients are binary fractions or 1/3, 1/6: sums are exact to a few ulp.
COEFF_TOL = 1e-15
# A fitted log-log slope is within ±0.3 of the method's order (the brief's tolerance):
# measured 1.053, 1.935, 3.922 (the asymptotic regime is reached by 8 steps at T = 1).
ORDER_TOL = 0.3
# The adaptive reference (DOP853, rtol 1e-10) is within 1.3e-10 of one at rtol 1e-13 on
# this system; RK4's finest error (128 steps) is 1.3e-8, so the reference moves the fit
# by < 1 %.
CONVERGENCE_STEPS = [8, 16, 32, 64, 128]
# Euler, 10 steps, T = 1 against the adaptive reference on Un-0-scaled systems (seed 0,
# float64, N_c = 8, 10 classes). Measured: N = 64: rms 0.054, max 0.33 rad; N = 256: rms
# 0.056, max 0.35 rad; N = 1024: rms 0.056, max 0.60 rad; N = 4096 (slow): rms 0.062,
# max 0.47 rad. The error is set by h = 0.1 and O(1) frequencies, not by N (couplings
# scale as 1/√N). The rms bound leaves 1.6× margin; the max over up to 8k phases is a
# tail statistic, hence its looser bound.
EULER10_RMS_BOUND = 0.1
EULER10_MAX_BOUND = 1.0


def strictly_lower(t: ButcherTableau) -> np.ndarray:
    s = len(t.b)
    A = np.zeros((s, s))
    for i, row in enumerate(t.a):
        assert len(row) == i, f"{t.name}: row {i} of a must have {i} entries (explicit method)"
        A[i, :i] = row
    return A


@pytest.mark.parametrize("tableau", list(TABLEAUS.values()), ids=list(TABLEAUS))
def test_tableau_order_conditions(tableau: ButcherTableau) -> None:
    A, b, c = strictly_lower(tableau), np.array(tableau.b), np.array(tableau.c)
    assert len(b) == len(c) == len(tableau.a)
    np.testing.assert_allclose(A.sum(1), c, rtol=0, atol=COEFF_TOL)  # rows of a sum to c
    conditions = {  # rooted trees up to order 4: Σ ... = 1/γ(tree)
        1: [(b.sum(), 1)],
        2: [(b @ c, 1 / 2)],
        3: [(b @ c**2, 1 / 3), (b @ A @ c, 1 / 6)],
        4: [(b @ c**3, 1 / 4), (b @ (c * (A @ c)), 1 / 8), (b @ A @ c**2, 1 / 12), (b @ A @ A @ c, 1 / 24)],
    }
    for order in range(1, tableau.order + 1):
        for got, want in conditions[order]:
            assert got == pytest.approx(want, abs=COEFF_TOL), f"{tableau.name}: order {order} condition"
    # and the stated order is the true one: the bushy tree of order p + 1 fails
    p = tableau.order
    assert abs(b @ c**p - 1 / (p + 1)) > 1e-3


def test_registry() -> None:
    assert TABLEAUS == {"euler": EULER, "heun": HEUN, "rk4": RK4}
    assert all(name == t.name for name, t in TABLEAUS.items())
    assert METHODS == ("euler", "heun", "rk4", "adaptive")


@pytest.mark.parametrize("tableau", list(TABLEAUS.values()), ids=list(TABLEAUS))
def test_step_of_linear_ode_is_truncated_exponential(tableau: ButcherTableau) -> None:
    """For dy/dt = λy an explicit s-stage method of order s (s ≤ 4) gives y·Σ_{k≤s} (hλ)^k/k!."""
    lam = torch.tensor([-1.7, 0.4, 2.5], dtype=F64)
    y0 = torch.tensor([1.0, -2.0, 0.5], dtype=F64)
    h = 0.3
    z = h * lam
    want = y0 * sum(z**k / math.factorial(k) for k in range(tableau.order + 1))
    got = rk_step(lambda y: lam * y, y0, h, tableau)
    torch.testing.assert_close(got, want, rtol=COEFF_TOL, atol=COEFF_TOL)


def fitted_order(steps: list[int], errors: list[float]) -> float:
    return -np.polyfit(np.log(steps), np.log(errors), 1)[0]


def test_convergence_orders() -> None:
    params = random_system(16, 4, 3, seed=0)
    theta0 = random_phases(4, 20, seed=0)
    labels = torch.tensor([0, 1, 2, -1])
    ref = simulate(params, theta0, labels, method="adaptive").theta
    for method, tableau in TABLEAUS.items():
        errors = [
            (simulate(params, theta0, labels, steps=s, method=method).theta - ref).abs().max().item()
            for s in CONVERGENCE_STEPS
        ]
        order = fitted_order(CONVERGENCE_STEPS, errors)
        print(f"\n{method}: errors {['%.2e' % e for e in errors]}, fitted order {order:.3f}")
        assert all(a > b for a, b in zip(errors, errors[1:])), f"{method}: error must fall with h"
        assert abs(order - tableau.order) <= ORDER_TOL, f"{method}: fitted order {order:.3f}"


def euler10_error(n: int, seed: int, batch: int = 8) -> tuple[float, float]:
    params = random_system(n, 8, 10, seed)
    theta0 = random_phases(batch, n + 8, seed)
    labels = random_labels(batch, 10, seed)
    ref = simulate(params, theta0, labels, method="adaptive").theta
    err = simulate(params, theta0, labels, steps=10, method="euler").theta - ref
    rms, worst = err.pow(2).mean().sqrt().item(), err.abs().max().item()
    print(f"\nEuler 10 steps, N = {n}: rms {rms:.4f} rad, max {worst:.4f} rad")
    return rms, worst


@pytest.mark.parametrize("n", [64, 256, 1024])
def test_euler_ten_steps_error_on_un0_scaled_system(n: int) -> None:
    rms, worst = euler10_error(n, seed=0)
    assert rms < EULER10_RMS_BOUND and worst < EULER10_MAX_BOUND
    # and it is a real discretisation error, not a tolerance that hides everything
    assert rms > EULER10_RMS_BOUND / 10


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_euler_ten_steps_error_largest_cifar_size(seed: int) -> None:
    rms, worst = euler10_error(4096, seed=seed, batch=2)
    assert rms < EULER10_RMS_BOUND and worst < EULER10_MAX_BOUND
