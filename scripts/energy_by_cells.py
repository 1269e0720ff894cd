#!/usr/bin/env python
"""Energy and area of the same arrays on each measured cell library, every phase distribution.

From the repository root:

    .venv/bin/python scripts/energy_by_cells.py [SIZE ...]    # default: digits n1024 n4096 n16384

Each model (the shipped digits model, or a published size at random init, seed 0) is compiled
with default options onto each shipped calibration (so τ and the energies are that library's);
every distribution is priced on that one placement (`passes.placement.
wire_length_by_distribution_mm`, each with its link hardware and timing at the default link
options), the wires at the tile pitch the cells' area implies. Prints
the markdown table of docs/energy.md ("By cell and phase distribution"). The compiler's
circuit pass is skipped: neither estimate reads it.
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CALIBRATIONS = {"generic180/resistive": None,  # the built-in default
                "generic180/gm (tap p4)": "docs/cells/generic180-gm-tap4/calibration.json",
                "ptm45/resistive": "docs/cells/ptm45-resistive/calibration.json"}


def main(sizes: list[str]) -> int:
    import compiler
    import compiler.pipeline as pipeline
    import models
    from analysis import area, energy
    from compiler.route import link_timing
    from hw.calibration import Calibration
    from models.checkpoint import SHIPPED

    root = Path(__file__).resolve().parents[1]
    pipeline.CIRCUIT_PASS_MAX_N = 0
    cals = {k: Calibration.default() if v is None else Calibration.load(root / v) for k, v in CALIBRATIONS.items()}
    print("| model | cells | phase wires | tile pitch (mm) | wire (m) | array (J) | decoder (J) | H100/array w/ decoder "
          "| w/o decoder | dominant | area (mm²) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for size in sizes:
        shipped = size == "digits"
        model = models.load(SHIPPED) if shipped else models.Un0.init(models.PUBLISHED[size], seed=0)
        name = "digits-n512 (shipped)" if shipped else f"Un-0.{size}"
        for cells, cal in cals.items():
            ir = compiler.compile(model, compiler.CompileOptions(), calibration=cal, source=name)
            traffic = energy.decoder_traffic(energy._decoder_module(ir))
            placement = ir.doc["passes"]["placement"]
            for dist, length in placement["wire_length_by_distribution_mm"].items():
                timing = link_timing(compiler.CompileOptions(distribution=dist))
                doc = {**ir.doc, "resources": {**ir.doc["resources"], "wire_length_mm": length},
                       "options": {**ir.doc["options"], "distribution": dist},
                       "passes": {**ir.doc["passes"], "placement": {**placement, "distribution": dist, "links": timing}}}
                priced = type(ir)(doc=doc, tensors=ir.tensors)
                e = energy.estimate(priced, traffic=traffic, name=name)
                chip = area.estimate_area(priced, traffic=traffic)
                dom, share = e.dominant()
                print(f"| {name} | {cells} | {dist} | {e.settings['tile_pitch_mm']:.3g} | "
                      f"{e.settings['wire_length_mm'] / 1e3:.3g} | {e.array_total_j:.3g} | {e.decoder_j:.3g} | "
                      f"{e.ratio('h100', decoder=True):.3g}× | {e.ratio('h100', decoder=False):.3g}× | "
                      f"{dom} ({share:.0%}) | {chip.total_mm2:.3g} |", flush=True)
            del ir
            gc.collect()
        del model
        gc.collect()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["digits", "n1024", "n4096", "n16384"]))
