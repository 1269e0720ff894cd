"""The simplest correct forward pass of a release checkpoint, in plain functional torch.

Written from UN0_SPEC.md's description of the release's code, independently of `Un0`,
`oscsim` and `models.readout`: a loop of Euler (or RK4) steps with the two coupling GEMMs
written out, the readout, and the decoder as ``torch.nn.functional`` calls on the raw
state dict. Tests use it as the oracle for "same images as the release", and
`benchmarks/simulate.py` as the baseline `Un0.generate` must not be slower than.
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import Tensor


def _strip(state: dict[str, Tensor]) -> dict[str, Tensor]:
    return {k.replace("_orig_mod.", ""): v for k, v in state.items()}


def release_forward(
    state: dict[str, Tensor],
    labels: Tensor,
    theta0: Tensor,
    *,
    parameterization: str,
    relativization: str,
    num_steps: int,
    solver: str = "euler",
    integration_time: float = 1.0,
) -> Tensor:
    """Images (B, C, H, W) in [−1, 1] from a release state dict, seeds and labels."""
    s = _strip(state)
    K, Kc, Kd = s["dynamics.K"], s["dynamics.K_cond"], s["dynamics.K_drive"]
    omega, omega_c = s["dynamics.omega"], s["dynamics.omega_cond"]
    n, n_c = K.shape[0], Kc.shape[0]
    K = K - torch.diag(torch.diag(K))
    Kc = Kc - torch.diag(torch.diag(Kc))
    drive = Kd[labels]  # (B, n, n_c)
    if parameterization == "mup":
        K, Kc, drive = K * n**-0.5, Kc * n_c**-0.5, drive * n_c**-0.5

    def f(x: Tensor) -> Tensor:
        th, ph = x[:, :n], x[:, n:]
        sm, cm, sc, cc = th.sin(), th.cos(), ph.sin(), ph.cos()
        main = omega + cm * (sm @ K.T) - sm * (cm @ K.T)
        main = main + cm * torch.einsum("bik,bk->bi", drive, sc) - sm * torch.einsum("bik,bk->bi", drive, cc)
        cond = omega_c + cc * (sc @ Kc.T) - sc * (cc @ Kc.T)
        return torch.cat([main, cond], dim=1)

    h = integration_time / num_steps
    x = theta0
    for _ in range(num_steps):
        if solver == "euler":
            x = x + h * f(x)
        else:  # rk4
            k1 = f(x)
            k2 = f(x + 0.5 * h * k1)
            k3 = f(x + 0.5 * h * k2)
            k4 = f(x + h * k3)
            x = x + (h / 6.0) * (k1 + 2 * k2 + 2 * k3 + k4)
    p = x[:, :n]
    if relativization == "mean_relative":
        p = p - p.mean(dim=1, keepdim=True)
    elif relativization == "ref_oscillator":
        p = p - p[:, :1]
    elif relativization == "pairwise":
        p = (p[:, :, None] - p[:, None, :]).reshape(p.shape[0], -1)
    feats = torch.cat([p.sin(), p.cos()], dim=1)
    z = feats.reshape(feats.shape[0], -1, 4, 4)
    blocks = sorted({int(m.group(1)) for k in s if (m := re.match(r"decoder\.cascade\.(\d+)\.", k))})
    for i in blocks:
        z = F.interpolate(z, scale_factor=2.0, mode="nearest")
        z = F.leaky_relu(F.conv2d(z, s[f"decoder.cascade.{i}.net.1.weight"], s[f"decoder.cascade.{i}.net.1.bias"], padding=1), 0.2)
        z = F.leaky_relu(F.conv2d(z, s[f"decoder.cascade.{i}.net.3.weight"], s[f"decoder.cascade.{i}.net.3.bias"], padding=1), 0.2)
    return torch.tanh(F.conv2d(z, s["decoder.to_output.weight"], s["decoder.to_output.bias"], padding=1))

