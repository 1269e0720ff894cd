"""`SimResult`: what every integrator returns (phases at T, and the trajectory if recorded)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class SimResult:
    """What `simulate` returns.

    Attributes:
        theta: (B, N + N_c) phases at T, unwrapped (not reduced mod 2π), main first.
        n: number of main oscillators, so ``theta[:, :n]`` are the main phases.
        times: (steps + 1,) model times of the trajectory, or None if not recorded.
        trajectory: (steps + 1, B, N + N_c) phases at `times`, or None.
    """

    theta: Tensor
    n: int
    times: Tensor | None = None
    trajectory: Tensor | None = None

    @property
    def main(self) -> Tensor:
        """(B, N) main phases at T."""
        return self.theta[:, : self.n]

    @property
    def cond(self) -> Tensor:
        """(B, N_c) conditioning phases at T."""
        return self.theta[:, self.n :]

    @classmethod
    def of(cls, theta: Tensor, n: int, *, T: float, trajectory: Tensor | None = None) -> SimResult:
        """The result of a fixed-step run to T: with a trajectory of steps + 1 frames, the
        times are their equally spaced model times 0 … T (in the trajectory's dtype)."""
        if trajectory is None:
            return cls(theta=theta, n=n)
        times = torch.linspace(0.0, float(T), trajectory.shape[0], dtype=trajectory.dtype, device=trajectory.device)
        return cls(theta=theta, n=n, times=times, trajectory=trajectory)
