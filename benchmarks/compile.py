"""Compiler time and peak memory per pass on a random-init published size.

    .venv/bin/python benchmarks/compile.py [--size n16384] [--bits 8] [--tile 256]
                                           [--targets dense-tiled sparse-routed] [--save]

Each target runs in its own process; the random-init model is built first, then the
process's peak-resident counter (VmHWM) is reset, so the printed peak is the compile's
(the model's own resident size included, and printed beside it). Times are single runs (a compile is minutes at most; quote them
with the machine).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time


def vm_hwm_gb() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / 1e9
    return float("nan")


def vm_rss_gb() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / 1e9
    return float("nan")


def child(size: str, target: str, bits: int, tile: int, save: bool) -> dict:
    import torch

    import compiler
    import models

    torch.set_grad_enabled(False)
    t0 = time.perf_counter()
    model = models.Un0.init(models.PUBLISHED[size], seed=0)
    init_s, model_gb = time.perf_counter() - t0, vm_rss_gb()
    with open("/proc/self/clear_refs", "w") as f:  # reset VmHWM: the compile's own peak from here
        f.write("5")
    timings: dict = {}
    t0 = time.perf_counter()
    ir = compiler.compile(model, compiler.CompileOptions(bits=bits, tile=tile, target=target), timings=timings)
    total = time.perf_counter() - t0
    result = {"size": size, "target": target, "init_s": init_s, "model_rss_gb": model_gb,
              "passes": timings, "compile_s": total, "peak_gb": vm_hwm_gb(),
              "partition": ir.doc["passes"]["partition"], "routing": ir.doc["passes"]["routing"],
              "tau_s": ir.tau_s, "binding": ir.doc["physical"]["binding_limit"]}
    if save:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            ir.save(f"{tmp}/ir")
            result["save_s"] = time.perf_counter() - t0
        result["save_peak_gb"] = vm_hwm_gb()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="n16384")
    ap.add_argument("--bits", type=int, default=8)
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--targets", nargs="+", default=["dense-tiled", "sparse-routed"])
    ap.add_argument("--save", action="store_true", help="also time writing the IR folder")
    ap.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        size, target, bits, tile, save = args.child
        print(json.dumps(child(size, target, int(bits), int(tile), save == "1")))
        return
    import torch

    print(f"{args.size}, {args.bits}-bit codes, tiles of {args.tile}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    for target in args.targets:
        proc = subprocess.run([sys.executable, __file__, "--child", args.size, target, str(args.bits), str(args.tile),
                               "1" if args.save else "0"], capture_output=True, text=True)
        if proc.returncode:
            print(proc.stderr[-2000:])
            sys.exit(proc.returncode)
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"\n{target}: model init {r['init_s']:.1f} s ({r['model_rss_gb']:.2f} GB resident after it), "
              f"compile {r['compile_s']:.1f} s, peak resident during compile {r['peak_gb']:.2f} GB "
              f"({r['peak_gb'] - r['model_rss_gb']:.2f} GB above the model)"
              + (f"; save {r['save_s']:.1f} s, peak resident while saving {r['save_peak_gb']:.2f} GB" if "save_s" in r else ""))
        for name, p in r["passes"].items():
            print(f"  {name:<10} {p['seconds']:8.2f} s   peak so far {p['peak_rss_gb']:.2f} GB")
        part, route = r["partition"], r["routing"]
        print(f"  partition {part['method']}: {100 * part['intra_tile_weight_fraction']:.2f}% of Σ|K| inside tiles "
              f"(index order {100 * part['index_order_intra_tile_weight_fraction']:.2f}%); routing {route}")
        print(f"  τ = {r['tau_s']:.3g} s set by {r['binding']}")


if __name__ == "__main__":
    main()
