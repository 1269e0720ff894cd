"""Readout: phases at T → the numbers the decoder sees (the release's semantics)."""

from __future__ import annotations

import torch
from torch import Tensor


def relativize(phases: Tensor, mode: str) -> Tensor:
    """Remove the global phase, which carries no information in a rotating frame.

    - 'absolute': phases as they are.
    - 'mean_relative': θ_i − mean_j θ_j (arithmetic mean of the unwrapped phases).
    - 'ref_oscillator': θ_i − θ_0.
    - 'pairwise': all differences θ_j − θ_i, flattened to N² (row i, column j).
    """
    if mode == "absolute":
        return phases
    if mode == "mean_relative":
        return phases - phases.mean(dim=-1, keepdim=True)
    if mode == "ref_oscillator":
        return phases - phases[:, :1]
    if mode == "pairwise":
        return (phases.unsqueeze(-1) - phases.unsqueeze(-2)).reshape(phases.shape[0], -1)
    raise ValueError(f"unknown relativization {mode!r}")


def encode(phases: Tensor, encoding: str) -> Tensor:
    """'sin_cos' → [sin, cos] concatenated (sin first); 'sin' → sin; 'raw' → phases."""
    if encoding == "sin_cos":
        return torch.cat((torch.sin(phases), torch.cos(phases)), dim=-1)
    if encoding == "sin":
        return torch.sin(phases)
    if encoding == "raw":
        return phases
    raise ValueError(f"unknown encoding {encoding!r}")


def readout(phases: Tensor, *, relativization: str, encoding: str) -> Tensor:
    """(B, N) main phases at T → (B, feature_dim) decoder input."""
    return encode(relativize(phases, relativization), encoding)
