"""Emitters: a compiled array's parts in the forms other tools read.

- `rtl_tile`: the digital tile's memory image for one tile of the IR (`$readmemh` file,
  the bus transaction list that programs it, and the tile's parameters), through the
  golden model's own writers (`oscsim.fixedpoint`), so the RTL, the golden model and
  this file agree by construction.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from compiler.ir import ArrayIR
from compiler.options import CompileError
from oscsim import atomic_path


def rtl_tile(ir: ArrayIR, tile: int, out: str | Path, *, label: int | None = None, phase_bits: int = 16,
             sine_bits: int = 12, lut_bits: int = 10) -> dict:
    """Write ``tile{t}.memh``, ``tile{t}.bus.json`` and ``tile{t}.json`` into `out`.

    The tile holds the tile's main oscillators (in the IR's order) and every conditioning
    oscillator; couplings arriving from other tiles are not part of a stand-alone tile.
    Its codes fold the Euler step h = T/steps, 2π and a power-of-two shift per row into
    integers (`TileProgram.from_params`), so they are the IR's dequantised values
    requantised at the IR's coupling width, not the IR's codes verbatim. `label` picks
    the class whose drive is loaded (None: the class-free tile, drive off).
    """
    from oscsim.fixedpoint import TileFormat, TileProgram, bus_transactions, subsystem, write_readmemh

    tiles = ir.tiles
    if not 0 <= tile < len(tiles):
        raise CompileError(f"--tile-index {tile}: this IR has tiles 0..{len(tiles) - 1}")
    classes = int(ir.doc["dynamics"]["num_classes"])
    if label is not None and not 0 <= label < classes:
        raise CompileError(f"--label {label}: this model has classes 0..{classes - 1}")
    dyn = ir.doc["dynamics"]
    if dyn["steps"] < 1:
        raise CompileError("the IR integrates 0 steps: there is no Euler step to program")
    members = tiles[tile]
    bits = max(2, int(ir.doc["options"]["bits"]))
    fmt = TileFormat(n=len(members), n_cond=ir.n_cond, phase_bits=phase_bits, weight_bits=bits,
                     sine_bits=sine_bits, lut_bits=lut_bits)
    sub = subsystem(ir.to_params(dtype=torch.float64), members)
    program = TileProgram.from_params(sub, h=float(dyn["T"]) / int(dyn["steps"]), fmt=fmt, label=label)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"tile{tile}"
    write_readmemh(program, stem.with_suffix(".memh"))
    with atomic_path(stem.with_suffix(".bus.json")) as tmp:
        Path(tmp).write_text(json.dumps([[a, d] for a, d in bus_transactions(program)]) + "\n")
    info = {"tile": tile, "oscillators": members, "label": label, "rtl_parameters": fmt.rtl_parameters(),
            "cycles_per_step": fmt.cycles_per_step, "steps": int(dyn["steps"]),
            "quantization": program.quantization.summary() if program.quantization is not None else None,
            "files": [stem.with_suffix(".memh").name, stem.with_suffix(".bus.json").name]}
    with atomic_path(stem.with_suffix(".json")) as tmp:
        Path(tmp).write_text(json.dumps(info, indent=1) + "\n")
    return info
