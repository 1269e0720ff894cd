"""hw: SPICE oscillator/coupler cells and the Verilog digital tile with its testbenches.

Empty until the SPICE and RTL issues land; see ARCHITECTURE.md for what it will own.
"""
