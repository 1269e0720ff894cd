"""Scores of the shipped model and of the feature networks that define FID-digits."""

from __future__ import annotations

import pytest
import torch

import models
from analysis.evaluate import score_digits
from analysis.features import SHIPPED, accuracy, load_digits_net
from models.data import digits


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_feature_networks_reach_97_percent(name: str) -> None:
    net, eid = load_digits_net(name)
    test = digits("test")
    assert accuracy(net, test.images, test.labels) >= 0.97
    assert eid.startswith(f"digits-cnn:{name}:")


def test_shipped_model_makes_recognisable_digits_of_the_requested_class(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("UN0HW_CACHE", str(tmp_path))
    model = models.load(models.SHIPPED)
    score = score_digits(model, per_class=50, seed=123)
    assert score.class_accuracy >= 0.9
    assert score.fid < 3 * score.floor  # measured 6.15 vs floor 4.46 at 100 per class
    assert score.precision > 0.7 and score.recall > 0.7
    # the reference statistics were cached and are reused
    cached = list(tmp_path.glob("*.safetensors"))
    assert len(cached) == 2
    again = score_digits(model, per_class=50, seed=123)
    assert again.fid == pytest.approx(score.fid, rel=1e-12)


def test_untrained_model_scores_far_worse(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("UN0HW_CACHE", str(tmp_path))
    random = models.Un0.init(models.PUBLISHED["digits-n512"], seed=0)
    trained = models.load(models.SHIPPED)
    assert score_digits(random, per_class=30).fid > 5 * score_digits(trained, per_class=30).fid


def test_stopping_the_dynamics_early_changes_the_images() -> None:
    model = models.load(models.SHIPPED)
    labels = torch.arange(10)
    theta0 = model.sample_theta0(10, generator=torch.Generator().manual_seed(0))
    full = model.generate(labels, theta0)
    early = model.generate(labels, theta0, steps=3, T=0.3)
    assert float((full - early).abs().max()) > 0.1
