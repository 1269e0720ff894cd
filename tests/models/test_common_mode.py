"""A common-mode frequency shift (every oscillator of the chip, main and conditioning, moved
by the same Δω: what a uniform temperature or supply change does to identical cells) only
rotates the whole array, θ(t) → θ(t) + Δω·t: a relative readout does not see it. Checked in
oscsim (the phases move by exactly Δω·T, Euler included) and through the readout and the
decoder of every family (images unchanged to float tolerance); an absolute readout does
see it, so the check can fail."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import models
from oscsim import simulate
from tests.oscsim.systems import random_labels, random_phases, random_system


def _shifted(params, delta: float):
    return dataclasses.replace(params, omega=params.omega + delta, nu=params.nu + delta)


@settings(max_examples=20, deadline=None)
@given(delta=st.floats(-3.0, 3.0), steps=st.integers(1, 12), T=st.floats(0.2, 2.0))
def test_a_common_mode_shift_rotates_every_phase_by_delta_t(delta: float, steps: int, T: float) -> None:
    params = random_system(24, 4, 3, 0)
    theta0, labels = random_phases(6, 28, 0), random_labels(6, 3, 0)
    with torch.no_grad():
        base = simulate(params, theta0, labels, steps=steps, T=T).theta
        moved = simulate(_shifted(params, delta), theta0, labels, steps=steps, T=T).theta
    torch.testing.assert_close(moved - base, torch.full_like(base, delta * T), rtol=0, atol=1e-10)


@pytest.mark.parametrize(("family", "relativization"), [
    ("digits-n64", None), ("n1024", None), ("n6656", None), ("n1024", "ref_oscillator"), ("n1024", "pairwise"),
])
def test_relative_readouts_make_the_same_images_under_a_common_mode_shift(family: str, relativization) -> None:
    config = models.PUBLISHED[family]
    config = config.replace(n=32) if family != "digits-n64" else config
    if relativization is not None:
        config = config.replace(relativization=relativization)
    model = models.Un0.init(config, seed=0)
    assert model.config.relativization != "absolute"
    labels = torch.arange(8) % config.num_classes
    theta0 = model.sample_theta0(8, generator=torch.Generator().manual_seed(1))
    base = model.generate(labels, theta0)
    shifted = models.Un0.init(config, seed=0)
    with torch.no_grad():
        shifted.dynamics.omega.add_(0.9)
        shifted.dynamics.omega_cond.add_(0.9)
    torch.testing.assert_close(shifted.generate(labels, theta0), base, rtol=0, atol=2e-5)


def test_an_absolute_readout_sees_the_shift() -> None:
    config = models.PUBLISHED["n1024"].replace(n=32, relativization="absolute")
    model, shifted = models.Un0.init(config, seed=0), models.Un0.init(config, seed=0)
    with torch.no_grad():
        shifted.dynamics.omega.add_(0.9)
        shifted.dynamics.omega_cond.add_(0.9)
    labels = torch.arange(8)
    theta0 = model.sample_theta0(8, generator=torch.Generator().manual_seed(1))
    assert float((shifted.generate(labels, theta0) - model.generate(labels, theta0)).abs().max()) > 1e-2
