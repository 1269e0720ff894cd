"""SPICE cells of the oscillator array, built with PySpice and run in ngspice.

- `hw.spice.process`: the model process (MOSFET cards, VDD): every process assumption.
- `hw.spice.cells`: the current-starved ring oscillator, the resistive coupler, the coupler DAC
  (sign + binary-weighted resistor magnitude behind transmission gates), test
  benches and `.cir` decks (imports PySpice).
- `hw.spice.run`: runs a deck in libngspice with a wall-clock limit; `SpiceError`.

This package's `__init__` imports neither PySpice nor libngspice: import the submodule
you need.
"""

from hw.spice.process import GENERIC_180NM, MosModel, Process
from hw.spice.run import SpiceError, SpiceTimeout, SpiceUnavailable

__all__ = ["GENERIC_180NM", "MosModel", "Process", "SpiceError", "SpiceTimeout", "SpiceUnavailable"]
