"""Un0.generate: shapes, range, seeds, and the forward pass as a whole."""

from __future__ import annotations

import pytest
import torch

import models
from models.readout import readout
from oscsim import simulate


@pytest.fixture(scope="module")
def model():
    return models.Un0.init(models.PUBLISHED["digits-n64"], seed=0)


def test_shape_and_range(model) -> None:
    x = model.generate(torch.arange(10), seed=3)
    assert x.shape == (10, 1, 8, 8)
    assert x.dtype == torch.float32
    assert float(x.abs().max()) <= 1.0


def test_same_seed_same_images_different_seed_different_images(model) -> None:
    labels = torch.tensor([0, 1, 2, 3])
    a, b = model.generate(labels, seed=5), model.generate(labels, seed=5)
    assert torch.equal(a, b)
    c = model.generate(labels, seed=6)
    # every image changes with a new seed (not just some pixels of one)
    assert bool(((a - c).abs().flatten(1).amax(1) > 1e-3).all())


def test_theta0_is_the_seed(model) -> None:
    g = torch.Generator().manual_seed(0)
    theta0 = model.sample_theta0(4, generator=g)
    assert theta0.shape == (4, 64 + 8)
    assert float(theta0.min()) >= -torch.pi and float(theta0.max()) < torch.pi
    labels = torch.tensor([1, 1, 2, 2])
    torch.testing.assert_close(model.generate(labels, theta0, seed=1), model.generate(labels, theta0, seed=2), rtol=0, atol=0)


def test_generate_is_simulate_then_readout_then_decoder(model) -> None:
    labels = torch.tensor([4, 7])
    theta0 = model.sample_theta0(2, generator=torch.Generator().manual_seed(9))
    cfg = model.config
    with torch.no_grad():
        final = simulate(model.params(), theta0, labels, steps=cfg.num_steps, T=cfg.integration_time, method=cfg.solver)
        want = model.decoder(readout(final.main, relativization=cfg.relativization, encoding=cfg.encoding))
    torch.testing.assert_close(model.generate(labels, theta0), want)


def test_class_changes_the_image(model) -> None:
    theta0 = model.sample_theta0(1, generator=torch.Generator().manual_seed(2)).repeat(2, 1)
    x = model.generate(torch.tensor([0, 9]), theta0)
    assert float((x[0] - x[1]).abs().max()) > 1e-3


def test_gradients_reach_every_parameter(model) -> None:
    m = models.Un0.init(models.PUBLISHED["digits-n64"], seed=1).train()
    theta0 = m.sample_theta0(4, generator=torch.Generator().manual_seed(0))
    m(torch.tensor([0, 1, -1, 3]), theta0).square().mean().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and bool(p.grad.abs().sum() > 0), name
    # the diagonal of K is not a parameter of the dynamics: no gradient reaches it
    assert float(m.dynamics.K.grad.diagonal().abs().max()) == 0.0


def test_generate_keeps_training_mode(model) -> None:
    model.train()
    model.generate(torch.tensor([0]), seed=0)
    assert model.training
    model.eval()
