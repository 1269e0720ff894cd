r"""`TileFormat`: the widths of one digital tile, and its number formats.

Numbers (all integers; P = phase_bits, L = 2^lut_bits, A = q_max(sine_bits)):

- phase θ_i: a P-bit unsigned code, 2π ↔ 2^P (wraps by itself); `phase_to_code`,
  `code_to_phase`.
- sine table (`sine_table`): ``lut[k] = round(A · sin(2πk/L))`` (`oscsim.quant.quantize`,
  round half away from zero).
- couplings: signed `weight_bits` codes; ω codes: signed `omega_bits` (Ω) codes, the top Ω
  bits of a phase increment; running sums `acc_bits` wide (`minimal_acc_bits`: the least
  that cannot overflow); per-cell shifts F_i of `shift_bits`.

The bus address space (`k_base` … `phase_base`) is laid out in `oscsim.fixedpoint.images`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from oscsim.errors import OscsimError
from oscsim.quant import qmax, quantize

# the running sums go through a float64 GEMM, exact for integers below 2^52, and
# comb_i = c_i·S_i − s_i·C_i (acc_bits + sine_bits ≤ 62 bits) through int64
_MAX_ACC_BITS = 46


def _int_field(name: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise OscsimError(f"TileFormat.{name} must be an integer in {lo}..{hi}, not {value!r}")
    return value


def minimal_acc_bits(cells: int, weight_bits: int, sine_bits: int) -> int:
    """Bits of a signed accumulator that cannot overflow on Σ_j k_ij·s_j over `cells` sources."""
    worst = cells * qmax(weight_bits) * qmax(sine_bits)
    return worst.bit_length() + 1


@dataclass(frozen=True, kw_only=True)
class TileFormat:
    """The widths of one digital tile; the RTL's parameters are these numbers.

    Attributes:
        n: main cells N.
        n_cond: conditioning cells N_c (0: an unconditioned tile).
        phase_bits: P, phase accumulator width (2π ↔ 2^P).
        weight_bits: signed coupling code width.
        sine_bits: signed sine-table entry width (amplitude q_max(sine_bits)).
        lut_bits: log2 of the number of sine-table entries (≤ phase_bits).
        omega_bits: Ω, signed ω code width; a code is 2^(P−Ω) phase LSBs per step, so
            |ω|·h up to ≈ π at a resolution of 2π/2^Ω per step. None: min(phase_bits, 16).
        acc_bits: width of the running sums S_i, C_i; None picks the least that cannot
            overflow (`minimal_acc_bits`), a smaller value is refused.
        shift_bits: width of the per-cell shift F_i.
    """

    n: int
    n_cond: int = 0
    phase_bits: int = 16
    weight_bits: int = 8
    sine_bits: int = 12
    lut_bits: int = 10
    omega_bits: int | None = None
    acc_bits: int | None = None
    shift_bits: int = 6

    def __post_init__(self) -> None:
        _int_field("n", self.n, 1, 4096)
        _int_field("n_cond", self.n_cond, 0, 4096)
        _int_field("phase_bits", self.phase_bits, 4, 31)
        _int_field("weight_bits", self.weight_bits, 2, 16)
        _int_field("sine_bits", self.sine_bits, 2, 16)
        _int_field("lut_bits", self.lut_bits, 2, min(self.phase_bits, 16))
        if self.omega_bits is None:
            object.__setattr__(self, "omega_bits", min(self.phase_bits, 16))
        _int_field("omega_bits", self.omega_bits, 2, min(self.phase_bits, 16))
        _int_field("shift_bits", self.shift_bits, 1, 6)
        least = minimal_acc_bits(self.cells, self.weight_bits, self.sine_bits)
        if self.acc_bits is None:
            object.__setattr__(self, "acc_bits", least)
        most = _MAX_ACC_BITS
        if isinstance(self.acc_bits, bool) or not isinstance(self.acc_bits, int) or not least <= self.acc_bits <= most:
            raise OscsimError(
                f"TileFormat.acc_bits must be an integer in {least}..{most} for {self.cells} cells of "
                f"{self.weight_bits}-bit weights and {self.sine_bits}-bit sines (no overflow), "
                f"not {self.acc_bits!r}"
            )

    @property
    def cells(self) -> int:
        """M = N + N_c, the cells of the tile (the RTL's N_CELLS)."""
        return self.n + self.n_cond

    @property
    def lut_size(self) -> int:
        return 1 << self.lut_bits

    @property
    def sine_amplitude(self) -> int:
        """A: the sine table's value for sin = 1."""
        return qmax(self.sine_bits)

    @property
    def prod_bits(self) -> int:
        """Width of comb_i = c_i·S_i − s_i·C_i."""
        return self.acc_bits + self.sine_bits

    @property
    def max_shift(self) -> int:
        return min((1 << self.shift_bits) - 1, self.prod_bits)

    @property
    def cycles_per_step(self) -> int:
        """Clock cycles of one Euler step: M source cycles, pipeline drain, combine, update."""
        return self.cells + 3

    @property
    def k_base(self) -> int:
        return 0

    @property
    def omega_base(self) -> int:
        return self.cells * self.cells

    @property
    def shift_base(self) -> int:
        return self.omega_base + self.cells

    @property
    def lut_base(self) -> int:
        return self.shift_base + self.cells

    @property
    def phase_base(self) -> int:
        return self.lut_base + self.lut_size

    @property
    def image_words(self) -> int:
        """Words of the memory image (addresses 0 .. image_words − 1)."""
        return self.phase_base

    @property
    def address_words(self) -> int:
        """Words of the whole bus address space (image + phases)."""
        return self.phase_base + self.cells

    def rtl_parameters(self) -> dict[str, int]:
        """The Verilog parameters of `kuramoto_tile` for this format."""
        return {
            "N_CELLS": self.cells,
            "PHASE_BITS": self.phase_bits,
            "WEIGHT_BITS": self.weight_bits,
            "SINE_BITS": self.sine_bits,
            "LUT_BITS": self.lut_bits,
            "OMEGA_BITS": self.omega_bits,
            "ACC_BITS": self.acc_bits,
            "SHIFT_BITS": self.shift_bits,
        }


def sine_table(fmt: TileFormat) -> Tensor:
    """(L,) int64: ``round(A · sin(2πk/L))``, the tile's sine/cosine table."""
    k = torch.arange(fmt.lut_size, dtype=torch.float64)
    s = torch.sin(2 * math.pi * k / fmt.lut_size)
    return quantize(s, 1.0 / fmt.sine_amplitude, fmt.sine_bits).to(torch.int64)


def phase_to_code(theta: Tensor, fmt: TileFormat) -> Tensor:
    """int64 phase codes ``floor(θ·2^P/2π + ½)``, not reduced mod 2^P (the tile reduces)."""
    if not isinstance(theta, Tensor) or not theta.is_floating_point():
        raise OscsimError("theta must be a floating-point tensor of phases in radians")
    x = theta.to(torch.float64) * ((1 << fmt.phase_bits) / (2 * math.pi))
    return torch.floor(x + 0.5).to(torch.int64)


def code_to_phase(codes: Tensor, fmt: TileFormat, *, dtype: torch.dtype = torch.float64) -> Tensor:
    """Radians of phase codes (unwrapped codes give unwrapped phases)."""
    return codes.to(dtype) * (2 * math.pi / (1 << fmt.phase_bits))
