"""The decoder's folded inference path: nearest ×2 upsample + conv3×3 as one stride-2
transposed convolution (exact), against the layers as the release defines them."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import models
from models.decoder import UpsampleBlock, decoder_macs, fold_upsample_conv


@settings(max_examples=25, deadline=None)
@given(c_in=st.integers(1, 6), c_out=st.integers(1, 6), h=st.integers(1, 6), w=st.integers(1, 6),
       seed=st.integers(0, 2**16), double=st.booleans())
def test_the_fold_equals_upsample_then_conv(c_in, c_out, h, w, seed, double) -> None:
    dtype = torch.float64 if double else torch.float32
    g = torch.Generator().manual_seed(seed)
    weight = torch.randn(c_out, c_in, 3, 3, generator=g, dtype=dtype)
    bias = torch.randn(c_out, generator=g, dtype=dtype)
    x = torch.randn(2, c_in, h, w, generator=g, dtype=dtype)
    ref = torch.nn.functional.conv2d(torch.nn.functional.interpolate(x, scale_factor=2.0, mode="nearest"),
                                     weight, bias, padding=1)
    got = torch.nn.functional.conv_transpose2d(x, fold_upsample_conv(weight), bias, stride=2, padding=1)
    assert got.shape == ref.shape
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-12 if double else 2e-5)


def test_blocks_and_images_equal_the_release_layers() -> None:
    torch.manual_seed(0)
    block = UpsampleBlock(8, 16)
    x = torch.randn(3, 8, 5, 7)
    with torch.no_grad():
        fast = block(x)
        channels_last = block(x.contiguous(memory_format=torch.channels_last))
        ref = block.net(x)
    torch.testing.assert_close(fast, ref, rtol=0, atol=1e-5)
    torch.testing.assert_close(channels_last, ref, rtol=0, atol=1e-5)
    model = models.load(models.checkpoint.SHIPPED)
    labels = torch.arange(10).repeat(3)
    theta0 = model.sample_theta0(30, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        images = model.generate(labels, theta0)
    with torch.enable_grad():  # training mode keeps the release's layers
        reference = model.generate(labels, theta0).detach()
    torch.testing.assert_close(images, reference, rtol=0, atol=2e-5)


def test_training_keeps_the_layers_and_the_mac_count_is_the_models() -> None:
    block = UpsampleBlock(4, 4)
    x = torch.randn(1, 4, 3, 3, requires_grad=True)
    block(x).sum().backward()
    assert block.net[1].weight.grad is not None
    counts = decoder_macs(models.Un0.init(models.PUBLISHED["digits-n64"], seed=0).decoder)
    assert counts["macs"] > 0 and counts["elementwise"] > 0
    assert counts == decoder_macs(models.Un0.init(models.PUBLISHED["digits-n64"], seed=1).decoder)


@pytest.mark.parametrize("size", ["digits-n64"])
def test_mac_count_unchanged_by_the_fold(size) -> None:
    from models.decoder import Decoder

    dec = Decoder(models.PUBLISHED[size])
    dec.reset_parameters(torch.Generator().manual_seed(0))
    expected = 0
    hw = models.PUBLISHED[size].latent_hw
    c_in = models.PUBLISHED[size].latent_channels
    for c_out in models.PUBLISHED[size].decoder_widths:
        hw *= 2
        expected += hw * hw * c_out * (c_in * 9 + c_out * 9)
        c_in = c_out
    expected += hw * hw * models.PUBLISHED[size].image_channels * c_in * 9
    assert decoder_macs(dec)["macs"] == expected
