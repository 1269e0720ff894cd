"""`oscsim.NonIdeal`: ideal bit for bit when off, noise statistics, chips and seeds."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from oscsim import (
    KuramotoParams,
    NonIdeal,
    OscsimError,
    choose_scale,
    fake_quantize,
    freq_mismatch_to_model,
    phase_noise_from_period_jitter,
    simulate,
    to_model_time,
)
from oscsim.realize import _chip_draw
from tests.oscsim.systems import F64, random_labels, random_phases, random_system

# Euler–Maruyama with every noise off against the ideal Euler: the same arithmetic, the
# drive summed inside the coupling GEMM instead of beside it — float64 round-off only.
ROUND_OFF = 1e-12
# A sample variance of n Gaussian values has relative sd √(2/(n−1)); checks allow 5 sd.
def rel_sd(n: int) -> float:
    return 5 * math.sqrt(2 / (n - 1))


def system(n=8, n_cond=3, classes=4, batch=6, seed=0):
    return random_system(n, n_cond, classes, seed), random_phases(batch, n + n_cond, seed), random_labels(batch, classes, seed)


def uncoupled(n: int, n_cond: int = 2, seed: int = 0) -> KuramotoParams:
    """K = 0, no drive, C = 0: each phase moves at its own ω (or ν)."""
    p = random_system(n, n_cond, 2, seed)
    return KuramotoParams(K=torch.zeros_like(p.K), omega=p.omega, drive=torch.zeros_like(p.drive),
                          C=torch.zeros_like(p.C), nu=p.nu)


# --- off means ideal ------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["euler", "heun", "rk4"])
@pytest.mark.parametrize("grad", [True, False])
def test_all_off_is_bit_identical(method: str, grad: bool) -> None:
    params, theta0, labels = system()
    with torch.set_grad_enabled(grad):
        ideal = simulate(params, theta0, labels, steps=7, method=method, record=True)
        for off in (NonIdeal(), NonIdeal(chip_seed=5, sample_seed=9, quant_scale="mse")):
            got = simulate(params, theta0, labels, steps=7, method=method, record=True, nonideal=off)
            assert torch.equal(got.theta, ideal.theta) and torch.equal(got.trajectory, ideal.trajectory)


@pytest.mark.parametrize("grad", [True, False])
@pytest.mark.parametrize("with_labels", [True, False])
def test_noise_free_chips_match_the_ideal_integrator(grad: bool, with_labels: bool) -> None:
    """Three chips, nothing drawn: the Euler–Maruyama path (chip axis, drive in the GEMM)
    reproduces ideal Euler, dropped labels included."""
    params, theta0, labels = system(batch=6)
    labels = labels if with_labels else None
    assert with_labels is False or bool((labels == -1).any())
    with torch.set_grad_enabled(grad):
        ideal = simulate(params, theta0, labels, steps=7, T=1.3, record=True)
        got = simulate(params, theta0, labels, steps=7, T=1.3, record=True,
                       nonideal=NonIdeal(chips=3, readout_jitter_rad=0.0, coupling_bits=16))
    # 16-bit couplings move K by < 2^-16 of its max: compare against the quantised system
    q = NonIdeal(coupling_bits=16).chip_params(params)
    ideal_q = simulate(q, theta0, labels, steps=7, T=1.3, record=True)
    torch.testing.assert_close(got.trajectory, ideal_q.trajectory, rtol=0, atol=ROUND_OFF)
    assert (got.theta - ideal.theta).abs().max() < 1e-3  # and 16 bits are close to exact


@pytest.mark.parametrize("chips", [1, 2])
def test_no_grad_path_draws_what_the_generic_path_draws(chips: int) -> None:
    """Without autograd one chip takes the ideal fast Euler path (batch sorted by class)
    with the Wiener term, several chips the buffered chip-axis loop: the same draws land
    on the same samples as in the generic (autograd) Euler–Maruyama loop."""
    params, theta0, labels = system(n=16, batch=8)
    assert bool((labels == -1).any()) and len(set(labels.tolist())) > 2
    ni = NonIdeal(phase_noise_rad_per_sqrt_t=0.3, freq_mismatch_rad_per_t=0.2, coupling_mismatch_sigma=0.1,
                  dead_coupler_fraction=0.1, chips=chips, sample_seed=3, readout_bits=6, readout_jitter_rad=0.01)
    with torch.no_grad():
        fast = simulate(params, theta0, labels, steps=10, nonideal=ni, record=True)
    generic = simulate(params, theta0, labels, steps=10, nonideal=ni, record=True)
    torch.testing.assert_close(fast.trajectory, generic.trajectory, rtol=0, atol=ROUND_OFF)
    torch.testing.assert_close(fast.theta, generic.theta, rtol=0, atol=ROUND_OFF)


# --- phase noise --------------------------------------------------------------------------
def test_phase_noise_variance_grows_as_sigma_squared_t() -> None:
    """Uncoupled oscillators, phase noise only: θ(t) − θ0 − ω t is a Wiener process of
    variance σ² t. The fitted slope of variance over t is σ², the mean stays 0."""
    n, batch, steps, T, sigma = 50, 2000, 10, 2.0, 0.7
    params = uncoupled(n)
    theta0 = random_phases(batch, n + params.n_cond, 1)
    res = simulate(params, theta0, None, steps=steps, T=T, record=True,
                   nonideal=NonIdeal(phase_noise_rad_per_sqrt_t=sigma, sample_seed=11))
    t = res.times[1:]
    drift = theta0[:, :n] + params.omega * t[:, None, None]
    dev = res.trajectory[1:, :, :n] - drift  # (steps, B, N)
    var = dev.pow(2).mean(dim=(1, 2))
    slope = float((var * t).sum() / (t * t).sum())  # least squares through the origin
    count = batch * n
    assert slope == pytest.approx(sigma**2, rel=rel_sd(count))
    torch.testing.assert_close(var / t, torch.full_like(t, sigma**2), rtol=rel_sd(count), atol=0)
    assert float(dev[-1].mean()).__abs__() < 5 * sigma * math.sqrt(T / count)
    # conditioning oscillators are cells too
    cond_dev = res.trajectory[-1, :, n:] - theta0[:, n:] - params.nu * T
    assert float(cond_dev.var()) == pytest.approx(sigma**2 * T, rel=rel_sd(batch * params.n_cond))


# --- static terms -------------------------------------------------------------------------
def test_frequency_mismatch_shifts_the_drift_by_exactly_the_drawn_offsets() -> None:
    n, batch, T, sigma = 40, 6, 1.5, 0.25
    params = uncoupled(n)
    theta0 = random_phases(batch, n + params.n_cond, 2)
    ni = NonIdeal(freq_mismatch_rad_per_t=sigma, chips=3, chip_seed=7)
    res = simulate(params, theta0, None, steps=10, T=T, nonideal=ni)
    drift = (res.theta - theta0) / T  # (B, N + N_c)
    for c in range(3):
        chip = ni.chip_params(params, c)
        offset = torch.cat((chip.omega - params.omega, chip.nu - params.nu))
        want = sigma * torch.cat((_chip_draw(7 + c, "omega", (n,), "normal"), _chip_draw(7 + c, "nu", (2,), "normal")))
        torch.testing.assert_close(offset, want, rtol=0, atol=1e-15)
        torch.testing.assert_close(drift[2 * c:2 * c + 2] - torch.cat((params.omega, params.nu)), offset.expand(2, -1),
                                   rtol=0, atol=ROUND_OFF)
    # chips differ, and the offsets are N(0, σ²) across many oscillators
    many = NonIdeal(freq_mismatch_rad_per_t=sigma, chips=20).replace()
    big = uncoupled(500)
    offsets = torch.stack([many.chip_params(big, c).omega - big.omega for c in range(20)])
    assert not torch.equal(offsets[0], offsets[1])
    assert float(offsets.std()) == pytest.approx(sigma, rel=rel_sd(offsets.numel()))
    assert abs(float(offsets.mean())) < 5 * sigma / math.sqrt(offsets.numel())


def test_coupling_mismatch_is_log_normal_per_coupler_and_shared_by_classes() -> None:
    params = random_system(300, 3, 4, 0)
    s = 0.2
    chip = NonIdeal(coupling_mismatch_sigma=s, chip_seed=1).chip_params(params)
    off = ~torch.eye(300, dtype=torch.bool)
    log_gain = torch.log(chip.K[off] / params.K[off])
    assert float(log_gain.std()) == pytest.approx(s, rel=rel_sd(log_gain.numel()))
    assert abs(float(log_gain.mean())) < 5 * s / math.sqrt(log_gain.numel())
    gain_drive = chip.drive / params.drive
    torch.testing.assert_close(gain_drive, gain_drive[:1].expand_as(gain_drive))  # one coupler, every class
    assert torch.equal(chip.omega, params.omega)  # frequencies untouched


def test_dead_couplers_fraction_and_quantisation_through_the_one_quantiser() -> None:
    params = random_system(200, 3, 4, 0)
    chip = NonIdeal(dead_coupler_fraction=0.3, chip_seed=2).chip_params(params)
    off = ~torch.eye(200, dtype=torch.bool)
    dead = (chip.K[off] == 0).double().mean()
    assert float(dead) == pytest.approx(0.3, abs=5 * math.sqrt(0.3 * 0.7 / off.sum()))
    alive = chip.K[off] != 0
    assert torch.equal(chip.K[off][alive], params.K[off][alive])

    bits = 4
    q = NonIdeal(coupling_bits=bits, frequency_bits=6).chip_params(params)
    torch.testing.assert_close(q.K, fake_quantize(params.K, choose_scale(params.K, bits), bits), rtol=0, atol=0)
    torch.testing.assert_close(q.omega, fake_quantize(params.omega, choose_scale(params.omega, 6), 6), rtol=0, atol=0)
    assert torch.unique(q.K).numel() <= 2**bits - 1
    assert torch.unique(q.drive).numel() <= 2**bits - 1


@settings(max_examples=25, deadline=None)
@given(p_small=st.floats(0, 0.9), extra=st.floats(0, 0.09), chip=st.integers(0, 2**40))
def test_a_larger_dead_fraction_kills_a_superset(p_small: float, extra: float, chip: int) -> None:
    params = random_system(12, 2, 2, 0)
    a = NonIdeal(dead_coupler_fraction=p_small, chip_seed=chip).chip_params(params)
    b = NonIdeal(dead_coupler_fraction=p_small + extra, chip_seed=chip).chip_params(params)
    assert bool(((a.K == 0) <= (b.K == 0)).all()) and bool(((a.drive == 0) <= (b.drive == 0)).all())


# --- seeds and chips ----------------------------------------------------------------------
def test_chip_seed_fixes_the_static_draws_and_sample_seed_only_the_dynamics() -> None:
    params, theta0, labels = system(n=16, batch=4)
    static = dict(freq_mismatch_rad_per_t=0.3, coupling_mismatch_sigma=0.2, dead_coupler_fraction=0.1, coupling_bits=6)
    a = NonIdeal(**static, chip_seed=3, sample_seed=1)
    # same chip seed → same chip, whatever the sample seed or the dynamic terms
    for other in (a.replace(sample_seed=2), a.replace(phase_noise_rad_per_sqrt_t=0.5, coupling_read_noise=0.1)):
        for x, y in zip(vars(a.chip_params(params)).values(), vars(other.chip_params(params)).values()):
            assert y is None if x is None else torch.equal(x, y)  # the harmonics fields: None
    assert not torch.equal(a.chip_params(params).K, a.replace(chip_seed=4).chip_params(params).K)
    # chip c of a call is chip number chip_seed + c
    two = a.replace(chips=2)
    assert torch.equal(two.chip_params(params, 1).K, a.replace(chip_seed=4).chip_params(params).K)
    # static only: the sample seed changes nothing; with phase noise it changes the run
    run = lambda ni: simulate(params, theta0, labels, nonideal=ni).theta
    assert torch.equal(run(a), run(a.replace(sample_seed=2)))
    noisy = a.replace(phase_noise_rad_per_sqrt_t=0.1)
    assert torch.equal(run(noisy), run(noisy))
    assert not torch.equal(run(noisy), run(noisy.replace(sample_seed=2)))


def test_a_kept_realisation_does_not_follow_later_changes_to_the_params() -> None:
    """Without autograd realisations are reused by value; one computed from a tensor that
    is later changed in place (a parameter being trained) must not change with it."""
    params, theta0, labels = system()
    omega = params.omega.clone()
    p = KuramotoParams(K=params.K, omega=omega, drive=params.drive, C=params.C, nu=params.nu)
    ni = NonIdeal(coupling_bits=5)  # ω is not quantised: the realised ω could be a view of it
    fresh = KuramotoParams(K=params.K, omega=params.omega.clone(), drive=params.drive, C=params.C, nu=params.nu)
    with torch.no_grad():
        first = simulate(p, theta0, labels, nonideal=ni).theta
        omega += 1.0  # a training step on the parameter p.omega is
        again = simulate(fresh, theta0, labels, nonideal=ni).theta  # the old values: found by value
        changed = simulate(p, theta0, labels, nonideal=ni).theta
    assert torch.equal(first, again)
    assert not torch.equal(first, changed)


@settings(max_examples=15, deadline=None)
@given(sig_w=st.floats(0, 1), sig_g=st.floats(0, 0.5), dead=st.floats(0, 0.5), bits=st.none() | st.integers(2, 12),
       chip_seed=st.integers(0, 2**40), chips=st.integers(1, 3))
def test_chips_in_one_call_equal_each_chip_alone(sig_w, sig_g, dead, bits, chip_seed, chips) -> None:
    """Static terms only: a call over several chips is those chips simulated one by one
    (the chip axis changes how, not what)."""
    params = random_system(10, 2, 3, 1)
    theta0, labels = random_phases(2 * chips, 12, 3), random_labels(2 * chips, 3, 3)
    ni = NonIdeal(freq_mismatch_rad_per_t=sig_w, coupling_mismatch_sigma=sig_g, dead_coupler_fraction=dead,
                  coupling_bits=bits, chips=chips, chip_seed=chip_seed)
    together = simulate(params, theta0, labels, nonideal=ni).theta
    for c in range(chips):
        alone = simulate(ni.chip_params(params, c), theta0[2 * c:2 * c + 2], labels[2 * c:2 * c + 2]).theta
        torch.testing.assert_close(together[2 * c:2 * c + 2], alone, rtol=0, atol=ROUND_OFF)


# --- read noise and readout ---------------------------------------------------------------
def test_read_noise_has_the_per_coupler_variance() -> None:
    """One Euler step from the same phases: the velocity's error at oscillator i has sd
    σ_r √(Σ_j K_ij² sin²(θ_j − θ_i)) (+ the drive's terms), as independent per-coupler
    relative errors would give."""
    params = random_system(6, 2, 3, 4)
    reps, h, read = 20000, 0.1, 0.3
    theta0 = random_phases(1, 8, 5).expand(reps, -1).contiguous()
    labels = torch.full((reps,), 2)
    ni = NonIdeal(coupling_read_noise=read, sample_seed=6)
    clean = simulate(params, theta0, labels, steps=1, T=h).theta
    noisy = simulate(params, theta0, labels, steps=1, T=h, nonideal=ni).theta
    err = (noisy - clean)[:, :6] / h
    th, ph = theta0[0, :6], theta0[0, 6:]
    var = (params.K**2 * torch.sin(th[None, :] - th[:, None]) ** 2).sum(1)
    var = var + (params.drive[2] ** 2 * torch.sin(ph[None, :] - th[:, None]) ** 2).sum(1)
    torch.testing.assert_close(err.var(0), read**2 * var, rtol=rel_sd(reps), atol=0)
    assert bool((err.mean(0).abs() < 5 * read * var.sqrt() / math.sqrt(reps)).all())


def test_readout_bits_and_jitter() -> None:
    params, theta0, labels = system(n=64, batch=50)
    b = 5
    exact = simulate(params, theta0, labels).theta
    read = simulate(params, theta0, labels, nonideal=NonIdeal(readout_bits=b)).theta
    step = 2 * math.pi / 2**b
    main_err = read[:, :64] - exact[:, :64]
    assert float(main_err.abs().max()) <= step / 2 + 1e-12  # nearest level, turn count kept
    codes = read[:, :64] / step
    torch.testing.assert_close(codes, codes.round(), rtol=0, atol=1e-9)  # on the 2^b grid
    assert torch.equal(read[:, 64:], exact[:, 64:])  # conditioning phases are not read out
    jit = 0.05
    jittered = simulate(params, theta0, labels, nonideal=NonIdeal(readout_jitter_rad=jit, sample_seed=1)).theta
    diff = jittered[:, :64] - exact[:, :64]
    assert float(diff.std()) == pytest.approx(jit, rel=rel_sd(diff.numel()))


# --- autograd -----------------------------------------------------------------------------
def test_gradients_flow_through_noise_mismatch_and_quantisation() -> None:
    params, theta0, labels = system(n=10, batch=4)
    K = params.K.clone().requires_grad_(True)
    p = KuramotoParams(K=K, omega=params.omega, drive=params.drive, C=params.C, nu=params.nu)
    ni = NonIdeal(phase_noise_rad_per_sqrt_t=0.1, coupling_mismatch_sigma=0.1, coupling_bits=4, readout_bits=6,
                  coupling_read_noise=0.05, chips=2)
    out = simulate(p, theta0, labels, nonideal=ni).theta
    (grad,) = torch.autograd.grad(torch.sin(out[:, :10]).sum(), K)
    assert torch.isfinite(grad).all() and float(grad.abs().sum()) > 0  # straight through the rounding


# --- settings, errors, conversions ----------------------------------------------------------
@pytest.mark.parametrize(("kwargs", "message"), [
    ({"phase_noise_rad_per_sqrt_t": -1.0}, r"^NonIdeal\.phase_noise_rad_per_sqrt_t must be a finite number >= 0"),
    ({"coupling_read_noise": float("nan")}, r"^NonIdeal\.coupling_read_noise must be"),
    ({"dead_coupler_fraction": 1.0}, r"^NonIdeal\.dead_coupler_fraction must be in \[0, 1\)"),
    ({"coupling_bits": 0}, r"^NonIdeal\.coupling_bits must be None or an int in 1\.\.16"),
    ({"readout_bits": 16}, r"^NonIdeal\.readout_bits must be None or an int in 1\.\.15"),
    ({"quant_scale": "minmax"}, r"^NonIdeal\.quant_scale must be one of max, percentile, mse"),
    ({"chips": 0}, r"^NonIdeal\.chips must be an int >= 1"),
    ({"chip_seed": -1}, r"^NonIdeal\.chip_seed must be an int"),
    ({"sample_seed": True}, r"^NonIdeal\.sample_seed must be an int"),
])
def test_bad_settings_are_named(kwargs: dict, message: str) -> None:
    with pytest.raises(OscsimError, match=message):
        NonIdeal(**kwargs)


def test_errors_of_a_call_and_of_a_table() -> None:
    params, theta0, labels = system(batch=6)
    with pytest.raises(OscsimError, match=r"batch 6 does not split into NonIdeal\.chips = 4"):
        simulate(params, theta0, labels, nonideal=NonIdeal(chips=4, coupling_bits=8))
    with pytest.raises(OscsimError, match=r"Euler–Maruyama: method must be 'euler', not 'rk4'"):
        simulate(params, theta0, labels, method="rk4", nonideal=NonIdeal(phase_noise_rad_per_sqrt_t=0.1))
    with pytest.raises(OscsimError, match=r"^nonideal must be an oscsim\.NonIdeal or None, not dict"):
        simulate(params, theta0, labels, nonideal={"chips": 2})
    # static terms on one chip go through any integrator
    simulate(params, theta0, labels, method="rk4", nonideal=NonIdeal(coupling_bits=6))
    with pytest.raises(OscsimError, match=r"^spec\.toml \[nonideal\]: unknown key\(s\) phase_noise; valid: "):
        NonIdeal.from_dict({"phase_noise": 0.1}, source="spec.toml [nonideal]")
    with pytest.raises(OscsimError, match=r"^spec\.toml: NonIdeal\.chips must be"):
        NonIdeal.from_dict({"chips": "2"}, source="spec.toml")
    ni = NonIdeal(phase_noise_rad_per_sqrt_t=0.2, coupling_bits=5)
    assert NonIdeal.from_dict(ni.to_dict()) == ni


def test_conversions_from_cell_figures() -> None:
    """A cell with period jitter σ_T: after m cycles the timing error has variance
    m σ_T², i.e. phase variance (2π f0)² m σ_T² — simulated here as a random walk."""
    f0, jitter = 1e8, 2e-12
    cycles, walks = 400, 4000
    g = torch.Generator().manual_seed(0)
    timing = (torch.randn(walks, cycles, generator=g, dtype=F64) * jitter).sum(1)
    phase_var = float(((2 * math.pi * f0) * timing).var())
    sigma_phys = phase_noise_from_period_jitter(jitter, f0)  # rad/√s
    assert phase_var == pytest.approx(sigma_phys**2 * cycles / f0, rel=rel_sd(walks))
    tau = 1e-6
    assert to_model_time(sigma_phys, tau) == pytest.approx(sigma_phys * math.sqrt(tau))
    assert freq_mismatch_to_model(1e4, tau) == pytest.approx(2 * math.pi * 1e4 * tau)
    with pytest.raises(OscsimError, match="tau_s > 0"):
        to_model_time(1.0, 0.0)
