"""`un0hw fid`: FID, precision/recall and class accuracy of a model's samples.

Two protocols: ``un0hw`` (the default: the digits CNN or the FID Inception network with
torch-fidelity's resize, against a held-out split, with precision/recall) and ``clean-fid``
(the Un-0 release's: 50,000 class-balanced samples, clean-fid's resize, against CIFAR-10
train or ImageNet-64 statistics built once from local data; `analysis.cleanfid`).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from analysis.cleanfid import CleanFidError
from analysis.fid import StatsError
from un0hw.options import CHECKPOINT_PATHS, CliError, PathOption, add_checkpoint, load_model, paths, positive

ERRORS = (CleanFidError, StatsError)

CIFAR_SHAPE, IMAGENET_SHAPE = (3, 32, 32), (3, 64, 64)


def _reference_set(args: argparse.Namespace, shape: tuple, *, train: bool):
    """The real set of a CIFAR-10 (a cifar-10-batches-py folder) or ImageNet-64 (an .npz
    file) model, from --data-root; `train` picks CIFAR-10's split."""
    from models.data import cifar10, imagenet64

    root = args.data_root
    if root is not None and not root.exists():
        what = "ImageNet-64 .npz file" if shape == IMAGENET_SHAPE else "CIFAR-10 folder (cifar-10-batches-py)"
        raise CliError(f"--data-root {root}: no such {what}; un0hw never downloads data")
    if shape == IMAGENET_SHAPE:
        if root is None:
            raise CliError("a 3×64×64 (ImageNet-64) model is scored against --data-root FILE.npz (e.g. Imagenet64_val.npz)")
        if root.is_dir():
            raise CliError(f"--data-root {root}: is a folder; a 3×64×64 model needs an ImageNet-64 .npz file (e.g. Imagenet64_val.npz)")
        return imagenet64(root)
    if root is None:
        raise CliError("a CIFAR-10 model needs --data-root (the folder holding cifar-10-batches-py)")
    if not root.is_dir():
        raise CliError(f"--data-root {root}: a CIFAR-10 model needs a folder (cifar-10-batches-py), not a file")
    return cifar10(root, train=train)


def _samples(args: argparse.Namespace, classes: int, default: int) -> int:
    """--num-samples, or --per-class × classes, or `default`."""
    if args.num_samples is not None and args.per_class is not None:
        raise CliError("give --num-samples or --per-class, not both")
    if args.num_samples is not None:
        return positive("--num-samples", args.num_samples)
    if args.per_class is not None:
        return positive("--per-class", args.per_class) * classes
    return default


def cmd_fid(args: argparse.Namespace) -> int:
    model = load_model(args)
    if args.protocol == "clean-fid":
        return _clean_fid(args, model)
    return _un0hw(args, model)


def _un0hw(args: argparse.Namespace, model) -> int:
    from analysis.evaluate import digits_extractor, score_model
    from models.data import digits

    shape = model.config.image_shape
    extractor = args.extractor or "digits"
    if extractor == "digits":
        if shape != (1, 8, 8):
            raise CliError(f"--extractor digits scores 1×8×8 digits models; {args.checkpoint} makes {shape} (use --extractor inception)")
        ex, reference, floor_set = digits_extractor(), digits("test"), digits("train")
    else:
        from analysis.evaluate import Extractor
        from analysis.inception import inception_extractor

        features, eid = inception_extractor(args.inception_weights)
        ex = Extractor(features=features, id=eid, batch_size=64)
        if shape == (1, 8, 8):
            reference, floor_set = digits("test"), digits("train")
        else:
            reference, floor_set = _reference_set(args, shape, train=False), None
    classes = model.config.num_classes
    t0 = time.perf_counter()
    if args.num_samples is None:
        per_class = 100 if args.per_class is None else positive("--per-class", args.per_class)
        score = score_model(model, ex, reference, floor_set=floor_set, per_class=per_class, seed=args.seed,
                            steps=args.steps, progress=True)
    else:
        score = _un0hw_balanced(model, ex, reference, floor_set, _samples(args, classes, 0), args)
    if args.json:
        print(json.dumps({**score.as_dict(), "protocol": "un0hw", "reference": reference.name,
                          "seconds": time.perf_counter() - t0}, indent=2))
        return 0
    print(f"{args.checkpoint}: {score.samples} samples against {reference.name}, feature space {score.extractor}")
    floor = f"   (data floor, {floor_set.name} vs {reference.name}: {score.floor:.3f})" if score.floor is not None else ""
    print(f"  FID              {score.fid:.3f}{floor}")
    print(f"  precision/recall {score.precision:.3f} / {score.recall:.3f} (k = 3)")
    if score.class_accuracy is not None:
        print(f"  class accuracy   {score.class_accuracy:.3f} (the feature network's classifier agrees with the requested class)")
    print(f"  time             {time.perf_counter() - t0:.1f} s")
    return 0


def _un0hw_balanced(model, ex, reference, floor_set, n: int, args: argparse.Namespace):
    """The un0hw scores of `n` class-balanced samples (--num-samples)."""
    import torch

    from analysis.cleanfid import class_balanced_labels
    from analysis.evaluate import generate_batch, score_features

    labels = class_balanced_labels(n, model.config.num_classes, args.seed)
    g = torch.Generator(device=model.dynamics.K.device).manual_seed(args.seed)
    feats, hits = [], []
    for i in range(0, n, 1000):
        lab = labels[i:i + 1000].to(model.dynamics.K.device)
        f, hit = generate_batch(model, ex, lab, model.sample_theta0(len(lab), generator=g), steps=args.steps)
        feats.append(f)
        if hit is not None:
            hits.append(hit)
    return score_features(torch.cat(feats), torch.cat(hits) if hits else None, ex, reference, floor_set=floor_set,
                          seed=args.seed)


def _clean_fid(args: argparse.Namespace, model) -> int:
    from analysis.cleanfid import RELEASE_SAMPLES, clean_extractor, reference_statistics, score_clean
    from un0hw.options import device

    shape = model.config.image_shape
    if shape == (1, 8, 8):
        raise CliError(f"--protocol clean-fid is the release's CIFAR-10/ImageNet-64 protocol; {args.checkpoint} is a "
                       "1×8×8 digits model (use --protocol un0hw)")
    if shape not in (CIFAR_SHAPE, IMAGENET_SHAPE):
        raise CliError(f"--protocol clean-fid scores 3×32×32 CIFAR-10 and 3×64×64 ImageNet-64 models; "
                       f"{args.checkpoint} makes {shape}")
    if args.extractor == "digits":
        raise CliError("--protocol clean-fid uses the FID Inception network; drop --extractor digits")
    n = _samples(args, model.config.num_classes, RELEASE_SAMPLES)
    if n < 2:
        raise CliError(f"--num-samples must be >= 2 for a covariance, not {n}")
    data = _reference_set(args, shape, train=True)
    ex = clean_extractor(args.inception_weights, device=device(args.device))
    t0 = time.perf_counter()
    reference = reference_statistics(data, ex, progress=not args.json)
    how = "read from the cache" if reference.cached else f"computed from {len(data):,} images and cached"
    if not args.json:
        print(f"reference statistics of {reference.name} ({how}): {reference.path}")
    score = score_clean(model, ex, reference, num_samples=n, seed=args.seed, steps=args.steps, progress=not args.json)
    if args.json:
        print(json.dumps({**score.as_dict(), "protocol": "clean-fid", "seconds": time.perf_counter() - t0}, indent=2))
        return 0
    print(f"{args.checkpoint}: {score.samples} class-balanced samples against {reference.name}, "
          f"clean-fid protocol, feature space {score.extractor}")
    print(f"  FID              {score.fid:.3f}")
    print(f"  time             {time.perf_counter() - t0:.1f} s")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fid", help="FID, precision/recall (and class accuracy) of a model's samples")
    add_checkpoint(p)
    p.add_argument("--protocol", choices=("un0hw", "clean-fid"), default="un0hw",
                   help="un0hw (default): FID, precision/recall (and class accuracy) against a held-out split "
                        "(digits test, CIFAR-10 test, or the ImageNet-64 file); clean-fid: the Un-0 release's FID "
                        "(class-balanced samples, clean-fid's resize, the Inception network) against CIFAR-10 train or "
                        "the ImageNet-64 file, statistics cached in $UN0HW_CACHE")
    p.add_argument("--extractor", choices=("digits", "inception"), default=None,
                   help="feature space of --protocol un0hw: the shipped digits CNN (FID-digits, default) or the FID "
                        "Inception network; clean-fid always uses the Inception network")
    p.add_argument("--inception-weights", type=Path, default=None,
                   help="local Inception weights file (or $UN0HW_INCEPTION_WEIGHTS); never downloaded")
    p.add_argument("--data-root", type=Path, default=None,
                   help="real images: the CIFAR-10 folder (cifar-10-batches-py) for 3×32×32 models, an ImageNet-64 "
                        ".npz file (e.g. Imagenet64_val.npz) for 3×64×64 models")
    p.add_argument("--num-samples", type=int, default=None,
                   help="samples, class-balanced (N // classes of each class, the rest drawn at random; default: "
                        "50000 with clean-fid, 100 per class with un0hw)")
    p.add_argument("--per-class", type=int, default=None, help="samples per class (instead of --num-samples)")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial phases and of the class-balanced labels' draw (default 0)")
    p.add_argument("--steps", type=int, default=None, help="integration steps (default: as trained)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_fid)
    paths(p, *CHECKPOINT_PATHS, PathOption("inception_weights", "file", "--inception-weights"),
          PathOption("data_root", "file-or-dir", "--data-root"))
