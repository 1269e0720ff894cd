"""`un0hw distill CKPT --width-divisor K -o OUT`: a smaller decoder, distilled (models.distill)."""

from __future__ import annotations

import argparse
from pathlib import Path

from un0hw.options import CHECKPOINT_PATHS, PathOption, add_checkpoint, load_model, paths, positive

ERRORS: tuple = ()


def cmd_distill(args: argparse.Namespace) -> int:
    import models
    from models.distill import distill_decoder

    steps = positive("--steps", args.steps)
    model = load_model(args)
    student, info = distill_decoder(model, args.width_divisor, steps=steps, seed=args.seed,
                                    progress=not args.no_progress)
    out = models.save(student.cpu(), args.output, extra={"distilled_from": str(args.checkpoint),
                                                         "distillation": {**info, "steps": steps, "seed": args.seed}})
    from models.decoder import decoder_macs

    def macs(m) -> int:
        return decoder_macs(m.decoder)["macs"]

    def params(m) -> int:
        return sum(p.numel() for p in m.decoder.parameters())

    print(f"decoder widths {','.join(map(str, model.config.decoder_widths))} -> "
          f"{','.join(map(str, student.config.decoder_widths))}: {params(model):,} -> {params(student):,} parameters, "
          f"{macs(model):,} -> {macs(student):,} MACs per image; RMS image error against the original decoder on "
          f"held-out features {info['rms_before']:.3f} (initialised) -> {info['rms_after']:.3f}")
    print(f"wrote {out} (score it: un0hw fid {out}; search with it: un0hw explore with checkpoint = that file)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "distill",
        help="a smaller decoder: the checkpoint's decoder distilled into K-times narrower layers",
        description="Train a decoder K times narrower to reproduce the checkpoint's own decoder on the model's "
                    "own readout features (no data set needed); the oscillators are kept as they are. Writes "
                    "OUT.safetensors + OUT.json.",
    )
    add_checkpoint(p, ir=False)
    p.add_argument("--width-divisor", type=int, required=True, help="every decoder width divided by K (K >= 2)")
    p.add_argument("-o", "--output", type=Path, required=True, help="the distilled checkpoint (X -> X.safetensors)")
    p.add_argument("--steps", type=int, default=3000, help="Adam steps (default 3000)")
    p.add_argument("--seed", type=int, default=0, help="initialisation and batch seed (default 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_distill)
    paths(p, *CHECKPOINT_PATHS, PathOption("output", "out-checkpoint", "-o/--output"))
