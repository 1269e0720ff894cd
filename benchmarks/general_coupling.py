#!/usr/bin/env python
"""Benchmark of the general coupling function (`oscsim.Harmonics`) in the no-grad Euler kernel.

From the repository root:

    .venv/bin/python benchmarks/general_coupling.py            # n1024/B256 and n4096/B64 (a few minutes on 2 cores)
    .venv/bin/python benchmarks/general_coupling.py --quick    # n256/B64 and n1024/B16: a smoke run
    .venv/bin/python benchmarks/general_coupling.py --device cuda

`oscsim.simulate`, 10 Euler steps, float32, no grad, class-conditional (10 classes, random
labels, N_c = 8), on a random system scaled like Un-0 (K ~ N(0, 1)/√N), three couplers:

- 'sine': K sin x, no harmonics (today's path, one (2B, N)·(N, N) GEMM per step);
- 'sakaguchi': K sin(x − α), H = 1 with a cos term on K, the drive and C (two GEMMs per step);
- 'H3': every coefficient of H = 3 (b0, a_1..3, b_1..3) on K, the drive and C (six GEMMs).

Each against its GEMM roofline: the bare `torch.mm` calls of the same shapes, with out=,
×10 steps (1, 2 and 6 of (2B, N)·(N, N)), all with the one matrix K (as the roofline of
`benchmarks/simulate.py`; the kernel streams H's distinct coefficient matrices, which a
cache holds less well at small B). FLOPs counted: 4·B·N² per GEMM pair-equivalent,
i.e. 4·B·N² per step for 'sine', 8·H·B·N² with harmonics (the coupling only). Everything
is timed interleaved, round by round (as `benchmarks/simulate.py`): medians over rounds,
ratios as medians of per-round ratios.
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

from simulate import interleaved, machine_line, make_sync, med, ratio

import oscsim

STEPS = 10
N_COND, CLASSES = 8, 10
ALPHA = 0.4  # rad, the Sakaguchi lag
# (variant, GEMMs of (2B, N)·(N, N) per step)
VARIANTS = (("sine", 1), ("sakaguchi", 2), ("H3", 6))


def system(n: int, variant: str, *, device: torch.device, dtype: torch.dtype) -> oscsim.KuramotoParams:
    """One random system (seed 0) with the variant's couplers; the same K for all three."""
    g = torch.Generator().manual_seed(0)
    randn = lambda *s: torch.randn(*s, generator=g, dtype=torch.float32)
    raw = {"K": randn(n, n), "omega": randn(1, n), "drive": randn(CLASSES, n, N_COND), "C": randn(N_COND, N_COND),
           "nu": randn(1, N_COND)}
    scales = {"k_scale": 1 / math.sqrt(n), "c_scale": 1 / math.sqrt(N_COND), "drive_scale": 1 / math.sqrt(N_COND)}
    if variant == "sakaguchi":
        lagged = {name: oscsim.sakaguchi(raw[name], ALPHA) for name in ("K", "drive", "C")}
        raw.update({name: m for name, (m, _) in lagged.items()})
        raw.update(K_h=lagged["K"][1], drive_h=lagged["drive"][1], C_h=lagged["C"][1])
    elif variant == "H3":
        coef = lambda m: oscsim.Harmonics(a=0.3 * randn(2, *m.shape), b=0.3 * randn(3, *m.shape), b0=0.1 * randn(*m.shape))
        raw.update(K_h=coef(raw["K"]), drive_h=coef(raw["drive"]), C_h=coef(raw["C"]))
    with torch.inference_mode():
        return oscsim.KuramotoParams.from_raw(**raw, **scales).to(device=device, dtype=dtype)


def bench(n: int, batch: int, args, device: torch.device, dtype: torch.dtype, sync) -> dict:
    gen = torch.Generator().manual_seed(1)
    labels = torch.randint(0, CLASSES, (batch,), generator=gen).to(device)
    theta0 = oscsim.uniform_phases(batch, n + N_COND, generator=gen).to(device=device, dtype=dtype)
    params = {name: system(n, name, device=device, dtype=dtype) for name, _ in VARIANTS}
    rows = torch.randn(2 * batch, n, generator=gen).to(device=device, dtype=dtype)
    out = torch.empty(2 * batch, n, device=device, dtype=dtype)
    Kt = params["sine"].K.T
    fns = {}
    for name, gemms in VARIANTS:
        fns[name] = lambda p=params[name]: oscsim.simulate(p, theta0, labels, steps=STEPS).theta

        def roof(gemms: int = gemms) -> None:
            for _ in range(STEPS * gemms):
                torch.mm(rows, Kt, out=out)

        fns[f"roof_{name}"] = roof
    with torch.inference_mode():
        times = interleaved(fns, repeats=args.repeats, warmup=args.warmup, sync=sync)
        # the variants really differ: the lag and the harmonics move the phases
        finals = {name: fns[name]() for name, _ in VARIANTS}
    moved = {name: float((finals[name] - finals["sine"]).abs().max()) for name, _ in VARIANTS}
    return {"n": n, "batch": batch, "times": times, "moved": moved}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="n256/B64 and n1024/B16, 3 rounds: a smoke run")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda[:i]")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    p.add_argument("--repeats", type=int, default=None, help="interleaved rounds (default 7, --quick 3)")
    p.add_argument("--warmup", type=int, default=1, help="untimed calls of each function first")
    args = p.parse_args(argv)
    args.repeats = args.repeats or (3 if args.quick else 7)
    device, dtype = torch.device(args.device), torch.float32
    if args.threads:
        torch.set_num_threads(args.threads)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("--device cuda: this torch has no CUDA device available", file=sys.stderr)
        return 2
    sync = make_sync(device)
    cases = [(256, 64), (1024, 16)] if args.quick else [(1024, 256), (4096, 64)]
    print(f"machine: {machine_line(device, dtype, False)}")
    print(f"{STEPS} Euler steps, no grad, {CLASSES} classes (N_c = {N_COND}); {args.repeats} interleaved rounds, "
          f"warm-up {args.warmup}; medians; ratios per round")
    started = time.perf_counter()
    results = [bench(n, b, args, device, dtype, sync) for n, b in cases]
    head = (f"{'N':>5}{'B':>5}  {'coupler':<10}{'GEMMs':>6}{'sim ms':>10}{'GFLOP/s':>9}{'roof ms':>10}"
            f"{'sim/sine':>10}{'roof/sim':>10}{'max|Δθ| vs sine':>17}")
    print(head)
    print("-" * len(head))
    for r in results:
        t, n, b = r["times"], r["n"], r["batch"]
        for name, gemms in VARIANTS:
            flops = 4 * b * n * n * STEPS * gemms
            print(f"{n:>5}{b:>5}  {name:<10}{gemms:>6}{med(t[name]) * 1e3:>10.2f}{flops / med(t[name]) / 1e9:>9.1f}"
                  f"{med(t[f'roof_{name}']) * 1e3:>10.2f}{ratio(t[name], t['sine']):>10.2f}"
                  f"{ratio(t[f'roof_{name}'], t[name]):>10.3f}{r['moved'][name]:>17.2e}")
    print("sim/sine: the variant's time over the sine path's (GEMM count alone predicts 1, 2, 6); "
          "roof/sim: its roofline's time over its own")
    print(f"total {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
