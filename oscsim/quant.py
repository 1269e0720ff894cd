"""Symmetric uniform quantisation: the one quantiser of couplings, frequencies and phases.

A b-bit signed code is sign + (b − 1) magnitude bits: integers in [−q_max, q_max] with
q_max = 2^(b−1) − 1 (b ≥ 2), the value being ``code · scale``. b = 1 is the sign alone:
codes ±1 (an exact 0 stays 0; absence of a coupler is a sparsity mask, not a code).

The compiler picks scales per tensor, per row or per tile (`choose_scale` over the axes
it groups), `oscsim.NonIdeal` quantises with the same functions, so what the simulator
sees is exactly what the compiler wrote.
"""

from __future__ import annotations

import torch
from torch import Tensor

from oscsim.errors import OscsimError

ROUNDINGS = ("nearest", "stochastic")
SCALE_METHODS = ("max", "percentile", "mse")


def check_bits(bits: int) -> int:
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 16:
        raise OscsimError(f"bits must be an integer in 1..16, not {bits!r}")
    return bits


def qmax(bits: int) -> int:
    """Largest code magnitude of a b-bit signed code."""
    check_bits(bits)
    return 1 if bits == 1 else 2 ** (bits - 1) - 1


def code_dtype(bits: int) -> torch.dtype:
    """The smallest integer dtype that holds b-bit codes."""
    return torch.int8 if check_bits(bits) <= 8 else torch.int16


def quantize(
    x: Tensor,
    scale: Tensor | float,
    bits: int,
    *,
    rounding: str = "nearest",
    generator: torch.Generator | None = None,
) -> Tensor:
    """Integer codes of ``x / scale`` (scale broadcasts against x; > 0), clipped to ±q_max.

    'nearest' rounds half away from zero (so codes are odd-symmetric: q(−x) = −q(x));
    'stochastic' rounds up with probability equal to the fractional part (unbiased inside
    the clip range), drawing from `generator`.
    """
    if rounding not in ROUNDINGS:
        raise OscsimError(f"rounding must be one of {', '.join(ROUNDINGS)}; got {rounding!r}")
    q = qmax(bits)
    scale = torch.as_tensor(scale, dtype=x.dtype, device=x.device)
    if bool((scale <= 0).any()) or not bool(torch.isfinite(scale).all()):
        raise OscsimError("quantisation scale must be positive and finite")
    if bits == 1:
        codes = torch.sign(x)
        if rounding == "stochastic":
            # P(+1) = (1 + x/s)/2 inside the range: unbiased, like the multi-bit case
            u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
            p = ((x / scale).clamp(-1, 1) + 1) / 2
            codes = torch.where(x == 0, torch.zeros_like(x), torch.where(u < p, 1.0, -1.0))
        return codes.to(code_dtype(bits))
    y = x / scale
    if rounding == "nearest":
        codes = torch.sign(y) * torch.floor(y.abs() + 0.5)
    else:
        u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        codes = torch.floor(y + u)
    return codes.clamp_(-q, q).to(code_dtype(bits))


def dequantize(codes: Tensor, scale: Tensor | float, *, dtype: torch.dtype = torch.float32) -> Tensor:
    """``codes · scale`` as floats."""
    return codes.to(dtype) * torch.as_tensor(scale, dtype=dtype, device=codes.device)


def fake_quantize(x: Tensor, scale: Tensor | float, bits: int, **kwargs) -> Tensor:
    """``dequantize(quantize(x))`` in x's dtype."""
    return dequantize(quantize(x, scale, bits, **kwargs), scale, dtype=x.dtype)


def choose_scale(
    x: Tensor,
    bits: int,
    *,
    method: str = "max",
    dim: int | tuple[int, ...] | None = None,
    percentile: float = 99.9,
    grid: int = 64,
) -> Tensor:
    """The clipping scale of `x`, reduced over `dim` (None: the whole tensor) with keepdim.

    - 'max': max |x| / q_max (no clipping).
    - 'percentile': the given percentile of |x| / q_max (clips the tail).
    - 'mse': the clip c ∈ (0, max |x|] on a `grid`-point search that minimises the mean
      squared error of round-to-nearest, scale = c / q_max.
    An all-zero group gets scale 1 (its codes are 0 whatever the scale).
    """
    if method not in SCALE_METHODS:
        raise OscsimError(f"scale method must be one of {', '.join(SCALE_METHODS)}; got {method!r}")
    if not 0 < percentile <= 100:
        raise OscsimError(f"percentile must be in (0, 100], not {percentile}")
    q = qmax(bits)
    a = x.detach().abs()
    dims = tuple(range(x.ndim)) if dim is None else ((dim,) if isinstance(dim, int) else tuple(dim))
    dims = tuple(d % x.ndim for d in dims)
    amax = a.amax(dim=dims, keepdim=True) if dims else a
    if method == "max":
        clip = amax
    elif method == "percentile":
        keep = [d for d in range(x.ndim) if d not in dims]
        flat = a.permute(*keep, *dims).reshape(*[x.shape[d] for d in keep], -1)
        clip = torch.quantile(flat.float(), percentile / 100, dim=-1).to(x.dtype)
        shape = [1 if d in dims else x.shape[d] for d in range(x.ndim)]
        clip = clip.reshape(shape)
        clip = torch.where(clip > 0, clip, amax)
    else:
        fractions = torch.linspace(1.0 / grid, 1.0, grid, dtype=x.dtype, device=x.device)
        best_err, clip = None, amax
        for f in fractions:
            c = amax * f
            s = torch.where(c > 0, c / q, torch.ones_like(c))
            err = ((fake_quantize(x.detach(), s, bits) - x.detach()) ** 2).mean(dim=dims, keepdim=True)
            if best_err is None:
                best_err, clip = err, c
            else:
                better = err < best_err
                best_err = torch.where(better, err, best_err)
                clip = torch.where(better, c, clip)
    return torch.where(clip > 0, clip / q, torch.ones_like(clip))
