#!/usr/bin/env python
"""Benchmark of the non-ideal simulator and of a full one-factor sweep (a script).

From the repository root:

    .venv/bin/python benchmarks/nonideal.py             # both parts (about 3 minutes on 2 cores)
    .venv/bin/python benchmarks/nonideal.py --quick     # smoke run
    .venv/bin/python benchmarks/nonideal.py --no-sweep  # simulator part only

1. `oscsim.simulate` with non-idealities on the published n1024 system (random init),
   batch 256, 10 Euler(–Maruyama) steps, class-conditional, against the GEMM roofline
   measured in the same run, interleaved round by round (as `benchmarks/simulate.py`):
   the plain (2B, N)·(N, N) matmul ×10. FLOPs counted: 4·B·N² per step (the coupling).
   Rows: the ideal fast path; static terms only (6-bit couplings, mismatch: the realised
   chip through the ideal path); the operating point with phase noise (Euler–Maruyama);
   plus coupling read noise (a second GEMM per step); 8 chips × 32 samples (chip axis,
   batched GEMM). A chip's static realisation is reused across calls (as across the
   batches of a scoring run); its one-off cost is timed separately.
2. The issue's bits sweep: `analysis/specs/coupling-bits.toml` (10 points × 3 seeds ×
   2,000 samples, plus the ideal reference) on the shipped digits model, wall time of
   `analysis.sweep.run_sweep` in a fresh folder.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from simulate import interleaved, machine_line, med, ratio

import models
import oscsim

STEPS = 10
OPERATING = dict(phase_noise_rad_per_sqrt_t=0.5, freq_mismatch_rad_per_t=0.5, coupling_mismatch_sigma=0.2,
                 coupling_bits=6, frequency_bits=8, readout_bits=6)


def bench_simulator(args) -> None:
    torch.set_num_threads(args.threads) if args.threads else None
    size, batch = ("digits-n64", 32) if args.quick else ("n1024", 256)
    model = models.Un0.init(models.PUBLISHED[size], seed=0)
    with torch.inference_mode():
        params = model.params()
    n = params.n
    gen = torch.Generator().manual_seed(1)
    labels = torch.randint(0, model.config.num_classes, (batch,), generator=gen)
    theta0 = oscsim.uniform_phases(batch, n + params.n_cond, generator=gen)
    x, out = torch.randn(2 * batch, n, generator=gen), torch.empty(2 * batch, n)
    Kt = params.K.T

    def roofline():
        for _ in range(STEPS):
            torch.mm(x, Kt, out=out)

    rows = {
        "ideal": None,
        "static": oscsim.NonIdeal(coupling_bits=6, frequency_bits=8, coupling_mismatch_sigma=0.2,
                                  freq_mismatch_rad_per_t=0.5),
        "operating": oscsim.NonIdeal(**OPERATING),
        "read_noise": oscsim.NonIdeal(**OPERATING, coupling_read_noise=0.1),
        "chips8": oscsim.NonIdeal(**OPERATING, chips=8),
    }
    fns = {"roofline": roofline}
    for name, ni in rows.items():
        fns[name] = (lambda ni=ni: oscsim.simulate(params, theta0, labels, steps=STEPS, nonideal=ni))
    with torch.inference_mode():
        t0 = time.perf_counter()
        oscsim.realize(params, oscsim.NonIdeal(**OPERATING, chip_seed=12345))
        realize_s = time.perf_counter() - t0
        times = interleaved(fns, repeats=args.repeats, warmup=2, sync=lambda: None)
    flops = 4 * batch * n * n * STEPS
    print(machine_line(torch.device("cpu"), torch.float32, False))
    print(f"{size}, batch {batch}, {STEPS} steps, {args.repeats} interleaved rounds; medians; "
          f"ratio = roofline time / row time, median of per-round ratios")
    print(f"  one-off realisation of a chip (draws, quantisation, gains): {1e3 * realize_s:.1f} ms")
    print(f"  {'row':<12} {'ms':>8} {'samples/s':>10} {'GFLOP/s':>8} {'/ roofline':>10}")
    for name in fns:
        t = med(times[name])
        r = "" if name == "roofline" else f"{ratio(times['roofline'], times[name]):10.2f}"
        print(f"  {name:<12} {1e3 * t:8.1f} {batch / t:10.0f} {flops / t / 1e9:8.0f} {r}")


def bench_sweep(args) -> None:
    from analysis.sweep import load_spec, run_sweep

    spec_path = Path(__file__).resolve().parents[1] / "analysis" / "specs" / "coupling-bits.toml"
    spec = load_spec(spec_path)
    if args.quick:
        spec = spec.__class__(**{**spec.__dict__, "values": spec.values[:2], "seeds": 1, "samples": 200})
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = run_sweep(spec, Path(tmp) / "sweep", jobs=args.jobs, progress=not args.no_progress)
        seconds = time.perf_counter() - t0
    points = (len(spec.values) + 1) * spec.seeds
    print(f"bits sweep {spec_path.name}: {len(spec.values)} points + ideal × {spec.seeds} seeds × {spec.samples} samples "
          f"= {points} scorings, {args.jobs} process(es): {seconds:.0f} s ({seconds / 60:.1f} min; target < 10 min)")
    for e in result["summary"]:
        print(f"  {e['value']!s:>5}: FID-digits {e['fid']:7.2f} ± {e['fid_sd']:.2f}  precision {e['precision']:.3f}  "
              f"recall {e['recall']:.3f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    p.add_argument("--no-sweep", action="store_true", help="simulator part only")
    p.add_argument("--no-simulator", action="store_true", help="sweep part only")
    p.add_argument("--repeats", type=int, default=15, help="interleaved rounds (default 15)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes of the sweep (default 1)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args()
    if not args.no_simulator:
        bench_simulator(args)
    if not args.no_sweep:
        bench_sweep(args)


if __name__ == "__main__":
    main()
