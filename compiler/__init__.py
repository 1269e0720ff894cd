"""compiler: a trained Un-0 → an oscillator-array description (`ArrayIR`) and back.

Passes, each a module of its own: `prune` → `partition` → `route` (crossbars, links,
placement) → `quantize` → `mapping` (time scale τ from a `hw.Calibration`). `ir` holds
the versioned, schema-validated IR (array.json + weights.safetensors) and rebuilds the
simulator's system from it (`ArrayIR.to_params`, `ArrayIR.to_model`).
"""

from compiler.ir import ArrayIR, IRError, load
from compiler.options import CompileError, CompileOptions
from compiler.pipeline import compile  # noqa: A004

__all__ = ["ArrayIR", "CompileError", "CompileOptions", "IRError", "compile", "load"]
