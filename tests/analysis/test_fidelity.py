"""Chip fidelity (analysis.fidelity): the ideal chip is perfect, imperfection degrades it
monotonically, the error is measured in the readout's frame, memory-bounded batches."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import models
from analysis.evaluate import bounded_batch, sample_bytes, sample_plan
from analysis.fidelity import (
    FidelityError,
    IdealReference,
    Paired,
    chip_fidelity,
    circular_error,
    feature_space,
    relative_frame,
    run_batch,
    sampling_floor,
)
from oscsim import NonIdeal


def cifar_model(n: int = 64, seed: int = 0) -> models.Un0:
    return models.Un0.init(models.PUBLISHED["n1024"].replace(n=n), seed=seed)


def reference(model, *, per_class: int, seed: int = 0, batch: int = 64) -> IdealReference:
    ex = feature_space("auto", model.config.image_shape)
    labels, theta0, starts = sample_plan(model, per_class=per_class, seed=seed, batch_size=batch)
    return IdealReference(model, ex, labels, theta0, starts, batch)


@pytest.mark.parametrize("which", ["digits", "cifar"])
def test_the_ideal_chip_against_itself_is_perfect(which: str) -> None:
    model = models.load(models.SHIPPED) if which == "digits" else cifar_model()
    ref = reference(model, per_class=12)
    again = IdealReference(model, ref.ex, ref.labels, ref.theta0, ref.starts, ref.batch_size, keep=False)
    # the model as a chip with no imperfection, run afresh (not the cached batches)
    s = chip_fidelity(again, model, nonideal=NonIdeal())
    s0 = chip_fidelity(ref, model)
    for score in (s, s0):
        assert score.phase_error_rad == 0.0
        assert score.psnr_db == math.inf
        assert score.feature_distance == 0.0
        assert score.fid_vs_ideal == pytest.approx(0.0, abs=1e-9)
        assert score.samples == 12 * model.config.num_classes
    assert (s.label_agreement == 1.0) if which == "digits" else (s.label_agreement is None)


@pytest.mark.slow
@pytest.mark.parametrize("which", ["digits", "cifar"])
def test_fidelity_degrades_monotonically_with_coupling_bits(which: str) -> None:
    model = models.load(models.SHIPPED) if which == "digits" else cifar_model()
    ref = reference(model, per_class=16)
    scores = [chip_fidelity(ref, model, nonideal=NonIdeal(coupling_bits=b)) for b in (2, 4, 6, 8, 12)]
    for coarse, fine in zip(scores, scores[1:]):
        assert coarse.phase_error_rad > fine.phase_error_rad
        assert coarse.psnr_db < fine.psnr_db
        assert coarse.feature_distance > fine.feature_distance
        assert coarse.fid_vs_ideal > fine.fid_vs_ideal
    # at 2 bits the chip is far off; at 12 bits it is nearly the model
    assert scores[0].phase_error_rad > 0.3 and scores[-1].phase_error_rad < 0.01
    floor = sampling_floor(ref, reference(model, per_class=16, seed=1))
    # paired seeds: 12 bits is far inside what resampling alone gives; 2 bits is not
    assert scores[-1].fid_vs_ideal < 0.01 * floor and scores[0].fid_vs_ideal > 0.3 * floor


def test_a_common_rotation_costs_nothing_in_a_relative_readout() -> None:
    g = torch.Generator().manual_seed(0)
    phases = torch.rand(5, 32, generator=g) * 6.28
    turned = phases + 1.234  # every oscillator rotated alike (a common-mode frequency shift over t)
    for frame in ("mean_relative", "ref_oscillator", "pairwise"):
        err = circular_error(relative_frame(turned, frame), relative_frame(phases, frame))
        assert float(err.max()) < 1e-5
    assert float(circular_error(turned, phases).mean()) == pytest.approx(1.234, abs=1e-5)


@settings(max_examples=60, deadline=None)
@given(st.floats(-50, 50), st.floats(-50, 50), st.integers(-3, 3))
def test_circular_error_is_a_distance_on_the_circle(a: float, b: float, turns: int) -> None:
    x, y = torch.tensor([a]), torch.tensor([b])
    e = float(circular_error(x, y))
    assert 0.0 <= e <= math.pi + 1e-12
    assert e == pytest.approx(float(circular_error(y, x)), abs=1e-9)
    assert e == pytest.approx(float(circular_error(x + 2 * math.pi * turns, y)), abs=1e-4)


def test_pairing_counts_chips_apart() -> None:
    """Two chips on the simulator's chip axis, scored apart, equal each chip run alone."""
    from analysis.fidelity import split_chips

    model = cifar_model()
    ref = reference(model, per_class=3, batch=30)
    ni = NonIdeal(coupling_bits=4, coupling_mismatch_sigma=0.3, chips=2, chip_seed=5)
    labels, theta0 = ref.labels, ref.theta0
    both = split_chips(run_batch(model, ref.ex, labels.repeat(2), theta0.repeat(2, 1), nonideal=ni), 2)
    for c in range(2):
        alone = run_batch(model, ref.ex, labels, theta0, nonideal=ni.replace(chips=1, chip_seed=5 + c))
        torch.testing.assert_close(both[c].images, alone.images, rtol=1e-5, atol=1e-5)
        acc = Paired(extractor=ref.ex.id, relativization=model.config.relativization)
        acc.add(ref.batch(0), both[c])
        assert acc.score().phase_error_rad > 0


def test_feature_spaces() -> None:
    assert feature_space("auto", (1, 8, 8)).id.startswith("digits-cnn:")
    px = feature_space("auto", (3, 64, 64))
    assert px.id == "pixels:3x8x8"
    assert px.features(torch.zeros(2, 3, 64, 64)).shape == (2, 192)
    assert feature_space("pixels", (1, 8, 8)).features(torch.zeros(3, 1, 8, 8)).shape == (3, 64)
    with pytest.raises(FidelityError, match=r"feature space 'digits' takes 1×8×8 images, not \(3, 32, 32\)"):
        feature_space("digits", (3, 32, 32))
    with pytest.raises(FidelityError, match=r"feature space must be one of auto, digits, inception, pixels"):
        feature_space("dino", (3, 32, 32))


def test_batches_are_memory_bounded() -> None:
    big, small = models.PUBLISHED["n16384"], models.PUBLISHED["digits-n512"]
    assert bounded_batch(small, 1000) == 1000  # the digits runs split as before
    b = bounded_batch(big, 1000)
    assert 1 <= b < 1000 and b * sample_bytes(big) <= 2 * 2**30 < (b + 1) * sample_bytes(big)
    assert bounded_batch(big, 1000, chips=10) == max(1, 2 * 2**30 // (10 * sample_bytes(big)))  # ten chips share it
    assert sample_bytes(models.PUBLISHED["n4096"]) > sample_bytes(models.PUBLISHED["n1024"])
