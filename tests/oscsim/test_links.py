"""Couplings over inter-tile links: delayed and jittered received phases (oscsim.links)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from oscsim import NonIdeal, OscsimError, simulate
from oscsim.harmonics import Harmonics
from oscsim.links import History, Links
from oscsim.params import KuramotoParams
from tests.oscsim.systems import F64, random_labels, random_phases, random_system


def delayed_reference(params: KuramotoParams, theta0, labels, *, steps: int, T: float, mask, delay_steps: float,
                      drive: bool, harmonics: Harmonics | None = None):
    """Euler with the delay written out as the definition (plain N × N sums of sines, float64):
    the linked couplings and the drive see the sender's phase `delay_steps` steps ago
    (interpolated linearly, the initial phases before the start)."""
    n = params.n
    h = T / steps
    frames = [theta0.clone()]

    def past(k: int):
        t = k - delay_steps
        lo = math.floor(t)
        f = t - lo
        at = lambda j: frames[max(j, 0)]
        return at(lo) if f == 0 else torch.lerp(at(lo), at(lo + 1), f)

    def H(M, hm, x):  # the coupling function of every coupler at differences x (B, N, M)
        out = M * torch.sin(x)
        if hm is not None:
            out = out + hm.b0
            for k in range(hm.b.shape[0]):
                out = out + hm.b[k] * torch.cos((k + 1) * x)
            for k in range(hm.a.shape[0]):
                out = out + hm.a[k] * torch.sin((k + 2) * x)
        return out

    x = theta0.clone()
    for k in range(steps):
        theta, phi = x[:, :n], x[:, n:]
        old = past(k)
        theta_hat, phi_hat = old[:, :n], old[:, n:]
        diff_now = theta[:, None, :] - theta[:, :, None]  # [b, i, j] = θ_j − θ_i
        diff_old = theta_hat[:, None, :] - theta[:, :, None]
        mixed = torch.where(mask, diff_old, diff_now)
        v = params.omega + H(params.K, harmonics, mixed).sum(-1)
        if labels is not None:
            src = phi_hat if drive else phi
            D = params.drive[labels.clamp(min=0)] * (labels >= 0).view(-1, 1, 1)
            v = v + (D * torch.sin(src[:, None, :] - theta[:, :, None])).sum(-1)
        w = params.nu + (params.C * torch.sin(phi[:, None, :] - phi[:, :, None])).sum(-1)
        x = x + h * torch.cat((v, w), dim=1)
        frames.append(x.clone())
    return x


def tiles_mask(n: int, tile: int) -> torch.Tensor:
    return Links.of_tiles(torch.arange(n) // tile).mask


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 9), n_cond=st.integers(0, 3), seed=st.integers(0, 10_000),
       delay=st.sampled_from([1.0, 2.0, 0.5, 1.75, 3.0]), drive=st.booleans())
def test_a_delayed_coupling_equals_the_delayed_sum(n, n_cond, seed, delay, drive) -> None:
    params = random_system(n, n_cond, 3, seed, scale=2.0)
    theta0 = random_phases(5, n + n_cond, seed)
    labels = random_labels(5, 3, seed) if n_cond else None
    mask = tiles_mask(n, max(1, n // 2))
    steps, T = 8, 1.0
    links = Links(mask=mask, delay=delay * T / steps, drive=drive)
    with torch.no_grad():
        got = simulate(params, theta0, labels, steps=steps, T=T, links=links).theta
    want = delayed_reference(params, theta0, labels, steps=steps, T=T, mask=mask, delay_steps=delay, drive=drive)
    torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-10)


def test_a_one_step_delay_is_the_gemm_on_the_previous_state() -> None:
    """The kernel's definition for one step of delay: W = [sin x_k; cos x_k] K_localᵀ +
    [sin x_{k−1}; cos x_{k−1}] K_linkᵀ, step by step with the GEMMs written out."""
    n, steps, T = 6, 5, 1.0
    params = random_system(n, 0, 1, 3, scale=3.0)
    theta0 = random_phases(4, n, 3)
    mask = tiles_mask(n, 3)
    local, link = params.K * ~mask, params.K * mask
    h = T / steps
    x, prev = theta0.clone(), theta0.clone()
    for _ in range(steps):
        s_now, c_now, s_old, c_old = torch.sin(x), torch.cos(x), torch.sin(prev), torch.cos(prev)
        w_sin = s_now @ local.T + s_old @ link.T
        w_cos = c_now @ local.T + c_old @ link.T
        prev = x
        x = x + h * (params.omega + torch.cos(x) * w_sin - torch.sin(x) * w_cos)
    with torch.no_grad():
        got = simulate(params, theta0, steps=steps, T=T, links=Links(mask=mask, delay=h)).theta
    torch.testing.assert_close(got, x, atol=1e-12, rtol=1e-12)


def test_a_delayed_general_coupling_equals_the_delayed_sum() -> None:
    n, n_cond = 6, 2
    base = random_system(n, n_cond, 2, 11, scale=2.0)
    g = torch.Generator().manual_seed(5)
    hm = Harmonics(a=0.3 * torch.randn(1, n, n, generator=g, dtype=F64), b=0.3 * torch.randn(2, n, n, generator=g, dtype=F64),
                   b0=0.1 * torch.randn(n, n, generator=g, dtype=F64))
    hm = Harmonics(a=hm.a * ~torch.eye(n, dtype=torch.bool), b=hm.b * ~torch.eye(n, dtype=torch.bool),
                   b0=hm.b0 * ~torch.eye(n, dtype=torch.bool))
    params = KuramotoParams(K=base.K, omega=base.omega, drive=base.drive, C=base.C, nu=base.nu, K_h=hm)
    theta0 = random_phases(4, n + n_cond, 2)
    labels = torch.tensor([0, 1, -1, 1])
    mask = tiles_mask(n, 2)
    links = Links(mask=mask, delay=1.5 / 8)
    with torch.no_grad():
        got = simulate(params, theta0, labels, steps=8, T=1.0, links=links).theta
    want = delayed_reference(params, theta0, labels, steps=8, T=1.0, mask=mask, delay_steps=1.5, drive=True,
                             harmonics=hm)
    torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-10)


def test_no_delay_and_no_jitter_is_the_plain_path_bit_for_bit() -> None:
    params = random_system(8, 2, 2, 1, dtype=torch.float32)
    theta0 = random_phases(6, 10, 1, dtype=torch.float32)
    labels = random_labels(6, 2, 1)
    with torch.no_grad():
        plain = simulate(params, theta0, labels, steps=10).theta
        linked = simulate(params, theta0, labels, steps=10, links=Links(mask=tiles_mask(8, 4))).theta
    assert torch.equal(plain, linked)


def test_links_run_on_noisy_chips_and_equal_the_reference_without_noise_terms() -> None:
    """Static mismatch on several chips (one batched GEMM per step over the chip axis) with a
    delay: each chip equals the reference on its own realised system."""
    params = random_system(6, 2, 2, 4, scale=2.0)
    theta0 = random_phases(4, 8, 4)
    labels = torch.tensor([0, 1, 1, 0])
    mask = tiles_mask(6, 3)
    nonideal = NonIdeal(coupling_mismatch_sigma=0.2, chips=2, chip_seed=3, phase_noise_rad_per_sqrt_t=1e-30)
    links = Links(mask=mask, delay=2 / 8)
    with torch.no_grad():
        got = simulate(params, theta0, labels, steps=8, nonideal=nonideal, links=links).theta
    from oscsim.realize import realize

    systems = realize(params, nonideal)
    for c in range(2):
        chip = systems.chip(c)
        rows = slice(2 * c, 2 * c + 2)
        want = delayed_reference(chip, theta0[rows], labels[rows], steps=8, T=1.0, mask=mask, delay_steps=2.0,
                                 drive=True)
        torch.testing.assert_close(got[rows], want, atol=1e-8, rtol=1e-8)


def test_the_jitter_is_gaussian_with_its_sigma() -> None:
    x0 = torch.zeros(4000, 3, dtype=F64)
    hist = History(x0, delay_steps=0.0, jitter_rad=0.05, generator=torch.Generator().manual_seed(0))
    hist.push(x0)
    err = hist.received().flatten()
    assert abs(float(err.mean())) < 4 * 0.05 / math.sqrt(err.numel())
    assert float(err.std()) == pytest.approx(0.05, rel=0.03)
    # kurtosis of a Gaussian: 3
    assert float(((err / err.std()) ** 4).mean()) == pytest.approx(3.0, abs=0.2)


def test_links_are_refused_where_they_cannot_run() -> None:
    params = random_system(4, 0, 1, 0)
    theta0 = random_phases(2, 4, 0)
    links = Links(mask=tiles_mask(4, 2), delay=0.1)
    with pytest.raises(OscsimError, match="no-grad Euler kernel"):
        simulate(params, theta0, steps=4, method="rk4", links=links)
    with pytest.raises(OscsimError, match="N = 4"):
        with torch.no_grad():
            simulate(params, theta0, steps=4, links=Links(mask=tiles_mask(5, 2), delay=0.1))
    with pytest.raises(OscsimError, match="Links.delay must be"):
        Links(mask=tiles_mask(4, 2), delay=-1.0)
    with pytest.raises(OscsimError, match="bool tensor"):
        Links(mask=torch.zeros(4, 4))
