#!/usr/bin/env python
"""Samples/s and peak memory of a chip-fidelity sweep point at scale, beside the ideal model's rate.

From the repository root:

    .venv/bin/python benchmarks/fidelity.py                    # n1024, n4096, n16384 (about 11 min on 2 idle cores)
    .venv/bin/python benchmarks/fidelity.py --quick            # n1024, small batches: a smoke run (10 s idle, 1-2 min under load)
    .venv/bin/python benchmarks/fidelity.py --sizes n1024 n4096 --repeats 5 --json out.json

Each size runs in a fresh process (peak resident memory, Linux's VmHWM, is per process),
on its random-init published model (`models.Un0.init(config, seed=0)`; n16384's K alone is
1 GiB in float32), with the pixel feature space (`analysis.fidelity.feature_space("pixels",
…)`) and the memory-bounded batch a scoring run takes (`bounded_batch(config, 1000)`:
1000 samples at n1024 and n4096, 287 at n16384). Rows, each timed once per round, the
rounds interleaved (order alternating), medians over rounds:

- ``simulate`` — the simulator alone (`Un0.final_phases`: `oscsim.simulate`, 10 Euler
  steps), one batch;
- ``generate`` — `Un0.generate` (simulator, readout, decoder), one batch: the ideal path;
- ``ideal_reference`` — the ideal model's samples of the plan as a sweep makes them once
  (`IdealReference`, every batch: generate + pixel features, kept on the CPU);
- ``chip_point`` — a sweep point with the ideal reference made beforehand (as every point
  after a sweep's first): `paired_run(ideal_ref, model, nonideal=NonIdeal(coupling_bits=6))`
  and its `score()`, a new chip (chip seed) each round so its realisation is in the time,
  as a point's is;
- ``chip_point_with_ideal`` — the same with the ideal reference made in the same call
  (a sweep's first point).

The plan is `--batches` memory-bounded batches (labels 0, 1, 2, … cycling over the
classes, seed phases from seed 0); a chip row's samples/s counts the chip's samples. The
ratios are medians of per-round ratios of samples/s, chip row ÷ `generate`, side by side.

Warm-up: every code path once on two samples. Peaks: before each row of each round the
peak counter is reset (freed heap memory trimmed first, then /proc/self/clear_refs), so a
row's peak is its own: printed as the absolute peak and the rise above the resident size
just before it (the largest rise over the rounds), and for `generate` as bytes per sample
against `analysis.evaluate.sample_bytes`'s estimate. The peak over the timed rounds is the
highest of them; it includes the realised chips oscsim keeps (its last four, each with its
own quantised N×N K), as a sweep of several points has them. The model's own build
(`Un0.init`) has its peak printed apart. Nothing is written except with `--json PATH`.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZES = ("n1024", "n4096", "n16384")
ROWS = ("simulate", "generate", "ideal_reference", "chip_point", "chip_point_with_ideal")
CHIP_ROWS = ("chip_point", "chip_point_with_ideal")


# --- memory --------------------------------------------------------------------------------
def _status(field: str) -> int:
    """A /proc/self/status figure in bytes (-1 where there is none)."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return -1


def rss() -> int:
    return _status("VmRSS")


def peak() -> int:
    return _status("VmHWM")


def reset_peak() -> int:
    """Trim freed heap memory, reset VmHWM to the resident size; return that size."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    return rss()


# --- one size, in its own process ----------------------------------------------------------
def child(size: str, request: int, batches: int, repeats: int) -> dict:
    import torch

    import models
    from analysis.evaluate import bounded_batch, sample_bytes
    from analysis.fidelity import IdealReference, feature_space, paired_run
    from oscsim import NonIdeal

    torch.set_grad_enabled(False)
    config = models.PUBLISHED[size]
    t0 = time.perf_counter()
    model = models.Un0.init(config, seed=0)
    model.eval()
    init_s, init_peak, model_rss = time.perf_counter() - t0, peak(), rss()
    t0 = time.perf_counter()
    model.params()  # the μP-scaled system, built once and kept (as in any generation run)
    params_s = time.perf_counter() - t0
    ex = feature_space("pixels", tuple(config.image_shape))
    batch = bounded_batch(config, request)
    samples = batch * batches
    labels = torch.arange(samples) % config.num_classes
    theta0 = model.sample_theta0(samples, generator=torch.Generator().manual_seed(0))
    starts = list(range(0, samples, batch))
    lb, tb = labels[:batch], theta0[:batch]

    def ideal_ref() -> IdealReference:
        ref = IdealReference(model, ex, labels, theta0, starts, batch, keep=True)
        for k in range(len(starts)):
            ref.batch(k)
        return ref

    reference = ideal_ref()  # made once beforehand, as a sweep does
    chip_no = iter(range(1, 10**6))

    def chip(ref: IdealReference) -> None:
        paired_run(ref, model, nonideal=NonIdeal(coupling_bits=6, chip_seed=next(chip_no))).score()

    fns = {
        "simulate": lambda: model.final_phases(lb, tb),
        "generate": lambda: model.generate(lb, tb),
        "ideal_reference": ideal_ref,
        "chip_point": lambda: chip(reference),
        "chip_point_with_ideal": lambda: chip(ideal_ref()),
    }
    counts = {"simulate": batch, "generate": batch, "ideal_reference": samples, "chip_point": samples,
              "chip_point_with_ideal": samples}

    with torch.inference_mode():
        # a chip's one-off realisation (quantised K etc.), timed alone
        from oscsim import realize

        t0 = time.perf_counter()
        realize(model.params(), NonIdeal(coupling_bits=6, chip_seed=10**7))
        realize_s = time.perf_counter() - t0
        # warm-up: every code path once on two samples (cheap at any size)
        warm = IdealReference(model, ex, labels[:2], theta0[:2], [0], 2)
        paired_run(warm, model, nonideal=NonIdeal(coupling_bits=6, chip_seed=10**7)).score()
        model.final_phases(labels[:2], theta0[:2])
        model.generate(labels[:2], theta0[:2])
        # the rounds; before each row the peak counter is reset, so a row's peak is its own
        rounds_before = reset_peak()
        times: dict[str, list[float]] = {name: [] for name in fns}
        peaks: dict[str, dict[str, int]] = {}
        for r in range(repeats):
            for name in fns if r % 2 == 0 else reversed(list(fns)):
                before = reset_peak()
                t0 = time.perf_counter()
                fns[name]()
                times[name].append(time.perf_counter() - t0)
                top = peak()
                if name not in peaks or top - before > peaks[name]["peak"] - peaks[name]["before"]:
                    peaks[name] = {"before": before, "peak": top}
                print(f"[{size}] round {r + 1}/{repeats} {name}: {times[name][-1]:.2f} s, peak {gib(top)} GiB",
                      file=sys.stderr, flush=True)
        rounds_peak = max(p["peak"] for p in peaks.values())

    def rate(name: str, r: int) -> float:
        return counts[name] / times[name][r]

    return {
        "size": size, "n": config.n, "classes": config.num_classes, "image_shape": list(config.image_shape),
        "threads": torch.get_num_threads(), "torch": torch.__version__,
        "batch": batch, "batches": batches, "samples": samples, "repeats": repeats,
        "init_s": init_s, "init_peak": init_peak, "model_rss": model_rss, "params_s": params_s,
        "realize_s": realize_s,
        "times": times, "counts": counts,
        "samples_per_s": {k: statistics.median(rate(k, r) for r in range(repeats)) for k in fns},
        "ratios": {f"{k}/generate": statistics.median(rate(k, r) / rate("generate", r) for r in range(repeats))
                   for k in ("simulate", "ideal_reference", *CHIP_ROWS)},
        "peaks": peaks, "rounds_before": rounds_before, "rounds_peak": rounds_peak,
        "sample_bytes_estimate": sample_bytes(config),
        "generate_bytes_per_sample": (peaks["generate"]["peak"] - peaks["generate"]["before"]) / batch,
    }


# --- the table -----------------------------------------------------------------------------
def gib(nbytes: float) -> str:
    return f"{nbytes / 2**30:.2f}"


def report(r: dict) -> None:
    print(f"\n{r['size']} (N = {r['n']}, {r['classes']} classes, images {'×'.join(map(str, r['image_shape']))}): "
          f"batch {r['batch']} (memory-bounded), plan {r['batches']} batch(es) = {r['samples']} samples, "
          f"{r['repeats']} interleaved rounds")
    print(f"  model init {r['init_s']:.1f} s (peak {gib(r['init_peak'])} GiB, resident after it "
          f"{gib(r['model_rss'])} GiB); params build {r['params_s']:.2f} s; a chip's realisation "
          f"(6-bit couplings) {r['realize_s']:.2f} s")
    print(f"  {'row':<22} {'samples':>7} {'median s':>9} {'samples/s':>10} {'÷ generate':>10} "
          f"{'peak GiB':>9} {'rise GiB':>9}")
    for name in ROWS:
        t = statistics.median(r["times"][name])
        ratio = "" if name == "generate" else f"{r['ratios'][f'{name}/generate']:10.3f}"
        p = r["peaks"][name]
        print(f"  {name:<22} {r['counts'][name]:7d} {t:9.2f} {r['samples_per_s'][name]:10.1f} {ratio:>10} "
              f"{gib(p['peak']):>9} {gib(p['peak'] - p['before']):>9}")
    print(f"  generate working memory: {r['generate_bytes_per_sample'] / 1e3:,.0f} kB/sample measured "
          f"(peak rise ÷ batch) vs {r['sample_bytes_estimate'] / 1e3:,.0f} kB/sample estimated "
          f"(sample_bytes; measured/estimated {r['generate_bytes_per_sample'] / r['sample_bytes_estimate']:.2f})")
    print(f"  peak over the timed rounds: {gib(r['rounds_peak'])} GiB (resident before them "
          f"{gib(r['rounds_before'])} GiB; oscsim keeps the last 4 realised chips)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="n1024 only, batch 128, 2 batches, 3 rounds: a smoke run")
    p.add_argument("--sizes", nargs="+", choices=SIZES, default=None, help="default: all three (quick: n1024)")
    p.add_argument("--repeats", type=int, default=None, help="interleaved rounds (default 3; n16384 2)")
    p.add_argument("--batch", type=int, default=None,
                   help="requested batch before the memory bound (default 1000, as a sweep; quick 250)")
    p.add_argument("--batches", type=int, default=None,
                   help="memory-bounded batches in the plan (default 2; n16384 1)")
    p.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    p.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        sys.path.insert(0, str(ROOT))
        size, request, batches, repeats = args.child
        print(json.dumps(child(size, int(request), int(batches), int(repeats))))
        return 0
    sizes = args.sizes or (["n1024"] if args.quick else list(SIZES))
    request = args.batch or (128 if args.quick else 1000)
    repeats = args.repeats
    import torch  # the machine line only

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from simulate import machine_line

    print(machine_line(torch.device("cpu"), torch.float32, False))
    print("float32, inference mode, 10 Euler steps; pixel features; chip = NonIdeal(coupling_bits=6), a new chip "
          "seed each round; medians over rounds, ratios = medians of per-round samples/s ratios")
    results = []
    for size in sizes:
        batches = args.batches or (1 if size == "n16384" else 2)
        reps = repeats if repeats is not None else (2 if size == "n16384" else 3)
        proc = subprocess.run([sys.executable, __file__, "--child", size, str(request), str(batches), str(reps)],
                              stdout=subprocess.PIPE, text=True)  # stderr (progress, errors) passes through
        if proc.returncode:
            return proc.returncode
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        results.append(r)
        report(r)
        sys.stdout.flush()
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
