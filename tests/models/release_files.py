"""Release-format checkpoints built from UN0_SPEC.md's documented names and shapes.

Independent of un0hw's module: names and shapes are written out here from the spec.
"""

from __future__ import annotations

import torch


def release_state(*, n: int, n_cond: int, classes: int, blocks: int, out_channels: int = 3,
                  pairwise: bool = False, seed: int = 0, mup: bool = False) -> dict[str, torch.Tensor]:
    """A random state dict with the release's `_orig_mod.` names."""
    g = torch.Generator().manual_seed(seed)
    k_std = 1.0 if mup else n**-0.5
    c_std = 1.0 if mup else n_cond**-0.5
    dyn = "dynamics._orig_mod."
    state = {
        dyn + "K": torch.randn(n, n, generator=g) * k_std,
        dyn + "omega": torch.randn(1, n, generator=g),
        dyn + "K_cond": torch.randn(n_cond, n_cond, generator=g) * c_std,
        dyn + "omega_cond": torch.randn(1, n_cond, generator=g),
        dyn + "K_drive": torch.randn(classes, n, n_cond, generator=g) * c_std,
    }
    feature_dim = 2 * (n * n if pairwise else n)
    width = feature_dim // 16
    dec = "decoder._orig_mod."
    for i in range(blocks):
        nxt = max(width // 2, 32)
        state[f"{dec}cascade.{i}.net.1.weight"] = torch.randn(nxt, width, 3, 3, generator=g) * (2 / (9 * width)) ** 0.5
        state[f"{dec}cascade.{i}.net.1.bias"] = torch.randn(nxt, generator=g) * 0.05
        state[f"{dec}cascade.{i}.net.3.weight"] = torch.randn(nxt, nxt, 3, 3, generator=g) * (2 / (9 * nxt)) ** 0.5
        state[f"{dec}cascade.{i}.net.3.bias"] = torch.randn(nxt, generator=g) * 0.05
        width = nxt
    state[dec + "to_output.weight"] = torch.randn(out_channels, width, 3, 3, generator=g) * (1 / (9 * width)) ** 0.5
    state[dec + "to_output.bias"] = torch.zeros(out_channels)
    return state


def write(path, state: dict[str, torch.Tensor], config: dict) -> None:
    torch.save({"config": config, "model": state, "optimizer": {}, "epoch": 3}, path)
