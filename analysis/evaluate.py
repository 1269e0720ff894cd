"""Scoring a model: FID, precision/recall, class accuracy, and the data's own floor.

A feature space is an `Extractor`: a function images → features, its id (name + weights
hash), and optionally a classifier head. Reference statistics (mean, covariance, count,
extractor id) of a real split are cached in ``$UN0HW_CACHE`` (default
``~/.cache/un0hw``) and reused while the extractor and the data are unchanged.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor
from tqdm import tqdm

from analysis.features import load_digits_net
from analysis.fid import FeatureStats, frechet_distance
from analysis.precision_recall import precision_recall
from models.data import ImageSet, digits
from models.un0 import Un0
from oscsim import NonIdeal, OscsimError


def cache_dir() -> Path:
    return Path(os.environ.get("UN0HW_CACHE", Path.home() / ".cache" / "un0hw"))


@dataclass(frozen=True)
class Extractor:
    features: Callable[[Tensor], Tensor]
    id: str
    classify: Callable[[Tensor], Tensor] | None = None  # features → logits
    batch_size: int = 1000


def digits_extractor(name: str = "digits-eval") -> Extractor:
    net, eid = load_digits_net(name)
    return Extractor(features=net.features, id=eid, classify=net.fc2)


@dataclass(frozen=True)
class Score:
    fid: float  # generated vs the reference split
    floor: float | None  # the data's own: another real split vs the reference split
    precision: float
    recall: float
    class_accuracy: float | None  # share the extractor's classifier assigns the requested class
    samples: int
    extractor: str

    def as_dict(self) -> dict:
        return asdict(self)


@torch.no_grad()
def _features(ex: Extractor, images: Tensor) -> Tensor:
    return torch.cat([ex.features(images[i:i + ex.batch_size]) for i in range(0, len(images), ex.batch_size)])


def reference_path(data: ImageSet, ex: Extractor) -> Path:
    """Where the statistics of `data` in `ex`'s feature space are cached:
    ``<cache>/<data name>-<data hash>-<extractor id>.safetensors``."""
    digest = hashlib.sha256(data.images.numpy().tobytes()).hexdigest()[:12]
    return cache_dir() / f"{data.name}-{digest}-{ex.id.replace(':', '_')}.safetensors"


def reference_stats(data: ImageSet, ex: Extractor) -> tuple[FeatureStats, Tensor]:
    """Cached feature statistics of a real set, and its features."""
    feats = _features(ex, data.images)
    path = reference_path(data, ex)
    if path.is_file():
        stats = FeatureStats.load(path)
    else:
        stats = FeatureStats.of(feats, extractor=ex.id)
        stats.save(path)
    return stats, feats


#: working memory one generation batch may take, bytes. Fixed rather than read from the
#: machine: the batch split sets each batch's noise draws (`batch_nonideal`), so a run must
#: split the same way everywhere.
GENERATION_MEMORY_BYTES = 2 * 2**30


def sample_bytes(config) -> int:
    """Working memory of one sample in generation, float32: the oscillator state with its
    integration stages and sin/cos copies (16 arrays of N + N_c), the readout, and the
    decoder's largest pair of consecutive activations (input and output of a layer, twice
    for the activation's copy). An estimate that errs high."""
    width = config.n + config.n_cond
    acts, hw = [config.feature_dim], config.latent_hw
    for c_out in config.decoder_widths:
        hw *= 2
        acts.append(c_out * hw * hw)
    acts.append(config.image_channels * hw * hw)
    decoder = 2 * max(a + b for a, b in zip(acts, acts[1:]))
    return 4 * (16 * width + config.feature_dim + decoder)


def bounded_batch(config, requested: int, *, chips: int = 1, budget: int = GENERATION_MEMORY_BYTES) -> int:
    """The largest batch ≤ `requested` whose samples (times `chips` on the chip axis) fit
    `budget`: memory-bounded generation, so a large model runs on a small machine, slowly."""
    return max(1, min(int(requested), budget // (sample_bytes(config) * max(chips, 1))))


def batch_nonideal(nonideal: NonIdeal | None, index: int) -> NonIdeal | None:
    """The hardware of batch `index`: the same chip, its own dynamic draws (a sample seed
    derived from the spec's and the batch index, so no two batches share noise and a
    sharded run draws what a single process draws)."""
    if nonideal is None:
        return None
    return nonideal.replace(sample_seed=(nonideal.sample_seed * 1_000_003 + index) % 2**63)


@torch.no_grad()
def generate_batch(model: Un0, ex: Extractor, labels: Tensor, theta0: Tensor, *, steps: int | None = None,
                   T: float | None = None, nonideal: NonIdeal | None = None,
                   gemm_dtype: torch.dtype | None = None, decoder: str = "float") -> tuple[Tensor, Tensor | None]:
    """Features of one batch of samples, and the classifier's hits (or None)."""
    f = _features(ex, model.generate(labels, theta0, steps=steps, T=T, nonideal=nonideal, gemm_dtype=gemm_dtype,
                                     decoder=decoder))
    return f, (ex.classify(f).argmax(1) == labels if ex.classify is not None else None)


def sample_plan(model: Un0, *, per_class: int, seed: int, batch_size: int) -> tuple[Tensor, Tensor, list[int]]:
    """Labels (per_class of every class), seed phases, and the batch starts of a scoring run."""
    labels = torch.arange(model.config.num_classes).repeat_interleave(per_class)
    theta0 = model.sample_theta0(len(labels), generator=torch.Generator().manual_seed(seed))
    return labels, theta0, list(range(0, len(labels), batch_size))


@torch.no_grad()
def generate_features(model: Un0, ex: Extractor, *, per_class: int, seed: int, batch_size: int = 1000,
                      steps: int | None = None, T: float | None = None, nonideal: NonIdeal | None = None,
                      progress: bool = False, gemm_dtype: torch.dtype | None = None,
                      decoder: str = "float") -> tuple[Tensor, Tensor | None]:
    """Features of per_class samples of every class, and whether the extractor's
    classifier names the requested class (None without a classifier). With `nonideal`
    every sample runs on that chip (batch i with `batch_nonideal(nonideal, i)`);
    `gemm_dtype`: the opt-in bf16 coupling GEMM (`oscsim.simulate`); `decoder`: "float" or
    "int8" (`models.int8`)."""
    batch_size = bounded_batch(model.config, batch_size)
    labels, theta0, starts = sample_plan(model, per_class=per_class, seed=seed, batch_size=batch_size)
    feats, hits = [], []
    for index, i in enumerate(tqdm(starts, desc="generate", unit="batch", disable=not progress)):
        f, hit = generate_batch(model, ex, labels[i:i + batch_size], theta0[i:i + batch_size], steps=steps, T=T,
                                nonideal=batch_nonideal(nonideal, index), gemm_dtype=gemm_dtype, decoder=decoder)
        feats.append(f)
        if hit is not None:
            hits.append(hit)
    return torch.cat(feats), (torch.cat(hits) if hits else None)


def score_model(model: Un0, ex: Extractor, reference: ImageSet, *, floor_set: ImageSet | None = None,
                per_class: int = 100, seed: int = 0, steps: int | None = None, T: float | None = None,
                nonideal: NonIdeal | None = None, batch_size: int = 1000, progress: bool = False,
                gemm_dtype: torch.dtype | None = None, decoder: str = "float") -> Score:
    """FID etc. of `model` (classes × per_class samples) against `reference`;
    `steps`/`T` integrate differently from the trained setting (e.g. stop early);
    `nonideal` runs the oscillators on imperfect hardware (one chip, `NonIdeal.chips` = 1)."""
    if nonideal is not None and nonideal.chips != 1:
        raise OscsimError(f"score_model scores one chip; got NonIdeal.chips = {nonideal.chips}")
    feats, hits = generate_features(model, ex, per_class=per_class, seed=seed, steps=steps, T=T, nonideal=nonideal,
                                    batch_size=batch_size, progress=progress, gemm_dtype=gemm_dtype, decoder=decoder)
    return score_features(feats, hits, ex, reference, floor_set=floor_set, seed=seed)


def score_features(feats: Tensor, hits: Tensor | None, ex: Extractor, reference: ImageSet, *,
                   floor_set: ImageSet | None = None, seed: int = 0) -> Score:
    """The scores of generated features against `reference` (what `score_model` reports)."""
    ref_stats, ref_feats = reference_stats(reference, ex)
    # precision/recall compare equal-sized sets (k-NN radii depend on the count)
    n = min(len(feats), len(ref_feats))
    pick_fake = torch.randperm(len(feats), generator=torch.Generator().manual_seed(seed))[:n]
    pick_real = torch.randperm(len(ref_feats), generator=torch.Generator().manual_seed(seed + 1))[:n]
    precision, recall = precision_recall(ref_feats[pick_real], feats[pick_fake], k=3)
    floor = None
    if floor_set is not None:
        floor = frechet_distance(reference_stats(floor_set, ex)[0], ref_stats)
    return Score(
        fid=frechet_distance(FeatureStats.of(feats, extractor=ex.id), ref_stats), floor=floor,
        precision=precision, recall=recall,
        class_accuracy=None if hits is None else float(hits.float().mean()),
        samples=len(feats), extractor=ex.id,
    )


def score_digits(model: Un0, *, per_class: int = 100, seed: int = 0, steps: int | None = None,
                 T: float | None = None, nonideal: NonIdeal | None = None, progress: bool = False,
                 gemm_dtype: torch.dtype | None = None, decoder: str = "float") -> Score:
    """FID-digits against the digits test split, with the train-vs-test floor."""
    return score_model(model, digits_extractor(), digits("test"), floor_set=digits("train"), per_class=per_class,
                       seed=seed, steps=steps, T=T, nonideal=nonideal, progress=progress, gemm_dtype=gemm_dtype,
                       decoder=decoder)
