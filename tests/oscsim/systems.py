"""Systems and independent references shared by the oscsim tests (not a test module).

Imported as ``tests.oscsim.systems`` (tests/ is a package, so the test directory named
oscsim never shadows the real `oscsim`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from oscsim import KuramotoParams

F64 = torch.float64


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_system(
    n: int,
    n_cond: int,
    classes: int,
    seed: int,
    *,
    scale: float = 1.0,
    dtype: torch.dtype = F64,
) -> KuramotoParams:
    """A random conditional system scaled like Un-0 (μP-style: K ~ N(0,1)/√N, ω ~ N(0,1)).

    `scale` multiplies every coupling (K, drive, C) on top of that.
    """
    g = generator(seed)

    def randn(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=g, dtype=F64)

    params = KuramotoParams.from_raw(
        K=randn(n, n),
        omega=randn(1, n),
        drive=randn(classes, n, n_cond),
        C=randn(n_cond, n_cond),
        nu=randn(1, n_cond),
        k_scale=scale / math.sqrt(n),
        c_scale=scale / math.sqrt(max(n_cond, 1)),
        drive_scale=scale / math.sqrt(max(n_cond, 1)),
    )
    return params.to(dtype)


def random_phases(batch: int, width: int, seed: int, *, dtype: torch.dtype = F64) -> Tensor:
    """Seeds uniform in [−π, π), as the release draws them."""
    return (torch.rand(batch, width, generator=generator(seed + 10_000), dtype=F64) * 2 - 1).mul(math.pi).to(dtype)


def random_labels(batch: int, classes: int, seed: int) -> Tensor:
    """Class labels in [−1, classes): −1 is a dropped class."""
    return torch.randint(-1, classes, (batch,), generator=generator(seed + 20_000))


def two_oscillators(K: float, domega: float, *, n_cond: int = 0, omega_mean: float = 0.0) -> KuramotoParams:
    """N = 2, K12 = K21 = K, ω = ω̄ ∓ Δω/2, so ψ = θ2 − θ1 obeys dψ/dt = Δω − 2K sin ψ.

    With n_cond = 1 the conditioning oscillator has a strong drive on both main ones, so a
    test that passes label −1 (dropped) checks that the drive really is removed.
    """
    omega = torch.tensor([omega_mean - domega / 2, omega_mean + domega / 2], dtype=F64)
    return KuramotoParams(
        K=torch.tensor([[0.0, K], [K, 0.0]], dtype=F64),
        omega=omega,
        drive=torch.full((1, 2, n_cond), 3.0, dtype=F64),
        C=torch.zeros(n_cond, n_cond, dtype=F64),
        nu=torch.full((n_cond,), 0.3, dtype=F64),
    )


def naive_velocity(params: KuramotoParams, state: Tensor, labels: Tensor | None) -> Tensor:
    """Both equations of UN0_SPEC.md "Dynamics", transcribed in plain Python floats:

        dθ_i/dt = ω_i + Σ_j K_ij sin(θ_j − θ_i) + Σ_k D[c]_ik sin(φ_k − θ_i)
        dφ_k/dt = ν_k + Σ_l C_kl sin(φ_l − φ_k)

    D[c] = params.drive[c]; no drive term for label −1 or labels None.
    """
    K, omega, drive, C, nu = (t.tolist() for t in (params.K, params.omega, params.drive, params.C, params.nu))
    n, n_c = len(omega), len(nu)
    out = []
    for b, row in enumerate(state.tolist()):
        theta, phi = row[:n], row[n:]
        label = -1 if labels is None else int(labels[b])
        vel = []
        for i in range(n):
            v = omega[i] + sum(K[i][j] * math.sin(theta[j] - theta[i]) for j in range(n))
            if label >= 0:
                v += sum(drive[label][i][k] * math.sin(phi[k] - theta[i]) for k in range(n_c))
            vel.append(v)
        for k in range(n_c):
            vel.append(nu[k] + sum(C[k][l] * math.sin(phi[l] - phi[k]) for l in range(n_c)))
        out.append(vel)
    return torch.tensor(out, dtype=F64).reshape(state.shape)


def wrap(angle: Tensor) -> Tensor:
    """Angle reduced to (−π, π]."""
    return torch.atan2(torch.sin(angle), torch.cos(angle))
