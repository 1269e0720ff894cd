#!/usr/bin/env python
"""The int8 decoder (`models.int8`) against the float decoder, side by side in one run.

From the repository root:

    .venv/bin/python benchmarks/decoder.py            # n1024/B256 and n4096/B64
    .venv/bin/python benchmarks/decoder.py --quick    # n1024/B32: a smoke run

On random-init published models (`Un0.init(PUBLISHED[name], seed=0)`): the decoder alone
on the same readout features (the float decoder's no-grad path, folded and channels-last,
against `Int8Decoder`), and `Un0.generate` end to end with each (`decoder="float"` /
`"int8"`), timed interleaved round by round (medians; ratios are medians of per-round
ratios), with the int8 images' error against the float images (RMS, worst pixel, PSNR on
the [−1, 1] range) and the int8 decoder's build time (calibration included).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import models  # noqa: E402
from simulate import interleaved, machine_line, med, ratio  # noqa: E402


def case(name: str, batch: int, repeats: int) -> dict:
    model = models.Un0.init(models.PUBLISHED[name], seed=0).eval()
    gen = torch.Generator().manual_seed(1)
    labels = torch.randint(0, model.config.num_classes, (batch,), generator=gen)
    theta0 = model.sample_theta0(batch, generator=gen)
    t0 = time.perf_counter()
    int8 = model.int8_decoder()
    build = time.perf_counter() - t0
    with torch.inference_mode():
        features = model.readout(model.final_phases(labels, theta0))
        t = interleaved({"float": lambda: model.decoder(features), "int8": lambda: int8(features),
                         "gen_float": lambda: model.generate(labels, theta0),
                         "gen_int8": lambda: model.generate(labels, theta0, decoder="int8")},
                        repeats=repeats, warmup=1, sync=lambda: None)
        err = model.generate(labels, theta0, decoder="int8") - model.generate(labels, theta0)
    mse = float(err.pow(2).mean())
    return {"name": name, "batch": batch, "times": t, "build_s": build, "rms": math.sqrt(mse),
            "worst": float(err.abs().max()), "psnr_db": 10 * math.log10(4.0 / mse)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="n1024 at B = 32, 3 rounds: a smoke run")
    p.add_argument("--repeats", type=int, default=None, help="interleaved rounds (default 7; 3 with --quick)")
    args = p.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 7)
    cases = [("n1024", 32)] if args.quick else [("n1024", 256), ("n4096", 64)]
    print(f"machine: {machine_line(torch.device('cpu'), torch.float32, False)}")
    rows = [case(name, batch, repeats) for name, batch in cases]
    head = (f"{'config':<7}{'B':>5}{'float dec ms':>14}{'int8 dec ms':>13}{'int8/float':>12}{'generate ms':>13}"
            f"{'with int8 ms':>14}{'ratio':>8}{'RMS':>8}{'worst':>8}{'PSNR dB':>9}{'build s':>9}")
    print(head)
    print("-" * len(head))
    for r in rows:
        t = r["times"]
        print(f"{r['name']:<7}{r['batch']:>5}{med(t['float']) * 1e3:>14.1f}{med(t['int8']) * 1e3:>13.1f}"
              f"{ratio(t['int8'], t['float']):>12.3f}{med(t['gen_float']) * 1e3:>13.1f}{med(t['gen_int8']) * 1e3:>14.1f}"
              f"{ratio(t['gen_int8'], t['gen_float']):>8.3f}{r['rms']:>8.4f}{r['worst']:>8.3f}{r['psnr_db']:>9.1f}"
              f"{r['build_s']:>9.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
