#!/usr/bin/env python
"""Performance benchmark of the Kuramoto simulator and of Un-0 generation (a script).

From the repository root:

    .venv/bin/python benchmarks/simulate.py            # full run (about a minute on 2 cores)
    .venv/bin/python benchmarks/simulate.py --quick    # smoke run (well under 30 s)
    .venv/bin/python benchmarks/simulate.py --device cuda --tf32

Everything is measured in one process, and the things compared are timed interleaved,
round by round (A B, B A, A B, ...), so that a ratio is taken side by side on the same
machine state; medians over rounds are quoted, ratios are medians of per-round ratios.

1. `oscsim.simulate`, 10 Euler steps, class-conditional, on the published n1024 (batch
   256) and n4096 (batch 64) systems at their random initialisation, against the GEMM
   roofline: the one (2B, N) @ (N, N) matmul the simulator does per step, timed 10 times
   as a plain `torch.matmul`. FLOPs counted: 4·B·N² per step (the coupling only). Also
   without the class drive (labels=None), and by the generic autograd-ready path (grad
   mode switched on inside inference_mode: no graph is built, but the no-grad Euler path
   is not taken), which is how fast the simulator was before that path existed.
2. The naive pairwise baseline: `oscsim.naive_coupling` (an N×N sine per sample) inside
   an Euler loop at a small batch, against the simulator: speed-up per sample.
3. End to end: `Un0.generate` on a release-format n1024 checkpoint loaded with
   `models.load`, against `models.release_reference.release_forward` (the simplest
   correct implementation) on the same state dict, labels and seeds; images compared.
4. The opt-in bf16 coupling GEMM (`simulate(..., gemm_dtype=torch.bfloat16)`), where the
   device has bf16 units (`oscsim.euler.bf16_gemm_supported`; skipped otherwise): its time
   against float32 on the same cases, interleaved; the RMS phase error of both against a
   float64 run of the same system (wrapped to (−π, π]); and the FID check — FID-digits of
   the shipped digits model on 10,000 samples in float32 and with the bf16 GEMM, same seeds.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import models  # noqa: E402
import oscsim  # noqa: E402
from models.release_reference import release_forward  # noqa: E402

STEPS = 10
# the simulator rows: (timing key, drive, path)
VARIANTS = (("sim", "classes", "fast"), ("sim_free", "none", "fast"), ("sim_generic", "classes", "generic"))


# --- timing ----------------------------------------------------------------------------
def make_sync(device: torch.device) -> Callable[[], None]:
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def interleaved(
    fns: dict[str, Callable[[], object]], *, repeats: int, warmup: int, sync: Callable[[], None]
) -> dict[str, list[float]]:
    """Seconds per call of each function, `repeats` rounds, order alternating per round."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
        sync()
    names = list(fns)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        for name in names if r % 2 == 0 else reversed(names):
            sync()
            start = time.perf_counter()
            fns[name]()
            sync()
            times[name].append(time.perf_counter() - start)
    return times


def med(values: list[float]) -> float:
    return statistics.median(values)


def ratio(num: list[float], den: list[float]) -> float:
    """Median over rounds of num[r] / den[r] (side-by-side ratio)."""
    return statistics.median(a / b for a, b in zip(num, den))


# --- the machine -----------------------------------------------------------------------
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_line(device: torch.device, dtype: torch.dtype, tf32: bool) -> str:
    parts = [
        f"torch {torch.__version__}",
        f"threads {torch.get_num_threads()} (interop {torch.get_num_interop_threads()})",
        f"CPU {cpu_model()} x{os.cpu_count()} logical",
        f"device {device}",
    ]
    if device.type == "cuda":
        parts.append(f"GPU {torch.cuda.get_device_name(device)}")
        parts.append(f"tf32 {'on' if tf32 else 'off'}")
    parts.append(f"dtype {str(dtype).removeprefix('torch.')}")
    return " | ".join(parts)


# --- workloads -------------------------------------------------------------------------
def naive_euler(params: oscsim.KuramotoParams, theta0: torch.Tensor, labels: torch.Tensor, steps: int) -> torch.Tensor:
    """Euler with every sum by its definition: N×N (and N×N_c) sines per sample."""
    n, h = params.n, 1.0 / steps
    drive = params.drive[labels]  # (B, N, N_c)
    x = theta0
    for _ in range(steps):
        theta, phi = x[:, :n], x[:, n:]
        main = params.omega + oscsim.naive_coupling(theta, params.K)
        main = main + (drive * torch.sin(phi.unsqueeze(-2) - theta.unsqueeze(-1))).sum(-1)
        cond = params.nu + oscsim.naive_coupling(phi, params.C)
        x = x + h * torch.cat((main, cond), dim=1)
    return x


def system(name: str, *, device: torch.device, dtype: torch.dtype) -> tuple[models.Un0, oscsim.KuramotoParams]:
    model = models.Un0.init(models.PUBLISHED[name], seed=0).to(device=device, dtype=dtype)
    with torch.inference_mode():
        params = model.params()
    return model, params


def seeds(model: models.Un0, batch: int, seed: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(labels, theta0) drawn on the CPU (reproducible on any device), moved to `device`."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, model.config.num_classes, (batch,), generator=gen)
    theta0 = oscsim.uniform_phases(batch, model.config.n + model.config.n_cond, generator=gen, dtype=torch.float64)
    return labels.to(device), theta0.to(device=device, dtype=model.dynamics.K.dtype)


# --- sections --------------------------------------------------------------------------
def bench_simulator(name: str, batch: int, naive_batch: int, args, device, dtype, sync) -> dict:
    model, params = system(name, device=device, dtype=dtype)
    n = params.n
    labels, theta0 = seeds(model, batch, 1, device)
    nlabels, ntheta0 = seeds(model, naive_batch, 2, device)
    gemm_in = torch.randn(2 * batch, n, generator=torch.Generator().manual_seed(3), dtype=torch.float64).to(device, dtype)
    gemm_out = torch.empty(2 * batch, n, device=device, dtype=dtype)
    K = params.K

    def sim() -> torch.Tensor:  # class-conditional, as generation runs it
        return oscsim.simulate(params, theta0, labels, steps=STEPS, method="euler").theta

    def sim_free() -> torch.Tensor:  # no class drive (labels None)
        return oscsim.simulate(params, theta0, None, steps=STEPS, method="euler").theta

    def sim_generic() -> torch.Tensor:  # class-conditional, by the autograd-ready generic path
        with torch.enable_grad():  # inside inference_mode: no graph, but not the no-grad path
            return oscsim.simulate(params, theta0, labels, steps=STEPS, method="euler").theta

    def gemm() -> None:
        for _ in range(STEPS):
            torch.matmul(gemm_in, K.T)

    def gemm_prealloc() -> None:  # the same without the allocator (page faults on a CPU)
        for _ in range(STEPS):
            torch.matmul(gemm_in, K.T, out=gemm_out)

    def naive() -> torch.Tensor:
        return naive_euler(params, ntheta0, nlabels, STEPS)

    with torch.inference_mode():
        t = interleaved({"sim": sim, "sim_free": sim_free, "sim_generic": sim_generic, "gemm": gemm,
                         "gemm_out": gemm_prealloc}, repeats=args.repeats, warmup=args.warmup, sync=sync)
        tn = interleaved({"sim": sim, "naive": naive}, repeats=args.naive_repeats, warmup=1, sync=sync)
        # the naive loop integrates the same system: compare on the naive batch
        check = oscsim.simulate(params, ntheta0, nlabels, steps=STEPS, method="euler").theta
        naive_err = (naive() - check).abs().max().item()
    roof = min(("gemm", "gemm_out"), key=lambda k: med(t[k]))  # the faster GEMM variant
    flops = 4 * batch * n * n * STEPS
    return {
        "name": name, "n": n, "batch": batch, "naive_batch": naive_batch, "flops": flops, "times": t, "roof": roof,
        "naive_s": med(tn["naive"]), "naive_sim_s": med(tn["sim"]),
        # per-sample speed-up, median over rounds of side-by-side pairs
        "speedup": statistics.median((a / naive_batch) / (b / batch) for a, b in zip(tn["naive"], tn["sim"])),
        "naive_err": naive_err,
    }


def bench_bf16(name: str, batch: int, args, device, sync) -> dict:
    """Section 4 on one case: bf16 vs float32 time, and both against float64."""
    model, params = system(name, device=device, dtype=torch.float32)
    labels, theta0 = seeds(model, batch, 1, device)
    with torch.inference_mode():
        params64 = model.to(torch.float64).params()

        def f32() -> torch.Tensor:
            return oscsim.simulate(params, theta0, labels, steps=STEPS).theta

        def bf16() -> torch.Tensor:
            return oscsim.simulate(params, theta0, labels, steps=STEPS, gemm_dtype=torch.bfloat16).theta

        t = interleaved({"f32": f32, "bf16": bf16}, repeats=args.repeats, warmup=args.warmup, sync=sync)
        exact = oscsim.simulate(params64, theta0.double(), labels, steps=STEPS).theta
        n = params.n

        def rms(x: torch.Tensor) -> float:
            d = torch.remainder(x[:, :n].double() - exact[:, :n] + torch.pi, 2 * torch.pi) - torch.pi
            return float(torch.sqrt(torch.mean(d**2)))

        return {"name": name, "batch": batch, "times": t, "rms_f32": rms(f32()), "rms_bf16": rms(bf16())}


def bench_bf16_fid(device) -> dict:
    """FID-digits of the shipped model, float32 and bf16 GEMM, the same 10,000 seeds."""
    from analysis.evaluate import score_digits

    model = models.load(models.SHIPPED, device=device)
    out = {}
    for key, gemm in (("f32", None), ("bf16", torch.bfloat16)):
        score = score_digits(model, per_class=1000, seed=0, gemm_dtype=gemm)
        out[key] = {"fid": score.fid, "class_accuracy": score.class_accuracy, "floor": score.floor}
    return out


def bench_end_to_end(batch: int, args, device, dtype, sync) -> dict:
    source = models.Un0.init(models.PUBLISHED["n1024"], seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cifar10_n1024.pt"
        models.save_release(source, path)  # the release's layout and CIFAR-10 config keys
        model = models.load(path, device=device, dtype=dtype)
        state = {k: v.to(device=device, dtype=dtype) for k, v in torch.load(path, weights_only=True)["model"].items()}
    labels, theta0 = seeds(model, batch, 4, device)

    def generate() -> torch.Tensor:
        return model.generate(labels, theta0)

    def reference() -> torch.Tensor:
        return release_forward(
            state, labels, theta0, parameterization="standard", relativization="mean_relative", num_steps=STEPS
        )

    with torch.inference_mode():
        t = interleaved({"generate": generate, "release_forward": reference}, repeats=args.e2e_repeats,
                        warmup=args.warmup, sync=sync)
        diff = (generate() - reference()).abs().max().item()
        # where generate's time goes: the oscillators, and readout + decoder
        params = model.params()
        final = oscsim.simulate(params, theta0, labels, steps=STEPS).theta[:, : model.config.n]
        parts = interleaved(
            {"simulate": lambda: oscsim.simulate(params, theta0, labels, steps=STEPS),
             "decode": lambda: model.decode(final)},
            repeats=max(3, args.e2e_repeats // 2), warmup=1, sync=sync,
        )
    return {
        "batch": batch, "times": t, "ratio": ratio(t["generate"], t["release_forward"]), "max_abs_diff": diff,
        "parts": {k: med(v) for k, v in parts.items()},
    }


# --- main ------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small batches, few repeats: a smoke run (< 30 s)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda[:i]")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--tf32", action="store_true", help="allow TF32 matmuls and convolutions on CUDA")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    p.add_argument("--repeats", type=int, default=None, help="rounds for simulator vs GEMM")
    p.add_argument("--naive-repeats", type=int, default=None, help="rounds for simulator vs naive")
    p.add_argument("--e2e-repeats", type=int, default=None, help="rounds for generate vs release_forward")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls of each function first")
    args = p.parse_args(argv)
    full = {"repeats": 31, "naive_repeats": 5, "e2e_repeats": 21}
    quick = {"repeats": 5, "naive_repeats": 2, "e2e_repeats": 5}
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    if args.threads:
        torch.set_num_threads(args.threads)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("--device cuda: this torch has no CUDA device available", file=sys.stderr)
        return 2
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
        torch.backends.cudnn.allow_tf32 = args.tf32
    sync = make_sync(device)
    # (config, batch, naive batch)
    cases = [("n1024", 32, 2), ("n4096", 8, 2)] if args.quick else [("n1024", 256, 4), ("n4096", 64, 4)]
    e2e_batch = 32 if args.quick else 256

    print(f"$ {shlex.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine: {machine_line(device, dtype, args.tf32)}")
    print(f"rounds: sim/GEMM {args.repeats}, sim/naive {args.naive_repeats}, generate/release_forward "
          f"{args.e2e_repeats}; warm-up {args.warmup}; medians, ratios per round\n")

    started = time.perf_counter()
    rows = [bench_simulator(name, b, nb, args, device, dtype, sync) for name, b, nb in cases]

    print(f"1. oscsim.simulate, {STEPS} Euler steps, vs the GEMM roofline: torch.matmul (2B,N)@(N,N) x{STEPS}, "
          f"allocating\n   ('GEMM') and with out= ('out='), the faster is the roofline; FLOPs 4*B*N^2 per step. "
          f"drive: 10 classes\n   (random labels) or none (labels=None); path: no-grad Euler ('fast', what "
          f"generation takes) or\n   the generic autograd-ready one (grad mode on inside inference_mode)")
    head = (f"{'config':<7}{'B':>5}{'drive':>8}{'path':>8}{'sim ms':>9}{'samples/s':>11}{'GFLOP/s':>9}{'GEMM ms':>9}"
            f"{'out= ms':>9}{'roof GFLOP/s':>14}{'sim/roof':>10}")
    print(head)
    print("-" * len(head))
    for r in rows:
        t, roof = r["times"], r["roof"]
        for key, drive, path in VARIANTS:
            print(f"{r['name']:<7}{r['batch']:>5}{drive:>8}{path:>8}{med(t[key]) * 1e3:>9.2f}{r['batch'] / med(t[key]):>11.0f}"
                  f"{r['flops'] / med(t[key]) / 1e9:>9.1f}{med(t['gemm']) * 1e3:>9.2f}{med(t['gemm_out']) * 1e3:>9.2f}"
                  f"{r['flops'] / med(t[roof]) / 1e9:>14.1f}{ratio(t[roof], t[key]):>10.3f}")
    for r in rows:
        t = r["times"]
        spread = ", ".join(f"{k} {min(v) * 1e3:.2f}-{max(v) * 1e3:.2f}" for k, v in t.items())
        print(f"  {r['name']} min-max ms: {spread}")

    print(f"\n2. naive pairwise baseline (oscsim.naive_coupling in an Euler loop) vs the simulator")
    head = f"{'config':<7}{'naive B':>8}{'naive ms':>10}{'naive samp/s':>13}{'sim B':>6}{'sim ms':>9}{'sim samp/s':>11}{'speed-up/sample':>17}{'max|diff|':>11}"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['name']:<7}{r['naive_batch']:>8}{r['naive_s'] * 1e3:>10.1f}{r['naive_batch'] / r['naive_s']:>13.1f}"
              f"{r['batch']:>6}{r['naive_sim_s'] * 1e3:>9.2f}{r['batch'] / r['naive_sim_s']:>11.0f}"
              f"{r['speedup']:>16.0f}x{r['naive_err']:>11.1e}")

    e2e = bench_end_to_end(e2e_batch, args, device, dtype, sync)
    print(f"\n3. end to end, release-format n1024 checkpoint (models.load), B = {e2e['batch']}")
    for key in ("generate", "release_forward"):
        v = e2e["times"][key]
        print(f"  {'Un0.generate' if key == 'generate' else key:<17}{med(v) * 1e3:8.1f} ms  "
              f"(min-max {min(v) * 1e3:.1f}-{max(v) * 1e3:.1f})")
    print(f"  of which (separately timed): simulate {e2e['parts']['simulate'] * 1e3:.1f} ms, "
          f"readout + decoder {e2e['parts']['decode'] * 1e3:.1f} ms")
    print(f"  generate / release_forward = {e2e['ratio']:.3f}   images max|diff| = {e2e['max_abs_diff']:.2e}")

    from oscsim.euler import bf16_gemm_supported

    if bf16_gemm_supported(device) and dtype == torch.float32:
        bf = [bench_bf16(name, b, args, device, sync) for name, b, _ in cases]
        fid = bench_bf16_fid(device) if not args.quick else None
        print("\n4. opt-in bf16 coupling GEMM (gemm_dtype=torch.bfloat16) vs float32, same system, seeds and labels; "
              "RMS phase error\n   of the main phases at T against a float64 run (wrapped)")
        head = f"{'config':<7}{'B':>5}{'f32 ms':>9}{'bf16 ms':>9}{'bf16/f32':>10}{'rms f32 rad':>13}{'rms bf16 rad':>14}"
        print(head)
        print("-" * len(head))
        for r in bf:
            t = r["times"]
            print(f"{r['name']:<7}{r['batch']:>5}{med(t['f32']) * 1e3:>9.2f}{med(t['bf16']) * 1e3:>9.2f}"
                  f"{ratio(t['bf16'], t['f32']):>10.3f}{r['rms_f32']:>13.1e}{r['rms_bf16']:>14.1e}")
        if fid is not None:
            print("  FID-digits of the shipped model, 10,000 samples, seed 0: "
                  + ", ".join(f"{k} {v['fid']:.3f} (class accuracy {v['class_accuracy']:.3f})" for k, v in fid.items())
                  + f"; floor {fid['f32']['floor']:.3f}")
    else:
        print(f"\n4. bf16 coupling GEMM: skipped ({device} has no bf16 matrix units, or --dtype is not float32)")

    print("\ntargets" + (" (a --quick run: smaller batches than the targets are stated for)" if args.quick else ""))
    for r in rows:
        t, roof = r["times"], r["roof"]
        target = 0.90 if r["n"] <= 1024 else 0.95
        for key, drive, path in VARIANTS:
            value = ratio(t[roof], t[key])
            if path != "fast":
                print(f"  {r['name']} (drive {drive}, {path} path): {value:.3f} of the GEMM roofline (no target)")
                continue
            print(f"  {r['name']} (drive {drive}, {path} path): simulator >= {target:.2f} of GEMM roofline: {value:.3f} "
                  f"{'met' if value >= target else 'NOT met'}")
        print(f"  {r['name']}: fast / generic path time (class drive): {ratio(t['sim'], t['sim_generic']):.3f}")
    for r in rows:
        print(f"  {r['name']}: >= 50x per sample over naive: {r['speedup']:.0f}x "
              f"{'met' if r['speedup'] >= 50 else 'NOT met'}")
    print(f"  generate no slower than release_forward: ratio {e2e['ratio']:.3f} "
          f"{'met' if e2e['ratio'] <= 1.0 else 'NOT met'}")
    print(f"\ntotal {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
