"""The int4 and analog-crossbar decoders (`models.lowbit`): the int4 layers are integer
arithmetic exactly, the crossbar's noise has the PCM model's statistics in the right
orientation, both stay within their stated error of the float decoder, and both are built
once per weights and reproducible."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import models
from models import lowbit
from models.lowbit import AnalogDecoder, Int4Decoder, _conv, prog_sigma_us, read_sigma_us

#: the stated bounds on the shipped digits model's images against the float decoder's
#: (measured, 1,000 samples: int4 RMS 0.28, analog RMS 0.13; docs/models.md)
INT4_RMS_BOUND, ANALOG_RMS_BOUND = 0.35, 0.2


def _seeds(model, batch: int, seed: int = 1):
    labels = torch.arange(batch) % model.config.num_classes
    return labels, model.sample_theta0(batch, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def shipped():
    return models.load(models.checkpoint.SHIPPED)


def test_int4_layers_are_the_integer_arithmetic(shipped) -> None:
    """Each layer's accumulator is the integer convolution of 4-bit codes, exactly; the codes
    are the per-channel / per-tensor round-to-nearest of the weights and inputs."""
    dec = Int4Decoder.of(shipped, samples=64)
    for i, layer in enumerate(dec.layers):
        if dec.weights[i] is None:
            continue
        codes, scale = dec.weights[i]
        assert int(codes.abs().max()) <= 7 and torch.equal(codes, torch.round(codes))
        torch.testing.assert_close(codes * scale.reshape(-1, 1, 1, 1) if isinstance(layer, nn.Conv2d) else
                                   codes * scale.reshape(1, -1, 1, 1), layer.weight.detach(),
                                   atol=float(scale.max()) / 2 + 1e-7, rtol=0)
        x_codes = torch.randint(-7, 8, (2, codes.shape[1] if isinstance(layer, nn.Conv2d) else codes.shape[0], 6, 6))
        acc = _conv(layer, x_codes.float(), codes)
        exact = _conv(layer, x_codes.double(), codes.double())
        assert torch.equal(acc.double(), exact) and torch.equal(exact, torch.round(exact))


@pytest.mark.parametrize("kind, bound", [("int4", INT4_RMS_BOUND), ("analog", ANALOG_RMS_BOUND)])
def test_images_stay_within_the_stated_error_of_the_float_decoder(shipped, kind, bound) -> None:
    labels, theta0 = _seeds(shipped, 500)
    with torch.no_grad():
        phases = shipped.final_phases(labels, theta0)
        ref = shipped.decode(phases)
        got = shipped.decode(phases, decoder=kind)
        int8 = shipped.decode(phases, decoder="int8")
    rms = float((got - ref).pow(2).mean().sqrt())
    assert rms < bound
    assert rms > float((int8 - ref).pow(2).mean().sqrt())  # coarser than the int8 MAC array
    assert got.shape == ref.shape and float(got.abs().max()) <= 1.0


def test_built_once_per_weights_and_reproducible(shipped) -> None:
    a = shipped.lowbit_decoder("analog")
    assert shipped.lowbit_decoder("analog") is a and shipped.lowbit_decoder("int4") is not a
    again = AnalogDecoder.of(shipped)
    assert all(torch.equal(x, y) for x, y in zip(a.programmed, again.programmed) if x is not None)
    other = AnalogDecoder.of(shipped, chip_seed=5)
    assert not torch.equal(other.programmed[0], a.programmed[0])  # another chip, other programming errors


def test_programming_noise_has_the_pcm_models_sigma() -> None:
    w = torch.full((64, 64, 3, 3), 0.5)
    w[0, 0, 0, 0] = 1.0  # w_max: the rest map to g_T = 12.5 µS
    layer = nn.Conv2d(64, 64, 3, padding=1)
    with torch.no_grad():
        layer.weight.copy_(w)
    dec = AnalogDecoder(nn.Sequential(layer), [1.0], [1.0], (64, 1, 1), chip_seed=3, read_seed=4)
    programmed = dec.programmed[0].double().flatten()[1:]
    # w = (g+ − g−) w_max / g_max: σ_w = √(σ(12.5)² + σ(0)²) / 25
    sigma = math.sqrt(float(prog_sigma_us(torch.tensor(12.5))) ** 2 + float(prog_sigma_us(torch.tensor(0.0))) ** 2)
    assert float(programmed.std()) == pytest.approx(sigma / 25, rel=0.05)
    assert float(programmed.mean()) == pytest.approx(0.5, abs=4 * sigma / 25 / math.sqrt(programmed.numel()))
    assert float(prog_sigma_us(torch.tensor(25.0))) == pytest.approx(0.2635 + 1.9650 - 1.1731)


@pytest.mark.parametrize("transposed", [False, True])
def test_read_noise_of_an_output_is_the_sum_over_its_devices(transposed) -> None:
    """An output's read noise Σ_j σ_j² x_j² (one convolution of x² with σ²) equals the
    variance of the convolution with independently re-read weights — in both layer kinds'
    weight layouts."""
    torch.manual_seed(0)
    layer = nn.ConvTranspose2d(3, 2, 4, stride=2, padding=1) if transposed else nn.Conv2d(3, 2, 3, padding=1)
    x = torch.randn(1, 3, 4, 4, dtype=torch.float64)
    w = layer.weight.detach().double()
    var = torch.rand_like(w) * 0.01
    predicted = _conv(layer, x * x, var)
    draws = torch.stack([_conv(layer, x, w + var.sqrt() * torch.randn_like(w)) for _ in range(4000)])
    torch.testing.assert_close(draws.var(0), predicted, rtol=0.12, atol=1e-6)


def test_read_noise_follows_the_pcm_formula() -> None:
    g = torch.tensor([25.0, 5.0])
    q = torch.clamp(0.0088 / g ** 0.65, max=0.2)
    want = g * q * math.sqrt(math.log((1.0 + 250e-9) / 500e-9))
    torch.testing.assert_close(read_sigma_us(g, g), want)
    assert lowbit.READ_TIME_S == 1.0 and lowbit.DAC_BITS == lowbit.ADC_BITS == 8
