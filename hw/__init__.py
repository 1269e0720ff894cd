"""hw: SPICE oscillator/coupler cells and the Verilog digital tile with its testbenches.

- `hw.spice`: the model process, the oscillator/coupler cells and the ngspice runner.
- `hw.characterize`: frequency, tuning curve, energy per cycle and two-cell phase locking
  measured from ngspice transients.
The RTL tile is still to come; see ARCHITECTURE.md for what this room will own.
"""
