"""`ShapedCoupling`: the circuit's coupling-function shape on a model's couplings, and its
reciprocal form (one DAC per pair: K and C act through their symmetric parts)."""

from __future__ import annotations

import dataclasses

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from oscsim import simulate
from oscsim.shaped import RATIO_TERMS, ShapedCoupling
from tests.oscsim.systems import generator, random_labels, random_phases, random_system


def _ratios(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(len(RATIO_TERMS), *shape, generator=generator(seed), dtype=torch.float64) * 0.3


def _sym(M: torch.Tensor) -> torch.Tensor:
    return (M + M.mT) / 2


def velocity(params, state, labels):
    """Where one short Euler step takes `state` (the whole coupling function acts in it)."""
    return simulate(params, state, labels, steps=1, T=1e-3).theta


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 9), n_cond=st.integers(1, 4), seed=st.integers(0, 10_000), constant=st.booleans())
def test_a_reciprocal_shape_is_the_shape_of_the_symmetric_parts(n, n_cond, seed, constant) -> None:
    p = random_system(n, n_cond, 3, seed)
    shape = ShapedCoupling(K=_ratios(n, n, seed=seed), C=_ratios(n_cond, n_cond, seed=seed + 1),
                           drive=_ratios(3, n, n_cond, seed=seed + 2), constant=constant)
    recip = dataclasses.replace(shape, reciprocal=True)
    by_hand = shape.apply(dataclasses.replace(p, K=_sym(p.K), C=_sym(p.C)))
    got = recip.apply(p)
    state = random_phases(4, n + n_cond, seed)
    labels = random_labels(4, 3, seed)
    assert torch.equal(got.K, _sym(p.K)) and torch.equal(got.C, _sym(p.C)) and torch.equal(got.drive, p.drive)
    assert torch.allclose(velocity(got, state, labels), velocity(by_hand, state, labels), atol=1e-12)
    # the antisymmetric part of K no longer reaches the dynamics; without the flag it does
    anti = torch.randn(n, n, generator=generator(seed + 3), dtype=torch.float64)
    moved = dataclasses.replace(p, K=p.K + anti - anti.T)
    assert torch.allclose(velocity(recip.apply(moved), state, labels), velocity(got, state, labels), atol=1e-12)
    if n > 1 and (anti - anti.T).abs().max() > 1e-3:
        assert not torch.allclose(velocity(shape.apply(moved), state, labels), velocity(shape.apply(p), state, labels),
                                  rtol=0.0, atol=1e-12)  # a small antisymmetric part moves it a little, never nothing


def test_the_flag_survives_a_move_and_gradients_are_symmetric() -> None:
    p = random_system(6, 2, 3, 0)
    recip = ShapedCoupling(K=_ratios(6, 6, seed=0), reciprocal=True).to(torch.float64)
    assert recip.reciprocal
    K = p.K.clone().requires_grad_(True)
    out = simulate(recip.apply(dataclasses.replace(p, K=K)), random_phases(3, 8, 0), labels=random_labels(3, 3, 0),
                   steps=5, T=0.25)
    out.theta.sin().sum().backward()
    assert torch.allclose(K.grad, K.grad.T, atol=1e-12) and K.grad.abs().sum() > 0
