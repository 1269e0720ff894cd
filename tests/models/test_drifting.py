"""The drifting field: direction, equilibrium, and the loss's gradient."""

from __future__ import annotations

import torch

from models.drifting import drift_field, drifting_loss


def test_drift_points_from_generated_towards_data() -> None:
    g = torch.Generator().manual_seed(0)
    real = torch.randn(400, 2, generator=g) + torch.tensor([3.0, 0.0])
    fake = torch.randn(200, 2, generator=g)
    v = drift_field(fake, real, temperature=0.5)
    assert float(v[:, 0].mean()) > 0.5 and abs(float(v[:, 1].mean())) < 0.1


def test_drift_nearly_vanishes_at_equilibrium() -> None:
    g = torch.Generator().manual_seed(1)
    real = torch.randn(2000, 4, generator=g)
    same = torch.randn(1000, 4, generator=g)
    shifted = torch.randn(1000, 4, generator=g) + 2.0
    v_same = drift_field(same, real, temperature=1.0).norm(dim=1).mean()
    v_shift = drift_field(shifted, real, temperature=1.0).norm(dim=1).mean()
    assert float(v_same) < 0.1 * float(v_shift)


def test_gradient_descent_on_the_loss_moves_samples_to_their_class() -> None:
    """A free point cloud trained on the loss reaches the class-conditional data means."""
    g = torch.Generator().manual_seed(2)
    centres = torch.tensor([[4.0, 0.0], [-4.0, 0.0]])
    real_labels = torch.arange(2).repeat_interleave(200)
    real = centres[real_labels] + 0.3 * torch.randn(400, 2, generator=g)
    fake_labels = torch.arange(2).repeat_interleave(64)
    x = torch.randn(128, 2, generator=g).requires_grad_(True)
    opt = torch.optim.SGD([x], lr=10.0)  # the loss averages over 128 points and 2 dims
    for _ in range(300):
        loss, _ = drifting_loss([x], [real], fake_labels, real_labels, temperatures=(0.05, 0.2))
        opt.zero_grad()
        loss.backward()
        opt.step()
    for c in range(2):
        mean = x.detach()[fake_labels == c].mean(0)
        assert torch.allclose(mean, centres[c], atol=0.3), (c, mean)
