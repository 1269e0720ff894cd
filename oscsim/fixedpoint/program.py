r"""`TileProgram`: the integer codes one tile's memory holds, quantised from a float system.

The tile holds M = N + N_c cells: the N main oscillators and the N_c conditioning
oscillators of one class-conditional Kuramoto system. The conditioning cells are ordinary
cells whose coupling rows hear only each other (the release's uni-directional drive), so
the tile's M×M coupling memory (`TileProgram.coupling`) is::

    [[ K        D[c] ]      rows 0..N−1:   main cells (D[c]: the drive of class c)
     [ 0        C    ]]     rows N..M−1:   conditioning cells

`TileProgram.from_float` folds the Euler step h and 2π into the codes: ω in units of
2^(P−Ω) phase LSBs per step (scale 2π/(h·2^Ω) rad per unit model time per code) and the
row-i couplings with scale s_i = 2π·A²·2^−F_i/(h·2^P), the smallest such power-of-two step
that is at least the scale `oscsim.quant.choose_scale` picked for the row, so the hardware
multiplies and shifts integers only. What it did (lossy: it says so) is in
`TileProgram.quantization`, a `TileQuantization`. `subsystem` cuts one tile's worth out of
a larger system.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor

from oscsim.errors import OscsimError
from oscsim.fixedpoint.format import TileFormat
from oscsim.params import KuramotoParams
from oscsim.quant import SCALE_METHODS, choose_scale, qmax, quantize


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
