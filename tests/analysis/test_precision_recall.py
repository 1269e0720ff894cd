"""Precision/recall: limiting cases that follow from the definition."""

from __future__ import annotations

import pytest
import torch

from analysis.precision_recall import precision_recall


def test_same_distribution_scores_high() -> None:
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(2000, 4, generator=g), torch.randn(2000, 4, generator=g)
    p, r = precision_recall(real, fake, k=3)
    assert p > 0.9 and r > 0.9


def test_disjoint_supports_score_zero() -> None:
    g = torch.Generator().manual_seed(1)
    real, fake = torch.randn(500, 3, generator=g), torch.randn(500, 3, generator=g) + 50.0
    assert precision_recall(real, fake) == (0.0, 0.0)


def test_mode_collapse_keeps_precision_loses_recall() -> None:
    """Generated samples from a tenth of the real distribution's modes: precise, low recall."""
    g = torch.Generator().manual_seed(2)
    centres = torch.randn(10, 8, generator=g) * 20
    real = centres[torch.randint(10, (3000,), generator=g)] + torch.randn(3000, 8, generator=g)
    fake = centres[0] + torch.randn(1000, 8, generator=g)
    p, r = precision_recall(real, fake, k=3)
    assert p > 0.8  # the collapsed mode lies on the real manifold (its far tail need not)
    assert r == pytest.approx(0.1, abs=0.05)


def test_chunking_does_not_change_the_answer() -> None:
    g = torch.Generator().manual_seed(3)
    real, fake = torch.randn(300, 5, generator=g), torch.randn(200, 5, generator=g) * 1.3
    assert precision_recall(real, fake, chunk=7) == precision_recall(real, fake, chunk=1000)


def test_errors() -> None:
    with pytest.raises(ValueError, match=r"^features must be \(count, D\) with equal D"):
        precision_recall(torch.zeros(10, 3), torch.zeros(10, 4))
    with pytest.raises(ValueError, match=r"^need more than k=3 samples in each set"):
        precision_recall(torch.zeros(3, 2), torch.zeros(10, 2))
