"""The symmetric quantiser: half-step error, monotone, idempotent, odd, scale choice."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from oscsim import OscsimError, choose_scale, dequantize, fake_quantize, qmax, quantize

finite = st.floats(-1e3, 1e3, allow_nan=False, width=32)
vectors = arrays(np.float32, st.integers(1, 64), elements=finite)


@settings(max_examples=200, deadline=None)
@given(vectors, st.integers(2, 16), st.floats(1e-3, 10.0))
def test_error_is_at_most_half_a_step_inside_the_clip_range(x, bits, scale) -> None:
    t = torch.from_numpy(x).double()
    q = quantize(t, scale, bits)
    inside = t.abs() <= qmax(bits) * scale
    err = (dequantize(q, scale, dtype=torch.float64) - t).abs()
    assert bool((err[inside] <= scale / 2 * (1 + 1e-9)).all())
    assert int(q.abs().max()) <= qmax(bits)


@settings(max_examples=200, deadline=None)
@given(vectors, st.integers(1, 16), st.floats(1e-3, 10.0))
def test_monotone_odd_and_idempotent(x, bits, scale) -> None:
    t = torch.from_numpy(x).double()
    order = torch.argsort(t)
    q = quantize(t, scale, bits).long()
    assert bool((q[order].diff() >= 0).all())
    assert torch.equal(quantize(-t, scale, bits), -quantize(t, scale, bits))
    once = fake_quantize(t, scale, bits)
    assert torch.equal(fake_quantize(once, scale, bits), once)


def test_stochastic_rounding_is_unbiased() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.full((200_000,), 0.3, dtype=torch.float64)
    q = quantize(x, 1.0, 4, rounding="stochastic", generator=g).double()
    assert set(q.unique().tolist()) == {0.0, 1.0}
    assert abs(q.mean().item() - 0.3) < 5 / np.sqrt(200_000)


def test_one_bit_is_the_sign() -> None:
    x = torch.tensor([-2.0, -0.1, 0.0, 0.1, 5.0])
    assert quantize(x, 1.0, 1).tolist() == [-1, -1, 0, 1, 1]


def test_scales_per_row_and_methods() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(8, 1000, generator=g, dtype=torch.float64)
    x[0, 0] = 12.0  # one outlier in row 0
    s_max = choose_scale(x, 6, method="max", dim=1)
    assert s_max.shape == (8, 1)
    assert s_max[0, 0] == pytest.approx(12.0 / 31)
    s_pct = choose_scale(x, 6, method="percentile", dim=1, percentile=99.0)
    s_mse = choose_scale(x, 6, method="mse", dim=1)
    assert s_pct[0, 0] < s_max[0, 0] / 3 and bool((s_mse <= s_max).all())

    def mse(s):
        return ((fake_quantize(x, s, 6) - x) ** 2).mean().item()

    assert mse(s_mse) <= min(mse(s_max), mse(s_pct))
    heavy = x**3  # a heavy tail: the MSE-optimal clip cuts it
    assert bool((choose_scale(heavy[1:], 4, method="mse", dim=1) < choose_scale(heavy[1:], 4, dim=1) / 1.1).all())
    assert choose_scale(torch.zeros(3, 3), 4).item() == 1.0


def test_bad_arguments() -> None:
    with pytest.raises(OscsimError, match="bits"):
        quantize(torch.ones(2), 1.0, 17)
    with pytest.raises(OscsimError, match="scale"):
        quantize(torch.ones(2), 0.0, 8)
    with pytest.raises(OscsimError, match="rounding"):
        quantize(torch.ones(2), 1.0, 8, rounding="up")
