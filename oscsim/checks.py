"""The argument checks every integrator makes: steps, T, theta0's shape, the labels."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from oscsim.errors import OscsimError
from oscsim.params import KuramotoParams

_INT_DTYPES = (torch.int64, torch.int32, torch.int16, torch.uint8, torch.int8)


def check_steps(steps: object) -> None:
    """`steps` is a non-negative int (not a bool)."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise OscsimError(f"steps must be a non-negative int, not {steps!r}")


def check_run(params: KuramotoParams, theta0: Tensor, *, steps: int, T: float) -> None:
    """The checks every integrator of `params` makes: steps, T, and theta0's shape."""
    check_steps(steps)
    if isinstance(T, bool) or not (isinstance(T, (int, float)) and math.isfinite(T) and T > 0):
        raise OscsimError(f"T must be a positive finite number, not {T!r}")
    width = params.n + params.n_cond
    if not isinstance(theta0, Tensor) or theta0.ndim != 2 or theta0.shape[1] != width:
        got = tuple(theta0.shape) if isinstance(theta0, Tensor) else type(theta0).__name__
        raise OscsimError(f"theta0 must be (B, N + N_c) = (B, {width}), not {got}")


def check_labels(params: KuramotoParams, labels: Tensor, batch: int) -> Tensor:
    """`labels` validated and as int64 on the params' device (−1: dropped class)."""
    if not isinstance(labels, Tensor) or labels.dtype not in _INT_DTYPES:
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
    return labels
