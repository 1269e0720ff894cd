"""`un0hw fidelity CKPT [--ir IR] [--nonideal TOML]`: how far a chip is from the model it
implements (`analysis.fidelity`), for any checkpoint, with no data set."""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

from analysis.fidelity import FidelityError
from analysis.sweep import SweepError
from compiler.ir import IRError
from un0hw.options import CHECKPOINT_PATHS, CliError, PathOption, add_checkpoint, load_model, paths, positive

ERRORS = (FidelityError, SweepError, IRError)


def _chip(args: argparse.Namespace, model):
    """The chip's model: the compiled array of --ir (its source must be CKPT), or CKPT itself."""
    if args.ir is None:
        if args.coupling != "sine":
            raise CliError("--coupling circuit runs a compiled array's couplers: give it with --ir IR")
        return model
    import compiler
    from oscsim import sha256_file

    ir = compiler.load(args.ir)
    if tuple(ir.config.image_shape) != tuple(model.config.image_shape) or ir.n != model.config.n:
        raise CliError(f"--ir {args.ir}: an array of {ir.name} (N = {ir.n}), not of {args.checkpoint} "
                       f"(N = {model.config.n})")
    want = ir.doc["source"].get("sha256")
    if want and Path(args.checkpoint).is_file() and sha256_file(args.checkpoint) != want:
        raise CliError(f"--ir {args.ir}: compiled from another file than {args.checkpoint} (sha256 differs); "
                       "give the checkpoint it was compiled from")
    return ir.to_model(device=model.dynamics.K.device, coupling=args.coupling)


def cmd_fidelity(args: argparse.Namespace) -> int:
    from analysis.evaluate import bounded_batch
    from analysis.fidelity import IdealReference, chip_fidelity, feature_space, meaning, sampling_floor
    from analysis.sweep import load_nonideal

    if Path(args.checkpoint).is_dir():
        raise CliError(f"CHECKPOINT {args.checkpoint}: give the model's checkpoint file (the ideal), and the "
                       "compiled array with --ir")
    model = load_model(args)
    per_class = positive("--per-class", args.per_class)
    nonideal = load_nonideal(args.nonideal) if args.nonideal is not None else None
    from models.errors import ConfigError
    from models.int8 import check_decoder

    try:
        check_decoder(args.decoder)
    except ConfigError as exc:
        raise CliError(f"--{exc}") from None
    if args.ir is None and (nonideal is None or nonideal.ideal) and args.decoder == "float":
        raise CliError("nothing to compare: give the chip as --ir IR (a compiled array), --nonideal TOML "
                       "(imperfect hardware) and/or --decoder int8|int4|analog")
    if nonideal is not None and nonideal.chips != 1:
        raise CliError(f"--nonideal {args.nonideal}: 'chips' must be 1 here (Monte Carlo over chips: un0hw sweep)")
    chip = _chip(args, model)
    ex = feature_space(args.features, model.config.image_shape, inception_weights=args.inception_weights)
    batch = bounded_batch(model.config, positive("--batch-size", args.batch_size))

    def reference(seed: int) -> IdealReference:
        return IdealReference.of_plan(model, ex, per_class=per_class, seed=seed, batch_size=batch)

    from tqdm import tqdm

    t0 = time.perf_counter()
    ideal = reference(args.seed)
    total = per_class * model.config.num_classes
    with tqdm(total=total, desc="chip", unit="sample", disable=args.json or total <= batch) as bar:
        score = chip_fidelity(ideal, chip, nonideal=nonideal, progress=bar, decoder=args.decoder)
    floor = sampling_floor(ideal, reference(args.seed + 1))
    seconds = time.perf_counter() - t0
    if args.json:
        print(json.dumps({**score.as_dict(), "sampling_floor": floor, "seconds": seconds}, indent=2))
        return 0
    what = " + ".join(x for x in (f"array {args.ir}" + (" (circuit coupling)" if args.coupling == "circuit" else "")
                                  if args.ir else "", f"hardware {args.nonideal}" if nonideal else "",
                                  f"the {args.decoder} decoder" if args.decoder != "float" else "") if x)
    print(f"{what} against {args.checkpoint}: {score.samples} samples on common seeds (seed {args.seed}), "
          f"features {score.feature_space}")
    text = meaning()
    psnr = "∞" if math.isinf(score.psnr_db) else f"{score.psnr_db:.2f}"
    print(f"  FID vs ideal      {score.fid_vs_ideal:.4g}   (sampling floor {floor:.4g}: two seed sets of the ideal model)")
    print(f"  phase error       {score.phase_error_rad:.4f} rad")
    print(f"  PSNR              {psnr} dB")
    print(f"  feature distance  {score.feature_distance:.4f}")
    if score.label_agreement is not None:
        print(f"  label agreement   {score.label_agreement:.3f}")
    for key in ("fid_vs_ideal", "phase_error_rad", "psnr_db", "feature_distance"):
        print(f"    {key}: {text[key]}")
    print(f"  time              {seconds:.1f} s")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fidelity", help="chip fidelity: a compiled array or imperfect hardware against the ideal "
                                        "model on the same seeds, for any checkpoint (no data set)",
                       description="How far the chip is from the model it implements: the images, final phases and "
                                   "features of the chip (a compiled array with --ir, imperfect hardware with "
                                   "--nonideal, or both) against the ideal model's on the same seeds and labels.")
    add_checkpoint(p, ir=False)
    p.add_argument("--ir", type=Path, default=None, help="a compiled array folder of CHECKPOINT (un0hw compile)")
    p.add_argument("--coupling", choices=("sine", "circuit"), default="sine",
                   help="the array's couplers: K sin x, or the circuit's measured coupling function (with --ir)")
    p.add_argument("--nonideal", type=Path, default=None, help="TOML file with a [nonideal] table (the hardware)")
    p.add_argument("--decoder", default="float", metavar="{float,int8,int4,analog}",
                   help="the chip's decoder: float (default); int8, what a digital int8 MAC array computes "
                        "(models.int8: post-training quantisation calibrated on the model's own samples); int4; "
                        "analog, PCM crossbars with programming and read noise (models.lowbit)")
    p.add_argument("--features", default="auto", choices=("auto", "digits", "inception", "pixels"),
                   help="feature space (auto: the digits CNN for digits models, Inception with its weights, else "
                        "pooled pixels)")
    p.add_argument("--inception-weights", type=Path, default=None,
                   help="local Inception weights file (or $UN0HW_INCEPTION_WEIGHTS); never downloaded")
    p.add_argument("--per-class", type=int, default=100, help="samples per class (default 100)")
    p.add_argument("--seed", type=int, default=0, help="seed of the common initial phases (default 0)")
    p.add_argument("--batch-size", type=int, default=1000,
                   help="largest generation batch (default 1000; bounded by memory for large models)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_fidelity)
    paths(p, *CHECKPOINT_PATHS, PathOption("ir", "dir", "--ir"), PathOption("nonideal", "file", "--nonideal"),
          PathOption("inception_weights", "file", "--inception-weights"))
