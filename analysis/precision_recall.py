"""Improved precision and recall (Kynkäänniemi et al. 2019) with k-NN manifolds.

Each set's manifold is the union of balls around its points, radius = distance to the
point's k-th nearest neighbour within the set. Precision = share of generated points
inside the real manifold; recall = share of real points inside the generated manifold.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _knn_radii(x: Tensor, k: int, chunk: int) -> Tensor:
    radii = []
    for i in range(0, x.shape[0], chunk):
        d = torch.cdist(x[i:i + chunk], x)
        radii.append(d.kthvalue(k + 1, dim=1).values)  # k+1: the point itself is at 0
    return torch.cat(radii)


def _coverage(queries: Tensor, points: Tensor, radii: Tensor, chunk: int) -> float:
    inside = 0
    for i in range(0, queries.shape[0], chunk):
        d = torch.cdist(queries[i:i + chunk], points)
        inside += int((d <= radii.unsqueeze(0)).any(dim=1).sum())
    return inside / queries.shape[0]


def precision_recall(real: Tensor, fake: Tensor, *, k: int = 3, chunk: int = 1024) -> tuple[float, float]:
    """(precision, recall) of `fake` against `real` features, both (count, D)."""
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"features must be (count, D) with equal D; got {tuple(real.shape)} and {tuple(fake.shape)}")
    if min(real.shape[0], fake.shape[0]) <= k:
        raise ValueError(f"need more than k={k} samples in each set; got {real.shape[0]} real, {fake.shape[0]} generated")
    real, fake = real.double(), fake.double()
    precision = _coverage(fake, real, _knn_radii(real, k, chunk), chunk)
    recall = _coverage(real, fake, _knn_radii(fake, k, chunk), chunk)
    return precision, recall
