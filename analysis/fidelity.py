r"""Chip fidelity: how far a chip's images are from the model it implements — no data set needed.

A hardware team's question is first "does the chip compute what the model computes?", and
that needs no real images: run the ideal model and the chip on the **same seed phases and
labels** (common random numbers) and compare. Every checkpoint can be scored this way, a
random-init one included. The figures, for `FidelityScore`:

- ``phase_error_rad`` — the final main phases' mean circular error |wrap(θ_chip − θ_ideal)|
  over samples and oscillators, in the readout's relative frame (the model's
  relativization: a common rotation of all phases, which the readout removes, costs
  nothing; the pairwise readout is measured in the reference-oscillator frame, which
  carries the same differences with N instead of N² numbers). 0 for a perfect chip; π/2
  for phases unrelated to the model's.
- ``psnr_db`` — 10 log₁₀(2² / MSE) of the chip's images against the ideal model's
  (images in [−1, 1], so the peak-to-peak range is 2; MSE pooled over all pixels);
  ∞ for identical images.
- ``feature_distance`` — the mean per-sample distance ‖f_chip − f_ideal‖ in the chosen
  feature space, in units of the ideal features' spread √tr Σ: 0 for identical samples,
  about √2 ≈ 1.41 for two independent samples of the same distribution.
- ``fid_vs_ideal`` — the Fréchet distance between the chip's and the ideal model's sample
  sets in that feature space: the chip's distributional shift. On common seeds it is 0 for
  a perfect chip; ``sampling_floor`` (two independent seed sets of the ideal model, the
  same count) is what sampling alone gives and sets its scale.
- ``label_agreement`` — with a feature space that has a classifier (the digits CNN): the
  share of samples the classifier puts in the same class on chip and ideal.

Feature spaces (`feature_space`): ``digits`` (the shipped digits CNN, 1×8×8 models),
``inception`` (the FID Inception network from a local weights file), ``pixels`` (images
average-pooled to at most 8×8 per channel: weights-free, for any model) and ``auto``
(digits for digits models; Inception when its weights are given or
``$UN0HW_INCEPTION_WEIGHTS`` is set; pixels otherwise).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from analysis.evaluate import Extractor, batch_nonideal, digits_extractor
from analysis.fid import FeatureStats, frechet_distance
from models.readout import relativize
from models.un0 import Un0
from oscsim import NonIdeal

FEATURE_SPACES = ("auto", "digits", "inception", "pixels")
#: the pixel feature space's grid: images average-pooled to at most this many pixels a side
PIXEL_GRID = 8
#: peak-to-peak range of the images (tanh output in [−1, 1])
PEAK = 2.0
#: the figures a `FidelityScore` holds, in report order
FIELDS = ("phase_error_rad", "psnr_db", "feature_distance", "fid_vs_ideal", "label_agreement")


class FidelityError(ValueError):
    """A feature space or fidelity argument that cannot be used: one line saying why."""


def pixel_extractor(image_shape: tuple[int, int, int]) -> Extractor:
    """Raw pixels average-pooled to at most `PIXEL_GRID` a side: C·g² features, no weights."""
    c, h, w = image_shape
    g = min(PIXEL_GRID, h, w)

    def features(images: Tensor) -> Tensor:
        return F.adaptive_avg_pool2d(images.float(), g).flatten(1).cpu()

    return Extractor(features=features, id=f"pixels:{c}x{g}x{g}", batch_size=4096)


def feature_space(name: str, image_shape: tuple[int, int, int], *, inception_weights=None) -> Extractor:
    """The `Extractor` of feature space `name` (see the module docstring) for images of `image_shape`."""
    if name not in FEATURE_SPACES:
        raise FidelityError(f"feature space must be one of {', '.join(FEATURE_SPACES)}, not {name!r}")
    digits_shape = tuple(image_shape) == (1, 8, 8)
    if name == "auto":
        if digits_shape:
            name = "digits"
        elif inception_weights is not None or os.environ.get("UN0HW_INCEPTION_WEIGHTS"):
            name = "inception"
        else:
            name = "pixels"
    if name == "digits":
        if not digits_shape:
            raise FidelityError(f"feature space 'digits' takes 1×8×8 images, not {tuple(image_shape)} "
                                "(use 'pixels' or 'inception')")
        return digits_extractor()
    if name == "inception":
        from analysis.inception import inception_extractor

        features, eid = inception_extractor(inception_weights)
        return Extractor(features=features, id=eid, batch_size=64)
    return pixel_extractor(tuple(image_shape))


def relative_frame(phases: Tensor, relativization: str) -> Tensor:
    """Phases in the frame the readout sees (`pairwise`: the reference-oscillator frame)."""
    return relativize(phases, "ref_oscillator" if relativization == "pairwise" else relativization)


def circular_error(a: Tensor, b: Tensor) -> Tensor:
    """|wrap(a − b)| elementwise, in [0, π]."""
    d = (a - b).double()
    return torch.remainder(d + math.pi, 2 * math.pi).sub_(math.pi).abs_()


def psnr_db(mse: float) -> float:
    """10 log₁₀(PEAK² / MSE); ∞ for MSE 0."""
    return math.inf if mse <= 0 else 10.0 * math.log10(PEAK**2 / mse)


@dataclass
class Paired:
    """Running sums of one chip against the ideal model, batch by batch."""

    extractor: str
    relativization: str
    phase_error_sum: float = 0.0
    phase_count: int = 0
    sq_error_sum: float = 0.0
    pixel_count: int = 0
    agree: int = 0
    classified: int = 0
    chip_features: list[Tensor] = field(default_factory=list)
    ideal_features: list[Tensor] = field(default_factory=list)
    hits: list[Tensor] = field(default_factory=list)  # the chip's classifier class == the requested class

    def add(self, ideal: Batch, chip: Batch) -> None:
        err = circular_error(relative_frame(chip.phases, self.relativization),
                             relative_frame(ideal.phases, self.relativization))
        self.phase_error_sum += float(err.sum())
        self.phase_count += err.numel()
        self.sq_error_sum += float((chip.images.double() - ideal.images.double()).square().sum())
        self.pixel_count += chip.images.numel()
        if chip.classes is not None and ideal.classes is not None:
            self.agree += int((chip.classes == ideal.classes).sum())
            self.classified += chip.classes.numel()
        if chip.classes is not None:
            self.hits.append(chip.classes == chip.labels)
        self.chip_features.append(chip.features)
        self.ideal_features.append(ideal.features)

    def merge(self, other: Paired) -> Paired:
        """Add `other`'s later batches to these (sharded runs: batches merged in order give the
        single process's sums, term by term in the same order)."""
        self.phase_error_sum += other.phase_error_sum
        self.phase_count += other.phase_count
        self.sq_error_sum += other.sq_error_sum
        self.pixel_count += other.pixel_count
        self.agree += other.agree
        self.classified += other.classified
        self.chip_features += other.chip_features
        self.ideal_features += other.ideal_features
        self.hits += other.hits
        return self

    def features(self) -> Tensor:
        """The chip's features, in sample order (for FID against a data set)."""
        return torch.cat(self.chip_features)

    def class_hits(self) -> Tensor | None:
        """Whether the classifier names the requested class on each of the chip's samples (or None)."""
        return torch.cat(self.hits) if self.hits else None

    def score(self) -> FidelityScore:
        fc, fi = torch.cat(self.chip_features).double(), torch.cat(self.ideal_features).double()
        spread = math.sqrt(float((fi - fi.mean(0)).square().sum(1).mean()))
        dist = float((fc - fi).norm(dim=1).mean())
        if spread > 0:
            dist /= spread
        # the same sample set is at distance 0 exactly (the eigen-solver's round-off would
        # leave ~1e-14, platform- and thread-count-dependent)
        fid = 0.0 if torch.equal(fc, fi) else frechet_distance(FeatureStats.of(fc, extractor=self.extractor),
                                                               FeatureStats.of(fi, extractor=self.extractor))
        return FidelityScore(
            phase_error_rad=self.phase_error_sum / max(self.phase_count, 1),
            psnr_db=psnr_db(self.sq_error_sum / max(self.pixel_count, 1)),
            feature_distance=dist, fid_vs_ideal=max(fid, 0.0),
            label_agreement=self.agree / self.classified if self.classified else None,
            samples=len(fc), feature_space=self.extractor,
        )


@dataclass(frozen=True)
class FidelityScore:
    """One chip against its ideal model on common seeds (module docstring)."""

    phase_error_rad: float
    psnr_db: float
    feature_distance: float
    fid_vs_ideal: float
    label_agreement: float | None
    samples: int
    feature_space: str

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Batch:
    """One batch of samples: final main phases, images, features, classifier's classes (or
    None), and the requested classes."""

    phases: Tensor
    images: Tensor
    features: Tensor
    classes: Tensor | None
    labels: Tensor


@torch.no_grad()
def run_batch(model: Un0, ex: Extractor, labels: Tensor, theta0: Tensor, *,
              nonideal: NonIdeal | None = None, decoder: str = "float") -> Batch:
    """Generate one batch and featurise it (kept on the CPU); `decoder` as `Un0.generate`'s."""
    images, phases = model.generate(labels, theta0, nonideal=nonideal, return_phases=True, decoder=decoder)
    feats = torch.cat([ex.features(images[i:i + ex.batch_size]) for i in range(0, len(images), ex.batch_size)])
    classes = ex.classify(feats).argmax(1).cpu() if ex.classify is not None else None
    return Batch(phases=phases.float().cpu(), images=images.float().cpu(), features=feats.float().cpu(),
                 classes=classes, labels=labels.cpu())


def split_chips(batch: Batch, chips: int) -> list[Batch]:
    """A batch of `chips` equal contiguous groups (the simulator's chip axis) → one per chip."""
    def part(t: Tensor | None, c: int) -> Tensor | None:
        return None if t is None else t.view(chips, -1, *t.shape[1:])[c]

    return [Batch(*(part(getattr(batch, f), c) for f in ("phases", "images", "features", "classes", "labels")))
            for c in range(chips)]


class IdealReference:
    """The ideal model's batches for one sample plan, made once and reused by every chip
    scored against them (`keep`: held in memory; otherwise made again when asked)."""

    def __init__(self, model: Un0, ex: Extractor, labels: Tensor, theta0: Tensor, starts: list[int],
                 batch_size: int, *, keep: bool = True) -> None:
        self.model, self.ex, self.labels, self.theta0 = model, ex, labels, theta0
        self.starts, self.batch_size, self.keep = starts, batch_size, keep
        self._batches: dict[int, Batch] = {}

    @classmethod
    def of_plan(cls, model: Un0, ex: Extractor, *, per_class: int, seed: int, batch_size: int,
                keep: bool = True) -> IdealReference:
        """The reference of `analysis.evaluate.sample_plan` (per_class of every class, the seed
        phases of `seed`) in batches of `batch_size`."""
        from analysis.evaluate import sample_plan

        labels, theta0, starts = sample_plan(model, per_class=per_class, seed=seed, batch_size=batch_size)
        return cls(model, ex, labels, theta0, starts, batch_size, keep=keep)

    @staticmethod
    def held_bytes(config, samples: int) -> int:
        """Memory `samples` kept ideal samples take: main phases, the image (and its copy in
        the features' input), and up to 4096 features, float32 — what decides `keep`."""
        return samples * 4 * (config.n + 2 * config.image_channels * config.image_size**2 + 4096)

    def batch(self, index: int) -> Batch:
        if index in self._batches:
            return self._batches[index]
        i = self.starts[index]
        b = run_batch(self.model, self.ex, self.labels[i:i + self.batch_size], self.theta0[i:i + self.batch_size])
        if self.keep:
            self._batches[index] = b
        return b

    def features(self) -> Tensor:
        return torch.cat([self.batch(k).features for k in range(len(self.starts))])


def paired_run(ideal: IdealReference, chip: Un0, *, nonideal: NonIdeal | None = None, progress=None,
               decoder: str = "float") -> Paired:
    """`chip` (a compiled array, a shaped model or the model itself) with `nonideal` against
    `ideal` on its seeds and labels; batch k runs `batch_nonideal(nonideal, k)`, as the
    scoring runs do (the ideal model itself without `nonideal` reuses the ideal batches).
    `decoder` "int8": the chip decodes with the int8 decoder (`models.int8`).
    `progress`: a tqdm bar to advance by each batch's samples."""
    acc = Paired(extractor=ideal.ex.id, relativization=ideal.model.config.relativization)
    for k, i in enumerate(ideal.starts):
        labels, theta0 = ideal.labels[i:i + ideal.batch_size], ideal.theta0[i:i + ideal.batch_size]
        same = chip is ideal.model and nonideal is None and decoder == "float"
        acc.add(ideal.batch(k), ideal.batch(k) if same else
                run_batch(chip, ideal.ex, labels, theta0, nonideal=batch_nonideal(nonideal, k), decoder=decoder))
        if progress is not None:
            progress.update(len(labels))
    return acc


def chip_fidelity(ideal: IdealReference, chip: Un0, *, nonideal: NonIdeal | None = None,
                  progress=None, decoder: str = "float") -> FidelityScore:
    """The `FidelityScore` of `paired_run`."""
    return paired_run(ideal, chip, nonideal=nonideal, progress=progress, decoder=decoder).score()


def sampling_floor(ideal: IdealReference, other: IdealReference) -> float:
    """FID between two independent sample sets of the ideal model (same labels, other seeds):
    what sampling alone puts between two sets of this size — the scale of `fid_vs_ideal`."""
    return max(0.0, frechet_distance(FeatureStats.of(ideal.features().double(), extractor=ideal.ex.id),
                                     FeatureStats.of(other.features().double(), extractor=other.ex.id)))


def meaning() -> dict[str, str]:
    """What each figure says to a hardware team (for reports)."""
    return {
        "phase_error_rad": "mean circular error of the final phases the readout sees, chip vs model (0 = exact; "
                           "π/2 = unrelated)",
        "psnr_db": "PSNR of the chip's images against the model's on the same seeds (∞ = identical)",
        "feature_distance": "mean per-sample feature distance to the model's image of the same seed, in units of "
                            "the model's feature spread (0 = identical, √2 ≈ 1.41 = as far as an unrelated sample)",
        "fid_vs_ideal": "Fréchet distance of the chip's sample set to the model's (same seeds; the sampling floor "
                        "is what two independent seed sets of the model give)",
        "label_agreement": "share of samples the feature network's classifier puts in the same class on chip and "
                           "model",
    }
