"""FID-digits of 10k samples of the shipped model: end-to-end time (target < 60 s).

    .venv/bin/python benchmarks/fid.py [--samples 10000] [--repeats 3]

Generation (Euler, 10 steps, decoder), the digits CNN's features, the Fréchet distance
and precision/recall against the cached test-split statistics; median of the repeats.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import models
from analysis.evaluate import score_digits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    model = models.load(models.SHIPPED)
    score_digits(model, per_class=10)  # warm-up; fills the reference-statistics cache
    times, score = [], None
    for r in range(args.repeats):
        t0 = time.perf_counter()
        score = score_digits(model, per_class=args.samples // 10, seed=r)
        times.append(time.perf_counter() - t0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"FID-digits of {score.samples} samples: {statistics.median(times):.1f} s median of {args.repeats} "
          f"(min {min(times):.1f} s); FID {score.fid:.3f}, floor {score.floor:.3f}, "
          f"precision {score.precision:.3f}, recall {score.recall:.3f}")


if __name__ == "__main__":
    main()
