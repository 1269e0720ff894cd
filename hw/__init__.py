"""hw: SPICE oscillator/coupler cells and the Verilog digital tile with its testbenches.

- `hw.Calibration`: the measured cell figures (f0, K_eff per coupler code, J/cycle, jitter,
  mismatch) that the compiler and the energy estimator read; pure, no PySpice.
- `hw.spice`: the model process, the oscillator/coupler cells and the ngspice runner.
- `hw.characterize`: frequency, tuning curve, energy per cycle, two-cell phase locking,
  K_eff per code, jitter and mismatch measured from ngspice transients, and
  `characterize_all` that writes a measured Calibration.
- `hw.array_check`: a small compiled array built in SPICE and compared with `oscsim`.
- `hw.rtl`: the digital Kuramoto tile in Verilog, run under Icarus through cocotb
  (`simulate_tile`), and its resource estimate; its golden model is `oscsim.fixedpoint`.
"""

from hw.calibration import Calibration, CalibrationError

__all__ = ["Calibration", "CalibrationError"]
