"""The digital tile: latency, testbench speed, area/energy proxy, and its arithmetic's accuracy.

    .venv/bin/python benchmarks/rtl.py [--cells 4 8 16 32 64 128] [--steps 10] [--seeds 4]

1. Cycles per Euler step vs N, measured in the RTL under Icarus (intervals between
   `step_done` pulses) next to the design's formula N + 3.
2. Testbench speed: simulated clock cycles and Euler steps per wall second while the
   tile runs (cocotb waits on step_done, not on every edge), bus writes per second, and the
   whole simulation's wall time; plus the golden model's speed for the same work.
3. `hw.rtl.resource_estimate` per N: register and memory bits, multipliers, energy proxy
   per step and per 10-step inference.
4. The shipped digits model (520 cells) on the tile's arithmetic (`simulate_fixed`) vs
   float64 Euler: phase error at T (on the circle) for three widths, and its FID-digits
   (1,000 samples) with the oscillators on each width.
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import tempfile
import time

import torch

import models
import oscsim
from hw import rtl
from hw.rtl import run as rtl_run
from oscsim import fixedpoint as fp


def _fmt(cells: int) -> fp.TileFormat:
    return fp.TileFormat(n=cells, phase_bits=16, weight_bits=8, sine_bits=12, lut_bits=10)


def _program(fmt: fp.TileFormat, g: torch.Generator) -> fp.TileProgram:
    n = fmt.n
    return fp.TileProgram.from_float(
        torch.randn(n, n, generator=g, dtype=torch.float64) / math.sqrt(n),
        torch.randn(n, generator=g, dtype=torch.float64), h=0.1, fmt=fmt,
    )


def latency_and_speed(cells: list[int], steps: int, seeds: int, cache: str) -> None:
    print("\n| N (cells) | cycles/step measured | N + 3 | build s | bus writes/s | sim cycles/s | "
          "Euler steps/s (RTL) | whole sim s | golden steps/s (same seeds, median of 7) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n in cells:
        fmt = _fmt(n)
        g = torch.Generator().manual_seed(n)
        program = _program(fmt, g)
        theta = torch.randint(0, 1 << fmt.phase_bits, (seeds, fmt.cells), generator=g)
        t0 = time.perf_counter()
        tile = rtl_run.build(fmt, cache_dir=cache)
        build_s = time.perf_counter() - t0
        ops = rtl_run.program_ops(program)
        for seed in theta:
            ops += rtl_run.phase_ops(fmt, seed)
            ops.append({"op": "run", "chain": [steps]})
        result = rtl_run.run_job(tile, ops, coverage=False)
        recs, wall = result["records"], result["op_wall_s"]
        runs = [(r, w) for r, w in zip(recs, wall) if "phases" in r]
        intervals = {b - a for r, _ in runs for a, b in zip([0, *r["step_cycles"]], r["step_cycles"])}
        run_wall = sum(w for _, w in runs)
        cycles = sum(r["done_cycles"][-1] for r, _ in runs)
        write_s = wall[0]
        gold = fp.run(program, theta, steps) & ((1 << fmt.phase_bits) - 1)
        got = torch.tensor([r["phases"] for r, _ in runs]).permute(1, 0, 2)
        assert torch.equal(got, gold[1:]), "RTL and golden model differ"
        times = []
        for _ in range(7):  # median: the shared machine's thread scheduling spikes single runs
            t0 = time.perf_counter()
            fp.run(program, theta, steps)
            times.append(time.perf_counter() - t0)
        gold_rate = steps * seeds / statistics.median(times)
        print(f"| {n} | {'/'.join(map(str, sorted(intervals)))} | {fmt.cycles_per_step} | {build_s:.2f} | "
              f"{len(ops[0]['pairs']) / write_s:,.0f} | {cycles / run_wall:,.0f} | {steps * seeds / run_wall:,.1f} | "
              f"{result['wall_s']:.1f} | {gold_rate:,.0f} |")


def resources(cells: list[int]) -> None:
    print("\n| cells | register bits | memory bits (K / table / total) | multipliers (MAC W×S, combine S×ACC) | "
          "MACs/step | energy/step | energy/10-step inference |")
    print("|---|---|---|---|---|---|---|")
    for n in cells:
        est = rtl.resource_estimate(_fmt(n))
        mem, mul = est["memory_bits"], est["multipliers"]
        e = est["energy_per_step_j"]
        print(f"| {n} | {est['register_bits']:,} | {mem['coupling']:,} / {mem['sine_table']:,} / {mem['total']:,} | "
              f"{mul['mac'][0]}×({mul['mac'][1]}×{mul['mac'][2]}), {mul['combine'][0]}×({mul['combine'][1]}×"
              f"{mul['combine'][2]}) | {est['macs_per_step']:,} | {e * 1e9:.2f} nJ | {10 * e * 1e9:.1f} nJ |")


def shipped_model_accuracy(seeds: int) -> None:
    model = models.load(models.SHIPPED)
    with torch.no_grad():
        params = model.params().to(torch.float64)
    g = torch.Generator().manual_seed(0)
    theta0 = model.sample_theta0(seeds, generator=g).to(torch.float64)
    labels = torch.arange(seeds) % params.num_classes
    steps = model.config.num_steps
    with torch.no_grad():
        ref = oscsim.simulate(params, theta0, labels, steps=steps, T=1.0).theta
    print(f"\nShipped digits-n512 (N = {params.n} + {params.n_cond} cells, one tile), {seeds} seeds, "
          f"Euler {steps} steps, phase error at T vs float64 Euler, on the circle (|angle(e^(i·Δθ))|):")
    print("\n| format (P/W/S/L bits) | max error rad | RMS error rad | rows clipped | golden-model s |")
    print("|---|---|---|---|---|")
    for P, W, S, L in [(12, 6, 8, 8), (16, 8, 12, 10), (20, 12, 14, 12)]:
        fmt = fp.TileFormat(n=params.n, n_cond=params.n_cond, phase_bits=P, weight_bits=W, sine_bits=S, lut_bits=L)
        t0 = time.perf_counter()
        out = fp.simulate_fixed(params, theta0, labels, steps=steps, T=1.0, fmt=fmt).theta
        dt = time.perf_counter() - t0
        d = out - ref
        err = torch.atan2(torch.sin(d), torch.cos(d)).abs()  # on the circle: what the readout sees
        clipped = sum(fp.TileProgram.from_params(params, h=1.0 / steps, fmt=fmt).quantization.clipped.values())
        print(f"| {P}/{W}/{S}/{L} | {float(err.max()):.4f} | {float(err.pow(2).mean().sqrt()):.4f} | {clipped} | {dt:.2f} |")


@torch.no_grad()
def shipped_model_fid(per_class: int) -> None:
    """FID-digits of the shipped model with its oscillators on the tile's arithmetic."""
    from analysis.evaluate import digits_extractor, sample_plan, score_features
    from models.data import digits

    model = models.load(models.SHIPPED)
    params = model.params()
    ex = digits_extractor()
    labels, theta0, _ = sample_plan(model, per_class=per_class, seed=0, batch_size=1000)
    steps = model.config.num_steps

    def score(main_phases):
        images = model.decode(main_phases.to(torch.float32))
        feats = torch.cat([ex.features(images[i:i + ex.batch_size]) for i in range(0, len(images), ex.batch_size)])
        hits = ex.classify(feats).argmax(1) == labels if ex.classify is not None else None
        return score_features(feats, hits, ex, digits("test"), floor_set=digits("train"), seed=0)

    ref = oscsim.simulate(params, theta0, labels, steps=steps, T=1.0)
    rows = [("float32 Euler (the model as trained)", score(ref.main))]
    p64 = params.to(torch.float64)
    for P, W, S, L in [(12, 6, 8, 8), (16, 8, 12, 10), (20, 12, 14, 12)]:
        fmt = fp.TileFormat(n=params.n, n_cond=params.n_cond, phase_bits=P, weight_bits=W, sine_bits=S, lut_bits=L)
        out = fp.simulate_fixed(p64, theta0.to(torch.float64), labels, steps=steps, T=1.0, fmt=fmt)
        rows.append((f"tile {P}/{W}/{S}/{L} bits", score(out.main)))
    print(f"\nFID-digits of the shipped model, {len(labels)} samples (seed 0), oscillators on the tile's arithmetic:")
    print("\n| oscillators | FID-digits | floor | precision | recall | class accuracy |")
    print("|---|---|---|---|---|---|")
    for name, sc in rows:
        print(f"| {name} | {sc.fid:.2f} | {sc.floor:.2f} | {sc.precision:.3f} | {sc.recall:.3f} | {sc.class_accuracy:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, nargs="+", default=[4, 8, 16, 32, 64, 128])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--accuracy-seeds", type=int, default=1000)
    parser.add_argument("--fid-per-class", type=int, default=100)
    args = parser.parse_args()
    import cocotb

    from hw.tools import tool_version

    print(f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads; "
          f"{tool_version('iverilog')}; cocotb {cocotb.__version__}")
    with tempfile.TemporaryDirectory() as cache:
        latency_and_speed(args.cells, args.steps, args.seeds, cache)
    resources([*args.cells, 520, 1032])
    shipped_model_accuracy(args.accuracy_seeds)
    shipped_model_fid(args.fid_per_class)


if __name__ == "__main__":
    main()
