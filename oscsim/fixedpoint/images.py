r"""Memory images of a tile program: the words the RTL's memories hold and the bus writes.

Bus address space of the tile (32-bit words; the memory image is its first part)::

    K_BASE     = 0              M·M words  coupling code k_ij at K_BASE + i·M + j
    OMEGA_BASE = M·M            M words    ω_i code (2^(P−Ω) phase LSBs per step)
    SHIFT_BASE = M·M + M        M words    F_i
    LUT_BASE   = M·M + 2M       L words    sine table
    PHASE_BASE = M·M + 2M + L   M words    phases θ_i (read/write; not in the image)

Signed codes are written as 32-bit two's complement words. `write_readmemh` is the one
file writer (atomic), `read_readmemh` its reader; the compiler's emitter calls these.
"""

from __future__ import annotations

import os

from torch import Tensor

from oscsim.errors import OscsimError
from oscsim.fileio import atomic_path
from oscsim.fixedpoint.format import sine_table
from oscsim.fixedpoint.program import TileProgram

WORD_MASK = 0xFFFFFFFF


def memory_image(program: TileProgram) -> list[int]:
    """The tile's program as 32-bit words at bus addresses 0 .. fmt.image_words − 1.

    Layout (module docstring): K_BASE: the M×M coupling memory row-major (main rows carry
    ``program.label``'s drive, zeros if None); OMEGA_BASE: ω then ν; SHIFT_BASE: F_i;
    LUT_BASE: the sine table. Signed codes as two's complement words.
    """
    if not isinstance(program, TileProgram):
        raise OscsimError(f"program must be a TileProgram, not {type(program).__name__}")
    parts = (
        program.coupling(program.label).reshape(-1),
        program.frequencies(),
        program.shift,
        sine_table(program.fmt),
    )
    return [int(v) & WORD_MASK for part in parts for v in part.tolist()]


def bus_transactions(program: TileProgram, *, theta0_codes: Tensor | None = None) -> list[tuple[int, int]]:
    """(address, data) bus writes that program the tile: the whole image, in address order,
    then, if given, the (M,) initial phase codes at PHASE_BASE (reduced mod 2^P)."""
    writes = list(enumerate(memory_image(program)))
    if theta0_codes is not None:
        fmt = program.fmt
        if not isinstance(theta0_codes, Tensor) or theta0_codes.is_floating_point() or tuple(theta0_codes.shape) != (fmt.cells,):
            got = tuple(theta0_codes.shape) if isinstance(theta0_codes, Tensor) else type(theta0_codes).__name__
            raise OscsimError(f"theta0_codes must be an integer tensor of shape ({fmt.cells},), not {got}")
        mask = (1 << fmt.phase_bits) - 1
        writes += [(fmt.phase_base + i, int(v) & mask) for i, v in enumerate(theta0_codes.tolist())]
    return writes


def write_readmemh(program: TileProgram, path: str | os.PathLike) -> None:
    """Write `memory_image` as a ``$readmemh`` file: one 8-digit hex word per line from
    address 0, after ``//`` comment lines naming the format. Atomic."""
    words = memory_image(program)
    fmt = program.fmt
    header = [
        "// un0hw kuramoto_tile memory image: " + " ".join(f"{k}={v}" for k, v in fmt.rtl_parameters().items()),
        (
            f"// K_BASE=0 OMEGA_BASE={fmt.omega_base} SHIFT_BASE={fmt.shift_base} LUT_BASE={fmt.lut_base} "
            f"label={program.label}"
        ),
    ]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(header + [f"{w:08x}" for w in words]) + "\n")


def read_readmemh(path: str | os.PathLike) -> list[int]:
    """The words of a ``$readmemh`` file written by `write_readmemh` (comments skipped)."""
    words = []
    with open(path) as f:
        for line in f:
            text = line.split("//", 1)[0].strip()
            if text:
                words.extend(int(tok, 16) for tok in text.split())
    return words
