"""Image grids a person can look at (PNG), written atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from oscsim import atomic_path


def grid(images: Tensor, *, rows: int, pad: int = 1, min_cell: int = 32) -> np.ndarray:
    """(B, C, H, W) in [−1, 1] → (rows·H', cols·W', 3) uint8, small images upscaled (nearest)."""
    b, c, h, w = images.shape
    cols = -(-b // rows)
    scale = max(1, -(-min_cell // max(h, w)))
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    if c == 1:
        x = x.expand(b, 3, h, w)
    x = x.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)
    h, w = h * scale, w * scale
    canvas = torch.full((3, rows * (h + pad) + pad, cols * (w + pad) + pad), 255, dtype=torch.uint8)
    for i in range(b):
        r, q = divmod(i, cols)
        canvas[:, pad + r * (h + pad): pad + r * (h + pad) + h, pad + q * (w + pad): pad + q * (w + pad) + w] = x[i]
    return canvas.permute(1, 2, 0).numpy()


def save_grid(images: Tensor, path: str | Path, *, rows: int) -> Path:
    """Write `grid(images)` as a PNG at `path` (temporary name, then rename)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    with atomic_path(path) as tmp:
        plt.imsave(tmp, grid(images, rows=rows), format="png")
    return path
