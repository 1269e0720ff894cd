r"""The coupling sum, the per-sample drive, and the full phase velocity (the autograd path's).

The sum Σ_j K_ij sin(θ_j − θ_i) is never formed as an N×N sine per sample. With the
angle-difference identity

    Σ_j K_ij sin(θ_j − θ_i) = cos θ_i · (K sin θ)_i − sin θ_i · (K cos θ)_i

it becomes one GEMM of the stacked (2B, N) matrix [sin θ; cos θ] with Kᵀ.

The general coupler (`oscsim.harmonics.Harmonics`), H_ij(x) = b0_ij + Σ_{k=1..H} (A_k,ij sin kx
+ B_k,ij cos kx) with x = θ_j − θ_i (A_1 the matrix K itself), is the same identity per
harmonic: with u_k = sin kθ and v_k = cos kθ,

    Σ_j A_ij sin k(θ_j − θ_i) = v_k,i (A u_k)_i − u_k,i (A v_k)_i
    Σ_j B_ij cos k(θ_j − θ_i) = v_k,i (B v_k)_i + u_k,i (B u_k)_i

so Σ_j H_ij = Σ_j b0_ij + Σ_k [v_k ⊙ (A_k u_k + B_k v_k) − u_k ⊙ (A_k v_k − B_k u_k)]: per
harmonic the rows [u_k; v_k] (2B, N) times A_kᵀ and times B_kᵀ, two GEMMs, and the constant
part a row sum (state independent). The drive D[c] from the conditioning phases φ adds the
same way with u_k = sin kφ, v_k = cos kφ on its side of the products (one batched product
per sample and matrix). A block whose couplers are all pure sines takes the sine-only code
above, unchanged (the same numbers bit for bit as before harmonics existed).
"""

from __future__ import annotations

import torch
from torch import Tensor

from oscsim.checks import check_labels
from oscsim.errors import OscsimError
from oscsim.harmonics import Harmonics
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


def gather_drive_harmonics(params: KuramotoParams, labels: Tensor | None, batch: int) -> Harmonics | None:
    """Per-sample drive harmonics (shapes (·, B, N, N_c)): ``params.drive_h`` of each sample's
    label, zero where label == −1. None when `labels` or ``params.drive_h`` is None."""
    if labels is None or params.drive_h is None:
        return None
    labels = check_labels(params, labels, batch)
    kept = labels >= 0
    if bool(kept.all()):
        return params.drive_h.map(lambda t: t[:, labels])
    mask = kept.view(1, -1, 1, 1)
    return params.drive_h.map(lambda t: torch.where(mask, t[:, labels.clamp(min=0)], 0.0))


def harmonic_coupling(theta: Tensor, M: Tensor, harmonics: Harmonics) -> Tensor:
    r"""Σ_j H_ij(θ_j − θ_i) for the general coupler (module docstring), two GEMMs per harmonic.

    Args:
        theta: (B, N) phases.
        M: (N, N) the sine coefficients of the fundamental (K).
        harmonics: the rest of H_ij, of M's shape.

    Returns:
        (B, N): the constant part Σ_j b0_ij plus the state-dependent terms.
    """
    return harmonics.row_const() + _general_sum(theta, harmonics.terms(M))


def _general_sum(theta: Tensor, terms: list[tuple[Tensor | None, Tensor | None]],
                 drive_terms: list[tuple[Tensor | None, Tensor | None]] = (), phi: Tensor | None = None) -> Tensor:
    """Σ_k [v_k ⊙ S_k − u_k ⊙ R_k] over the harmonics k = 1.. of `terms` (A_k, B_k: (N, N) or
    None) and of `drive_terms` (per sample (B, N, N_c) or None, driven by φ):
    S_k = A_k u_k + B_k v_k, R_k = A_k v_k − B_k u_k (+ the drive's, with sin kφ, cos kφ)."""
    batch = theta.shape[0]
    out = None
    for k in range(max(len(terms), len(drive_terms))):
        A, B = terms[k] if k < len(terms) else (None, None)
        Ad, Bd = drive_terms[k] if k < len(drive_terms) else (None, None)
        x = theta if k == 0 else theta * (k + 1)
        u, v = torch.sin(x), torch.cos(x)
        s = r = None
        if A is not None or B is not None:
            rows = torch.cat((u, v), dim=0)  # (2B, N)
            if A is not None:
                wa = rows @ A.T  # (A u)ᵀ then (A v)ᵀ
                s, r = wa[:batch], wa[batch:]
            if B is not None:
                wb = rows @ B.T  # (B u)ᵀ then (B v)ᵀ
                s = wb[batch:] if s is None else s + wb[batch:]
                r = -wb[:batch] if r is None else r - wb[:batch]
        if Ad is not None or Bd is not None:
            y = phi if k == 0 else phi * (k + 1)
            features = torch.stack((torch.sin(y), torch.cos(y)), dim=-1)  # (B, N_c, 2)
            if Ad is not None:
                wa = torch.bmm(Ad, features)  # (B, N, 2): A u^φ, A v^φ
                s = wa[..., 0] if s is None else s + wa[..., 0]
                r = wa[..., 1] if r is None else r + wa[..., 1]
            if Bd is not None:
                wb = torch.bmm(Bd, features)  # B u^φ, B v^φ
                s = wb[..., 1] if s is None else s + wb[..., 1]
                r = -wb[..., 0] if r is None else r - wb[..., 0]
        if s is None:
            continue
        term = v * s - u * r
        out = term if out is None else out + term
    return torch.zeros_like(theta) if out is None else out


def _pad_terms(h: Harmonics | None, M: Tensor) -> list[tuple[Tensor | None, Tensor | None]]:
    """(A_k, B_k) of a matrix with optional harmonics: [(M, None)] for the pure sine."""
    return [(M, None)] if h is None else h.terms(M)


def velocity(params: KuramotoParams, state: Tensor, drive: Tensor | None, drive_h: Harmonics | None = None) -> Tensor:
    """d(state)/dt for the joint state (B, N + N_c): main phases first, then conditioning.

    Args:
        params: the system.
        state: (B, N + N_c) phases.
        drive: (B, N, N_c) per-sample drive (``params.drive[label]``, zero for a dropped
            label) or None for no conditioning input.
        drive_h: its per-sample harmonics (`gather_drive_harmonics`) when ``params.drive_h``
            is set and `drive` is given, else None.
    """
    if params.has_harmonics:
        return _velocity_general(params, state, drive, drive_h)
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


def _velocity_general(params: KuramotoParams, state: Tensor, drive: Tensor | None,
                      drive_h: Harmonics | None) -> Tensor:
    """`velocity` with harmonics (module docstring); a block without any takes the sine code."""
    n = params.n
    driven = drive is not None and params.n_cond > 0
    if driven and params.drive_h is not None and drive_h is None:
        raise OscsimError("velocity: the params have drive harmonics (drive_h); pass "
                          "drive_h=gather_drive_harmonics(params, labels, batch) with the drive")
    theta, phi = state[:, :n], state[:, n:]
    if params.K_h is None and (params.drive_h is None or not driven):
        sin, cos = torch.sin(theta), torch.cos(theta)
        main = params.omega + _coupling_sincos(sin, cos, params.K)
        if driven:
            main = main + _drive_sincos(sin, cos, phi, drive)
    else:
        omega = params.omega if params.K_h is None else params.omega + params.K_h.row_const()
        drive_terms = ()
        if driven:
            drive_terms = _pad_terms(drive_h, drive)
            if drive_h is not None:
                omega = omega + drive_h.row_const()
        main = omega + _general_sum(theta, _pad_terms(params.K_h, params.K), drive_terms, phi)
    if params.n_cond == 0:
        return main
    if params.C_h is None:
        cond = params.nu + kuramoto_coupling(phi, params.C)
    else:
        cond = params.nu + params.C_h.row_const() + _general_sum(phi, params.C_h.terms(params.C))
    return torch.cat((main, cond), dim=1)
