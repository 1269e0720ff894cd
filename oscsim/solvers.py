"""Explicit fixed-step Runge–Kutta solvers, each a Butcher tableau.

A step of an s-stage explicit method for dy/dt = f(y):

    k_i = f(y + h Σ_{j<i} a_ij k_j),   y ← y + h Σ_i b_i k_i

The system is autonomous, so the nodes c_i are not needed to evaluate f; they are kept
for the record (and for the tableau consistency check in the tests).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor


@dataclass(frozen=True, kw_only=True)
class ButcherTableau:
    """Coefficients of an explicit Runge–Kutta method of the stated order."""

    name: str
    order: int
    a: tuple[tuple[float, ...], ...]  # strictly lower triangular, row i has i entries
    b: tuple[float, ...]
    c: tuple[float, ...]


EULER = ButcherTableau(name="euler", order=1, a=((),), b=(1.0,), c=(0.0,))
# Heun's method (explicit trapezoidal rule).
HEUN = ButcherTableau(name="heun", order=2, a=((), (1.0,)), b=(0.5, 0.5), c=(0.0, 1.0))
# The classical fourth-order method.
RK4 = ButcherTableau(
    name="rk4",
    order=4,
    a=((), (0.5,), (0.0, 0.5), (0.0, 0.0, 1.0)),
    b=(1 / 6, 1 / 3, 1 / 3, 1 / 6),
    c=(0.0, 0.5, 0.5, 1.0),
)

TABLEAUS: dict[str, ButcherTableau] = {t.name: t for t in (EULER, HEUN, RK4)}


def rk_step(f: Callable[[Tensor], Tensor], y: Tensor, h: float, tableau: ButcherTableau) -> Tensor:
    """One step of size h of the explicit method `tableau` for dy/dt = f(y)."""
    if tableau is EULER:  # the training default: skip the bookkeeping
        return y + h * f(y)
    ks: list[Tensor] = []
    for row in tableau.a:
        stage = y
        for a_ij, k_j in zip(row, ks):
            if a_ij != 0.0:
                stage = stage + (h * a_ij) * k_j
        ks.append(f(stage))
    increment = sum(b_i * k_i for b_i, k_i in zip(tableau.b, ks) if b_i != 0.0)
    return y + h * increment
