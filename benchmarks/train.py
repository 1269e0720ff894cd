"""Training step time and peak memory: the shipped digits recipe and n1024 at batch 64.

    .venv/bin/python benchmarks/train.py [--steps 20]

Each configuration runs in its own process (peak resident memory, VmHWM, is per
process); the step time is the median over the timed steps after two warm-up steps.
n1024 trains on random CIFAR-shaped images with the raw-pixel encoder (no CIFAR-10 here):
the cost of a step does not depend on what the pixels show.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

CONFIGS = {
    "digits-n512 (shipped recipe: 5 classes × 48 generated, 64 real)": dict(size="digits-n512", classes=5, fake=48, real=64, encoder="digits"),
    "n1024, batch 64 (8 classes × 8 generated, 16 real, pixel features)": dict(size="n1024", classes=8, fake=8, real=16, encoder="pixels"),
}


def vm_hwm_mib() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(cfg: dict, steps: int) -> dict:
    import tempfile

    import torch

    import models
    from models.data import ImageSet, digits
    from models.train import Trainer, TrainOptions, pixel_encoder

    config = models.PUBLISHED[cfg["size"]]
    if cfg["encoder"] == "digits":
        from analysis.features import digits_encoder, digits_feature_weights

        data, encoder, weights = digits("train"), digits_encoder(), digits_feature_weights()
    else:
        g = torch.Generator().manual_seed(0)
        images = torch.rand(2000, *config.image_shape, generator=g) * 2 - 1
        data = ImageSet("random", images, torch.arange(2000) % config.num_classes, config.num_classes)
        encoder, weights = pixel_encoder, (1.0,)
    before = vm_hwm_mib()
    opts = TrainOptions(steps=steps + 2, classes_per_step=cfg["classes"], fake_per_class=cfg["fake"],
                        real_per_class=cfg["real"], feature_weights=weights, checkpoint_every=10**6)
    trainer = Trainer(models.Un0.init(config, seed=0), data, encoder, opts, tempfile.mkdtemp())
    times = []
    for _ in range(steps + 2):
        t0 = time.perf_counter()
        trainer.train_step()
        times.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(times[2:]), "min_s": min(times[2:]), "batch": cfg["classes"] * cfg["fake"],
            "peak_rss_mib": vm_hwm_mib(), "rss_before_mib": before, "threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(CONFIGS[args.child], args.steps)))
        return
    import platform

    import torch

    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), platform.machine())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {cpu}")
    print(f"{'configuration':70s} {'batch':>5s} {'s/step (median)':>16s} {'peak RSS MiB':>13s}")
    for name in CONFIGS:
        out = subprocess.run([sys.executable, __file__, "--steps", str(args.steps), "--child", name],
                             capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{name:70s} {r['batch']:5d} {r['median_s']:16.3f} {r['peak_rss_mib']:13.0f}")


if __name__ == "__main__":
    main()
