#!/usr/bin/env python
"""End to end: `Un0.generate` against the plain functional release forward pass, eager and
under `torch.compile` (the peer a user has), side by side in one run.

From the repository root:

    .venv/bin/python benchmarks/generate.py            # n1024/B256 and n4096/B64 (several minutes on 2 cores)
    .venv/bin/python benchmarks/generate.py --quick    # n1024/B16: a smoke run
    .venv/bin/python benchmarks/generate.py --no-compile
    .venv/bin/python benchmarks/generate.py --release-repo PATH   # also the release's own code

`--release-repo PATH`: a checkout of the release's public repository (github.com/hcm444/Un-0;
its `un0` package is imported from PATH at run time, never vendored). Its
`build_cifar10_model` — which wraps the dynamics and the decoder in `torch.compile` itself —
loads the same release-format file, its coupling cache baked as its `from_pretrained` does,
and runs its own `_integrate_fixed` → readout → decoder on the same seeds and labels (its
first call, the compile, printed apart); that is the peer issue 18's target names.

The checkpoint is a random-init release-format file (`models.save_release`) loaded with
`models.load`; the peer is `models.release_reference.release_forward` on the same state
dict (the release's equations and decoder as plain functions — the release's own code is
not fetched here), eager and compiled with `torch.compile` (inductor; its compile time is
printed apart and left out of the rounds). `generate` is timed with the decoder's folded
upsample path (the default without autograd) and with the release's layers (the fold
switched off), to show what the fold buys. Everything is timed interleaved, round by round:
medians over rounds, ratios as medians of per-round ratios; images compared to the peer.
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

import models  # noqa: E402
from models.decoder import UpsampleBlock  # noqa: E402
from models.release_reference import release_forward  # noqa: E402
from simulate import interleaved, machine_line, med, ratio  # noqa: E402

STEPS = 10


def _release_layers(block: UpsampleBlock, x: torch.Tensor) -> torch.Tensor:
    return block.net(x)


def _release_model(repo: Path, payload: dict):
    """The release's own generator for a release-format payload (its code imported from `repo`)."""
    sys.path.insert(0, str(repo))
    from un0.model import build_cifar10_model, build_from_config

    model = build_from_config(build_cifar10_model, payload["config"])
    model.load_state_dict(payload["model"], strict=True)
    model.eval()
    model.dynamics.bake_coupling_cache()
    return model


def bench(size: str, batch: int, *, repeats: int, compile_peer: bool, release_repo: Path | None = None) -> dict:
    source = models.Un0.init(models.PUBLISHED[size], seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{size}.pt"
        models.save_release(source, path)
        model = models.load(path)
        payload = torch.load(path, weights_only=True)
        state = payload["model"]
    cfg = model.config
    labels = torch.arange(batch) % cfg.num_classes
    theta0 = model.sample_theta0(batch, generator=torch.Generator().manual_seed(0))

    def peer(s=state):
        return release_forward(s, labels, theta0, parameterization=cfg.parameterization,
                               relativization=cfg.relativization, num_steps=STEPS)

    fold_forward = UpsampleBlock.forward

    def generate_layers():
        UpsampleBlock.forward = _release_layers
        try:
            return model.generate(labels, theta0)
        finally:
            UpsampleBlock.forward = fold_forward

    fns = {"generate": lambda: model.generate(labels, theta0), "generate_release_layers": generate_layers,
           "release_eager": peer}
    compile_s = release_s = None
    with torch.inference_mode():
        if release_repo is not None:
            rel = _release_model(release_repo, payload)
            n = cfg.n

            def release_code():
                drive = rel._class_drive(labels)
                final = rel._integrate_fixed(theta0, drive)
                return rel.decoder(rel.readout(final[:, :n])).reshape(batch, *cfg.image_shape)

            t0 = time.perf_counter()
            release_code()
            release_s = time.perf_counter() - t0
            fns["release_code_compiled"] = release_code
        if compile_peer:
            compiled = torch.compile(peer, dynamic=False)
            t0 = time.perf_counter()
            compiled()
            compile_s = time.perf_counter() - t0
            fns["release_compiled"] = compiled
        t = interleaved(fns, repeats=repeats, warmup=1, sync=lambda: None)
        ref = peer()
        diff = {k: (fn() - ref).abs().max().item() for k, fn in fns.items() if k != "release_eager"}
    out = {"size": size, "batch": batch, "times": t, "diff": diff, "compile_s": compile_s, "release_s": release_s}
    out["ratios"] = {f"{a}/{b}": ratio(t[a], t[b]) for a in fns for b in fns if a != b and a.startswith("generate")
                     and b.startswith("release")}
    out["ratios"]["generate/generate_release_layers"] = ratio(t["generate"], t["generate_release_layers"])
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="n1024/B16 only, 3 rounds")
    p.add_argument("--no-compile", action="store_true", help="leave the torch.compile peer out")
    p.add_argument("--repeats", type=int, default=None, help="interleaved rounds (default 7; quick 3)")
    p.add_argument("--release-repo", type=Path, default=None,
                   help="a checkout of github.com/hcm444/Un-0: also time the release's own compiled code")
    args = p.parse_args(argv)
    cases = [("n1024", 16)] if args.quick else [("n1024", 256), ("n4096", 64)]
    repeats = args.repeats or (3 if args.quick else 7)
    print(machine_line(torch.device("cpu"), torch.float32, False))
    print(f"{STEPS} Euler steps, float32, inference mode; {repeats} interleaved rounds, warm-up 1; medians")
    for size, batch in cases:
        if args.release_repo is not None and not (args.release_repo / "un0" / "model.py").is_file():
            print(f"--release-repo {args.release_repo}: no un0/model.py there (a checkout of hcm444/Un-0)",
                  file=sys.stderr)
            return 2
        r = bench(size, batch, repeats=repeats, compile_peer=not args.no_compile, release_repo=args.release_repo)
        print(f"\n{size}, B = {batch}")
        for key, times in r["times"].items():
            extra = f"   images max|diff| vs release_eager {r['diff'][key]:.1e}" if key in r["diff"] else ""
            print(f"  {key:<26} {med(times) * 1e3:9.1f} ms{extra}")
        if r["compile_s"] is not None:
            print(f"  (torch.compile of the peer: first call {r['compile_s']:.1f} s, not in the rounds)")
        if r["release_s"] is not None:
            print(f"  (the release's own code, compiled by itself: first call {r['release_s']:.1f} s, not in the rounds)")
        for key, value in r["ratios"].items():
            print(f"  {key:<44} {value:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
