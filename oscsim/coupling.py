r"""The coupling sum, the per-sample drive, and the full phase velocity (the autograd path's).

The sum Σ_j K_ij sin(θ_j − θ_i) is never formed as an N×N sine per sample. With the
angle-difference identity

    Σ_j K_ij sin(θ_j − θ_i) = cos θ_i · (K sin θ)_i − sin θ_i · (K cos θ)_i

it becomes one GEMM of the stacked (2B, N) matrix [sin θ; cos θ] with Kᵀ.
"""

from __future__ import annotations

import torch
from torch import Tensor

from oscsim.checks import check_labels
from oscsim.params import KuramotoParams


def kuramoto_coupling(theta: Tensor, K: Tensor) -> Tensor:
    r"""Σ_j K_ij sin(θ_j − θ_i) for a batch of phase vectors, by one GEMM.

    Args:
        theta: (B, N) phases.
        K: (N, N) coupling; row i is what oscillator i hears.

    Returns:
        (B, N) coupling term.
    """
    return _coupling_sincos(torch.sin(theta), torch.cos(theta), K)


def _coupling_sincos(sin: Tensor, cos: Tensor, K: Tensor) -> Tensor:
    batch = sin.shape[0]
    weighted = torch.cat((sin, cos), dim=0) @ K.T  # rows: (K sin θ)ᵀ then (K cos θ)ᵀ
    return cos * weighted[:batch] - sin * weighted[batch:]


def naive_coupling(theta: Tensor, K: Tensor) -> Tensor:
    """Σ_j K_ij sin(θ_j − θ_i) by the definition: a (B, N, N) sine. Reference only."""
    diff = theta.unsqueeze(-2) - theta.unsqueeze(-1)  # [b, i, j] = θ_j − θ_i
    return (K * torch.sin(diff)).sum(-1)


def drive_coupling(theta: Tensor, phi: Tensor, drive: Tensor) -> Tensor:
    r"""Σ_k D_b,ik sin(φ_b,k − θ_b,i), each sample with its own (N, N_c) drive D_b.

    One batched product of D_b with [sin φ_b, cos φ_b] per step: (B, N, N_c)·(B, N_c, 2).
    """
    return _drive_sincos(torch.sin(theta), torch.cos(theta), phi, drive)


def _drive_sincos(sin: Tensor, cos: Tensor, phi: Tensor, drive: Tensor) -> Tensor:
    sc = torch.stack((torch.sin(phi), torch.cos(phi)), dim=-1)  # (B, N_c, 2)
    weighted = torch.bmm(drive, sc)  # (B, N, 2)
    return cos * weighted[..., 0] - sin * weighted[..., 1]


def gather_drive(params: KuramotoParams, labels: Tensor | None, batch: int) -> Tensor | None:
    """Per-sample drive (B, N, N_c): ``params.drive[label]``, zero where label == −1.

    A label of −1 is a dropped class (the release's class dropout: unconditional).
    Returns None when `labels` is None (no conditioning input at all).
    """
    if labels is None:
        return None
    labels = check_labels(params, labels, batch)
    kept = labels >= 0
    if bool(kept.all()):
        return params.drive[labels]
    drive = params.drive.new_zeros(batch, params.n, params.n_cond)
    drive[kept] = params.drive[labels[kept]]
    return drive


def velocity(params: KuramotoParams, state: Tensor, drive: Tensor | None) -> Tensor:
    """d(state)/dt for the joint state (B, N + N_c): main phases first, then conditioning.

    Args:
        params: the system.
        state: (B, N + N_c) phases.
        drive: (B, N, N_c) per-sample drive (``params.drive[label]``, zero for a dropped
            label) or None for no conditioning input.
    """
    n = params.n
    theta, phi = state[:, :n], state[:, n:]
    sin, cos = torch.sin(theta), torch.cos(theta)
    main = params.omega + _coupling_sincos(sin, cos, params.K)
    if drive is not None and params.n_cond > 0:
        main = main + _drive_sincos(sin, cos, phi, drive)
    if params.n_cond == 0:
        return main
    cond = params.nu + kuramoto_coupling(phi, params.C)
    return torch.cat((main, cond), dim=1)
