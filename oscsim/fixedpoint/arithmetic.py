r"""The tile's arithmetic, bit for bit: `step`, `run`, `simulate_fixed`, and its error bounds.

Per Euler step, with the table of `oscsim.fixedpoint.format`:

- ``idx(θ) = ((θ + 2^(P−lut_bits−1)) >> (P − lut_bits)) mod L`` (nearest entry),
  ``s = lut[idx]``, ``c = lut[(idx + L/4) mod L]``.
- coupling: per cell two running sums over the M sources j (one source per clock cycle,
  all cells in parallel), ``S_i = Σ_j k_ij s_j`` and ``C_i = Σ_j k_ij c_j`` (acc_bits
  wide), then ``comb_i = c_i·S_i − s_i·C_i`` (= Σ_j k_ij·A² sin(θ_j − θ_i), the identity
  sin(a − b) = sin a cos b − cos a sin b, exact in integers).
- update: ``θ_i ← (θ_i + ω_i·2^(P−Ω) + ((comb_i + 2^(F_i−1)) >> F_i)) mod 2^P`` with an
  arithmetic (floor) shift, F_i the cell's shift (no rounding term when F_i = 0) and
  Ω = omega_bits (the ω code is the top Ω bits of a phase increment).

`step_error_bound` and `phase_error_bound` bound how far this lands from float Euler.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from oscsim.checks import check_labels, check_run, check_steps
from oscsim.errors import OscsimError
from oscsim.fixedpoint.format import (
    TileFormat,
    code_to_phase,
    phase_to_code,
    sine_table,
)
from oscsim.fixedpoint.program import TileProgram, TileQuantization
from oscsim.params import KuramotoParams
from oscsim.results import SimResult


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
    check_steps(steps)
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


def simulate_fixed(params: KuramotoParams, theta0: Tensor, labels: Tensor | None = None, *, steps: int = 10,
                   T: float = 1.0, fmt: TileFormat, scale_method: str = "max", record: bool = False) -> SimResult:
    """`oscsim.simulate` (Euler) on the digital tile's arithmetic: quantise, run, return radians.

    The whole system is one tile (fmt.n = N, fmt.n_cond = N_c); couplings are quantised with
    `TileProgram.from_params` for h = T/steps, theta0 rounded to the nearest phase code.
    Phases come back unwrapped (the sum of every step's increment), in params' dtype/device.
    """
    check_run(params, theta0, steps=steps, T=T)
    if labels is not None:
        labels = check_labels(params, labels, theta0.shape[0])
    program = TileProgram.from_params(params, h=float(T) / max(steps, 1), fmt=fmt, scale_method=scale_method)
    codes = phase_to_code(theta0, fmt).to(params.device)
    traj = run(program, codes, steps, labels=labels)
    phases = code_to_phase(traj, fmt, dtype=params.dtype)
    return SimResult.of(phases[-1], params.n, T=float(T), trajectory=phases if record else None)


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
    check_steps(steps)
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
