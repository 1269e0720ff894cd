"""The int8 decoder (`models.int8`): the folded float layers it quantises equal the decoder,
its images stay within the stated error of the float decoder's, it is built once per
weights, and FID-digits of the shipped model does not move beyond sampling noise."""

from __future__ import annotations

import pytest
import torch

import models
from models.errors import ConfigError
from models.int8 import Int8Decoder, folded_layers

#: the stated bound on a random-init CIFAR-10-sized decoder (measured: RMS 0.043, PSNR
#: 33.4 dB, worst pixel 0.26 at n1024; docs/models.md)
RMS_BOUND, WORST_BOUND = 0.06, 0.5


def _seeds(model, batch: int, seed: int = 0):
    labels = torch.arange(batch) % model.config.num_classes
    return labels, model.sample_theta0(batch, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("family", ["digits-n64", "n1024"])
def test_the_folded_float_layers_equal_the_decoder(family: str) -> None:
    model = models.Un0.init(models.PUBLISHED[family], seed=0)
    features = model.readout(torch.rand(16, model.config.n) * 6.28)
    with torch.no_grad():
        want = model.decoder(features)
        got = folded_layers(model.decoder)(features.reshape(16, *model.decoder.latent_shape))
    torch.testing.assert_close(got, want, rtol=0, atol=2e-5)


@pytest.mark.slow
def test_int8_images_stay_within_the_stated_error_of_the_float_decoder() -> None:
    model = models.Un0.init(models.PUBLISHED["n1024"], seed=0)
    labels, theta0 = _seeds(model, 128, seed=1)  # not the calibration seeds
    ref = model.generate(labels, theta0)
    got = model.generate(labels, theta0, decoder="int8")
    err = got - ref
    assert float(err.abs().max()) > 0  # it did run in int8
    assert float(err.pow(2).mean().sqrt()) < RMS_BOUND and float(err.abs().max()) < WORST_BOUND
    assert got.shape == ref.shape and got.dtype == ref.dtype and float(got.abs().max()) <= 1.0
    with torch.no_grad():
        features = model.readout(model.final_phases(labels, theta0))
    again = Int8Decoder.of(model)(features)  # a second build: the same calibration, the same codes
    torch.testing.assert_close(again, model.int8_decoder()(features), rtol=0, atol=0)


def test_it_is_built_once_per_weights_and_names_bad_choices() -> None:
    model = models.Un0.init(models.PUBLISHED["digits-n64"], seed=0)
    first = model.int8_decoder()
    assert model.int8_decoder() is first
    with torch.no_grad():
        model.decoder.to_output.weight.mul_(0.5)
    assert model.int8_decoder() is not first
    labels, theta0 = _seeds(model, 4)
    with pytest.raises(ConfigError, match="decoder must be one of float, int8, int4, analog, not 'int2'"):
        model.generate(labels, theta0, decoder="int2")


def test_fid_digits_of_the_shipped_model_holds_with_the_int8_decoder() -> None:
    from analysis.evaluate import score_digits

    model = models.load(models.SHIPPED)
    full = score_digits(model, per_class=200, seed=0)
    int8 = score_digits(model, per_class=200, seed=0, decoder="int8")
    assert abs(int8.fid - full.fid) < 1.0 and abs(int8.class_accuracy - full.class_accuracy) < 0.01
