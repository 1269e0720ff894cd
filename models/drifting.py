r"""The drifting loss (Deng et al. 2026, "Generative Modeling via Drifting"), from the paper.

For generated features x (with their batch-mates as negatives y⁻) and real features of the
same class y⁺, at temperature τ:

    logits   ℓ(x, y) = −‖x − y‖ / τ̃            over y ∈ [y⁺; y⁻] (x itself masked out)
    A        = √(softmax_y ℓ · softmax_x ℓ)     (normalised over targets and over queries)
    W⁺ = A⁺ · Σ_{y⁻} A⁻,   W⁻ = A⁻ · Σ_{y⁺} A⁺
    V(x)     = W⁺ y⁺ − W⁻ y⁻                     (attraction to data − repulsion from generated)

V vanishes when the generated and real distributions agree (it is anti-symmetric in the
two sets). Features are first scaled by a detached S so that the mean distance between
generated and target features is √D (τ̃ = τ√D), and each temperature's V is divided by a
detached θ with E‖V‖²/D = 1, so every feature set and temperature pulls with unit
strength. The loss is Σ_τ mean ‖f(x) − stopgrad(f(x) + V_τ)‖² / D, summed over feature
sets (several layers of a frozen encoder, plus raw pixels).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

#: A frozen encoder: images (B, C, H, W) in [−1, 1] → feature sets, each (B, D_i).
Encoder = Callable[[Tensor], Sequence[Tensor]]

TEMPERATURES = (0.02, 0.05, 0.2)


def drift_field(x: Tensor, pos: Tensor, *, temperature: float, eps: float = 1e-12) -> Tensor:
    """V for generated `x` (G, D) against positives `pos` (P, D); negatives are x's
    batch-mates. Inputs are expected normalised (mean distance ≈ √D); no gradient."""
    g = x.shape[0]
    targets = torch.cat((pos, x), dim=0)
    logits = -torch.cdist(x, targets) / (temperature * math.sqrt(x.shape[1]))
    self_mask = torch.zeros_like(logits, dtype=torch.bool)
    self_mask[:, pos.shape[0]:].fill_diagonal_(True)
    logits = logits.masked_fill(self_mask, -math.inf)
    a = torch.sqrt(torch.softmax(logits, dim=1) * torch.softmax(logits, dim=0) + eps).masked_fill(self_mask, 0.0)
    a_pos, a_neg = a[:, : pos.shape[0]], a[:, pos.shape[0]:]
    w_pos = a_pos * a_neg.sum(dim=1, keepdim=True)
    w_neg = a_neg * a_pos.sum(dim=1, keepdim=True)
    return w_pos @ pos - w_neg @ x[:g]


def drifting_loss(
    fake: Sequence[Tensor],
    real: Sequence[Tensor],
    fake_labels: Tensor,
    real_labels: Tensor,
    *,
    weights: Sequence[float] | None = None,
    temperatures: Sequence[float] = TEMPERATURES,
) -> tuple[Tensor, dict[str, float]]:
    """Class-conditional drifting loss over feature sets.

    Args:
        fake: feature sets of the generated batch, each (G, D_i), differentiable.
        real: the same feature sets of real images, each (R, D_i), no gradient.
        fake_labels, real_labels: classes; each generated sample is drifted against the
            real samples of its own class and the generated samples of its class.

    Returns:
        the scalar loss and diagnostics (mean ‖V‖ before normalisation per temperature).
    """
    total = fake[0].new_zeros(())
    stats: dict[str, float] = {}
    classes = [int(c) for c in torch.unique(fake_labels)]
    weights = [1.0] * len(fake) if weights is None else list(weights)
    for fi, (f, r) in enumerate(zip(fake, real)):
        d = f.shape[1]
        with torch.no_grad():
            # S: mean generated-to-target distance becomes √D (one scale per feature set)
            scale = torch.cdist(f.detach(), torch.cat((r, f.detach()))).mean().clamp_min(1e-8) / math.sqrt(d)
            fs, rs = f.detach() / scale, r / scale
            drift = torch.zeros_like(fs)
            for c in classes:
                gi = (fake_labels == c).nonzero().squeeze(1)
                pos = rs[real_labels == c]
                if gi.numel() < 2 or pos.shape[0] < 1:
                    continue
                for tau in temperatures:
                    v = drift_field(fs[gi], pos, temperature=tau)
                    theta = v.square().sum(1).mean().div(d).sqrt().clamp_min(1e-8)
                    drift[gi] += v / theta
                    key = f"drift_f{fi}_t{tau:g}"
                    stats[key] = stats.get(key, 0.0) + float(v.norm(dim=1).mean()) / len(classes)
        normalised = f / scale
        total = total + weights[fi] * (normalised - (fs + drift)).square().sum(1).mean() / d
    return total, stats
