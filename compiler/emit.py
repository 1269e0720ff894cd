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
    from oscsim.fixedpoint import TileFormat, TileProgram, bus_transactions, subsystem, write_readmemh

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
                load_model: bool = True) -> dict:
    r"""The realisable circuit for a few main oscillators of `ir`: pure numbers, no SPICE.

    The chosen cells (IR indices, in that order) form a closed system

        dθ_i/dt = ω_i + Σ_j K̂_ij sin(θ_j − θ_i)         (model units)

    which an array of `calibration`'s cells and coupler DACs realises as follows:

    - **Couplings.** A resistor DAC is reciprocal, so one DAC per pair gives K_ij = K_ji:
      the symmetric part K̄ = (K + Kᵀ)/2 is realised, the antisymmetric part is dropped. Each
      |K̄_ij|/τ (rad/s) takes the code whose measured K_eff (`calibration.coupler_k_rad_s`)
      is nearest (clipped at full code), the sign from K̄_ij; K̂_ij = sign·K_eff(code)·τ
      (times the loading factor below).
      Couplings to cells outside the set, and the class drive from the conditioning
      oscillators (`label`), are not part of the circuit and are reported as dropped.
    - **Loading** (`load_model`). The K_eff table was measured on a pair, one coupler per
      cell. Each attached coupler adds switch capacitance to the cell's nodes (alone it
      lowers f by L = `coupler_load_f_rel`, so C grows by λ = L/(1 − L) of the bare cell's
      per coupler) and the phase a coupler's current moves goes as 1/C: at a cell with m_i
      couplers K_eff is scaled by g_i = (1 + λ)/(1 + m_i λ). Codes are picked for the pair's
      √(g_i g_j); the realised K̂_ij = sign·K_eff(code)·g_i·τ, asymmetric where loads differ.
    - **Frequencies.** Cell i's target (loaded, free-running) frequency is
      f_c + ω_i / (2π τ). The carrier f_c defaults to f0·(1 − coupler_load_f_rel): a cell
      with one coupler attached at the nominal control, the condition the K_eff table was
      measured in (a cell with several couplers is trimmed back up to it).
    - **τ rule.** The IR's τ is set for the whole array (usually by the weak-coupling limit
      over every row), where a handful of cells' couplings fall far below the coupler's LSB.
      Unless `tau_s` is given, the check uses its own τ = max_ij |K̄_ij| / (K_eff(full) g_ij):
      the strongest chosen pair sits at full code and the others use the 3-bit range as
      finely as it allows; τ is raised where the frequency offsets would leave the cell's
      tuning range. The report says which rule set it.
    - **Time.** The same ODE is integrated for T_check = max(T, min_cycles / (f_c τ)) model
      units, so that the physical run T_check·τ holds at least `min_cycles` carrier cycles
      (the phase model describes cycle-averaged motion; at the check's τ the IR's T is a
      cycle or two).

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
    omega = p.omega[idx]
    k_sym = (K + K.T) / 2
    k_anti = (K - K.T) / 2
    k_eff = torch.tensor(cal.coupler_k_rad_s, dtype=torch.float64)
    k_full = float(k_eff[-1])
    f_c = float(carrier_hz) if carrier_hz is not None else cal.f0_hz * (1 - cal.coupler_load_f_rel)
    if not f_c > 0:
        raise CompileError(f"carrier_hz must be > 0, not {carrier_hz!r}")
    # Loading: a coupler's switches add capacitance to the ring nodes they touch (a cell with
    # one coupler runs at f0·(1 − L) at the same control), so a cell with m couplers has
    # C_m / C_0 = 1 + m·λ, λ = L / (1 − L); the current a coupler injects moves the phase by
    # 1/C, so its K at cell i is K_eff(code)·g_i with g_i = (1 + λ) / (1 + m_i·λ) (the K_eff
    # table was measured on a pair: m = 1, g = 1). K̂ is then asymmetric where loads differ.
    lam = cal.coupler_load_f_rel / (1 - cal.coupler_load_f_rel) if load_model else 0.0
    offset = omega - omega.mean()  # a common offset is a carrier shift: only the spread must be tuned
    tau_tuning = float(offset.abs().max()) / (2 * math.pi * cal.tuning_half_range_hz)
    if tau_s is not None and not (isinstance(tau_s, (int, float)) and math.isfinite(tau_s) and tau_s > 0):
        raise CompileError(f"tau_s must be a positive number of seconds, not {tau_s!r}")
    if float(k_sym.abs().max()) <= 0:
        raise CompileError(f"cells {cells} share no coupling: nothing for the coupler to realise")
    n = len(cells)
    attached = torch.full((n,), float(n - 1), dtype=torch.float64)  # first guess: every pair wired
    for _ in range(4):  # the couplers present set the loads, the loads the codes: iterate to a fixed point
        g = (1 + lam) / (1 + attached * lam)
        pair_g = torch.sqrt(g[:, None] * g[None, :])
        if tau_s is not None:
            tau, rule = float(tau_s), "given"
        else:
            tau = float((k_sym.abs() / pair_g).max()) / k_full
            rule = "strongest chosen pair at full code: tau = max|K_sym_ij| / (K_eff(full code) g_ij)"
            if tau_tuning > tau:
                tau, rule = tau_tuning, "tuning range: tau = max|omega_i - mean omega| / (2 pi tuning half range)"
        want = k_sym.abs() / (tau * pair_g)  # rad/s asked of each pair's K_eff table
        code = torch.argmin((want[..., None] - k_eff).abs(), dim=-1)
        code.fill_diagonal_(0)
        new_attached = (code > 0).sum(dim=1).to(torch.float64)
        if torch.equal(new_attached, attached):
            break
        attached = new_attached
    g = (1 + lam) / (1 + attached * lam)
    signed = torch.sign(k_sym).to(torch.int64) * code
    k_hat = torch.sign(k_sym) * k_eff[code] * tau * g[:, None]
    k_hat.fill_diagonal_(0.0)
    couplings = [[i, j, int(signed[i, j])] for i in range(n) for j in range(i + 1, n) if int(signed[i, j]) != 0]
    upper = torch.triu(torch.ones(n, n, dtype=torch.bool), 1)
    clipped = int(((want > k_full * (1 + 1e-9)) & upper).sum())
    to_zero = int(((want > 0) & (code == 0) & upper).sum())
    # what the circuit leaves out
    k_norm = float(K.norm())
    outside = p.K[idx].clone()
    outside[:, idx] = 0.0
    drive = float(p.drive[label][idx].abs().sum()) if label is not None else 0.0
    T_ir = ir.dynamics.T
    T_check = max(T_ir, min_cycles / (f_c * tau))
    row_k = k_hat.abs().sum(dim=1) / tau
    target = (f_c + omega / (2 * math.pi * tau)).tolist()
    if min(target) <= cal.f_min_hz or max(target) >= cal.f_max_hz:
        raise CompileError(f"target frequencies {min(target):.4g}..{max(target):.4g} Hz leave the cell's tuning "
                           f"range {cal.f_min_hz:.4g}..{cal.f_max_hz:.4g} Hz; choose a carrier or a larger tau_s")
    return {
        "format": SPICE_ARRAY_FORMAT,
        "cells": cells,
        "label": label,
        "tau_s": tau,
        "tau_rule": rule,
        "tau_ir_s": ir.tau_s,
        "carrier_hz": f_c,
        "target_f_hz": target,
        "omega": omega.tolist(),
        "couplings": couplings,
        "K_model": K.tolist(),
        "K_sym_model": k_sym.tolist(),
        "K_realised_model": k_hat.tolist(),
        "T_ir": T_ir,
        "T_check": T_check,
        "cycles": T_check * tau * f_c,
        "calibration": {"source": cal.source, "k_eff_rad_s": cal.coupler_k_rad_s, "f0_hz": cal.f0_hz,
                        "coupler_load_f_rel": cal.coupler_load_f_rel},
        "dropped": {
            "antisymmetric_rel": float(k_anti.norm()) / k_norm if k_norm else 0.0,
            "quantisation_rel": float((k_hat - k_sym).norm() / k_sym.norm()) if float(k_sym.norm()) else 0.0,
            "clipped_pairs": clipped,
            "pairs_rounded_to_zero": to_zero,
            "outside_coupling_abs_sum": float(outside.abs().sum()),
            "inside_coupling_abs_sum": float(K.abs().sum()),
            "drive_abs_sum": drive,
        },
        "physical": {
            "coupler_k_max_used_rad_s": float(want.max()),
            "max_offset_hz": float((omega / (2 * math.pi * tau)).abs().max()),
            "weak_coupling_fraction": float(row_k.max()) / (2 * math.pi * f_c),
            "tuning_tau_s": tau_tuning,
            "couplers_per_cell": attached.to(torch.int64).tolist(),
            "load_k_factor": g.tolist(),
            "load_model": ("K_ij = K_eff(code) (1 + l) / (1 + m_i l), l = L / (1 - L), L = coupler_load_f_rel"
                           if load_model else "none: K_ij = K_eff(code)"),
        },
    }
