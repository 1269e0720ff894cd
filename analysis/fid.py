r"""Fréchet distance between Gaussian fits of two feature sets (FID in a feature space).

    d² = ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁^½ Σ₂ Σ₁^½)^½

All in float64. The trace of the matrix square root is computed from the eigenvalues of
the symmetric positive semi-definite M = Σ₁^½ Σ₂ Σ₁^½ (Σ₁^½ by a symmetric eigen-
decomposition), clipping the round-off negatives — no complex parts, no `sqrtm`
iterations that fail on singular covariances (fewer samples than dimensions).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file, save_file

from oscsim import atomic_path
from oscsim.errors import brief
from oscsim.fileio import PathCheckError, readable_file

STATS_FORMAT = "un0hw-feature-stats"
STATS_VERSION = 1


class StatsError(ValueError):
    """A feature-statistics file or argument is unusable."""


@dataclass(frozen=True)
class FeatureStats:
    """Mean and covariance of a feature set, with what produced it."""

    mean: np.ndarray  # (D,) float64
    cov: np.ndarray  # (D, D) float64, unbiased (ddof = 1)
    count: int
    extractor: str  # id of the feature extractor (name + weights hash)

    @classmethod
    def of(cls, features: np.ndarray | torch.Tensor, *, extractor: str) -> FeatureStats:
        x = features.detach().cpu().double().numpy() if isinstance(features, torch.Tensor) else np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] < 2:
            raise StatsError(f"features must be (count >= 2, D), not {x.shape}")
        if not np.isfinite(x).all():
            raise StatsError("features hold NaN/Inf values")
        return cls(mean=x.mean(axis=0), cov=np.cov(x, rowvar=False), count=int(x.shape[0]), extractor=extractor)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        meta = {"format": STATS_FORMAT, "format_version": str(STATS_VERSION), "count": str(self.count), "extractor": self.extractor}
        with atomic_path(path) as tmp:
            save_file({"mean": self.mean, "cov": self.cov}, str(tmp), metadata=meta)
        return path

    @classmethod
    def load(cls, path: str | Path) -> FeatureStats:
        from safetensors import safe_open

        path = Path(path)
        try:
            readable_file(path)
        except PathCheckError as exc:
            raise StatsError(str(exc)) from None
        try:
            with safe_open(str(path), framework="numpy") as fh:
                meta = fh.metadata() or {}
            arrays = load_file(str(path))
        except Exception as exc:  # safetensors raises several types for a bad file
            raise StatsError(f"{path}: not a readable feature-statistics file ({brief(exc)})") from None
        if meta.get("format") != STATS_FORMAT:
            raise StatsError(f"{path}: not an un0hw feature-statistics file (format {meta.get('format')!r})")
        if int(meta.get("format_version", "0")) > STATS_VERSION:
            raise StatsError(f"{path}: format_version {meta['format_version']} is newer than this un0hw reads")
        return cls(mean=arrays["mean"], cov=arrays["cov"], count=int(meta["count"]), extractor=meta["extractor"])

    def describe(self) -> str:
        return json.dumps({"count": self.count, "dim": int(self.mean.shape[0]), "extractor": self.extractor})


def _sqrt_psd(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(a: FeatureStats, b: FeatureStats) -> float:
    """d² between the Gaussian fits (the number FID reports)."""
    if a.extractor != b.extractor:
        raise StatsError(f"feature statistics from different extractors: {a.extractor!r} vs {b.extractor!r}")
    if a.mean.shape != b.mean.shape:
        raise StatsError(f"feature dimensions differ: {a.mean.shape[0]} vs {b.mean.shape[0]}")
    root = _sqrt_psd(a.cov)
    m = root @ b.cov @ root
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0.0, None)).sum()
    diff = a.mean - b.mean
    return float(diff @ diff + np.trace(a.cov) + np.trace(b.cov) - 2.0 * tr_sqrt)
