"""`simulate`: integrate a batch of seeds of a conditional Kuramoto system to time T."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from oscsim.coupling import velocity
from oscsim.errors import OscsimError
from oscsim.params import KuramotoParams
from oscsim.reference import solve_adaptive
from oscsim.solvers import TABLEAUS, rk_step

METHODS: tuple[str, ...] = (*TABLEAUS, "adaptive")


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


def gather_drive(params: KuramotoParams, labels: Tensor | None, batch: int) -> Tensor | None:
    """Per-sample drive (B, N, N_c): ``params.drive[label]``, zero where label == −1.

    A label of −1 is a dropped class (the release's class dropout: unconditional).
    Returns None when `labels` is None (no conditioning input at all).
    """
    if labels is None:
        return None
    if not isinstance(labels, Tensor) or labels.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8, torch.int8):
        got = labels.dtype if isinstance(labels, Tensor) else type(labels).__name__
        raise OscsimError(f"labels must be an integer tensor of shape ({batch},), not {got}")
    if tuple(labels.shape) != (batch,):
        raise OscsimError(f"labels must have shape ({batch},), one per seed, not {tuple(labels.shape)}")
    labels = labels.to(device=params.device, dtype=torch.int64)
    if batch and (int(labels.min()) < -1 or int(labels.max()) >= params.num_classes):
        raise OscsimError(
            f"labels must lie in [0, {params.num_classes}) (or −1 for no class); "
            f"got values in [{int(labels.min())}, {int(labels.max())}]"
        )
    dropped = labels < 0
    drive = params.drive[labels.clamp(min=0)]
    if bool(dropped.any()):
        drive = drive * (~dropped).to(drive.dtype).view(-1, 1, 1)
    return drive


def simulate(
    params: KuramotoParams,
    theta0: Tensor,
    labels: Tensor | None = None,
    *,
    steps: int = 10,
    T: float = 1.0,
    method: str = "euler",
    record: bool = False,
) -> SimResult:
    r"""Integrate the conditional Kuramoto equations (see `KuramotoParams`) from 0 to T.

    Pure: no global state, no randomness. Works on CPU and CUDA, float32 and float64,
    and autograd flows through the fixed-step methods.

    Args:
        params: the system (its dtype/device set the computation's).
        theta0: (B, N + N_c) initial phases, main then conditioning (the seed).
        labels: (B,) class per seed (−1: none), or None for no conditioning drive.
        steps: number of fixed steps, h = T / steps (for 'adaptive': the number of
            recorded intervals; the solver picks its own steps). 0 returns theta0.
        T: integration time in model units (the release trains with T = 1).
        method: 'euler' (the training default), 'heun', 'rk4', or 'adaptive'
            (scipy DOP853 at rtol 1e-10, float64, no autograd; a reference).
        record: also return the trajectory at the steps + 1 step boundaries.
    """
    if method not in METHODS:
        raise OscsimError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise OscsimError(f"steps must be a non-negative int, not {steps!r}")
    if not (isinstance(T, (int, float)) and math.isfinite(T) and T > 0):
        raise OscsimError(f"T must be a positive finite number, not {T!r}")
    width = params.n + params.n_cond
    if not isinstance(theta0, Tensor) or theta0.ndim != 2 or theta0.shape[1] != width:
        got = tuple(theta0.shape) if isinstance(theta0, Tensor) else type(theta0).__name__
        raise OscsimError(f"theta0 must be (B, N + N_c) = (B, {width}), not {got}")
    if theta0.dtype != params.dtype or theta0.device != params.device:
        raise OscsimError(
            f"theta0 is {theta0.dtype} on {theta0.device}, params are {params.dtype} on "
            f"{params.device}; move one to match"
        )
    drive = gather_drive(params, labels, theta0.shape[0])
    n = params.n

    if method == "adaptive":
        t_eval = np.linspace(0.0, T, steps + 1) if record else None
        final, traj = solve_adaptive(params, theta0, drive, T=float(T), t_eval=t_eval)
        times = torch.from_numpy(t_eval).to(theta0) if record else None
        return SimResult(theta=final, n=n, times=times, trajectory=traj)

    tableau = TABLEAUS[method]
    h = float(T) / steps if steps else 0.0
    state = theta0
    frames = [state] if record else None

    def f(y: Tensor) -> Tensor:
        return velocity(params, y, drive)

    for _ in range(steps):
        state = rk_step(f, state, h, tableau)
        if frames is not None:
            frames.append(state)
    if frames is None:
        return SimResult(theta=state, n=n)
    times = torch.linspace(0.0, float(T), steps + 1, dtype=theta0.dtype, device=theta0.device)
    return SimResult(theta=state, n=n, times=times, trajectory=torch.stack(frames))
