"""hw: SPICE oscillator/coupler cells and the Verilog digital tile with its testbenches.

- `hw.Calibration`: the measured cell figures (f0, K_eff per coupler code, J/cycle, jitter,
  mismatch) that the compiler and the energy estimator read; pure, no PySpice.
- `hw.spice`: the model process, the oscillator/coupler cells and the ngspice runner.
- `hw.measure`: the measurements on ngspice transients: frequency, tuning curve, energy per
  cycle, two-cell phase locking, the Adler fit (K_eff per code), jitter, ring phase, the
  trim and run of a small array of coupled rings (`measure_array`).
- `hw.characterization`: the whole characterisation run (plan, Monte Carlo mismatch in
  worker processes), `characterize_all`, that writes a measured Calibration.
- `hw.tools`: where the external programs are (`find_tool`, `require_tool`, overrides).
- `hw.rtl`: the digital Kuramoto tile in Verilog, run under Icarus through cocotb
  (`simulate_tile`), and its resource estimate; its golden model is `oscsim.fixedpoint`.

A compiled array's cells in SPICE against `oscsim` is `analysis.array_check` (it joins the
compiler's output with these circuits, so it lives above both).
"""

from hw.calibration import Calibration, CalibrationError

__all__ = ["Calibration", "CalibrationError"]
