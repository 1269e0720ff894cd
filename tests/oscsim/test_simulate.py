"""`simulate` as an API: recording, times, steps = 0, purity, dtypes, adaptive, devices."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from oscsim import KuramotoParams, simulate
from tests.oscsim.systems import F64, random_labels, random_phases, random_system

FIXED = ["euler", "heun", "rk4"]
# float32 vs float64, Un-0-scaled N = 256, 10 steps: measured ≤ 2.1e-6 rad (every method,
# grad on or off; ≤ 2.5e-6 at N = 1024): a few float32 ulps of |θ| ≈ 5 per step. 8× margin.
F32_TOL = 2e-5
# `times` is a linspace; step k is at k·(T/steps) up to a few ulps of T.
TIME_TOL = 1e-14
# A frame recorded at step k against a separate run of k steps to the same time: the
# two step sizes differ by an ulp at most, moving the state by ~1e-15.
FRAME_TOL = 1e-13
# RK4 with 400 steps to T = 1 on this system: measured 1.4e-10 from the adaptive reference.
ADAPTIVE_TOL = 1e-9
# Euler with grad mode off takes a separate, rearranged path (`_euler_no_grad`): the
# same arithmetic summed in another order, so round-off of O(1) velocities only.
NO_GRAD_TOL = 1e-12
# The adaptive solver's state at T read from its dense output (record) or its last step:
# the same numbers (measured identical), allowed an ulp-level difference.
ADAPTIVE_REPEAT_TOL = 1e-14
# CPU vs CUDA float64: the same arithmetic in a different summation order (cuBLAS vs
# MKL) — round-off only.
DEVICE_TOL = 1e-12


def system(n=6, n_cond=2, classes=3, batch=4, seed=0):
    params = random_system(n, n_cond, classes, seed)
    return params, random_phases(batch, n + n_cond, seed), random_labels(batch, classes, seed)


@pytest.mark.parametrize("method", FIXED)
def test_record_shapes_first_and_last_frame_and_times(method: str) -> None:
    params, theta0, labels = system()
    steps, T = 7, 1.5
    res = simulate(params, theta0, labels, steps=steps, T=T, method=method, record=True)
    assert res.trajectory.shape == (steps + 1, 4, 8)
    assert res.theta.shape == (4, 8) and res.main.shape == (4, 6) and res.cond.shape == (4, 2)
    assert torch.equal(res.trajectory[0], theta0)
    assert torch.equal(res.trajectory[-1], res.theta)
    assert torch.equal(res.main, res.theta[:, :6]) and torch.equal(res.cond, res.theta[:, 6:])
    want_times = torch.arange(steps + 1, dtype=F64) * (T / steps)
    torch.testing.assert_close(res.times, want_times, rtol=0, atol=TIME_TOL)
    # frame k is the state at times[k]: the same as a separate run of k steps
    k = 3
    part = simulate(params, theta0, labels, steps=k, T=res.times[k].item(), method=method).theta
    torch.testing.assert_close(res.trajectory[k], part, rtol=0, atol=FRAME_TOL)
    # recording does not change the result
    assert torch.equal(simulate(params, theta0, labels, steps=steps, T=T, method=method).theta, res.theta)
    assert simulate(params, theta0, labels, steps=steps, T=T, method=method).trajectory is None


@pytest.mark.parametrize("method", FIXED)
def test_zero_steps_returns_theta0(method: str) -> None:
    params, theta0, labels = system()
    assert torch.equal(simulate(params, theta0, labels, steps=0, method=method).theta, theta0)
    res = simulate(params, theta0, labels, steps=0, method=method, record=True)
    assert torch.equal(res.theta, theta0)
    assert res.trajectory.shape == (1, 4, 8) and torch.equal(res.trajectory[0], theta0)
    assert res.times.tolist() == [0.0]


@pytest.mark.parametrize("steps", [0, 1, 5])
def test_adaptive_result_does_not_depend_on_record(steps: int) -> None:
    params, theta0, labels = system()
    plain = simulate(params, theta0, labels, steps=steps, method="adaptive")
    recorded = simulate(params, theta0, labels, steps=steps, method="adaptive", record=True)
    torch.testing.assert_close(recorded.theta, plain.theta, rtol=0, atol=ADAPTIVE_REPEAT_TOL)


def test_adaptive_record_against_fine_rk4() -> None:
    params, theta0, labels = system()
    res = simulate(params, theta0, labels, steps=4, method="adaptive", record=True)
    assert res.trajectory.shape == (5, 4, 8)
    torch.testing.assert_close(res.times, torch.linspace(0, 1, 5, dtype=F64), rtol=0, atol=TIME_TOL)
    torch.testing.assert_close(res.trajectory[0], theta0, rtol=0, atol=ADAPTIVE_REPEAT_TOL)
    assert torch.equal(res.trajectory[-1], res.theta)
    fine = simulate(params, theta0, labels, steps=400, method="rk4", record=True)
    torch.testing.assert_close(res.trajectory, fine.trajectory[::100], rtol=0, atol=ADAPTIVE_TOL)
    # float32 in, float32 out (the reference itself runs in float64)
    res32 = simulate(params.to(torch.float32), theta0.float(), labels, steps=4, method="adaptive", record=True)
    assert res32.theta.dtype == res32.trajectory.dtype == res32.times.dtype == torch.float32
    torch.testing.assert_close(res32.theta.double(), res.theta, rtol=0, atol=F32_TOL)


@pytest.mark.parametrize("method", [*FIXED, "adaptive"])
def test_pure_bitwise_repeatable_and_inputs_untouched(method: str) -> None:
    params, theta0, labels = system()
    copies = [t.clone() for t in (params.K, params.omega, params.drive, params.C, params.nu, theta0, labels)]
    a = simulate(params, theta0, labels, steps=5, method=method, record=True)
    b = simulate(params, theta0, labels, steps=5, method=method, record=True)
    assert torch.equal(a.theta, b.theta) and torch.equal(a.trajectory, b.trajectory)
    after = (params.K, params.omega, params.drive, params.C, params.nu, theta0, labels)
    assert all(torch.equal(x, y) for x, y in zip(copies, after))


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 12),
    n_cond=st.integers(0, 4),
    classes=st.integers(1, 3),
    batch=st.integers(1, 4),
    steps=st.integers(0, 12),
    T=st.floats(0.1, 3),
    with_labels=st.booleans(),
    record=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_euler_without_grad_equals_the_generic_path(n, n_cond, classes, batch, steps, T, with_labels, record, seed) -> None:
    """Generation runs Euler with grad off, which takes its own code path."""
    params, theta0, labels = system(n, n_cond, classes, batch, seed)
    labels = labels if with_labels else None
    before = theta0.clone()
    generic = simulate(params, theta0, labels, steps=steps, T=T, record=record)
    with torch.no_grad():
        fast = simulate(params, theta0, labels, steps=steps, T=T, record=record)
        again = simulate(params, theta0, labels, steps=steps, T=T, record=record)
    assert torch.equal(theta0, before)  # no in-place writes into the seed
    assert torch.equal(fast.theta, again.theta)  # deterministic
    torch.testing.assert_close(fast.theta, generic.theta, rtol=0, atol=NO_GRAD_TOL)
    if record:
        assert fast.trajectory.shape == (steps + 1, batch, n + n_cond)
        assert torch.equal(fast.trajectory[0], theta0) and torch.equal(fast.trajectory[-1], fast.theta)
        torch.testing.assert_close(fast.trajectory, generic.trajectory, rtol=0, atol=NO_GRAD_TOL)
        torch.testing.assert_close(fast.times, generic.times, rtol=0, atol=0)
    else:
        assert fast.trajectory is None and fast.times is None


# only Euler has a separate no-grad path
WITH_GRAD_MODES = [("euler", True), ("euler", False), ("heun", True), ("rk4", True)]
GRAD_IDS = ["euler", "euler-no_grad", "heun", "rk4"]


@pytest.mark.parametrize(("method", "grad"), WITH_GRAD_MODES, ids=GRAD_IDS)
def test_float32_close_to_float64(method: str, grad: bool) -> None:
    params, theta0, labels = system(n=256, n_cond=8, classes=10, batch=8)
    with torch.set_grad_enabled(grad):
        r64 = simulate(params, theta0, labels, steps=10, method=method)
        r32 = simulate(params.to(torch.float32), theta0.float(), labels, steps=10, method=method)
    assert r32.theta.dtype == torch.float32
    assert (r32.theta.double() - r64.theta).abs().max().item() < F32_TOL


def test_classless_system_accepts_dropped_labels_as_documented() -> None:
    """drive (0, N, N_c): labels must lie in [0, 0) or be −1, and −1 means no drive."""
    params = random_system(4, 2, 0, seed=3)
    theta0 = random_phases(2, 6, seed=3)
    want = simulate(params, theta0, None, steps=3).theta
    got = simulate(params, theta0, torch.tensor([-1, -1]), steps=3).theta
    torch.testing.assert_close(got, want, rtol=0, atol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.cuda
@pytest.mark.parametrize(("method", "grad"), WITH_GRAD_MODES, ids=GRAD_IDS)
def test_cpu_and_cuda_agree_in_float64(method: str, grad: bool) -> None:
    params, theta0, labels = system(n=128, n_cond=8, classes=10, batch=8)
    with torch.set_grad_enabled(grad):
        cpu = simulate(params, theta0, labels, steps=10, method=method, record=True)
        gpu = simulate(params.to("cuda"), theta0.to("cuda"), labels.to("cuda"), steps=10, method=method, record=True)
        # labels may stay on the CPU while the system is on the GPU
        mixed = simulate(params.to("cuda"), theta0.to("cuda"), labels, steps=10, method=method)
    assert gpu.theta.device.type == "cuda"
    torch.testing.assert_close(gpu.trajectory.cpu(), cpu.trajectory, rtol=0, atol=DEVICE_TOL)
    torch.testing.assert_close(mixed.theta.cpu(), cpu.theta, rtol=0, atol=DEVICE_TOL)


def test_from_raw_zeroes_diagonals_applies_scales_and_flattens() -> None:
    g = torch.Generator().manual_seed(0)
    K, C = torch.randn(3, 3, generator=g, dtype=F64), torch.randn(2, 2, generator=g, dtype=F64)
    drive = torch.randn(4, 3, 2, generator=g, dtype=F64)
    omega, nu = torch.randn(1, 3, generator=g, dtype=F64), torch.randn(1, 2, generator=g, dtype=F64)
    K_before = K.clone()
    # scales are powers of two, so the products below are exact
    p = KuramotoParams.from_raw(K=K, omega=omega, drive=drive, C=C, nu=nu, k_scale=0.5, c_scale=0.25, drive_scale=2.0)
    off3, off2 = 1 - torch.eye(3, dtype=F64), 1 - torch.eye(2, dtype=F64)
    assert torch.equal(p.K, K * off3 * 0.5) and torch.equal(p.C, C * off2 * 0.25)
    assert torch.equal(p.drive, drive * 2.0)
    assert torch.equal(p.omega, omega[0]) and torch.equal(p.nu, nu[0])
    assert torch.equal(K, K_before)  # the stored weights are not modified


def test_params_to_moves_every_field() -> None:
    params = random_system(3, 1, 2, seed=0)
    p32 = params.to(torch.float32)
    assert isinstance(p32, KuramotoParams)
    assert all(t.dtype == torch.float32 for t in (p32.K, p32.omega, p32.drive, p32.C, p32.nu))
    assert (p32.n, p32.n_cond, p32.num_classes) == (3, 1, 2)
