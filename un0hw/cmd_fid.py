"""`un0hw fid`: FID, precision/recall and class accuracy of a model's samples."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from un0hw.options import CHECKPOINT_PATHS, CliError, PathOption, add_checkpoint, load_model, paths, positive

ERRORS: tuple = ()


def cmd_fid(args: argparse.Namespace) -> int:
    from analysis.evaluate import digits_extractor, score_model
    from models.data import cifar10, digits

    model = load_model(args)
    shape = model.config.image_shape
    if args.extractor == "digits":
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
        elif args.data_root is None:
            raise CliError("--extractor inception on a CIFAR-10 model needs --data-root (cifar-10-batches-py)")
        else:
            reference, floor_set = cifar10(args.data_root, train=False), None
    t0 = time.perf_counter()
    score = score_model(model, ex, reference, floor_set=floor_set, per_class=positive("--per-class", args.per_class),
                        seed=args.seed, steps=args.steps, progress=True)
    if args.json:
        print(json.dumps({**score.as_dict(), "reference": reference.name, "seconds": time.perf_counter() - t0}, indent=2))
        return 0
    print(f"{args.checkpoint}: {score.samples} samples against {reference.name}, feature space {score.extractor}")
    floor = f"   (data floor, {floor_set.name} vs {reference.name}: {score.floor:.3f})" if score.floor is not None else ""
    print(f"  FID              {score.fid:.3f}{floor}")
    print(f"  precision/recall {score.precision:.3f} / {score.recall:.3f} (k = 3)")
    if score.class_accuracy is not None:
        print(f"  class accuracy   {score.class_accuracy:.3f} (the feature network's classifier agrees with the requested class)")
    print(f"  time             {time.perf_counter() - t0:.1f} s")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fid", help="FID, precision/recall (and class accuracy) of a model's samples")
    add_checkpoint(p)
    p.add_argument("--extractor", choices=("digits", "inception"), default="digits",
                   help="feature space: the shipped digits CNN (FID-digits, default) or the FID Inception network")
    p.add_argument("--inception-weights", type=Path, default=None,
                   help="local Inception weights file (or $UN0HW_INCEPTION_WEIGHTS); never downloaded")
    p.add_argument("--data-root", type=Path, default=None, help="CIFAR-10 folder (reference set of CIFAR models)")
    p.add_argument("--per-class", type=int, default=100, help="samples per class (default 100)")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial phases (default 0)")
    p.add_argument("--steps", type=int, default=None, help="integration steps (default: as trained)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_fid)
    paths(p, *CHECKPOINT_PATHS, PathOption("inception_weights", "file", "--inception-weights"), PathOption("data_root", "dir", "--data-root"))
