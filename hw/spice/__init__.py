"""SPICE cells of the oscillator array, built with PySpice and run in ngspice.

- `hw.spice.process`: the processes (generic180 level-1, ptm45 BSIM4: MOSFET cards, VDD,
  matching) by registry name: every process assumption.
- `hw.spice.cells`: the current-starved ring oscillator, the couplers (the resistive DAC:
  sign + binary-weighted resistor magnitude behind transmission gates; the gm DAC:
  buffered taps into current injectors), test benches and `.cir` decks (imports PySpice).
- `hw.spice.run`: runs a deck in libngspice with a wall-clock limit; `SpiceError`.

This package's `__init__` imports neither PySpice nor libngspice: import the submodule
you need.
"""

from hw.spice.process import GENERIC_180NM, PROCESSES, PTM_45NM, MosModel, Process, ProcessError, process_named
from hw.spice.run import SpiceError, SpiceTimeout, SpiceUnavailable

__all__ = ["GENERIC_180NM", "PROCESSES", "PTM_45NM", "MosModel", "Process", "ProcessError", "SpiceError",
           "SpiceTimeout", "SpiceUnavailable", "process_named"]
