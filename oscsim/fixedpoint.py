r"""The digital Kuramoto tile's fixed-point arithmetic: the bit-exact golden model of the RTL.

The tile (``hw/rtl/kuramoto_tile.v``) holds M = N + N_c cells: the N main oscillators and
the N_c conditioning oscillators of one class-conditional Kuramoto system, all as phase
accumulators. The conditioning cells are ordinary cells whose coupling rows hear only
each other (the release's uni-directional drive), so the tile's M×M coupling memory is::

    [[ K        D[c] ]      rows 0..N−1:   main cells (D[c]: the drive of class c)
     [ 0        C    ]]     rows N..M−1:   conditioning cells

Numbers (all integers; P = phase_bits, L = 2^lut_bits, A = q_max(sine_bits)):

- phase θ_i: a P-bit unsigned code, 2π ↔ 2^P (wraps by itself).
- sine table: ``lut[k] = round(A · sin(2πk/L))`` (`oscsim.quant.quantize`, round half away
  from zero); ``idx(θ) = ((θ + 2^(P−lut_bits−1)) >> (P − lut_bits)) mod L`` (nearest
  entry), ``s = lut[idx]``, ``c = lut[(idx + L/4) mod L]``.
- coupling: per cell two running sums over the M sources j (one source per clock cycle,
  all cells in parallel), ``S_i = Σ_j k_ij s_j`` and ``C_i = Σ_j k_ij c_j`` (acc_bits
  wide), then ``comb_i = c_i·S_i − s_i·C_i`` (= Σ_j k_ij·A² sin(θ_j − θ_i), the identity
  sin(a − b) = sin a cos b − cos a sin b, exact in integers).
- update: ``θ_i ← (θ_i + ω_i·2^(P−Ω) + ((comb_i + 2^(F_i−1)) >> F_i)) mod 2^P`` with an
  arithmetic (floor) shift, F_i the cell's shift (no rounding term when F_i = 0) and
  Ω = omega_bits (the ω code is the top Ω bits of a phase increment).

`TileProgram.from_float` folds the Euler step h and 2π into the codes: ω in units of
2^(P−Ω) phase LSBs per step (scale 2π/(h·2^Ω) rad per unit model time per code) and the row-i couplings with
scale s_i = 2π·A²·2^−F_i/(h·2^P), the smallest such power-of-two step that is at least the
scale `oscsim.quant.choose_scale` picked for the row, so the hardware multiplies and shifts
integers only. What it did is in `TileProgram.quantization`.

Bus address space of the tile (32-bit words; the memory image is its first part)::

    K_BASE     = 0              M·M words  coupling code k_ij at K_BASE + i·M + j
    OMEGA_BASE = M·M            M words    ω_i code (2^(P−Ω) phase LSBs per step)
    SHIFT_BASE = M·M + M        M words    F_i
    LUT_BASE   = M·M + 2M       L words    sine table
    PHASE_BASE = M·M + 2M + L   M words    phases θ_i (read/write; not in the image)

Signed codes are written as 32-bit two's complement words.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor

from oscsim.errors import OscsimError
from oscsim.fileio import atomic_path
from oscsim.params import KuramotoParams
from oscsim.quant import SCALE_METHODS, choose_scale, qmax, quantize
from oscsim.simulate import SimResult, _checked_labels, check_run

WORD_MASK = 0xFFFFFFFF
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


@dataclass(frozen=True, eq=False)
class TileQuantization:
    """What `TileProgram.from_float` did (lossy: it says so).

    Attributes:
        k_scale: (M,) coupling scale s_i of each row, rad per unit model time per code.
        omega_scale: ω/ν scale, rad per unit model time per code (one phase LSB per step).
        clipped: codes clipped to ±q_max, per tensor ('K', 'drive', 'C', 'omega', 'nu').
        row_abs_sum: (M,) Σ_j |K_ij| of the float row (main rows: the largest over classes).
        row_err_sum: (M,) Σ_j |k_ij·s_i − K_ij| (main rows: the largest over classes).
        freq_err: (M,) |ω_code·scale − ω| per cell, rad per unit model time.
        shift_saturated: rows whose ideal shift fell outside 0..max_shift.
    """

    k_scale: Tensor
    omega_scale: float
    clipped: dict[str, int]
    row_abs_sum: Tensor
    row_err_sum: Tensor
    freq_err: Tensor
    shift_saturated: int

    def summary(self) -> str:
        clip = ", ".join(f"{k} {v}" for k, v in self.clipped.items())
        return (
            f"coupling scale {float(self.k_scale.min()):.3g}..{float(self.k_scale.max()):.3g} rad/t per code, "
            f"ω scale {self.omega_scale:.3g} rad/t per code; clipped: {clip}; "
            f"worst row error Σ|ΔK| {float(self.row_err_sum.max()):.3g}, worst |Δω| "
            f"{float(self.freq_err.max()):.3g}; shifts saturated: {self.shift_saturated}"
        )


def _code_tensor(name: str, value: object, shape: tuple[int, ...], lo: int, hi: int) -> Tensor:
    if not isinstance(value, Tensor) or value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
        got = value.dtype if isinstance(value, Tensor) else type(value).__name__
        raise OscsimError(f"TileProgram.{name} must be an integer tensor, not {got}")
    if tuple(value.shape) != shape:
        raise OscsimError(f"TileProgram.{name} must have shape {shape}, not {tuple(value.shape)}")
    value = value.to(device="cpu", dtype=torch.int64)
    if value.numel() and (int(value.min()) < lo or int(value.max()) > hi):
        raise OscsimError(
            f"TileProgram.{name} codes must lie in [{lo}, {hi}]; got [{int(value.min())}, {int(value.max())}]"
        )
    return value


@dataclass(frozen=True, kw_only=True, eq=False)
class TileProgram:
    """Integer codes of one tile: what its memory holds (see the module docstring).

    Attributes:
        fmt: the tile's widths.
        K: (N, N) main coupling codes (the diagonal is ignored by the arithmetic).
        omega: (N,) main frequency codes, 2^(P−Ω) phase LSBs per step.
        drive: (classes, N, N_c) conditioning → main codes of every class.
        C: (N_c, N_c) conditioning coupling codes.
        nu: (N_c,) conditioning frequency codes.
        shift: (M,) F_i per cell.
        label: the class whose drive the image carries; None: no drive (zeros).
        quantization: what `from_float` did, or None for a program built from codes.
    """

    fmt: TileFormat
    K: Tensor
    omega: Tensor
    drive: Tensor
    C: Tensor
    nu: Tensor
    shift: Tensor
    label: int | None = None
    quantization: TileQuantization | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        fmt = self.fmt
        if not isinstance(fmt, TileFormat):
            raise OscsimError(f"TileProgram.fmt must be a TileFormat, not {type(fmt).__name__}")
        n, c = fmt.n, fmt.n_cond
        qw, qo = qmax(fmt.weight_bits), qmax(fmt.omega_bits)
        drive = self.drive
        if isinstance(drive, Tensor) and drive.ndim == 2:
            drive = drive.unsqueeze(0)
        classes = drive.shape[0] if isinstance(drive, Tensor) and drive.ndim == 3 else 1
        checked = {
            "K": _code_tensor("K", self.K, (n, n), -qw, qw),
            "omega": _code_tensor("omega", self.omega, (n,), -qo, qo),
            "drive": _code_tensor("drive", drive, (classes, n, c), -qw, qw),
            "C": _code_tensor("C", self.C, (c, c), -qw, qw),
            "nu": _code_tensor("nu", self.nu, (c,), -qo, qo),
            "shift": _code_tensor("shift", self.shift, (fmt.cells,), 0, fmt.max_shift),
        }
        for name, value in checked.items():
            object.__setattr__(self, name, value)
        label = self.label
        if label is not None and (isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < classes):
            raise OscsimError(f"TileProgram.label must be None or a class in 0..{classes - 1}, not {label!r}")

    @property
    def num_classes(self) -> int:
        return self.drive.shape[0]

    def with_label(self, label: int | None) -> TileProgram:
        """The same program with another class's drive selected (None: no drive)."""
        return replace(self, label=label)

    def coupling(self, label: int | None = None) -> Tensor:
        """(M, M) int64: the tile's coupling memory for `label` (−1 or None: no drive)."""
        n, m = self.fmt.n, self.fmt.cells
        full = torch.zeros(m, m, dtype=torch.int64)
        full[:n, :n] = self.K
        full[n:, n:] = self.C
        if label is not None and label >= 0:
            full[:n, n:] = self.drive[label]
        idx = torch.arange(m)
        full[idx, idx] = 0  # the self term c_i·s_i − s_i·c_i vanishes: the image carries 0
        return full

    def frequencies(self) -> Tensor:
        """(M,) int64: ω then ν codes."""
        return torch.cat((self.omega, self.nu))

    @classmethod
    def from_float(
        cls,
        K: Tensor,
        omega: Tensor,
        drive: Tensor | None = None,
        *,
        h: float,
        fmt: TileFormat,
        C: Tensor | None = None,
        nu: Tensor | None = None,
        label: int | None = None,
        scale_method: str = "max",
        percentile: float = 99.9,
    ) -> TileProgram:
        """Quantise float model values (rad per unit model time) for an Euler step h.

        Args:
            K: (N, N) main coupling; omega: (N,) main frequencies.
            drive: (classes, N, N_c) or (N, N_c) conditioning → main coupling, or None
                (only for N_c = 0).
            h: Euler step T/steps in model time.
            fmt: the tile's widths (N and N_c must match the tensors).
            C, nu: conditioning coupling (N_c, N_c) and frequencies (N_c,); None for N_c = 0.
            label: the class whose drive the memory image carries (None: no drive).
            scale_method, percentile: how `oscsim.quant.choose_scale` picks each row's
                clip ('max' never clips); the row scale is then rounded up to the tile's
                power-of-two grid.
        """
        if not isinstance(fmt, TileFormat):
            raise OscsimError(f"fmt must be a TileFormat, not {type(fmt).__name__}")
        if isinstance(h, bool) or not isinstance(h, (int, float)) or not (math.isfinite(h) and h > 0):
            raise OscsimError(f"h must be a positive finite number, not {h!r}")
        if scale_method not in SCALE_METHODS:
            raise OscsimError(f"scale_method must be one of {', '.join(SCALE_METHODS)}; got {scale_method!r}")
        n, c = fmt.n, fmt.n_cond
        K = _float_tensor("K", K, (n, n))
        omega = _float_tensor("omega", omega, (n,))
        if drive is None:
            if c:
                raise OscsimError(f"drive is required for a tile with n_cond={c}")
            drive = torch.zeros(1, n, 0, dtype=torch.float64)
        else:
            if isinstance(drive, Tensor) and drive.ndim == 2:
                drive = drive.unsqueeze(0)
            classes = drive.shape[0] if isinstance(drive, Tensor) and drive.ndim == 3 else 1
            drive = _float_tensor("drive", drive, (classes, n, c))
        C = torch.zeros(0, 0, dtype=torch.float64) if C is None and c == 0 else _float_tensor("C", C, (c, c))
        nu = torch.zeros(0, dtype=torch.float64) if nu is None and c == 0 else _float_tensor("nu", nu, (c,))
        eye_n, eye_c = torch.eye(n, dtype=torch.bool), torch.eye(c, dtype=torch.bool)
        K = K.masked_fill(eye_n, 0.0)
        C = C.masked_fill(eye_c, 0.0)

        P, A = fmt.phase_bits, fmt.sine_amplitude
        grid = 2 * math.pi * A * A / (h * (1 << P))  # s_i = grid · 2^−F_i
        # each main row's values over K and the drive of every class; conditioning rows: C
        main_rows = torch.cat((K, drive.permute(1, 0, 2).reshape(n, -1)), dim=1)
        wanted = torch.cat((
            choose_scale(main_rows, fmt.weight_bits, method=scale_method, dim=1, percentile=percentile).reshape(n),
            choose_scale(C, fmt.weight_bits, method=scale_method, dim=1, percentile=percentile).reshape(c)
            if c else torch.zeros(0, dtype=torch.float64),
        ))
        ideal = torch.floor(torch.log2(grid / wanted))
        shift = ideal.clamp(0, fmt.max_shift)
        used = torch.cat((main_rows.abs().amax(1) > 0, C.abs().amax(1) > 0 if c else torch.zeros(0, dtype=torch.bool)))
        saturated = int(((shift != ideal) & used).sum())
        k_scale = grid * torch.pow(2.0, -shift)
        shift = shift.to(torch.int64)
        s_main, s_cond = k_scale[:n], k_scale[n:]
        w = fmt.weight_bits
        k_codes = quantize(K, s_main[:, None], w).to(torch.int64)
        d_codes = quantize(drive, s_main[None, :, None], w).to(torch.int64)
        c_codes = quantize(C, s_cond[:, None], w).to(torch.int64)
        omega_scale = 2 * math.pi / (h * (1 << fmt.omega_bits))
        o_codes = quantize(omega, omega_scale, fmt.omega_bits).to(torch.int64)
        nu_codes = quantize(nu, omega_scale, fmt.omega_bits).to(torch.int64)

        qw, qo = qmax(w), qmax(fmt.omega_bits)
        clipped = {
            "K": int((K.abs() > s_main[:, None] * (qw + 0.5)).sum()),
            "drive": int((drive.abs() > s_main[None, :, None] * (qw + 0.5)).sum()),
            "C": int((C.abs() > s_cond[:, None] * (qw + 0.5)).sum()),
            "omega": int((omega.abs() > omega_scale * (qo + 0.5)).sum()),
            "nu": int((nu.abs() > omega_scale * (qo + 0.5)).sum()),
        }
        k_err = (k_codes * s_main[:, None] - K).abs().sum(1)
        d_err = (d_codes * s_main[None, :, None] - drive).abs().sum(2).amax(0) if c else torch.zeros(n, dtype=torch.float64)
        d_abs = drive.abs().sum(2).amax(0) if c else torch.zeros(n, dtype=torch.float64)
        report = TileQuantization(
            k_scale=k_scale,
            omega_scale=omega_scale,
            clipped=clipped,
            row_abs_sum=torch.cat((K.abs().sum(1) + d_abs, C.abs().sum(1))),
            row_err_sum=torch.cat((k_err + d_err, (c_codes * s_cond[:, None] - C).abs().sum(1))),
            freq_err=torch.cat(((o_codes * omega_scale - omega).abs(), (nu_codes * omega_scale - nu).abs())),
            shift_saturated=saturated,
        )
        return cls(
            fmt=fmt, K=k_codes, omega=o_codes, drive=d_codes, C=c_codes, nu=nu_codes, shift=shift,
            label=label, quantization=report,
        )

    @classmethod
    def from_params(
        cls, params: KuramotoParams, *, h: float, fmt: TileFormat, label: int | None = None, **kwargs
    ) -> TileProgram:
        """`from_float` on a whole `KuramotoParams` (its N and N_c must be the tile's)."""
        if not isinstance(params, KuramotoParams):
            raise OscsimError(f"params must be KuramotoParams, not {type(params).__name__}")
        if (params.n, params.n_cond) != (fmt.n, fmt.n_cond):
            raise OscsimError(
                f"the tile has n={fmt.n}, n_cond={fmt.n_cond}; params have n={params.n}, n_cond={params.n_cond}"
            )
        return cls.from_float(
            params.K, params.omega, params.drive, C=params.C, nu=params.nu, h=h, fmt=fmt, label=label, **kwargs
        )


def subsystem(params: KuramotoParams, cells: Tensor | list[int] | range) -> KuramotoParams:
    """One tile's worth of a system: the main oscillators `cells` (indices into N, in that
    order) with every conditioning oscillator. Couplings from main oscillators outside
    `cells` are dropped: the tile is a closed system (the RTL has no inter-tile inputs)."""
    if not isinstance(params, KuramotoParams):
        raise OscsimError(f"params must be KuramotoParams, not {type(params).__name__}")
    idx = torch.as_tensor(list(cells) if isinstance(cells, range) else cells, dtype=torch.int64)
    if idx.ndim != 1 or idx.numel() == 0 or int(idx.min()) < 0 or int(idx.max()) >= params.n:
        raise OscsimError(f"cells must be a non-empty list of main-oscillator indices in 0..{params.n - 1}")
    if torch.unique(idx).numel() != idx.numel():
        raise OscsimError("cells must not repeat an oscillator")
    idx = idx.to(params.device)
    return KuramotoParams(
        K=params.K[idx][:, idx].contiguous(), omega=params.omega[idx].contiguous(),
        drive=params.drive[:, idx].contiguous(), C=params.C, nu=params.nu,
    )


def _float_tensor(name: str, value: object, shape: tuple[int, ...]) -> Tensor:
    if not isinstance(value, Tensor) or not value.is_floating_point():
        got = value.dtype if isinstance(value, Tensor) else type(value).__name__
        raise OscsimError(f"{name} must be a floating-point tensor of shape {shape}, not {got}")
    if tuple(value.shape) != shape:
        raise OscsimError(f"{name} must have shape {shape}, not {tuple(value.shape)}")
    value = value.detach().to(device="cpu", dtype=torch.float64)
    if not bool(torch.isfinite(value).all()):
        raise OscsimError(f"{name} must be finite")
    return value


# ---------------------------------------------------------------------------------------
# The arithmetic


def _labels_or_default(program: TileProgram, labels: Tensor | None, batch: int, device: torch.device) -> Tensor:
    if labels is None:
        default = -1 if program.label is None else program.label
        return torch.full((batch,), default, dtype=torch.int64, device=device)
    if not isinstance(labels, Tensor) or labels.is_floating_point() or tuple(labels.shape) != (batch,):
        got = tuple(labels.shape) if isinstance(labels, Tensor) else type(labels).__name__
        raise OscsimError(f"labels must be an integer tensor of shape ({batch},), not {got}")
    labels = labels.to(device=device, dtype=torch.int64)
    if batch and (int(labels.min()) < -1 or int(labels.max()) >= program.num_classes):
        raise OscsimError(
            f"labels must lie in [0, {program.num_classes}) or be −1 (no drive); "
            f"got [{int(labels.min())}, {int(labels.max())}]"
        )
    return labels


class _Arithmetic:
    """The program's tables on one device, ready for `step`."""

    def __init__(self, program: TileProgram, device: torch.device) -> None:
        fmt = program.fmt
        self.fmt = fmt
        self.lut = sine_table(fmt).to(device)
        self.freq = program.frequencies().to(device) << (fmt.phase_bits - fmt.omega_bits)
        self.shift = program.shift.to(device)
        self.half = torch.where(self.shift > 0, torch.ones_like(self.shift) << (self.shift - 1).clamp(min=0), 0)
        # float64 GEMMs are exact here: every partial sum is an integer below 2^acc_bits ≤ 2^46
        self.n = fmt.n
        self.base_t = program.coupling(None).to(device=device, dtype=torch.float64).T.contiguous()  # no drive
        self.drive_t = program.drive.to(device=device, dtype=torch.float64).transpose(1, 2).contiguous()

    def sincos(self, theta: Tensor) -> tuple[Tensor, Tensor]:
        fmt = self.fmt
        drop = fmt.phase_bits - fmt.lut_bits
        mask = fmt.lut_size - 1
        idx = ((theta + (1 << (drop - 1))) >> drop) & mask if drop else theta & mask
        return self.lut[idx], self.lut[(idx + fmt.lut_size // 4) & mask]

    def step(self, theta: Tensor, runs: list[tuple[int, Tensor | None]]) -> Tensor:
        s, c = self.sincos(theta)
        batch, m = theta.shape
        sc = torch.stack((s, c)).to(torch.float64)  # (2, B, M)
        sums = torch.mm(sc.view(2 * batch, m), self.base_t).view(2, batch, m)
        n = self.n
        if m > n:  # the drive: conditioning sources into main rows, class by class
            for label, rows in runs:
                if label < 0:
                    continue
                if rows is None:
                    sums[:, :, :n] += sc[:, :, n:] @ self.drive_t[label]
                else:
                    sums[:, rows, :n] += sc[:, rows, n:] @ self.drive_t[label]
        S, Csum = sums.to(torch.int64)
        comb = c * S - s * Csum
        return theta + self.freq + ((comb + self.half) >> self.shift)


def _runs(labels: Tensor) -> list[tuple[int, Tensor | None]]:
    values = torch.unique(labels).tolist()
    if len(values) == 1:
        return [(int(values[0]), None)]
    return [(int(v), torch.nonzero(labels == v).reshape(-1)) for v in values]


def step(program: TileProgram, theta: Tensor, labels: Tensor | None = None) -> Tensor:
    """One Euler step of the tile on (B, M) int64 phase codes; returns unreduced codes.

    Reduce mod 2^P (``& (2^P − 1)``) to get what the RTL's phase registers hold.
    `labels` (B,) picks each seed's drive (−1: none); None uses ``program.label``.
    """
    return run(program, theta, 1, labels=labels)[-1]


def run(program: TileProgram, theta0: Tensor, steps: int, *, labels: Tensor | None = None) -> Tensor:
    """(steps + 1, B, M) int64 phase codes after every step, the first being theta0.

    Codes are not reduced mod 2^P: the running sum of every increment (unwrapped), so
    ``code·2π/2^P`` follows the phase like `oscsim.simulate`'s unwrapped output.
    """
    if not isinstance(program, TileProgram):
        raise OscsimError(f"program must be a TileProgram, not {type(program).__name__}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise OscsimError(f"steps must be a non-negative int, not {steps!r}")
    m = program.fmt.cells
    if (
        not isinstance(theta0, Tensor) or theta0.is_floating_point() or theta0.dtype == torch.bool
        or theta0.ndim != 2 or theta0.shape[1] != m
    ):
        got = (theta0.dtype, tuple(theta0.shape)) if isinstance(theta0, Tensor) else type(theta0).__name__
        raise OscsimError(f"theta0 must be an integer tensor of shape (B, M={m}), not {got}")
    theta = theta0.to(torch.int64)
    labels = _labels_or_default(program, labels, theta.shape[0], theta.device)
    arith = _Arithmetic(program, theta.device)
    runs = _runs(labels)
    frames = [theta]
    for _ in range(steps):
        theta = arith.step(theta, runs)
        frames.append(theta)
    return torch.stack(frames)


def simulate_fixed(
    params: KuramotoParams,
    theta0: Tensor,
    labels: Tensor | None = None,
    *,
    steps: int = 10,
    T: float = 1.0,
    fmt: TileFormat,
    scale_method: str = "max",
    record: bool = False,
) -> SimResult:
    """`oscsim.simulate` (Euler) on the digital tile's arithmetic: quantise, run, return radians.

    The whole system is one tile (fmt.n = N, fmt.n_cond = N_c); couplings are quantised with
    `TileProgram.from_params` for h = T/steps, theta0 rounded to the nearest phase code.
    Phases come back unwrapped (the sum of every step's increment), in params' dtype/device.
    """
    check_run(params, theta0, steps=steps, T=T)
    if labels is not None:
        labels = _checked_labels(params, labels, theta0.shape[0])
    program = TileProgram.from_params(params, h=float(T) / max(steps, 1), fmt=fmt, scale_method=scale_method)
    codes = phase_to_code(theta0, fmt).to(params.device)
    traj = run(program, codes, steps, labels=labels)
    phases = code_to_phase(traj, fmt, dtype=params.dtype)
    if not record:
        return SimResult(theta=phases[-1], n=params.n)
    times = torch.linspace(0.0, float(T), steps + 1, dtype=params.dtype, device=params.device)
    return SimResult(theta=phases[-1], n=params.n, times=times, trajectory=phases)


def step_error_bound(program: TileProgram, *, h: float) -> float:
    r"""Bound (rad) on how far one tile step lands from one float Euler step from the same state.

    For a program from `from_float` (it reads the report), from any phases the tile can
    hold. With ε = π/L + 1/(2A) the worst error of one table value (nearest entry: the
    argument is off by ≤ π/L; the value is rounded by ≤ ½ code), R_i = Σ_j|K_ij|,
    Q_i = Σ_j|K_q,ij − K_ij| (measured, clipping included) and Δω_i = |ω_q,i − ω_i|::

        δ = max_i h·(R_i·(4ε + 2ε²) + Q_i·(1 + 2ε)² + Δω_i) + π/2^P

    (4ε + 2ε²: the error of c_i s_j − s_i c_j from four table values; (1 + 2ε)²: its size;
    π/2^P: the final shift rounds to the nearest phase LSB.)
    """
    q = _report(program)
    fmt = program.fmt
    eps = math.pi / fmt.lut_size + 0.5 / fmt.sine_amplitude
    R, Q, dw = q.row_abs_sum, q.row_err_sum, q.freq_err
    per_row = h * (R * (4 * eps + 2 * eps * eps) + Q * (1 + 2 * eps) ** 2 + dw)
    return float(per_row.max()) + math.pi / (1 << fmt.phase_bits)


def phase_error_bound(program: TileProgram, *, steps: int, h: float, theta0_error: float | None = None) -> float:
    r"""Bound (rad) on max_i |θ_tile − θ_float| after `steps` Euler steps of size h.

    Against float Euler (`oscsim.simulate`, exact arithmetic) of the float system the
    program was quantised from, from the same theta0. The float Euler map is Lipschitz in
    the max norm with 1 + hΛ, Λ = 2·max_i R_i (∂v_i/∂θ has row sums ≤ 2R_i), and each tile
    step adds at most δ (`step_error_bound`); so with e_0 the rounding of theta0 (default
    its worst case π/2^P)::

        e_n ≤ (1 + hΛ)^n·e_0 + δ·Σ_{k<n} (1 + hΛ)^k

    Tight for weak coupling (hΛ ≲ 1); for strong coupling the growth factor makes it loose
    and the one-step bound is the informative one.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise OscsimError(f"steps must be a non-negative int, not {steps!r}")
    q = _report(program)
    fmt = program.fmt
    delta = step_error_bound(program, h=h)
    e0 = math.pi / (1 << fmt.phase_bits) if theta0_error is None else float(theta0_error)
    growth = 1 + h * 2 * float(q.row_abs_sum.max())
    return growth**steps * e0 + delta * sum(growth**k for k in range(steps))


def _report(program: TileProgram) -> TileQuantization:
    if not isinstance(program, TileProgram) or program.quantization is None:
        raise OscsimError("the error bounds need a program from TileProgram.from_float (they read its report)")
    return program.quantization


# ---------------------------------------------------------------------------------------
# Memory images (the compiler's emitter calls these)


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
