"""hw.rtl: the digital Kuramoto tile in Verilog (kuramoto_tile.v) and its Python edge.

- `simulate_tile(program, theta0_codes, steps)`: build the tile for ``program.fmt`` under
  Icarus Verilog and run it through cocotb; phases after every step.
- `build`, `run_job`: the lower level (one build per format, any number of jobs).
- `resource_estimate(fmt)`: registers, memory bits, multipliers and an energy proxy.
The bit-exact golden model and the memory-image writers are `oscsim.fixedpoint`.
"""

from hw.rtl.resources import resource_estimate
from hw.rtl.run import (
    SOURCES,
    RtlError,
    RtlUnavailable,
    TileBuild,
    build,
    run_job,
    simulate_tile,
    unavailable_reason,
)

__all__ = [
    "SOURCES",
    "RtlError",
    "RtlUnavailable",
    "TileBuild",
    "build",
    "resource_estimate",
    "run_job",
    "simulate_tile",
    "unavailable_reason",
]
