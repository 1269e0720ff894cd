r"""The general coupling function (`oscsim.Harmonics`) in every integration path.

A coupler adds H_ij(x) = b0_ij + M_ij sin x + Σ_k b_k,ij cos kx + Σ_{k≥2} a_k,ij sin kx
(x = θ_j − θ_i). Checked here: analytic locked states (Kuramoto–Sakaguchi, a second
harmonic, a constant part), the GEMM forms against a pairwise evaluation by the definition,
zero harmonics against none, the realised chip's factors, gradients, and that a system
without harmonics runs the code it ran before harmonics existed (by structure) and gives
its numbers (against values frozen from that code).
"""

from __future__ import annotations

import math
from unittest import mock

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq

from oscsim import (
    Harmonics,
    KuramotoParams,
    NonIdeal,
    OscsimError,
    choose_scale,
    coupling,
    euler,
    fake_quantize,
    gather_drive,
    gather_drive_harmonics,
    harmonic_coupling,
    realize,
    sakaguchi,
    sde,
    simulate,
    velocity,
)
from oscsim.realize import ChipSystems
from tests.oscsim.systems import (
    F64,
    generator,
    random_labels,
    random_phases,
    random_system,
)

# The kernel and the autograd paths against each other or against the pairwise sum, in
# float64: the same O(1) terms summed in another order, N + N_c ≤ 13, H ≤ 3 — round-off only.
ROUND_OFF = 1e-12
# `_RUN_COST_BYTES` forces the drive's layout on the CPU (as in test_euler.py)
LAYOUTS = {"runs": 0, "per_sample": 2**62}
# Locked states converge like exp(−λt), λ ≥ 1.1 here, over T = 25: < 1e-11. Euler's and
# RK4's fixed points (and the locked rotation, the field depending on differences only)
# are the ODE's, so the lock is exact for them too; DOP853 at rtol 1e-10 is within 1e-9.
LOCK_TOL = 1e-9
PATHS = ["euler_no_grad", "rk4", "adaptive", "em_no_grad", "em_autograd"]


# --- systems -----------------------------------------------------------------------------
def random_harmonics(shape: tuple[int, ...], order: int, seed: int, *, scale: float = 1.0, square: bool,
                     dtype: torch.dtype = F64) -> Harmonics:
    """Random coefficients ~ N(0, 1)·scale; a square coupling's diagonals zero."""
    g = generator(seed)
    randn = lambda *s: torch.randn(*s, generator=g, dtype=F64) * scale
    h = Harmonics(a=randn(order - 1, *shape), b=randn(order, *shape), b0=randn(*shape))
    if square:
        for t in h.tensors:
            t.diagonal(dim1=-2, dim2=-1).zero_()
    return h.to(dtype)


def with_harmonics(params: KuramotoParams, order: int, seed: int, *, which: str = "KDC", scale: float = 0.3,
                   zero: bool = False) -> KuramotoParams:
    """`params` with random harmonics of order `order` on K, the drive, C (letters of `which`)."""
    def make(matrix: torch.Tensor, offset: int, square: bool) -> Harmonics:
        h = random_harmonics(tuple(matrix.shape), order, seed + offset, scale=scale, square=square, dtype=matrix.dtype)
        return h.scaled(0.0) if zero else h

    return KuramotoParams(
        K=params.K, omega=params.omega, drive=params.drive, C=params.C, nu=params.nu,
        K_h=make(params.K, 1, True) if "K" in which else None,
        drive_h=make(params.drive, 2, False) if "D" in which else None,
        C_h=make(params.C, 3, True) if "C" in which else None,
    )


def without_harmonics(params: KuramotoParams) -> KuramotoParams:
    return KuramotoParams(K=params.K, omega=params.omega, drive=params.drive, C=params.C, nu=params.nu)


def pairwise(x_recv: torch.Tensor, x_send: torch.Tensor, M: torch.Tensor, h: Harmonics | None) -> torch.Tensor:
    """Σ_j H_ij(x_send,j − x_recv,i) by the definition, broadcasting over (b, i, j) and
    looping over k; M and h's tensors (N, N_send) shared or (B, N, N_send) per sample."""
    diff = x_send.unsqueeze(-2) - x_recv.unsqueeze(-1)  # [b, i, j]
    total = M * torch.sin(diff)
    if h is not None:
        total = total + h.b0
        for k in range(1, h.order + 1):
            total = total + h.b[k - 1] * torch.cos(k * diff)
            if k >= 2:
                total = total + h.a[k - 2] * torch.sin(k * diff)
    return total.sum(-1)


def naive_velocity(params: KuramotoParams, state: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """Both blocks' velocity by the definition, in float64: the reference of every path."""
    p = params.to(F64)
    state = state.to(F64)
    n = p.n
    theta, phi = state[:, :n], state[:, n:]
    main = p.omega + pairwise(theta, theta, p.K, p.K_h)
    if labels is not None and p.n_cond:
        kept = (labels >= 0).to(F64).view(-1, 1, 1)
        idx = labels.clamp(min=0)
        drive = p.drive[idx] * kept
        drive_h = None if p.drive_h is None else p.drive_h.map(lambda t: t[:, idx] * kept)
        main = main + pairwise(theta, phi, drive, drive_h)
    cond = p.nu + pairwise(phi, phi, p.C, p.C_h)
    return torch.cat((main, cond), dim=1)


def magnitude(params: KuramotoParams) -> float:
    """1 + |ω|, |ν| + (N + N_c)·Σ max|coefficient| over every tensor: bounds |velocity|."""
    tensors = [params.K, params.drive, params.C]
    for h in (params.K_h, params.drive_h, params.C_h):
        tensors += list(h.tensors) if h is not None else []
    peak = lambda t: t.abs().max().item() if t.numel() else 0.0
    return 1 + max(peak(params.omega), peak(params.nu)) + (params.n + params.n_cond) * sum(map(peak, tensors))


def one_step(params: KuramotoParams, theta0: torch.Tensor, labels, *, grad: bool, nonideal: NonIdeal | None = None):
    """θ(1) − θ0 after one Euler(–Maruyama) step of h = 1: the velocity at θ0, as a path sees it."""
    with torch.set_grad_enabled(grad):
        res = simulate(params, theta0, labels, steps=1, T=1.0, nonideal=nonideal)
    return (res.theta - theta0).detach().to(F64)


# --- the GEMM forms against the definition --------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 9),
    n_cond=st.integers(0, 4),
    classes=st.integers(1, 3),
    order=st.integers(1, 3),
    which=st.sampled_from(["KDC", "K", "D", "C", "KD"]),
    chips=st.sampled_from([1, 2, 3]),
    per_chip=st.integers(1, 3),
    double=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_every_path_equals_the_pairwise_definition(n, n_cond, classes, order, which, chips, per_chip, double,
                                                   seed) -> None:
    """One step of each path is h·v(θ0): the velocity of the GEMM forms (two per harmonic,
    the drive beside or inside them) equals the pairwise sum over (i, j, k), for the ideal
    system and for each chip of a chip axis, the drive in both layouts, a dropped label."""
    dtype = F64 if double else torch.float32
    batch = chips * per_chip
    params = with_harmonics(random_system(n, n_cond, classes, seed, dtype=dtype), order, seed, which=which)
    theta0 = random_phases(batch, n + n_cond, seed, dtype=dtype)
    labels = random_labels(batch, classes, seed)
    # each term c·sin(kx) carries ~k|x| ulp of |c| (|x| ≤ 2π): ≤ 20·H ulp of the sum of
    # every coefficient's magnitude a phase hears (`magnitude`)
    tol = 20 * order * torch.finfo(dtype).eps * magnitude(params)
    ideal = naive_velocity(params, theta0, labels)
    got = velocity(params, theta0, gather_drive(params, labels, batch), gather_drive_harmonics(params, labels, batch))
    torch.testing.assert_close(got.to(F64), ideal, rtol=0, atol=tol)
    torch.testing.assert_close(one_step(params, theta0, labels, grad=True), ideal, rtol=0, atol=tol)
    for cost in LAYOUTS.values():
        with mock.patch.object(euler, "_RUN_COST_BYTES", cost):
            torch.testing.assert_close(one_step(params, theta0, labels, grad=False), ideal, rtol=0, atol=tol)
    if chips > 1:  # a chip axis of static terms: each group of samples on its own realised chip
        ni = NonIdeal(chips=chips, coupling_mismatch_sigma=0.3, dead_coupler_fraction=0.2, chip_seed=seed % 1000)
        systems = realize(params, ni)
        want = torch.cat([naive_velocity(systems.chip(c), theta0[c * per_chip:(c + 1) * per_chip],
                                         labels[c * per_chip:(c + 1) * per_chip]) for c in range(chips)])
        for grad in (False, True):
            for cost in LAYOUTS.values():
                with mock.patch.object(euler, "_RUN_COST_BYTES", cost):
                    got = one_step(params, theta0, labels, grad=grad, nonideal=ni)
                torch.testing.assert_close(got, want, rtol=0, atol=tol)


def test_harmonic_coupling_of_one_pair_by_hand() -> None:
    """Row i is what i hears: out_1 = H_12(θ2 − θ1) with every coefficient in place."""
    K = torch.tensor([[0.0, 2.0], [-3.0, 0.0]], dtype=F64)
    h = Harmonics(a=torch.tensor([[[0.0, 0.5], [0.7, 0.0]]], dtype=F64),
                  b=torch.tensor([[[0.0, 0.3], [0.2, 0.0]], [[0.0, -0.4], [0.1, 0.0]]], dtype=F64),
                  b0=torch.tensor([[0.0, 0.25], [-0.5, 0.0]], dtype=F64))
    theta = torch.tensor([[0.3, 1.1]], dtype=F64)
    x = 0.8
    want = [0.25 + 2.0 * math.sin(x) + 0.3 * math.cos(x) - 0.4 * math.cos(2 * x) + 0.5 * math.sin(2 * x),
            -0.5 - 3.0 * math.sin(-x) + 0.2 * math.cos(-x) + 0.1 * math.cos(-2 * x) + 0.7 * math.sin(-2 * x)]
    torch.testing.assert_close(harmonic_coupling(theta, K, h), torch.tensor([want], dtype=F64), rtol=0, atol=1e-15)


def test_sakaguchi_is_a_lagged_sine() -> None:
    K = torch.randn(5, 5, generator=generator(3), dtype=F64)
    alpha = torch.rand(5, 5, generator=generator(4), dtype=F64) * 3 - 1.5  # one lag per coupler
    M, h = sakaguchi(K, alpha)
    x = torch.linspace(-7, 7, 29, dtype=F64).view(-1, 1, 1)
    lagged = M * torch.sin(x) + h.b[0] * torch.cos(x) + h.b0
    torch.testing.assert_close(lagged, K * torch.sin(x - alpha), rtol=0, atol=1e-14)
    assert h.order == 1 and h.a.shape == (0, 5, 5)


# --- analytic locked states -------------------------------------------------------------------
def run_path(path: str, params: KuramotoParams, theta0: torch.Tensor, labels, *, T: float, steps: int):
    """(final, trajectory) of `path` with `steps` recorded intervals."""
    if path == "euler_no_grad":
        with torch.no_grad():
            return simulate(params, theta0, labels, steps=steps, T=T, record=True)
    if path in ("rk4", "adaptive"):
        return simulate(params, theta0, labels, steps=steps, T=T, method=path, record=True)
    two = NonIdeal(chips=2)  # noise-free Euler–Maruyama over a chip axis of two equal chips
    theta0, labels = theta0.repeat(2, 1), None if labels is None else labels.repeat(2)
    with torch.set_grad_enabled(path == "em_autograd"):
        return simulate(params, theta0, labels, steps=steps, T=T, record=True, nonideal=two)


def frequency(res, index: int) -> float:
    """The phase velocity over the last recorded interval (exact for a locked rotation)."""
    traj, times = res.trajectory.detach(), res.times
    return float((traj[-1, 0, index] - traj[-2, 0, index]) / (times[-1] - times[-2]))


def two_oscillators(coupler: tuple[torch.Tensor, Harmonics], omega: tuple[float, float]) -> KuramotoParams:
    M, h = coupler
    return KuramotoParams(K=M, omega=torch.tensor(omega, dtype=F64), drive=torch.zeros(1, 2, 0, dtype=F64),
                          C=torch.zeros(0, 0, dtype=F64), nu=torch.zeros(0, dtype=F64), K_h=h)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("alpha", [0.6, -0.9])
def test_two_oscillators_with_a_sakaguchi_lag_lock_where_theory_says(path: str, alpha: float) -> None:
    """dθ1 = ω1 + K sin(ψ − α), dθ2 = ω2 + K sin(−ψ − α), ψ = θ2 − θ1: dψ/dt = Δω − 2K cos α sin ψ
    locks at sin ψ* = Δω/(2K cos α), both turning at Ω = ω̄ − K sin α cos ψ*."""
    K, omega = 1.0, (0.05, 0.55)
    domega, mean = omega[1] - omega[0], sum(omega) / 2
    coupling = torch.tensor([[0.0, K], [K, 0.0]], dtype=F64)
    params = two_oscillators(sakaguchi(coupling, alpha), omega)
    psi_star = math.asin(domega / (2 * K * math.cos(alpha)))
    Omega = mean - K * math.sin(alpha) * math.cos(psi_star)
    res = run_path(path, params, torch.tensor([[0.2, -0.4]], dtype=F64), None, T=25.0, steps=1000)
    psi = float(res.theta[0, 1] - res.theta[0, 0])
    assert psi == pytest.approx(psi_star, abs=LOCK_TOL)
    assert frequency(res, 0) == pytest.approx(Omega, abs=LOCK_TOL)
    assert frequency(res, 1) == pytest.approx(Omega, abs=LOCK_TOL)
    assert abs(Omega - mean) > 0.1  # the lag moves the common frequency: not the plain Kuramoto lock


@pytest.mark.parametrize("path", PATHS)
def test_a_second_harmonic_and_a_constant_part_move_the_lock(path: str) -> None:
    """H(x) = K sin(x − α) + a2 sin 2x + b2 cos 2x + c on both couplers: the odd part sets
    dψ/dt = Δω − 2K cos α sin ψ − 2 a2 sin 2ψ, the even part the common frequency
    Ω = ω̄ + c − K sin α cos ψ* + b2 cos 2ψ*."""
    K, alpha, a2, b2, c = 1.0, 0.4, 0.35, -0.25, 0.3
    omega = (-0.3, 0.6)
    domega, mean = omega[1] - omega[0], sum(omega) / 2
    off = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=F64)
    M, lag = sakaguchi(K * off, alpha)
    h = Harmonics(a=(a2 * off).unsqueeze(0), b=torch.stack((lag.b[0], b2 * off)), b0=c * off)
    params = two_oscillators((M, h), omega)
    psi_star = brentq(lambda p: domega - 2 * K * math.cos(alpha) * math.sin(p) - 2 * a2 * math.sin(2 * p), 0, 1.0)
    Omega = mean + c - K * math.sin(alpha) * math.cos(psi_star) + b2 * math.cos(2 * psi_star)
    res = run_path(path, params, torch.tensor([[0.0, 0.3]], dtype=F64), None, T=25.0, steps=1000)
    assert float(res.theta[0, 1] - res.theta[0, 0]) == pytest.approx(psi_star, abs=LOCK_TOL)
    assert frequency(res, 0) == pytest.approx(Omega, abs=LOCK_TOL)


@pytest.mark.parametrize("path", PATHS)
def test_a_driven_oscillator_locks_to_its_class_through_the_drive_harmonics(path: str) -> None:
    """One main oscillator hearing one conditioning oscillator through
    D sin(φ − θ − α) + a2 sin 2(φ − θ) + c: ψ = φ − θ obeys dψ/dt = ν − ω − c − D sin(ψ − α)
    − a2 sin 2ψ and θ locks to φ's frequency ν. A dropped label leaves θ at ω."""
    D, alpha, a2, c, omega, nu = 1.2, 0.5, 0.3, 0.2, -0.4, 0.5
    M, lag = sakaguchi(torch.full((1, 1, 1), D, dtype=F64), alpha)
    h = Harmonics(a=torch.full((1, 1, 1, 1), a2, dtype=F64), b=torch.cat((lag.b, torch.zeros(1, 1, 1, 1, dtype=F64))),
                  b0=torch.full((1, 1, 1), c, dtype=F64))
    params = KuramotoParams(K=torch.zeros(1, 1, dtype=F64), omega=torch.tensor([omega], dtype=F64), drive=M,
                            C=torch.zeros(1, 1, dtype=F64), nu=torch.tensor([nu], dtype=F64), drive_h=h)
    rhs = lambda p: nu - omega - c - D * math.sin(p - alpha) - a2 * math.sin(2 * p)
    psi_star = brentq(rhs, alpha - 0.5, alpha + 1.0)
    theta0 = torch.tensor([[0.3, 1.0], [0.3, 1.0]], dtype=F64)
    res = run_path(path, params, theta0, torch.tensor([0, -1]), T=25.0, steps=1000)
    if path.startswith("em"):  # two chips: the samples are [0, −1, 0, −1]
        res_theta, traj = res.theta[:2], res.trajectory[:, :2]
    else:
        res_theta, traj = res.theta, res.trajectory
    assert float(res_theta[0, 1] - res_theta[0, 0]) == pytest.approx(psi_star, abs=LOCK_TOL)
    dt = float(res.times[-1] - res.times[-2])
    assert float(traj[-1, 0, 0] - traj[-2, 0, 0]) / dt == pytest.approx(nu, abs=LOCK_TOL)
    assert float(traj[-1, 1, 0] - traj[-2, 1, 0]) / dt == pytest.approx(omega, abs=1e-12)  # dropped: free


# --- the constant part ---------------------------------------------------------------------
@pytest.mark.parametrize("path", PATHS)
def test_the_constant_part_shifts_an_uncoupled_drift_by_its_row_sum(path: str) -> None:
    """Only b0 (K, drive, C): every phase runs at ω_i + Σ_j b0_ij (+ Σ_k b0[c]_ik for class c)."""
    n, n_c, classes, T = 6, 3, 2, 1.5
    base = random_system(n, n_c, classes, 5)
    zero = lambda t: torch.zeros_like(t)
    params = with_harmonics(KuramotoParams(K=zero(base.K), omega=base.omega, drive=zero(base.drive), C=zero(base.C),
                                           nu=base.nu), 2, 9)
    params = KuramotoParams(K=params.K, omega=params.omega, drive=params.drive, C=params.C, nu=params.nu,
                            **{name: Harmonics(a=zero(h.a), b=zero(h.b), b0=h.b0) for name, h in
                               (("K_h", params.K_h), ("drive_h", params.drive_h), ("C_h", params.C_h))})
    labels = torch.tensor([1, -1, 0])
    theta0 = random_phases(3, n + n_c, 5)
    res = run_path(path, params, theta0, labels, T=T, steps=3)
    final = res.theta[:3]
    drive_const = params.drive_h.b0.sum(-1)[labels.clamp(min=0)] * (labels >= 0).to(F64).view(-1, 1)
    rate = torch.cat((params.omega + params.K_h.b0.sum(-1) + drive_const,
                      (params.nu + params.C_h.b0.sum(-1)).expand(3, -1)), dim=1)
    torch.testing.assert_close((final - theta0) / T, rate, rtol=0, atol=1e-12)
    assert (rate[:, :n] - params.omega).abs().min() > 1e-3  # the shift is there


# --- zero harmonics, no harmonics --------------------------------------------------------------
def all_paths(params: KuramotoParams, theta0: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """The trajectory of every path (and the noisy ones with the same draws)."""
    out = {}
    noisy = dict(phase_noise_rad_per_sqrt_t=0.3, coupling_read_noise=0.2, coupling_mismatch_sigma=0.2,
                 freq_mismatch_rad_per_t=0.1, dead_coupler_fraction=0.1, sample_seed=3)
    for layout, cost in LAYOUTS.items():
        with mock.patch.object(euler, "_RUN_COST_BYTES", cost), torch.no_grad():
            out[f"euler_no_grad/{layout}"] = simulate(params, theta0, labels, steps=5, record=True).trajectory
            for chips in (1, 3):
                ni = NonIdeal(chips=chips, **noisy)
                out[f"em_no_grad/{chips}/{layout}"] = simulate(params, theta0, labels, steps=5, record=True,
                                                               nonideal=ni).trajectory
    for method in ("euler", "heun", "rk4"):
        out[method] = simulate(params, theta0, labels, steps=5, method=method, record=True).trajectory
        out[f"static/{method}"] = simulate(params, theta0, labels, steps=5, method=method, record=True,
                                           nonideal=NonIdeal(coupling_bits=6, coupling_mismatch_sigma=0.2)).trajectory
    for chips in (1, 3):
        out[f"em_autograd/{chips}"] = simulate(params, theta0, labels, steps=5, record=True,
                                               nonideal=NonIdeal(chips=chips, **noisy)).trajectory
    out["adaptive"] = simulate(params, theta0, labels, steps=2, method="adaptive", record=True).trajectory
    return out


def test_zero_harmonics_equal_none_in_every_path() -> None:
    """All coefficients zero: the general code, the same numbers as the sine-only code up to
    the order of summation (and the same draws in the noisy paths)."""
    params = random_system(10, 3, 4, 0)
    theta0, labels = random_phases(9, 13, 0), random_labels(9, 4, 0)
    assert bool((labels == -1).any())
    none = all_paths(params, theta0, labels)
    zero = all_paths(with_harmonics(params, 3, 1, zero=True), theta0, labels)
    for key in none:
        torch.testing.assert_close(zero[key], none[key], rtol=0, atol=ROUND_OFF, msg=key)
    # ... and they are the general code: tiny harmonics move every path
    small = all_paths(with_harmonics(params, 2, 1, scale=1e-3), theta0, labels)
    assert all((small[k] - none[k]).abs().max() > 1e-7 for k in none)


def test_without_harmonics_no_path_enters_the_general_code() -> None:
    """Structure: a system without harmonics never reaches the general coupler's code (so it
    runs the sine-only code, which the harmonics change left as it was)."""
    params = random_system(10, 3, 4, 0)
    theta0, labels = random_phases(9, 13, 0), random_labels(9, 4, 0)

    def refuse(*_args, **_kwargs):
        raise AssertionError("general coupler code reached without harmonics")

    with (mock.patch.object(euler, "euler_block_general", refuse), mock.patch.object(euler, "_general_drives", refuse),
          mock.patch.object(coupling, "_velocity_general", refuse), mock.patch.object(sde, "_general_drift", refuse),
          mock.patch.object(sde, "_general_main", refuse)):
        all_paths(params, theta0, labels)


#: the final phases of a fixed small system (N = 3, N_c = 2, labels [1, −1, 0], 4 steps) as
#: the code before harmonics existed computed them (commit ed35135, a 2-core Xeon, torch 2.x)
FROZEN = {
    "euler_no_grad": [[-4.309415915956046, -0.2720296878556804, -1.2809455394351543, 2.31077838245066, 3.0905419874506945], [-3.1366879172078184, 1.919708927193648, -1.319735617361049, 3.9097238916910957, 2.5568599167651214], [-1.6914364029526834, -2.699327060585521, 1.2153822827274101, 2.122890754491439, 0.48513099429148165]],
    "sde_no_grad": [[-4.26898480526293, -0.2705696765635701, -1.3347617862818095, 2.4861019178149126, 3.024861405295571], [-2.976815334489117, 1.6556567301607186, -1.0011465912267519, 3.623653587023672, 2.841833459650297], [-2.1249382936784915, -3.3196348527326274, 1.3974983378043355, 2.097084718637125, -0.048678455050840425]],
    "rk4": [[-4.133543024736844, -0.19119902523547666, -1.2355835902880221, 2.3166463555833805, 3.1012557716017977], [-3.0927566563297137, 1.9356225474087112, -1.2289501270201058, 3.9278862908150463, 2.5900209451950476], [-1.7679520107259528, -2.9745286056737106, 1.4690987848970325, 2.158712328908063, 0.55053426175233]],
    "sde_autograd": [[-4.26898480526293, -0.2705696765635711, -1.3347617862818093, 2.4861019178149126, 3.024861405295571], [-2.976815334489117, 1.6556567301607186, -1.0011465912267516, 3.623653587023672, 2.8418334596502977], [-2.1249382936784915, -3.319634852732628, 1.3974983378043355, 2.0970847186371246, -0.04867845505083948]],
}
# On the machine that recorded them the code after the change reproduces them bit for bit
# (torch.equal); other CPUs' libm and BLAS may differ in the last ulp of a step, grown over 4
# steps: the tolerance admits that, not a changed equation (harmonics of 1e-6 move them 1e-6).
FROZEN_TOL = 1e-13


def test_without_harmonics_the_numbers_are_those_before_harmonics() -> None:
    params = random_system(3, 2, 2, 7)
    theta0 = random_phases(3, 5, 7)
    labels = torch.tensor([1, -1, 0])
    ni = NonIdeal(chips=3, phase_noise_rad_per_sqrt_t=0.3, coupling_read_noise=0.2, coupling_mismatch_sigma=0.2,
                  sample_seed=1)
    with torch.no_grad():
        got = {"euler_no_grad": simulate(params, theta0, labels, steps=4).theta,
               "sde_no_grad": simulate(params, theta0, labels, steps=4, nonideal=ni).theta}
    got["rk4"] = simulate(params, theta0, labels, steps=4, method="rk4").theta
    got["sde_autograd"] = simulate(params, theta0, labels, steps=4, nonideal=ni).theta
    for key, values in FROZEN.items():
        torch.testing.assert_close(got[key], torch.tensor(values, dtype=F64), rtol=0, atol=FROZEN_TOL, msg=key)


# --- the realised chip --------------------------------------------------------------------------
def test_gain_mismatch_and_dead_couplers_scale_each_couplers_harmonics_by_its_factor() -> None:
    """A coupler is one circuit: its harmonics take the same per-coupler factor as its sine
    term (read off a system of unit couplings on the same chips); quantisation leaves them."""
    params = with_harmonics(random_system(7, 3, 4, 0), 3, 2)
    ni = NonIdeal(chips=3, coupling_mismatch_sigma=0.3, dead_coupler_fraction=0.2, coupling_bits=5, chip_seed=4)
    systems = realize(params, ni)
    ones = lambda t: torch.ones_like(t)
    unit = KuramotoParams(K=ones(params.K), omega=params.omega, drive=ones(params.drive), C=ones(params.C),
                          nu=params.nu)
    factors = realize(unit, ni.replace(coupling_bits=None))
    for name, matrix in (("K_h", "K"), ("drive_h", "drive"), ("C_h", "C")):
        got, programmed, f = getattr(systems, name), getattr(params, name), getattr(factors, matrix)
        assert got.b0.shape[0] == 3  # one per chip
        for g, p in zip(got.tensors, programmed.map(lambda t: t.unsqueeze(1)).tensors):
            assert torch.equal(g, p * f)
    assert bool((factors.K == 0).any()) and bool((factors.K != 1).all())  # dead and mismatched couplers both
    bits = 5
    q = fake_quantize(params.K, choose_scale(params.K, bits), bits)
    torch.testing.assert_close(systems.K, q * factors.K, rtol=1e-15, atol=0)  # the sine term quantised
    chip = ni.chip_params(params, 1)
    assert torch.equal(chip.K_h.b, systems.K_h.b[:, 1])


def test_the_realisation_cache_tells_harmonics_apart() -> None:
    base = random_system(6, 2, 2, 0)
    a, b = with_harmonics(base, 2, 1), with_harmonics(base, 2, 2)
    ni = NonIdeal(coupling_mismatch_sigma=0.2, chips=2)
    with torch.no_grad():
        ra, rb, rn = realize(a, ni), realize(b, ni), realize(base, ni)
        assert realize(a, ni) is ra  # reused
    assert not torch.equal(ra.K_h.b, rb.K_h.b) and rn.K_h is None


def test_shared_chip_systems_carry_the_harmonics_as_views() -> None:
    params = with_harmonics(random_system(5, 2, 3, 0), 2, 1)
    systems = ChipSystems.shared(params)
    assert systems.K_h.b.shape == (2, 1, 5, 5) and systems.drive_h.a.shape == (1, 1, 3, 5, 2)
    assert systems.K_h.b.data_ptr() == params.K_h.b.data_ptr() and systems.chips == 1
    assert torch.equal(systems.chip(0).C_h.b0, params.C_h.b0)


# --- gradients ---------------------------------------------------------------------------------
# as tests/oscsim/test_autograd.py: central differences at eps = 1e-6 in float64
GRADCHECK = dict(eps=1e-6, atol=1e-7, rtol=1e-5)
N, N_COND, CLASSES = 3, 2, 2
LABELS = torch.tensor([1, -1, 0, 1])


def raw_inputs(seed: int = 0) -> list[torch.Tensor]:
    g = generator(seed)
    shapes = [(N, N), (1, N, N), (2, N, N), (N, N), (CLASSES, N, N_COND), (1, CLASSES, N, N_COND),
              (2, CLASSES, N, N_COND), (CLASSES, N, N_COND), (N_COND, N_COND), (0, N_COND, N_COND),
              (1, N_COND, N_COND), (N_COND, N_COND), (4, N + N_COND)]
    return [torch.randn(*s, generator=g, dtype=F64).requires_grad_() for s in shapes]


def final_phases(method: str, nonideal: NonIdeal | None = None):
    def fn(K, Ka, Kb, Kb0, drive, Da, Db, Db0, C, Ca, Cb, Cb0, theta0):
        params = KuramotoParams.from_raw(
            K=K, omega=torch.linspace(-1, 1, N, dtype=F64), drive=drive, C=C, nu=torch.zeros(1, N_COND, dtype=F64),
            k_scale=0.6, c_scale=0.8, drive_scale=0.7,
            K_h=Harmonics(Ka, Kb, Kb0), drive_h=Harmonics(Da, Db, Db0), C_h=Harmonics(Ca, Cb, Cb0))
        return simulate(params, theta0, LABELS, steps=3, T=0.9, method=method, nonideal=nonideal).theta

    return fn


@pytest.mark.parametrize("method", ["euler", pytest.param("rk4", marks=pytest.mark.slow)])
def test_gradients_flow_into_every_coefficient(method: str) -> None:
    inputs = raw_inputs()
    out = final_phases(method)(*inputs)
    used = [x for x in inputs if x.numel()]  # C_h is of order 1: its a is empty
    grads = torch.autograd.grad(out.sum(), used)
    assert all(bool((g != 0).any()) for g in grads)
    assert torch.autograd.gradcheck(final_phases(method), inputs, **GRADCHECK)


@pytest.mark.slow
def test_gradients_through_noisy_euler_maruyama_chips() -> None:
    ni = NonIdeal(chips=2, phase_noise_rad_per_sqrt_t=0.2, coupling_read_noise=0.1, coupling_mismatch_sigma=0.2,
                  sample_seed=5)
    assert torch.autograd.gradcheck(final_phases("euler", ni), raw_inputs(1), **GRADCHECK)


# --- errors --------------------------------------------------------------------------------------
def fields(**changes) -> dict:
    params = random_system(3, 2, 2, 0)
    out = dict(K=params.K, omega=params.omega, drive=params.drive, C=params.C, nu=params.nu)
    out.update(changes)
    return out


@pytest.mark.parametrize(
    ("make", "pattern"),
    [
        (lambda: Harmonics(torch.zeros(0, 3, 3), torch.zeros(1, 3, 4), torch.zeros(3, 3)),
         r"^Harmonics\.b must be \(H >= 1, \*b0\.shape\) = \(H, 3, 3\), not \(1, 3, 4\)$"),
        (lambda: Harmonics(torch.zeros(0, 3, 3), torch.zeros(0, 3, 3), torch.zeros(3, 3)),
         r"^Harmonics\.b must be \(H >= 1"),
        (lambda: Harmonics(torch.zeros(2, 3, 3), torch.zeros(2, 3, 3), torch.zeros(3, 3)),
         r"^Harmonics\.a must be \(H−1, \*b0\.shape\) = \(1, 3, 3\) for H = 2, not \(2, 3, 3\)$"),
        (lambda: Harmonics(torch.zeros(0, 3, 3), torch.zeros(1, 3, 3, dtype=F64), torch.zeros(3, 3)),
         r"^Harmonics\.b is torch\.float64 on cpu; it must match b0 \(torch\.float32 on cpu\)$"),
        (lambda: Harmonics(torch.zeros(0, 3, 3), torch.zeros(1, 3, 3), torch.zeros(3, 3, dtype=torch.int64)),
         r"^Harmonics\.b0 must be floating point, not torch\.int64$"),
        (lambda: Harmonics.zeros((3, 3), 0), r"^Harmonics order must be an int >= 1, not 0$"),
        (lambda: KuramotoParams(**fields(K_h=Harmonics.zeros((3, 2), 1, dtype=F64))),
         r"^KuramotoParams\.K_h must be Harmonics of shape \(3, 3\) \(as K\), not \(3, 2\)$"),
        (lambda: KuramotoParams(**fields(drive_h=Harmonics.zeros((2, 3, 2), 1))),
         r"^KuramotoParams\.drive_h is torch\.float32 on cpu; all fields must match K \(torch\.float64 on cpu\)$"),
        (lambda: KuramotoParams(**fields(C_h=torch.zeros(2, 2, dtype=F64))),
         r"^KuramotoParams\.C_h must be an oscsim\.Harmonics or None, not Tensor$"),
        (lambda: KuramotoParams(**fields(K_h=Harmonics.zeros((3, 3), 2, dtype=F64).map(lambda t: t + 1))),
         r"^KuramotoParams\.K_h\.b0 must have a zero diagonal \(no self-coupler\); KuramotoParams\.from_raw zeroes it$"),
    ],
)
def test_bad_harmonics_are_refused(make, pattern: str) -> None:
    with pytest.raises(OscsimError, match=pattern):
        make()


def test_velocity_wants_the_drive_harmonics_with_the_drive() -> None:
    params = with_harmonics(random_system(3, 2, 2, 0), 2, 1)
    theta0, labels = random_phases(2, 5, 0), torch.tensor([0, 1])
    with pytest.raises(OscsimError, match=r"^velocity: the params have drive harmonics"):
        velocity(params, theta0, params.drive[labels])
    velocity(params, theta0, params.drive[labels], gather_drive_harmonics(params, labels, 2))


def test_from_raw_scales_the_harmonics_with_their_matrix_and_zeroes_self_couplers() -> None:
    raw = random_system(4, 2, 2, 0)
    h = random_harmonics((4, 4), 2, 3, square=False)
    params = KuramotoParams.from_raw(K=raw.K, omega=raw.omega, drive=raw.drive, C=raw.C, nu=raw.nu, k_scale=0.5,
                                     K_h=h)
    off = ~torch.eye(4, dtype=torch.bool)
    for got, t in zip(params.K_h.tensors, h.tensors):
        assert torch.equal(got[..., off], t[..., off] * 0.5)
        assert not bool(got.diagonal(dim1=-2, dim2=-1).ne(0).any())
    assert params.harmonics_order == 2 and params.has_harmonics and raw.harmonics_order == 1
    moved = params.to(torch.float32)
    assert moved.K_h.dtype == torch.float32 and moved.K_h.order == 2
