"""Observables of a phase population."""

from __future__ import annotations

import torch
from torch import Tensor


def order_parameter(theta: Tensor) -> Tensor:
    """Kuramoto order parameter r = |⟨e^{iθ}⟩| over the last axis (1: all in phase)."""
    return torch.hypot(torch.cos(theta).mean(-1), torch.sin(theta).mean(-1))


def uniform_phases(batch: int, width: int, *, generator: torch.Generator, dtype=torch.float32, device="cpu") -> Tensor:
    """Seeds θ(0) ~ Uniform[−π, π), (batch, width), drawn in one go as the release does."""
    return torch.rand(batch, width, generator=generator, dtype=dtype, device=device) * (2 * torch.pi) - torch.pi
