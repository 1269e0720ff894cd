"""Autograd through `simulate` against finite differences (float64 gradcheck)."""

from __future__ import annotations

import pytest
import torch

from oscsim import KuramotoParams, simulate
from tests.oscsim.systems import F64, generator

# Central differences at eps = 1e-6 in float64: truncation ~eps²·|f‴| ≈ 1e-12, round-off
# ~1e-16/eps = 1e-10. Tighter than gradcheck's defaults (atol 1e-5, rtol 1e-3); a wrong
# gradient (missing term, wrong sign, dropped scale) is off by O(1).
GRADCHECK = dict(eps=1e-6, atol=1e-7, rtol=1e-5)
# Second derivatives by differences of first ones: one order of magnitude looser.
GRADGRADCHECK = dict(eps=1e-6, atol=1e-6, rtol=1e-4)

N, N_COND, CLASSES, BATCH = 3, 2, 2, 3
LABELS = torch.tensor([1, -1, 0])  # both classes used, one dropped


def raw_inputs(seed: int = 0) -> dict[str, torch.Tensor]:
    g = generator(seed)
    shapes = {
        "K": (N, N), "omega": (1, N), "drive": (CLASSES, N, N_COND),
        "C": (N_COND, N_COND), "nu": (1, N_COND), "theta0": (BATCH, N + N_COND),
    }
    return {k: torch.randn(*s, generator=g, dtype=F64).requires_grad_() for k, s in shapes.items()}


def final_phases(method: str):
    def fn(K, omega, drive, C, nu, theta0):
        # from_raw zeroes the diagonals and applies μP-like scales: both on the graph
        params = KuramotoParams.from_raw(
            K=K, omega=omega, drive=drive, C=C, nu=nu, k_scale=0.6, c_scale=0.8, drive_scale=0.7
        )
        return simulate(params, theta0, LABELS, steps=3, T=0.9, method=method).theta

    return fn


@pytest.mark.parametrize("method", ["euler", "heun", "rk4"])
def test_gradcheck_through_simulate(method: str) -> None:
    inputs = raw_inputs()
    assert torch.autograd.gradcheck(final_phases(method), tuple(inputs.values()), **GRADCHECK)


@pytest.mark.parametrize("method", ["euler", "rk4"])
def test_gradgradcheck_through_simulate(method: str) -> None:
    """Second derivatives too (training losses may need them), w.r.t. K and θ0 only."""
    inputs = raw_inputs(1)
    rest = {k: v.detach() for k, v in inputs.items() if k not in ("K", "theta0")}

    def fn(K, theta0):
        return final_phases(method)(K, rest["omega"], rest["drive"], rest["C"], rest["nu"], theta0)

    assert torch.autograd.gradgradcheck(fn, (inputs["K"], inputs["theta0"]), **GRADGRADCHECK)


def test_ignored_entries_get_exactly_zero_gradient() -> None:
    """Diagonals of K and C are zeroed in from_raw; an unused or dropped class gets no drive."""
    inputs = raw_inputs(2)
    labels = torch.tensor([1, -1, 1])  # class 0 unused
    params = KuramotoParams.from_raw(**{k: v for k, v in inputs.items() if k != "theta0"})
    simulate(params, inputs["theta0"], labels, steps=4, method="rk4").theta.sum().backward()
    assert torch.count_nonzero(torch.diagonal(inputs["K"].grad)) == 0
    assert torch.count_nonzero(torch.diagonal(inputs["C"].grad)) == 0
    assert torch.count_nonzero(inputs["drive"].grad[0]) == 0
    assert torch.count_nonzero(inputs["drive"].grad[1]) == N * N_COND  # the used class learns
    off = ~torch.eye(N, dtype=torch.bool)
    assert torch.count_nonzero(inputs["K"].grad[off]) == N * (N - 1)
