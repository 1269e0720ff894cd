"""The Un-0 release's FID protocol (clean-fid, mode "clean") on tensors, offline.

The release saves every sample as a PNG (torchvision's ``save_image`` of
``((x + 1)/2).clamp(0, 1)``) and scores the folder with ``cleanfid.fid.compute_fid(...,
mode="clean")``. Here the same numbers come from tensors, without the PNG round trip:

1. `to_uint8`: images in [−1, 1] → uint8 as the PNGs hold them, ``floor(v·255 + 0.5)``
   clamped to 0..255 with ``v = ((x + 1)/2).clamp(0, 1)``; one grey channel is repeated
   to RGB (``save_image`` writes grey images as RGB, clean-fid converts to RGB).
2. `resize_clean`: clean-fid's own "clean" resize (``cleanfid.resize.build_resizer``,
   imported, not copied: PIL bicubic on each channel as a float image, to 299×299,
   clipped to 0..255), one image after another (see the throughput below).
3. `analysis.inception.pool_features`: the FID Inception network on the float 0..255
   input from its ``(x − 128)/128`` normalisation on (no second resize) → 2048-d.

The network is torch-fidelity's port of the TF 2015-12-05 FID graph from a local weights
file (`analysis.inception.load_inception`); clean-fid's own file is a TorchScript archive,
which un0hw does not load (loading TorchScript runs code). The Fréchet distance is
`analysis.fid.frechet_distance` (tests/analysis/test_cleanfid.py compares features and FID
with clean-fid's own ``get_folder_features`` and ``frechet_distance`` on PNG folders).

Reference statistics (`reference_statistics`) are computed once from a local real set —
CIFAR-10 train (the split of clean-fid's ``cifar10`` "train" statistics that the release
uses) or an ImageNet-64 ``.npz`` (the release's custom statistics of real validation
images) — and cached in `analysis.evaluate.cache_dir` under the data's hash and the
extractor id, so the two FID modes never share a file.

Throughput on the development machine (2 AMD EPYC cores shared with other jobs, torch
2.13.0+cpu; the snippet in docs/fid-protocol.md), measured while it was quiet: the resize,
one image after another, about 1,000 images/s at 32×32 and 900 at 64×64; the 299×299
Inception 9.7 images/s; the whole pipeline 8.2 images/s, so 50,000 samples take about
1.7 hours on this CPU, and building the CIFAR-10 train reference as long again (once).
The resize is about 1% of that, so it runs in this thread: two threads resized 1.3× faster
while the machine was quiet and 2.5× slower under a load average of 8. On a GPU
(``--device cuda``, not measured here) the resize becomes the limit at ~1,000 images/s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from analysis.evaluate import Extractor, bounded_batch, generate_batch, reference_path
from analysis.fid import FeatureStats, frechet_distance
from analysis.inception import load_inception, pool_features
from models.data import ImageSet
from oscsim.errors import brief

INSTALL = "pip install --no-deps clean-fid==0.1.35"
RELEASE_SAMPLES = 50_000  # the release scores 50,000 class-balanced samples
SIZE = 299
CHUNK = 50  # images resized and run through the network at a time (50 × 1 MB of 299×299 floats)


class CleanFidError(ValueError):
    """The clean-fid protocol cannot run: clean-fid is missing, or a cached file is foreign."""


def clean_resizer() -> Callable[[np.ndarray], np.ndarray]:
    """clean-fid's "clean" resize: (H, W, 3) uint8 → (299, 299, 3) float32 in 0..255."""
    try:
        from cleanfid.resize import build_resizer
    except ImportError as exc:
        raise CleanFidError(f"the clean-fid protocol resizes with clean-fid's own code: {INSTALL} ({brief(exc)})") from None
    return build_resizer("clean")


def to_uint8(images: Tensor) -> Tensor:
    """(B, 1 or 3, H, W) in [−1, 1] → (B, 3, H, W) uint8, as the release's PNGs hold them:
    torchvision's ``save_image`` of ``((x + 1)/2).clamp(0, 1)`` multiplies by 255, adds 0.5,
    clamps to 0..255 and truncates (in the images' own float type)."""
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must be (B, 1 or 3, H, W), not {tuple(images.shape)}")
    v = ((images.detach().cpu() + 1) / 2).clamp(0, 1)
    u = v.mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8)
    return u.expand(-1, 3, -1, -1).contiguous() if u.shape[1] == 1 else u


def resize_clean(images: Tensor, *, resizer: Callable | None = None) -> Tensor:
    """(B, 3, H, W) uint8 → (B, 3, 299, 299) float32 in 0..255 by clean-fid's "clean" resize
    (`resizer`, default `clean_resizer()`), one image at a time."""
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"resize_clean takes (B, 3, H, W) uint8 images, not {tuple(images.shape)} {images.dtype}")
    fn = resizer or clean_resizer()
    hwc = images.permute(0, 2, 3, 1).numpy()
    out = np.empty((len(hwc), 3, SIZE, SIZE), dtype=np.float32)
    for i in range(len(hwc)):
        out[i] = fn(np.ascontiguousarray(hwc[i])).transpose(2, 0, 1)  # HWC → CHW, as clean-fid's ToTensor
    return torch.from_numpy(out)


def clean_extractor(weights: str | Path | None = None, *, device: str | torch.device = "cpu",
                    chunk: int = CHUNK) -> Extractor:
    """The clean-fid feature space: images in [−1, 1] → `to_uint8` → `resize_clean` →
    Inception pool features (B, 2048), the network on `device`. Its id,
    ``clean-fid-inception-v3-compat:<weights hash>``, keeps its cached statistics apart
    from the torch-fidelity-resize extractor's (`analysis.inception.inception_extractor`)."""
    net, eid = load_inception(weights)
    net = net.to(device)
    fn = clean_resizer()

    @torch.no_grad()
    def features(images: Tensor) -> Tensor:
        u8 = to_uint8(images)
        out = [pool_features(net, resize_clean(u8[i:i + chunk], resizer=fn).to(device)).cpu()
               for i in range(0, len(u8), chunk)]
        return torch.cat(out) if out else torch.empty(0, 2048)

    return Extractor(features=features, id=f"clean-fid-{eid}", batch_size=10 * chunk)


def class_balanced_labels(n: int, classes: int, seed: int) -> Tensor:
    """The release's class balance: ``n // classes`` labels of every class, the remainder
    drawn uniformly at random (with replacement), the whole shuffled; deterministic from
    `seed`. (The release's own random draws cannot be reproduced; the counts are its.)"""
    if n < 1 or classes < 1:
        raise ValueError(f"class_balanced_labels needs n >= 1 and classes >= 1, not n = {n}, classes = {classes}")
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(classes).repeat_interleave(n // classes)
    labels = torch.cat([labels, torch.randint(classes, (n - len(labels),), generator=g)])
    return labels[torch.randperm(n, generator=g)]


@dataclass(frozen=True)
class Reference:
    """Reference statistics and where they are cached."""

    stats: FeatureStats
    path: Path
    cached: bool  # read from the cache (True) or computed now and written there (False)
    name: str  # the data set's name


@torch.no_grad()
def reference_statistics(data: ImageSet, ex: Extractor, *, progress: bool = False) -> Reference:
    """Feature statistics of a real set in `ex`'s space: read from the cache when there,
    else computed (all of `data`) and cached. Unlike `analysis.evaluate.reference_stats`
    a cache hit computes no features."""
    path = reference_path(data, ex)
    if path.is_file():
        stats = FeatureStats.load(path)
        if stats.extractor != ex.id or stats.count != len(data):
            raise CleanFidError(f"{path}: cached statistics of {stats.count} images in {stats.extractor!r}, expected "
                                f"{len(data)} in {ex.id!r}; delete the file to recompute")
        return Reference(stats=stats, path=path, cached=True, name=data.name)
    step = ex.batch_size
    feats = [ex.features(data.images[i:i + step])
             for i in tqdm(range(0, len(data), step), desc=f"reference {data.name}", unit="batch", disable=not progress)]
    stats = FeatureStats.of(torch.cat(feats), extractor=ex.id)
    stats.save(path)
    return Reference(stats=stats, path=path, cached=False, name=data.name)


@dataclass(frozen=True)
class CleanScore:
    fid: float
    samples: int
    extractor: str
    reference: str
    reference_stats: str
    reference_cached: bool

    def as_dict(self) -> dict:
        return asdict(self)


@torch.no_grad()
def score_clean(model, ex: Extractor, reference: Reference, *, num_samples: int = RELEASE_SAMPLES, seed: int = 0,
                batch_size: int = 500, steps: int | None = None, progress: bool = False) -> CleanScore:
    """The release's FID of `model`: `num_samples` class-balanced samples
    (`class_balanced_labels(num_samples, classes, seed)`), seed phases drawn batch by batch
    (`batch_size`, memory-bounded by `analysis.evaluate.bounded_batch`) from one generator
    seeded with `seed`, against `reference`'s statistics."""
    labels = class_balanced_labels(num_samples, model.config.num_classes, seed)
    batch_size = bounded_batch(model.config, batch_size)
    dev = model.dynamics.K.device
    labels = labels.to(dev)
    g = torch.Generator(device=dev).manual_seed(seed)
    feats = []
    for i in tqdm(range(0, num_samples, batch_size), desc="generate", unit="batch", disable=not progress):
        lab = labels[i:i + batch_size]
        f, _ = generate_batch(model, ex, lab, model.sample_theta0(len(lab), generator=g), steps=steps)
        feats.append(f)
    stats = FeatureStats.of(torch.cat(feats), extractor=ex.id)
    return CleanScore(fid=frechet_distance(stats, reference.stats), samples=num_samples, extractor=ex.id,
                      reference=reference.name, reference_stats=str(reference.path), reference_cached=reference.cached)
