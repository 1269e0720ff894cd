"""Symmetries of the dynamics: rotation, relabelling, free rotation, one-way conditioning."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from oscsim import KuramotoParams, simulate
from tests.oscsim.systems import F64, generator, random_labels, random_phases, random_system

# Shifts up to |c| = 20 make |θ| ≤ ~25: sin/cos of it carry ~25 ulp (5e-15) of error,
# propagated over ≤ 12 steps with O(1)-Lipschitz velocities. 1e-11 is ~100× that.
SHIFT_TOL = 1e-11
# Relabelling changes only the summation order inside each GEMM: round-off only.
PERMUTE_TOL = 1e-12

SETTINGS = settings(max_examples=30, deadline=None)
SYSTEMS = dict(
    n=st.integers(1, 12),
    n_cond=st.integers(0, 4),
    classes=st.integers(1, 3),
    batch=st.integers(1, 4),
    scale=st.floats(0.1, 5),
    method=st.sampled_from(["euler", "heun", "rk4"]),
    steps=st.integers(1, 12),
    seed=st.integers(0, 2**31),
)


def make(n, n_cond, classes, batch, scale, seed):
    params = random_system(n, n_cond, classes, seed, scale=scale)
    return params, random_phases(batch, n + n_cond, seed), random_labels(batch, classes, seed)


@SETTINGS
@given(shift=st.floats(-20, 20), **SYSTEMS)
def test_rotating_every_phase_rotates_the_result(shift, n, n_cond, classes, batch, scale, method, steps, seed) -> None:
    params, theta0, labels = make(n, n_cond, classes, batch, scale, seed)
    base = simulate(params, theta0, labels, steps=steps, method=method).theta
    turned = simulate(params, theta0 + shift, labels, steps=steps, method=method).theta
    torch.testing.assert_close(turned, base + shift, rtol=0, atol=SHIFT_TOL)


@SETTINGS
@given(**SYSTEMS)
def test_relabelling_oscillators_and_seeds_permutes_the_result(n, n_cond, classes, batch, scale, method, steps, seed) -> None:
    params, theta0, labels = make(n, n_cond, classes, batch, scale, seed)
    g = generator(seed + 1)
    p, q, s = torch.randperm(n, generator=g), torch.randperm(n_cond, generator=g), torch.randperm(batch, generator=g)
    relabelled = KuramotoParams(
        K=params.K[p][:, p],
        omega=params.omega[p],
        drive=params.drive[:, p][:, :, q],
        C=params.C[q][:, q],
        nu=params.nu[q],
    )
    cols = torch.cat((p, n + q))
    base = simulate(params, theta0, labels, steps=steps, method=method).theta
    moved = simulate(relabelled, theta0[s][:, cols], labels[s], steps=steps, method=method).theta
    torch.testing.assert_close(moved, base[s][:, cols], rtol=0, atol=PERMUTE_TOL)


@SETTINGS
@given(
    n=st.integers(1, 10),
    n_cond=st.integers(0, 3),
    steps=st.integers(1, 20),
    T=st.floats(0.01, 50),
    grad=st.booleans(),  # with grad off Euler takes its own code path
    seed=st.integers(0, 2**31),
)
def test_zero_coupling_is_free_rotation_exactly_for_euler(n, n_cond, steps, T, grad, seed) -> None:
    g = generator(seed)
    omega, nu = torch.randn(n, generator=g, dtype=F64), torch.randn(n_cond, generator=g, dtype=F64)
    params = KuramotoParams(
        K=torch.zeros(n, n, dtype=F64), omega=omega,
        drive=torch.zeros(2, n, n_cond, dtype=F64), C=torch.zeros(n_cond, n_cond, dtype=F64), nu=nu,
    )
    theta0 = random_phases(3, n + n_cond, seed)
    freq = torch.cat((omega, nu))
    with torch.set_grad_enabled(grad):
        res = simulate(params, theta0, torch.tensor([0, -1, 1]), steps=steps, T=T, method="euler").theta
        one_step = simulate(params, theta0, None, steps=1, T=T, method="euler").theta
    # zero couplings contribute exact zeros, so Euler adds h·ω step by step: bit for bit
    # on the generic path; the no-grad path fuses θ + h·v (FMA), which rounds once less
    want, h = theta0.clone(), T / steps
    for _ in range(steps):
        want = want + h * freq
    if grad:
        assert torch.equal(res, want)
        assert torch.equal(one_step, theta0 + T * freq)
    # either way it is θ0 + ω T up to the round-off of `steps` additions
    eps = torch.finfo(F64).eps
    scale = (theta0.abs() + (freq * T).abs()).max().item()
    assert (res - (theta0 + freq * T)).abs().max().item() <= 4 * steps * eps * scale
    assert (one_step - (theta0 + freq * T)).abs().max().item() <= 2 * eps * scale


def test_conditioning_is_one_way_and_a_kuramoto_system_of_its_own() -> None:
    """dφ/dt depends on φ only: changing the main seeds or the classes leaves φ(T) alone."""
    params, theta0, labels = make(8, 3, 4, 4, 1.0, seed=5)
    base = simulate(params, theta0, labels, steps=10, method="rk4")
    other = theta0.clone()
    other[:, :8] = random_phases(4, 8, seed=99)
    changed = simulate(params, other, torch.tensor([3, 2, -1, 0]), steps=10, method="rk4")
    assert (changed.main - base.main).abs().min().item() > 1e-6
    assert torch.equal(changed.cond, base.cond)
    alone = KuramotoParams(
        K=params.C, omega=params.nu,
        drive=torch.zeros(1, 3, 0, dtype=F64), C=torch.zeros(0, 0, dtype=F64), nu=torch.zeros(0, dtype=F64),
    )
    torch.testing.assert_close(simulate(alone, theta0[:, 8:], steps=10, method="rk4").theta, base.cond, rtol=0, atol=PERMUTE_TOL)


def test_seeds_of_a_batch_are_independent() -> None:
    params, theta0, labels = make(16, 2, 3, 5, 1.0, seed=7)
    batched = simulate(params, theta0, labels, steps=6, method="heun").theta
    for b in range(5):
        alone = simulate(params, theta0[b : b + 1], labels[b : b + 1], steps=6, method="heun").theta
        torch.testing.assert_close(alone[0], batched[b], rtol=0, atol=PERMUTE_TOL)
