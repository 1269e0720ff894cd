"""Scoring sharded over `torch.distributed`: sample generation and feature extraction.

Batch i of a scoring run (`analysis.evaluate.sample_plan`: the same labels, seed phases
and batch starts as a single process) is generated and featurised by rank i mod world
size — on a non-ideal chip with `batch_nonideal(nonideal, i)`, the same draws a single
process makes — and rank 0 gathers the features in batch order and scores them. So the
FID is the single-process FID, whatever the number of ranks.

Chip fidelity (`sharded_fidelity`: the ideal model and the chip on each batch's seeds) shards
the same way, for any checkpoint; rank 0 merges the per-batch sums in batch order.

Launch with torchrun (gloo on CPU, nccl on GPU, picked from the device)::

    torchrun --nproc_per_node 2 -m analysis.distributed --per-class 1000 --nonideal spec.toml
    torchrun --nproc_per_node 2 -m analysis.distributed cifar10_n1024.pt --per-class 100 --nonideal spec.toml
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch import Tensor

from analysis.evaluate import (
    Extractor,
    Score,
    batch_nonideal,
    digits_extractor,
    generate_batch,
    score_features,
)
from models.data import ImageSet
from models.un0 import Un0
from oscsim import NonIdeal, uniform_phases


def _plan(model: Un0, *, per_class: int, seed: int, batch_size: int) -> tuple[Tensor, Tensor, list[int]]:
    """`sample_plan`'s labels and seed phases, drawn on the CPU (as a CPU process draws
    them, so a GPU run scores the same seeds), moved to the model's device."""
    cfg, device = model.config, model.dynamics.K.device
    labels = torch.arange(cfg.num_classes).repeat_interleave(per_class)
    theta0 = uniform_phases(len(labels), cfg.n + cfg.n_cond, generator=torch.Generator().manual_seed(seed),
                            dtype=model.dynamics.K.dtype)
    return labels.to(device), theta0.to(device), list(range(0, len(labels), batch_size))


@torch.no_grad()
def sharded_features(model: Un0, ex: Extractor, *, per_class: int, seed: int, batch_size: int = 1000,
                     nonideal: NonIdeal | None = None, steps: int | None = None,
                     T: float | None = None) -> tuple[Tensor, Tensor | None] | None:
    """This rank's share of `generate_features`, gathered on rank 0 (others get None)."""
    rank, world = dist.get_rank(), dist.get_world_size()
    labels, theta0, starts = _plan(model, per_class=per_class, seed=seed, batch_size=batch_size)
    mine = []
    for index in range(rank, len(starts), world):
        i = starts[index]
        f, hit = generate_batch(model, ex, labels[i:i + batch_size], theta0[i:i + batch_size], steps=steps, T=T,
                                nonideal=batch_nonideal(nonideal, index))
        mine.append((index, f.cpu(), None if hit is None else hit.cpu()))
    gathered = [None] * world if rank == 0 else None
    dist.gather_object(mine, gathered, dst=0)
    if rank != 0:
        return None
    parts = sorted((p for shard in gathered for p in shard), key=lambda p: p[0])
    feats = torch.cat([p[1] for p in parts])
    hits = None if parts[0][2] is None else torch.cat([p[2] for p in parts])
    return feats, hits


def sharded_score(model: Un0, ex: Extractor, reference: ImageSet, *, floor_set: ImageSet | None = None,
                  per_class: int = 100, seed: int = 0, batch_size: int = 1000, nonideal: NonIdeal | None = None,
                  steps: int | None = None, T: float | None = None) -> Score | None:
    """`score_model` over all ranks: the Score on rank 0, None elsewhere."""
    out = sharded_features(model, ex, per_class=per_class, seed=seed, batch_size=batch_size, nonideal=nonideal,
                           steps=steps, T=T)
    if out is None:
        return None
    return score_features(out[0], out[1], ex, reference, floor_set=floor_set, seed=seed)


@torch.no_grad()
def sharded_fidelity(ideal_model: Un0, chip: Un0, ex: Extractor, *, per_class: int, seed: int, batch_size: int = 1000,
                     nonideal: NonIdeal | None = None):
    """`analysis.fidelity.chip_fidelity` over all ranks: batch i of the plan (ideal model and
    chip on its seeds, the chip with `batch_nonideal(nonideal, i)`) runs on rank i mod world
    size; rank 0 merges the per-batch sums in batch order and returns the `FidelityScore`
    (None elsewhere) — the single process's score, whatever the number of ranks."""
    from analysis.fidelity import Paired, run_batch

    rank, world = dist.get_rank(), dist.get_world_size()
    labels, theta0, starts = _plan(ideal_model, per_class=per_class, seed=seed, batch_size=batch_size)
    relativization = ideal_model.config.relativization
    mine = []
    for index in range(rank, len(starts), world):
        i = starts[index]
        lab, th = labels[i:i + batch_size], theta0[i:i + batch_size]
        part = Paired(extractor=ex.id, relativization=relativization)
        part.add(run_batch(ideal_model, ex, lab, th), run_batch(chip, ex, lab, th, nonideal=batch_nonideal(nonideal, index)))
        mine.append((index, part))
    gathered = [None] * world if rank == 0 else None
    dist.gather_object(mine, gathered, dst=0)
    if rank != 0:
        return None
    parts = sorted((p for shard in gathered for p in shard), key=lambda p: p[0])
    total = Paired(extractor=ex.id, relativization=relativization)
    for _, part in parts:
        total.merge(part)
    return total.score()


def init_from_env(device: str = "auto") -> torch.device:
    """Join the process group torchrun describes (nccl on CUDA, gloo on CPU); this rank's device."""
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return torch.device("cuda", local) if use_cuda else torch.device("cpu")


def main(argv: list[str] | None = None) -> int:
    import models
    from analysis.sweep import SweepError, load_nonideal
    from models.data import digits

    p = argparse.ArgumentParser(prog="python -m analysis.distributed",
                                description="FID-digits of a digits model, or the chip fidelity of any model on "
                                            "--nonideal hardware, generation sharded over torchrun ranks")
    p.add_argument("checkpoint", type=Path, nargs="?", default=models.SHIPPED)
    p.add_argument("--per-class", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--nonideal", type=Path, default=None, help="TOML file with a [nonideal] table")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--json", type=Path, default=None, help="rank 0 writes the score here")
    p.add_argument("--metric", choices=("auto", "fid", "fidelity"), default="auto",
                   help="FID-digits (digits models), or chip fidelity against the ideal model (auto: FID-digits for "
                        "digits models, fidelity for the others)")
    p.add_argument("--features", default="auto", help="feature space of chip fidelity (auto, pixels, inception)")
    args = p.parse_args(argv)
    try:
        nonideal = load_nonideal(args.nonideal) if args.nonideal else None
    except SweepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    device = init_from_env(args.device)
    try:
        model = models.load(args.checkpoint, device=device)
        digits_model = tuple(model.config.image_shape) == (1, 8, 8)
        fidelity = args.metric == "fidelity" or (args.metric == "auto" and not digits_model)
        if not fidelity and not digits_model:
            raise SystemExit(f"error: --metric fid scores FID-digits; {args.checkpoint} makes "
                             f"{model.config.image_shape} images (use --metric fidelity)")
        if fidelity:
            from analysis.fidelity import feature_space

            if nonideal is None:
                raise SystemExit("error: chip fidelity needs --nonideal (the chip to compare with the ideal model)")
            ex = feature_space(args.features, model.config.image_shape)
        else:
            ex = digits_extractor()
        if device.type == "cuda":
            ex = _extractor_on(ex, device)
        if fidelity:
            score = sharded_fidelity(model, model, ex, per_class=args.per_class, seed=args.seed,
                                     batch_size=args.batch_size, nonideal=nonideal)
        else:
            score = sharded_score(model, ex, digits("test"), floor_set=digits("train"), per_class=args.per_class,
                                  seed=args.seed, batch_size=args.batch_size, nonideal=nonideal)
        if score is not None:
            text = json.dumps({**score.as_dict(), "world_size": dist.get_world_size()}, indent=2)
            print(text)
            if args.json:
                from oscsim import atomic_path

                with atomic_path(args.json) as tmp:
                    tmp.write_text(text + "\n")
    finally:
        dist.destroy_process_group()
    return 0


def _extractor_on(ex: Extractor, device: torch.device) -> Extractor:
    """The (small, CPU) digits extractor for images made on `device`: features on the
    CPU, the classifier's logits back on `device` beside the labels."""
    classify = ex.classify
    return Extractor(features=lambda x: ex.features(x.cpu()), id=ex.id, batch_size=ex.batch_size,
                     classify=None if classify is None else (lambda f: classify(f).to(device)))


if __name__ == "__main__":
    sys.exit(main())
