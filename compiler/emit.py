"""Emitters: a compiled array's parts in the forms other tools read.

- `rtl_tile`: the digital tile's memory image for one tile of the IR (`$readmemh` file,
  the bus transaction list that programs it, and the tile's parameters), through the
  golden model's own writers (`oscsim.fixedpoint`), so the RTL, the golden model and
  this file agree by construction.
- `spice_array` (with `choose_cells`): a few cells of the IR as the numbers a SPICE array
  realises (target frequencies, coupler codes, the realised K, the check's τ); pure
  numbers, `analysis.array_check` builds and runs the circuit.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from compiler.ir import ArrayIR
from compiler.options import CompileError
from oscsim import atomic_path


def rtl_tile(ir: ArrayIR, tile: int, out: str | Path, *, label: int | None = None, phase_bits: int = 16,
             sine_bits: int = 12, lut_bits: int = 10) -> dict:
    """Write ``tile{t}.memh``, ``tile{t}.bus.json`` and ``tile{t}.json`` into `out`.

    The tile holds the tile's main oscillators (in the IR's order) and every conditioning
    oscillator; couplings arriving from other tiles are not part of a stand-alone tile.
    Its codes fold the Euler step h = T/steps, 2π and a power-of-two shift per row into
    integers (`TileProgram.from_params`), so they are the IR's dequantised values
    requantised at the IR's coupling width, not the IR's codes verbatim. `label` picks
    the class whose drive is loaded (None: the class-free tile, drive off).
    """
    from oscsim.fixedpoint import (
        TileFormat,
        TileProgram,
        bus_transactions,
        subsystem,
        write_readmemh,
    )

    tiles = ir.tiles
    if not 0 <= tile < len(tiles):
        raise CompileError(f"--rtl-tile {tile}: this IR has tiles 0..{len(tiles) - 1}")
    dyn = ir.dynamics
    classes = dyn.num_classes
    if label is not None and not 0 <= label < classes:
        raise CompileError(f"--label {label}: this model has classes 0..{classes - 1}")
    if dyn.steps < 1:
        raise CompileError("the IR integrates 0 steps: there is no Euler step to program")
    members = tiles[tile]
    bits = max(2, ir.code_bits.K)
    fmt = TileFormat(n=len(members), n_cond=ir.n_cond, phase_bits=phase_bits, weight_bits=bits,
                     sine_bits=sine_bits, lut_bits=lut_bits)
    sub = subsystem(ir.to_params(dtype=torch.float64), members)
    program = TileProgram.from_params(sub, h=dyn.T / dyn.steps, fmt=fmt, label=label)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"tile{tile}"
    write_readmemh(program, stem.with_suffix(".memh"))
    with atomic_path(stem.with_suffix(".bus.json")) as tmp:
        Path(tmp).write_text(json.dumps([[a, d] for a, d in bus_transactions(program)]) + "\n")
    info = {"tile": tile, "oscillators": members, "label": label, "rtl_parameters": fmt.rtl_parameters(),
            "cycles_per_step": fmt.cycles_per_step, "steps": dyn.steps,
            "quantization": program.quantization.summary() if program.quantization is not None else None,
            "files": [stem.with_suffix(".memh").name, stem.with_suffix(".bus.json").name]}
    with atomic_path(stem.with_suffix(".json")) as tmp:
        Path(tmp).write_text(json.dumps(info, indent=1) + "\n")
    return {**info, "program": program}


# --- a few cells of the array, as the SPICE array check realises them -----------------------
SPICE_ARRAY_FORMAT = "un0hw-spice-array"
SPICE_ARRAY_MIN_CELLS, SPICE_ARRAY_MAX_CELLS = 4, 8


def choose_cells(ir: ArrayIR, n: int, *, omega_window: float | None = None) -> list[int]:
    """`n` main oscillators for the SPICE array check, chosen so that coupling matters.

    Greedy, deterministic: start from the pair with the largest symmetric coupling
    |K̄_ij| = |K_ij + K_ji| / 2 whose frequencies differ by at most `omega_window` (model
    units; default: the IR's frequency step, the smallest non-zero |ω_i − ω_j|), then add
    the cell with the largest Σ_{j in set} |K̄_ij| that keeps max ω − min ω of the set within
    the window. A set whose detunings are far beyond its couplings only drifts, and the
    check would then test the trim, not the coupler.
    """
    if isinstance(n, bool) or not isinstance(n, int) or not SPICE_ARRAY_MIN_CELLS <= n <= SPICE_ARRAY_MAX_CELLS:
        raise CompileError(f"n must be an integer in {SPICE_ARRAY_MIN_CELLS}..{SPICE_ARRAY_MAX_CELLS}, not {n!r}")
    p = ir.to_params(dtype=torch.float64)
    if n > p.n:
        raise CompileError(f"n = {n} cells asked for, but this IR has {p.n} main oscillators")
    ks = ((p.K + p.K.T) / 2).abs()
    omega = p.omega
    if omega_window is None:
        gaps = (omega[:, None] - omega[None, :]).abs()
        gaps = gaps[gaps > 1e-12]
        omega_window = float(gaps.min()) if gaps.numel() else 0.0
    if not omega_window >= 0:
        raise CompileError(f"omega_window must be >= 0, not {omega_window!r}")
    close = (omega[:, None] - omega[None, :]).abs() <= omega_window + 1e-12
    score = torch.where(close, ks, torch.zeros_like(ks))
    i, j = divmod(int(torch.argmax(score)), p.n)
    chosen = [i, j] if i != j else [0, 1]
    while len(chosen) < n:
        lo, hi = float(omega[chosen].min()), float(omega[chosen].max())
        fits = ((torch.maximum(omega, torch.tensor(hi, dtype=omega.dtype))
                 - torch.minimum(omega, torch.tensor(lo, dtype=omega.dtype))) <= omega_window + 1e-12)
        gain = ks[:, chosen].sum(dim=1)
        gain[chosen] = -1.0
        gain[~fits] = -1.0
        best = int(torch.argmax(gain))
        if gain[best] < 0:  # nothing fits the window: widen it to the nearest frequency
            gain = ks[:, chosen].sum(dim=1) - 1e3 * (omega - omega[chosen].mean()).abs()
            gain[chosen] = -float("inf")
            best = int(torch.argmax(gain))
        chosen.append(best)
    return chosen


def spice_array(ir: ArrayIR, cells: list[int] | tuple[int, ...], *, calibration=None, label: int | None = None,
                tau_s: float | None = None, carrier_hz: float | None = None, min_cycles: float = 60.0,
                trim: str = "closed") -> dict:
    r"""The realisable circuit for a few main oscillators of `ir`: pure numbers, no SPICE.

    The chosen cells (IR indices, in that order) form a closed system, dθ_i/dt = ω_i +
    Σ_j K_ij sin(θ_j − θ_i) in the model, which an array of `calibration`'s cells and coupler
    DACs realises as `circuit_array` describes (codes at the pairs' loads, the measured
    coupling function H, the trim). Couplings to cells outside the set, and the class drive
    from the conditioning oscillators (`label`), are not part of the circuit and are reported
    as dropped, with the antisymmetric part of K a reciprocal DAC cannot realise.

    Returns a JSON-ready dict (`format` "un0hw-spice-array"); `analysis.array_check` builds the
    circuit and the matching oscsim system from it.
    """
    cal = calibration or ir.calibration  # default: the cells the array was compiled onto
    cells = [int(c) for c in cells]
    if not SPICE_ARRAY_MIN_CELLS <= len(cells) <= SPICE_ARRAY_MAX_CELLS:
        raise CompileError(f"cells must list {SPICE_ARRAY_MIN_CELLS}..{SPICE_ARRAY_MAX_CELLS} main oscillators, "
                           f"not {len(cells)}")
    p = ir.to_params(dtype=torch.float64)
    if len(set(cells)) != len(cells) or min(cells) < 0 or max(cells) >= p.n:
        raise CompileError(f"cells must be distinct main-oscillator indices in 0..{p.n - 1}, not {cells}")
    classes = ir.dynamics.num_classes
    if label is not None and not 0 <= label < classes:
        raise CompileError(f"label {label}: this model has classes 0..{classes - 1} (or None)")
    idx = torch.tensor(cells)
    K = p.K[idx][:, idx]
    doc = circuit_array(K, p.omega[idx], cal, tau_s=tau_s, carrier_hz=carrier_hz, min_cycles=min_cycles, trim=trim,
                        T=ir.dynamics.T)
    k_norm = float(K.norm())
    outside = p.K[idx].clone()
    outside[:, idx] = 0.0
    doc.update({
        "cells": cells, "label": label, "tau_ir_s": ir.tau_s, "T_ir": ir.dynamics.T, "K_model": K.tolist(),
        "dropped": {
            **doc["dropped"],
            "antisymmetric_rel": float(((K - K.T) / 2).norm()) / k_norm if k_norm else 0.0,
            "outside_coupling_abs_sum": float(outside.abs().sum()),
            "inside_coupling_abs_sum": float(K.abs().sum()),
            "drive_abs_sum": float(p.drive[label][idx].abs().sum()) if label is not None else 0.0,
        },
    })
    return doc


def circuit_array(K: torch.Tensor, omega: torch.Tensor, cal, *, tau_s: float | None = None,
                  carrier_hz: float | None = None, min_cycles: float = 60.0, trim: str = "closed",
                  T: float = 1.0) -> dict:
    r"""Cells with model couplings K (n, n) and frequencies ω (n,) as an array of `cal`'s cells.

    - **Couplings** (`compiler.circuit.realise_symmetric`): one reciprocal DAC per pair, at the
      code whose measured fundamental a1 at the pair's loads is nearest |K̄_ij|/τ; the
      realised system is the measured coupling function of each direction in model units,

          dθ_i/dt = ω̃_i + Σ_j H_ij(θ_j − θ_i),   H_ij = τ·coef(code_ij, m_i, m_j),

      K̂_ij = τ·a1 and the rest an `oscsim.Harmonics` (none for a sine-only calibration).
    - **Trim** (`trim`, `compiler.circuit.TRIMS`): ω̃ = ω − Σ_j b0_ij ('closed') or ω ('open');
      each cell's open-coupler target is f_c + ω̃_i / (2π τ).
    - **Carrier** f_c: the calibration's `carrier_hz` (where H was measured), else
      f0·(1 − coupler_load_f_rel) (a cell with one coupler attached at the nominal control).
    - **τ** (unless `tau_s`): the strongest pair at full code, τ = max_ij |K̄_ij| / a1(full
      code at the pair's loads); raised where the frequency offsets would leave the tuning
      range. The report says which rule set it.
    - **Time**: T_check = max(T, min_cycles / (f_c τ)) model units, at least `min_cycles`
      carrier cycles (the phase model describes cycle-averaged motion).
    """
    from compiler.circuit import TRIMS, realise_symmetric, trim_omega

    if trim not in TRIMS:
        raise CompileError(f"trim must be one of {', '.join(TRIMS)}, not {trim!r}")
    if trim == "trajectory":
        raise CompileError("the 'trajectory' trim is fitted on a whole model's trajectories "
                           "(ArrayIR.to_model(trim='trajectory')); a few cells take 'closed' or 'open'")
    K = K.to(torch.float64)
    omega = omega.to(torch.float64)
    n = K.shape[0]
    k_sym = (K + K.T) / 2
    if float(k_sym.abs().max()) <= 0:
        raise CompileError("these cells share no coupling: nothing for the coupler to realise")
    if tau_s is not None and not (isinstance(tau_s, (int, float)) and math.isfinite(tau_s) and tau_s > 0):
        raise CompileError(f"tau_s must be a positive number of seconds, not {tau_s!r}")
    f_c = float(carrier_hz) if carrier_hz is not None else (
        cal.carrier_hz if cal.carrier_hz is not None else cal.f0_hz * (1 - cal.coupler_load_f_rel))
    if not f_c > 0:
        raise CompileError(f"carrier_hz must be > 0, not {carrier_hz!r}")
    offset = omega - omega.mean()  # a common offset is a carrier shift: only the spread must be tuned
    tau_tuning = float(offset.abs().max()) / (2 * math.pi * cal.tuning_half_range_hz)
    if tau_s is not None:
        tau, rule = float(tau_s), "given"
        realised = realise_symmetric(K, tau, cal)
    else:
        sign = torch.sign(k_sym).to(torch.int64).numpy()
        full = sign * cal.max_code
        load = cal.coupler_load(full).sum(axis=1)  # first guess: every pair at full code
        for _ in range(4):  # loads set the full code's strength, τ the codes, the codes the loads
            w = cal.coupler_load(full)
            m_r, m_s = 1.0 + load[:, None] - w, 1.0 + load[None, :] - w
            a1 = np.abs(cal.coupling_coefficients(full, m_r, m_s)[..., 1])
            a1_pair = torch.from_numpy(np.sqrt(a1 * a1.T))
            ratio = torch.where(k_sym != 0, k_sym.abs() / a1_pair.clamp(min=1e-30), torch.zeros_like(k_sym))
            tau = float(ratio.max())
            rule = "strongest chosen pair at full code: tau = max|K_sym_ij| / a1(full code at the pair's loads)"
            if tau_tuning > tau:
                tau, rule = tau_tuning, "tuning range: tau = max|omega_i - mean omega| / (2 pi tuning half range)"
            realised = realise_symmetric(K, tau, cal)
            if np.allclose(realised.load_recv, load):
                break
            load = realised.load_recv
    k_hat, harmonics = realised.model_units(tau)
    omega_trim = trim_omega(omega, harmonics, trim=trim)
    codes = realised.codes
    couplings = [[i, j, int(codes[i, j])] for i in range(n) for j in range(i + 1, n) if int(codes[i, j]) != 0]
    T_check = max(T, min_cycles / (f_c * tau))
    target = (f_c + omega_trim / (2 * math.pi * tau)).tolist()
    if min(target) <= cal.f_min_hz or max(target) >= cal.f_max_hz:
        raise CompileError(f"target frequencies {min(target):.4g}..{max(target):.4g} Hz leave the cell's tuning "
                           f"range {cal.f_min_hz:.4g}..{cal.f_max_hz:.4g} Hz; choose a carrier or a larger tau_s")
    want = k_sym.abs() / tau
    upper = np.triu(np.ones((n, n), dtype=bool), 1)
    m_r, m_s = realised.loads()
    a1_full = cal.coupling_coefficients(np.full((n, n), cal.max_code), m_r, m_s)[..., 1]
    clipped = int(((want.numpy() > a1_full * (1 + 1e-9)) & upper).sum())
    to_zero = int(((want.numpy() > 0) & (codes == 0) & upper).sum())
    row_k = k_hat.abs().sum(dim=1) / tau
    return {
        "format": SPICE_ARRAY_FORMAT,
        "cells": list(range(n)),
        "label": None,
        "tau_s": tau,
        "tau_rule": rule,
        "tau_ir_s": None,
        "carrier_hz": f_c,
        "target_f_hz": target,
        "omega": omega.tolist(),
        "omega_trimmed": omega_trim.tolist(),
        "trim": trim,
        "couplings": couplings,
        "K_model": K.tolist(),
        "K_sym_model": k_sym.tolist(),
        "K_realised_model": k_hat.tolist(),
        "harmonics_model": None if harmonics is None else
        {"a": harmonics.a.tolist(), "b": harmonics.b.tolist(), "b0": harmonics.b0.tolist()},
        "T_ir": T,
        "T_check": T_check,
        "cycles": T_check * tau * f_c,
        "calibration": {"source": cal.source, "format_version": cal.format_version, "sine_only": cal.sine_only,
                        "k_eff_rad_s": cal.coupler_k_rad_s, "f0_hz": cal.f0_hz,
                        "coupler_load_f_rel": cal.coupler_load_f_rel, "coupler_bits": cal.coupler_bits},
        "dropped": {
            "antisymmetric_rel": 0.0,
            "quantisation_rel": float((k_hat - k_sym).norm() / k_sym.norm()) if float(k_sym.norm()) else 0.0,
            "clipped_pairs": clipped,
            "pairs_rounded_to_zero": to_zero,
            "outside_coupling_abs_sum": 0.0,
            "inside_coupling_abs_sum": float(K.abs().sum()),
            "drive_abs_sum": 0.0,
        },
        "physical": {
            "coupler_k_max_used_rad_s": float(want.max()),
            "max_offset_hz": float((omega / (2 * math.pi * tau)).abs().max()),
            "weak_coupling_fraction": float(row_k.max()) / (2 * math.pi * f_c),
            "tuning_tau_s": tau_tuning,
            "couplers_per_cell": realised.couplers_per_cell.astype(int).tolist(),
            "load_per_cell": realised.load_recv.tolist(),
            "fanout_beyond_table": cal.fanout_beyond(realised.loads()[0][codes != 0]),
            "closing_shift_hz": (None if harmonics is None else
                                 (harmonics.row_const() / (2 * math.pi * tau)).tolist()),
            "coupling_model": ("sine only (calibration format 1): H = K_eff(code) sin x" if cal.sine_only else
                               "measured coupling function: H_ij = coef(code, m_i, m_j), k <= 3"),
        },
    }


def random_circuit_array(rng, n: int, cal, *, density: float = 0.7, tau_s: float = 10e-9, detune: float = 0.0,
                         min_cycles: float = 60.0, trim: str = "closed") -> dict:
    """A random small array (`circuit_array`) of `n` cells: each pair coupled with probability
    `density` (at least a spanning chain), at a random signed code (both signs, any
    magnitude), and frequencies uniform within ± `detune` × the mean coupling row sum — so
    that some cells lock and others slip. Model time is `tau_s` seconds per unit."""
    if not SPICE_ARRAY_MIN_CELLS <= n <= SPICE_ARRAY_MAX_CELLS:
        raise CompileError(f"n must be in {SPICE_ARRAY_MIN_CELLS}..{SPICE_ARRAY_MAX_CELLS}, not {n!r}")
    a1 = np.asarray(cal.coupler_k_rad_s)
    codes = np.zeros((n, n), dtype=np.int64)
    for i in range(n):
        for j in range(i + 1, n):
            if j == i + 1 or rng.random() < density:
                codes[i, j] = rng.choice([-1, 1]) * rng.integers(1, cal.max_code + 1)
    codes = codes + codes.T
    K = torch.from_numpy(np.sign(codes) * a1[np.abs(codes)] * tau_s)
    row = float(K.abs().sum(dim=1).mean())
    omega = torch.from_numpy(rng.uniform(-detune * row, detune * row, n))
    return circuit_array(K, omega, cal, tau_s=tau_s, min_cycles=min_cycles, trim=trim)
