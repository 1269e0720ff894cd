r"""The digital Kuramoto tile's fixed-point arithmetic: the bit-exact golden model of the RTL.

The tile (``hw/rtl/kuramoto_tile.v``) holds M = N + N_c cells: the N main oscillators and
the N_c conditioning oscillators of one class-conditional Kuramoto system, all as phase
accumulators. The package reads as the tile's pipeline:

- `format`: `TileFormat`, the widths (the RTL's parameters), and the number formats:
  phase codes, the sine table;
- `program`: `TileProgram`, the integer codes the tile's memory holds, quantised from a
  float system (`TileProgram.from_float`, with its `TileQuantization` report);
- `arithmetic`: one tile step on a batch of phase codes, bit for bit (`step`, `run`),
  `simulate_fixed` (the float system run through it), and the error bounds against float
  Euler;
- `images`: the memory image and bus writes that program the RTL (`memory_image`,
  `bus_transactions`, `write_readmemh`).
"""

from oscsim.fixedpoint.arithmetic import (
    phase_error_bound,
    run,
    simulate_fixed,
    step,
    step_error_bound,
)
from oscsim.fixedpoint.format import (
    TileFormat,
    code_to_phase,
    minimal_acc_bits,
    phase_to_code,
    sine_table,
)
from oscsim.fixedpoint.images import (
    WORD_MASK,
    bus_transactions,
    memory_image,
    read_readmemh,
    write_readmemh,
)
from oscsim.fixedpoint.program import TileProgram, TileQuantization, subsystem

__all__ = [
    "WORD_MASK",
    "TileFormat",
    "TileProgram",
    "TileQuantization",
    "bus_transactions",
    "code_to_phase",
    "memory_image",
    "minimal_acc_bits",
    "phase_error_bound",
    "phase_to_code",
    "read_readmemh",
    "run",
    "simulate_fixed",
    "sine_table",
    "step",
    "step_error_bound",
    "subsystem",
    "write_readmemh",
]
