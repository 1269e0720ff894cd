"""oscsim: the physics of Un-0 — batched Kuramoto integration on CPU and GPU.

Imports torch and numpy (and scipy for the adaptive reference) only.
"""

from oscsim.coupling import (
    drive_coupling,
    gather_drive_harmonics,
    harmonic_coupling,
    kuramoto_coupling,
    naive_coupling,
    velocity,
)
from oscsim.errors import OscsimError
from oscsim.fileio import atomic_path, sha256_file
from oscsim.fixedpoint import (
    TileFormat,
    TileProgram,
    TileQuantization,
    bus_transactions,
    memory_image,
    phase_error_bound,
    simulate_fixed,
    step_error_bound,
    write_readmemh,
)
from oscsim.harmonics import Harmonics, sakaguchi
from oscsim.links import Links
from oscsim.nonideal import (
    NonIdeal,
    freq_mismatch_to_model,
    phase_noise_from_period_jitter,
    read_phases,
    realize,
    to_model_time,
)
from oscsim.observables import order_parameter, uniform_phases
from oscsim.params import KuramotoParams
from oscsim.quant import choose_scale, dequantize, fake_quantize, qmax, quantize
from oscsim.simulate import METHODS, SimResult, gather_drive, simulate
from oscsim.solvers import EULER, HEUN, RK4, TABLEAUS, ButcherTableau

__all__ = [
    "Links",
    "EULER",
    "HEUN",
    "METHODS",
    "RK4",
    "TABLEAUS",
    "atomic_path",
    "sha256_file",
    "choose_scale",
    "dequantize",
    "fake_quantize",
    "qmax",
    "quantize",
    "ButcherTableau",
    "TileFormat",
    "TileProgram",
    "TileQuantization",
    "bus_transactions",
    "memory_image",
    "phase_error_bound",
    "simulate_fixed",
    "step_error_bound",
    "write_readmemh",
    "Harmonics",
    "KuramotoParams",
    "NonIdeal",
    "OscsimError",
    "SimResult",
    "drive_coupling",
    "freq_mismatch_to_model",
    "phase_noise_from_period_jitter",
    "read_phases",
    "realize",
    "to_model_time",
    "gather_drive",
    "gather_drive_harmonics",
    "harmonic_coupling",
    "kuramoto_coupling",
    "naive_coupling",
    "order_parameter",
    "sakaguchi",
    "simulate",
    "uniform_phases",
    "velocity",
]
