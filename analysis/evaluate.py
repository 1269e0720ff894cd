"""Scoring a model on digits: FID-digits, precision/recall, class accuracy, the data floor.

Reference statistics (mean, covariance, count, extractor id) of the real split are
cached in ``$UN0HW_CACHE`` (default ``~/.cache/un0hw``) and reused while the extractor's
weights are unchanged (their hash is part of the id).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from analysis.features import load_digits_net
from analysis.fid import FeatureStats, frechet_distance
from analysis.precision_recall import precision_recall
from models.data import digits
from models.un0 import Un0


def cache_dir() -> Path:
    return Path(os.environ.get("UN0HW_CACHE", Path.home() / ".cache" / "un0hw"))


@dataclass(frozen=True)
class DigitsScore:
    fid: float  # generated vs the test split
    floor: float  # the data's own: train split vs test split
    precision: float
    recall: float
    class_accuracy: float  # share of samples the eval classifier assigns the requested class
    samples: int
    extractor: str

    def as_dict(self) -> dict:
        return asdict(self)


def reference_stats(split: str, net, extractor: str) -> tuple[FeatureStats, torch.Tensor]:
    """Cached feature statistics of a digits split, and the features themselves."""
    data = digits(split)
    with torch.no_grad():
        feats = net.features(data.images)
    path = cache_dir() / f"digits-{split}-{extractor.replace(':', '_')}.safetensors"
    if path.is_file():
        stats = FeatureStats.load(path)
    else:
        stats = FeatureStats.of(feats, extractor=extractor)
        stats.save(path)
    return stats, feats


@torch.no_grad()
def generate_features(model: Un0, net, *, per_class: int, seed: int, batch_size: int = 1000,
                      steps: int | None = None, T: float | None = None,
                      progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Features and predicted classes of per_class samples of every class."""
    labels = torch.arange(model.config.num_classes).repeat_interleave(per_class)
    theta0 = model.sample_theta0(len(labels), generator=torch.Generator().manual_seed(seed))
    feats, preds = [], []
    for i in tqdm(range(0, len(labels), batch_size), desc="generate", unit="batch", disable=not progress):
        x = model.generate(labels[i:i + batch_size], theta0[i:i + batch_size], steps=steps, T=T)
        f = net.features(x)
        feats.append(f)
        preds.append(net.fc2(f).argmax(1))
    return torch.cat(feats), torch.cat(preds) == labels


def score_digits(model: Un0, *, per_class: int = 100, seed: int = 0, extractor: str = "digits-eval",
                 steps: int | None = None, T: float | None = None, progress: bool = False) -> DigitsScore:
    """FID-digits etc. of `model` (10 × per_class samples) against the test split;
    `steps`/`T` integrate differently from the trained setting (e.g. stop early)."""
    net, eid = load_digits_net(extractor)
    test_stats, test_feats = reference_stats("test", net, eid)
    train_stats, _ = reference_stats("train", net, eid)
    feats, correct = generate_features(model, net, per_class=per_class, seed=seed, steps=steps, T=T, progress=progress)
    # precision/recall compare equal-sized sets (k-NN radii depend on the count)
    pick = torch.randperm(len(feats), generator=torch.Generator().manual_seed(seed))[: len(test_feats)]
    precision, recall = precision_recall(test_feats, feats[pick], k=3)
    return DigitsScore(
        fid=frechet_distance(FeatureStats.of(feats, extractor=eid), test_stats),
        floor=frechet_distance(train_stats, test_stats),
        precision=precision, recall=recall, class_accuracy=float(correct.float().mean()),
        samples=len(correct), extractor=eid,
    )
