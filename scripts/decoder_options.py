#!/usr/bin/env python
"""FID-digits, energy and area of each decoder option on the shipped digits model.

From the repository root:

    .venv/bin/python scripts/decoder_options.py [--seeds 3] [--per-class 200] [--out docs/decoders]

Rows: the float decoder (what fp16/fp32 arithmetic computes, to far below the FID's noise),
the int8 MAC array (`models.int8`), int4 (`models.lowbit.Int4Decoder`), PCM crossbars
(`models.lowbit.AnalogDecoder`, one chip), and the decoder distilled 2× and 4× narrower
(`un0hw distill`, 3,000 steps, seed 0; written to OUT as checkpoints), float and int8. The
oscillators are ideal in every row: the decoder's own cost. FID-digits: mean ± sd over
`--seeds` seed sets of 10 × `--per-class` samples. Energy and area: the decoder's terms of
`analysis.energy.estimate` / `analysis.area.estimate_area` (45 nm digital constants). Prints
the markdown table of docs/energy.md ("Decoder options").
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    import compiler
    import models
    from analysis.area import estimate_area
    from analysis.energy import estimate
    from analysis.evaluate import digits_extractor, score_model
    from models.data import digits
    from models.distill import distill_decoder

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--per-class", type=int, default=200)
    ap.add_argument("--out", type=Path, default=Path("docs/decoders"))
    args = ap.parse_args(argv)

    shipped = models.load(models.checkpoint.SHIPPED)
    ex, ref = digits_extractor(), digits("test")
    students = {}
    for k in (2, 4):
        path = args.out / f"digits-n512-decoder-div{k}.safetensors"
        if not path.is_file():
            student, info = distill_decoder(shipped, k, seed=0, progress=False)
            models.save(student, path, extra={"distilled_from": "shipped", "distillation": {**info, "steps": 3000}})
        students[k] = models.load(path)
    rows = [("float (fp16/fp32)", shipped, "float", "fp16"), ("int8", shipped, "int8", "int8"),
            ("int4", shipped, "int4", "int4"), ("analog (PCM crossbars)", shipped, "analog", "analog"),
            ("distilled ÷2, int8", students[2], "int8", "int8"), ("distilled ÷4, int8", students[4], "int8", "int8"),
            ("distilled ÷2, analog", students[2], "analog", "analog")]
    print("| decoder | FID-digits | precision | recall | class accuracy | MACs / image | decoder J / image | "
          "decoder mm² |")
    print("|---|---|---|---|---|---|---|---|")
    for name, model, images, precision in rows:
        scores = [score_model(model, ex, ref, per_class=args.per_class, seed=1000 * s, decoder=images)
                  for s in range(args.seeds)]
        fid = [s.fid for s in scores]
        ir = compiler.compile(model, compiler.CompileOptions(), source=name)
        e = estimate(ir, precision=precision)
        a = estimate_area(ir, precision=precision)
        sd = statistics.stdev(fid) if len(fid) > 1 else 0.0
        print(f"| {name} | {statistics.fmean(fid):.2f} ± {sd:.2f} | "
              f"{statistics.fmean(s.precision for s in scores):.3f} | {statistics.fmean(s.recall for s in scores):.3f} | "
              f"{statistics.fmean(s.class_accuracy for s in scores):.3f} | {ir.decoder.macs_per_image:,} | "
              f"{e.decoder_j:.3g} | {a.decoder_mm2:.3g} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
