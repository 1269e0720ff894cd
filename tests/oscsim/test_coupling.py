"""The GEMM form of the coupling sums and the full velocity, against their definitions."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from oscsim import drive_coupling, gather_drive, kuramoto_coupling, naive_coupling, simulate, velocity
from tests.oscsim.systems import F64, generator, naive_velocity, random_labels, random_phases, random_system

# Per term, the identity cos θ_i sin θ_j − sin θ_i cos θ_j and the direct sin(θ_j − θ_i)
# each carry a few ulp of |θ| ≤ 100 (≈ 2e-14) times |K_ij|; summed over ≤ N terms. The
# constant 1e-12 per term leaves a margin of ~50 over that.
ROUNDOFF_PER_TERM = 1e-12
# The velocity (N ≤ 7, couplings scaled ≤ 10×) is at most ~1e2, its round-off ~1e-13.
VELOCITY_TOL = 1e-11

# One product of O(1) numbers, computed two ways: an ulp or two.
PAIR_TOL = 1e-15

SETTINGS = settings(max_examples=100, deadline=None)


def phases(batch: int, n: int, seed: int, scale: float) -> torch.Tensor:
    """Unwrapped phases, |θ| ≤ scale (a long run leaves phases far outside [−π, π))."""
    return (torch.rand(batch, n, generator=generator(seed), dtype=F64) * 2 - 1) * scale


@SETTINGS
@given(
    n=st.integers(1, 48),
    batch=st.integers(1, 5),
    log_k=st.floats(-3, 3),
    phase_scale=st.floats(0.1, 100),
    seed=st.integers(0, 2**31),
)
def test_gemm_coupling_equals_naive(n: int, batch: int, log_k: float, phase_scale: float, seed: int) -> None:
    K = torch.randn(n, n, generator=generator(seed), dtype=F64) * 10**log_k
    theta = phases(batch, n, seed + 1, phase_scale)
    got, want = kuramoto_coupling(theta, K), naive_coupling(theta, K)
    assert got.shape == want.shape == (batch, n)
    bound = ROUNDOFF_PER_TERM * n * K.abs().max().item()
    assert (got - want).abs().max().item() <= bound


def test_coupling_of_one_pair_by_hand() -> None:
    """Row i of K is what oscillator i hears: out_1 = K12 sin(θ2 − θ1), out_2 = K21 sin(θ1 − θ2)."""
    K = torch.tensor([[5.0, 2.0], [-3.0, 7.0]], dtype=F64)  # diagonal: sin(0) = 0, no effect
    theta = torch.tensor([[0.3, 1.1]], dtype=F64)
    want = torch.tensor([[2.0 * math.sin(0.8), -3.0 * math.sin(-0.8)]], dtype=F64)
    for fn in (kuramoto_coupling, naive_coupling):
        torch.testing.assert_close(fn(theta, K), want, rtol=0, atol=PAIR_TOL)


@SETTINGS
@given(
    n=st.integers(1, 24),
    n_cond=st.integers(1, 6),
    batch=st.integers(1, 5),
    log_d=st.floats(-3, 3),
    phase_scale=st.floats(0.1, 100),
    seed=st.integers(0, 2**31),
)
def test_drive_coupling_equals_explicit_sum(n, n_cond, batch, log_d, phase_scale, seed) -> None:
    drive = torch.randn(batch, n, n_cond, generator=generator(seed), dtype=F64) * 10**log_d
    theta = phases(batch, n, seed + 1, phase_scale)
    phi = phases(batch, n_cond, seed + 2, phase_scale)
    # [b, i, k] = D_b,ik sin(φ_b,k − θ_b,i)
    want = torch.einsum("bik,bik->bi", drive, torch.sin(phi[:, None, :] - theta[:, :, None]))
    got = drive_coupling(theta, phi, drive)
    bound = ROUNDOFF_PER_TERM * n_cond * drive.abs().max().item()
    assert (got - want).abs().max().item() <= bound


@SETTINGS
@given(
    n=st.integers(1, 7),
    n_cond=st.integers(0, 3),
    classes=st.integers(1, 3),
    batch=st.integers(1, 4),
    scale=st.floats(0.1, 10),
    with_labels=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_velocity_equals_the_spec_equations(n, n_cond, classes, batch, scale, with_labels, seed) -> None:
    params = random_system(n, n_cond, classes, seed, scale=scale)
    state = random_phases(batch, n + n_cond, seed)
    labels = random_labels(batch, classes, seed) if with_labels else None
    want = naive_velocity(params, state, labels)
    got = velocity(params, state, gather_drive(params, labels, batch))
    torch.testing.assert_close(got, want, rtol=0, atol=VELOCITY_TOL)
    # and simulate integrates that velocity: one Euler step is θ0 + h·v
    h = 0.125
    stepped = simulate(params, state, labels, steps=1, T=h).theta
    torch.testing.assert_close(stepped, state + h * want, rtol=0, atol=VELOCITY_TOL)


def test_gather_drive_picks_the_class_and_zeroes_dropped() -> None:
    params = random_system(4, 2, 3, seed=0)
    drive = gather_drive(params, torch.tensor([2, -1, 0, 2]), 4)
    assert drive.shape == (4, 4, 2)
    assert torch.equal(drive[0], params.drive[2]) and torch.equal(drive[3], params.drive[2])
    assert torch.equal(drive[2], params.drive[0])
    assert torch.equal(drive[1], torch.zeros(4, 2, dtype=F64))
    assert gather_drive(params, None, 4) is None


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.int16, torch.int8])
def test_dropped_label_is_no_drive_for_every_integer_dtype(dtype: torch.dtype) -> None:
    params = random_system(5, 2, 3, seed=1)
    theta0 = random_phases(3, 7, seed=1)
    none = simulate(params, theta0, None, steps=4, method="heun").theta
    dropped = simulate(params, theta0, torch.tensor([-1, -1, -1], dtype=dtype), steps=4, method="heun").theta
    assert torch.equal(dropped, none)  # a zeroed drive adds exact zeros
    labelled = simulate(params, theta0, torch.tensor([0, 1, 2], dtype=dtype), steps=4, method="heun").theta
    assert (labelled[:, :5] - none[:, :5]).abs().min().item() > 1e-6  # the drive does act
