"""The array plan: every cell and coupler of a compiled array as the numbers a netlist needs.

`array_plan(ir, label)` turns an `ArrayIR` into pure numbers (JSON-ready, no SPICE):

- the tiles (`ir.tiles`: which main oscillators each tile holds),
- per main and conditioning cell a target (loaded, free-running) frequency and the control
  voltage that should give it (`cell_trims`),
- per coupler the two cells it joins and its signed code: main couplers (i < j), the
  conditioning array's couplers (a < b) and the drive couplers from conditioning cell c into
  main cell i for one class `label` (`coupler_codes`).

`hw.spice.netlist` writes the plan as a hierarchical SPICE netlist (`un0hw emit --spice`).

The two mappings, IR → codes and IR → trims, are two small functions on purpose; both are
circuit-aware (`compiler.circuit`): codes at the pairs' loads against the measured
coupling function, and trims against the closed couplers (their constant part taken out),
the control voltage read from the lone-cell tuning curve at the loaded cell's equivalent.

Indices: main cells are the IR's oscillator indices 0..N-1, conditioning cells 0..N_c-1.
A sub-plan (`restrict`) renumbers its cells 0..m-1 and keeps the IR's indices in
``cells["ir_index"]``. This module imports `hw.calibration`'s figures (through the IR) and
`hw.characterization`'s control-voltage constants, never `hw.spice`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from compiler.ir import ArrayIR
from compiler.options import CompileError

PLAN_FORMAT = "un0hw-array-plan"
PLAN_FORMAT_VERSION = 1


def _tau(ir: ArrayIR, tau_s: float | None) -> float:
    if tau_s is None:
        return float(ir.tau_s)
    if isinstance(tau_s, bool) or not isinstance(tau_s, (int, float)) or not (math.isfinite(tau_s) and tau_s > 0):
        raise CompileError(f"tau_s must be a positive number of seconds, not {tau_s!r}")
    return float(tau_s)


def coupler_codes(ir: ArrayIR, *, label: int = 0, tau_s: float | None = None) -> dict[str, Any]:
    r"""The signed code of every coupler of `ir` (codes 0 left out), and what rounding lost.

    Circuit-aware (`compiler.circuit.realise_ir` at the 'ir' scale): a resistor coupler is
    reciprocal, so the symmetric part K̄ = (K + Kᵀ)/2 of the dequantised main couplings is
    realised (likewise C̄ for the conditioning array); each pair takes the code whose
    measured fundamental a1 *at the pair's loads* (every coupler on each cell, counted by
    the bits it switches on) is nearest |K̄_ij|/τ (τ = `tau_s`, default the IR's), with
    K̄_ij's sign. The drive of class `label`, drive[label, i, c] (conditioning cell c into
    main cell i), maps the same way; its coupler is reciprocal too, so the circuit also
    pulls the conditioning cells back (the model's drive does not).

    Returns ``{"main": [(i, j, code), ...] (i < j), "conditioning": [(a, b, code), ...]
    (a < b), "drive": [(c, i, code), ...], "rounded_to_zero": {kind: count},
    "clipped": {kind: count}, "antisymmetric_rel": ‖(K − Kᵀ)/2‖ / ‖K‖, "circuit": the
    realisation}``: every list holds only non-zero codes; the counts are of non-zero
    couplings that got code 0, and of couplings beyond the full code's loaded a1; the
    antisymmetric part is what no reciprocal coupler realises.
    """
    from compiler.circuit import realise_ir

    classes = ir.dynamics.num_classes
    if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < classes:
        raise CompileError(f"label {label!r}: this model has classes 0..{classes - 1}")
    tau = _tau(ir, tau_s)
    cal = ir.calibration
    circuit = realise_ir(ir, scale="ir", tau_s=tau)
    if circuit.directed:
        raise CompileError("the netlist plan lists one reciprocal DAC per pair; this IR has one-way couplers "
                           "(--couplers directed or auto on a gm calibration): compile with --couplers reciprocal "
                           "for a SPICE array")
    p = ir.to_params(dtype=torch.float64)
    k_norm = float(p.K.norm())
    out: dict[str, Any] = {"main": [], "conditioning": [], "drive": [], "rounded_to_zero": {}, "clipped": {},
                           "antisymmetric_rel": float(((p.K - p.K.T) / 2).norm()) / k_norm if k_norm else 0.0,
                           "circuit": circuit}
    drive = circuit.drive
    blocks = (("main", p.K, circuit.K, True), ("conditioning", p.C, circuit.C, True),
              ("drive", p.drive[label], None, False))
    for kind, mat, realised, pairs in blocks:
        if pairs:
            want = torch.triu((mat + mat.T) / 2, diagonal=1).numpy()
            codes = np.triu(realised.codes.astype(np.int64), 1)
            m_r, m_s = realised.loads()
            idx = np.argwhere(codes != 0)
            out[kind] = [(int(a), int(b), int(codes[a, b])) for a, b in idx]
        else:  # drive (N, N_c): main cell i, conditioning cell c → listed as (c, i)
            want = mat.numpy()
            codes = drive.codes[label].astype(np.int64)
            m_r, m_s = drive.loads()
            m_r, m_s = m_r[label], m_s[label]
            idx = np.argwhere(codes != 0)
            out[kind] = [(int(c), int(i), int(codes[i, c])) for i, c in idx]
        full = np.where(want != 0, np.sign(want), 1).astype(np.int64) * cal.max_code
        top = cal.fundamental(full, m_r, m_s)
        out["rounded_to_zero"][kind] = int(((want != 0) & (codes == 0)).sum())
        out["clipped"][kind] = int(((np.abs(want) / tau > top * (1 + 1e-9)) & (want != 0)).sum())
    return out


def _tuning_curve(cal) -> tuple[list[float], list[float], str]:
    """(control voltages, frequencies, where they come from) of the cell's tuning curve,
    frequency increasing: the calibration's own curve when it carries one
    (`tuning_vctrl_v`, `tuning_f_hz`), else straight lines through the control range's ends
    and the nominal point, (0.6 V, f_min), (1.0 V, f0), (1.8 V, f_max)."""
    from hw.characterization import (  # constants only; no SPICE is loaded
        NOMINAL_VCTRL_V,
        VCTRL_RANGE_V,
    )

    v = getattr(cal, "tuning_vctrl_v", None)
    f = getattr(cal, "tuning_f_hz", None)
    if v is not None and f is not None and len(v) == len(f) >= 2:
        order = np.argsort(np.asarray(f, dtype=np.float64))
        fs, vs = np.asarray(f, dtype=np.float64)[order], np.asarray(v, dtype=np.float64)[order]
        if np.all(np.diff(fs) > 0) and np.all(np.diff(vs) > 0):
            return vs.tolist(), fs.tolist(), "the calibration's measured tuning curve, read backwards (linear between points)"
    lo, hi = VCTRL_RANGE_V
    return ([lo, NOMINAL_VCTRL_V, hi], [cal.f_min_hz, cal.f0_hz, cal.f_max_hz],
            (f"straight lines through ({lo:g} V, f_min), ({NOMINAL_VCTRL_V:g} V, f0), ({hi:g} V, f_max) "
            "of the calibration (it has no tuning curve)"))


def cell_trims(ir: ArrayIR, *, tau_s: float | None = None, circuit=None) -> dict[str, Any]:
    r"""Target frequency and control voltage of every main and conditioning cell.

    Circuit-aware: the cells are trimmed against their *closed* couplers. Cell i's target
    is its open-coupler frequency f_c + (ω_i − Σ_j b0_ij) / (2π τ) — the constant part of
    its couplers' measured coupling function (drive couplers at their class mean) brings it
    back to f_c + ω_i/(2π τ) once they close (conditioning cell a likewise with ν_a); f_c is
    the calibration's array carrier (`carrier_hz`; a version-1 calibration: f0 (1 − L)).
    The control voltage is the lone-cell tuning curve read backwards at the frequency the
    cell would have unloaded, target × C_node/C_lone (`compiler.circuit.capacitance_factor`:
    every coupler on the cell adds its switches' capacitance), clipped to the curve's ends —
    a starting value: a chip closes the trim loop on the measured frequency
    (`hw.measure.trim_array` does so in SPICE). `circuit`: a `realise_ir` result to reuse.

    Returns ``{"carrier_hz": f_c, "f_hz": [N], "vctrl_v": [N], "cond_f_hz": [N_c],
    "cond_vctrl_v": [N_c], "tuning": {"vctrl_v", "f_hz", "source"}, "vctrl_clipped": count,
    "closing_shift_hz": [N]}``.
    """
    from compiler.circuit import capacitance_factor, realise_ir

    cal = ir.calibration
    tau = _tau(ir, tau_s)
    circuit = circuit or realise_ir(ir, scale="ir", tau_s=tau)
    p = ir.to_params(dtype=torch.float64)
    f_c = cal.carrier_hz if cal.carrier_hz is not None else cal.f0_hz * (1 - cal.coupler_load_f_rel)
    vs, fs, source = _tuning_curve(cal)
    b0_main = circuit.K.coef()[..., 0].sum(axis=1) + circuit.drive.coef()[..., 0].sum(axis=2).mean(axis=0)
    b0_cond = (circuit.C.coef()[..., 0].sum(axis=1) if p.n_cond else np.zeros(0)) \
        + circuit.drive.coef()[..., 0].sum(axis=1).mean(axis=0)
    f_main = f_c + (p.omega.numpy() / tau - b0_main) / (2 * math.pi)
    f_cond = f_c + (p.nu.numpy() / tau - b0_cond) / (2 * math.pi)
    drive_codes = circuit.drive.codes
    any_drive = np.abs(drive_codes).max(axis=0) if drive_codes.size else np.zeros((p.n, p.n_cond), dtype=np.int64)
    c_main = capacitance_factor(cal, np.concatenate([circuit.K.codes, any_drive], axis=1))
    c_cond = capacitance_factor(cal, np.concatenate([circuit.C.codes, any_drive.T], axis=1)) if p.n_cond \
        else np.zeros(0)
    lone_main, lone_cond = f_main * c_main, f_cond * c_cond
    clipped = int(((lone_main < fs[0]) | (lone_main > fs[-1])).sum() + ((lone_cond < fs[0]) | (lone_cond > fs[-1])).sum())
    return {"carrier_hz": f_c, "f_hz": f_main.tolist(), "vctrl_v": np.interp(lone_main, fs, vs).tolist(),
            "cond_f_hz": f_cond.tolist(), "cond_vctrl_v": np.interp(lone_cond, fs, vs).tolist(),
            "tuning": {"vctrl_v": vs, "f_hz": fs, "source": source}, "vctrl_clipped": clipped,
            "closing_shift_hz": (b0_main / (2 * math.pi)).tolist()}


def array_plan(ir: ArrayIR, label: int = 0, *, tau_s: float | None = None) -> dict[str, Any]:
    """The whole compiled array as pure numbers, for `hw.spice.netlist` (JSON-ready).

    `label`: the class whose drive couplers are realised (one class code bank; the
    hardware switches banks per class). `tau_s`: seconds per unit of model time (default
    the IR's own τ; a shorter one scales every coupling up onto the coupler's codes and
    every frequency offset out, see `docs/netlist.md`).

    Keys: ``format``, ``format_version``, ``source`` (model name, N, N_c, classes, the
    IR's τ), ``label``, ``tau_s``, ``tau_rule``, ``vdd_v``, ``carrier_hz``, ``process`` (the
    calibration's process name), ``coupler`` (kind, bits, max_code, k_eff_rad_s), ``tuning`` (the curve the controls were read from),
    ``tiles`` (lists of plan cell indices), ``cells`` (``ir_index``, ``f_hz``, ``vctrl_v``
    per main cell), ``conditioning`` (``f_hz``, ``vctrl_v`` per conditioning cell),
    ``couplers`` (``main`` [i, j, code] i < j, ``conditioning`` [a, b, code], ``drive``
    [c, i, code]: non-zero codes only) and ``dropped`` (what the mapping left out:
    the antisymmetric part of K, couplings rounded to code 0, clipped at full code,
    controls clipped to the tuning curve's ends).
    """
    cal = ir.calibration
    tau = _tau(ir, tau_s)
    codes = coupler_codes(ir, label=label, tau_s=tau)
    trims = cell_trims(ir, tau_s=tau, circuit=codes["circuit"])
    return {
        "format": PLAN_FORMAT,
        "format_version": PLAN_FORMAT_VERSION,
        "source": {"model": ir.name, "n": ir.n, "n_cond": ir.n_cond, "num_classes": ir.dynamics.num_classes,
                   "ir_tau_s": float(ir.tau_s), "calibration": cal.source},
        "label": label,
        "tau_s": tau,
        "tau_rule": "the IR's tau" if tau_s is None else "given",
        "vdd_v": cal.vdd_v,
        "carrier_hz": trims["carrier_hz"],
        "process": cal.process.split(" ")[0],
        "coupler": {"kind": cal.coupler, "bits": cal.coupler_bits, "max_code": cal.max_code,
                    "k_eff_rad_s": list(cal.coupler_k_rad_s)},
        "tuning": trims["tuning"],
        "tiles": [list(map(int, t)) for t in ir.tiles],
        "cells": {"ir_index": list(range(ir.n)), "f_hz": trims["f_hz"], "vctrl_v": trims["vctrl_v"]},
        "conditioning": {"f_hz": trims["cond_f_hz"], "vctrl_v": trims["cond_vctrl_v"]},
        "couplers": {k: [list(t) for t in codes[k]] for k in ("main", "conditioning", "drive")},
        "dropped": {
            "antisymmetric_rel": codes["antisymmetric_rel"],
            "rounded_to_zero": codes["rounded_to_zero"],
            "clipped": codes["clipped"],
            "vctrl_clipped": trims["vctrl_clipped"],
        },
    }


def restrict(plan: dict[str, Any], cells: list[int], *, conditioning: bool = True) -> dict[str, Any]:
    """The sub-plan of the main cells `cells` (plan indices, in that order, renumbered
    0..m-1): their tiles (only tiles holding one of them, in plan order), the couplers among
    them, and (`conditioning`) the conditioning array with the drive into them."""
    cells = [int(c) for c in cells]
    n = len(plan["cells"]["f_hz"])
    if not cells or len(set(cells)) != len(cells) or min(cells) < 0 or max(cells) >= n:
        raise CompileError(f"cells must be distinct plan cell indices in 0..{n - 1}, not {cells}")
    new = {old: k for k, old in enumerate(cells)}
    tiles = [[new[c] for c in t if c in new] for t in plan["tiles"]]
    couplers = plan["couplers"]
    main = [[new[i], new[j], c] for i, j, c in couplers["main"] if i in new and j in new]
    main = [[min(i, j), max(i, j), c] for i, j, c in main]
    out = {**plan,
           "tiles": [t for t in tiles if t],
           "cells": {k: [plan["cells"][k][c] for c in cells] for k in ("ir_index", "f_hz", "vctrl_v")},
           "couplers": {"main": main,
                        "conditioning": [list(t) for t in couplers["conditioning"]] if conditioning else [],
                        "drive": [[a, new[i], c] for a, i, c in couplers["drive"] if i in new] if conditioning else []},
           "conditioning": ({k: list(v) for k, v in plan["conditioning"].items()} if conditioning
                            else {"f_hz": [], "vctrl_v": []})}
    return out


def summary(plan: dict[str, Any]) -> dict[str, Any]:
    """Counts of the plan: cells and couplers per tile, inter-tile links, the conditioning
    array and its drive couplers, and the couplers per main cell (fan-out)."""
    tile_of = {c: t for t, members in enumerate(plan["tiles"]) for c in members}
    inside = [0] * len(plan["tiles"])
    links = 0
    fan = [0] * len(plan["cells"]["f_hz"])
    for i, j, _ in plan["couplers"]["main"]:
        fan[i] += 1
        fan[j] += 1
        if tile_of[i] == tile_of[j]:
            inside[tile_of[i]] += 1
        else:
            links += 1
    for _, i, _ in plan["couplers"]["drive"]:
        fan[i] += 1
    return {
        "tiles": [{"tile": t, "cells": len(m), "couplers": inside[t]} for t, m in enumerate(plan["tiles"])],
        "cells": len(plan["cells"]["f_hz"]),
        "couplers_inside_tiles": sum(inside),
        "inter_tile_links": links,
        "conditioning_cells": len(plan["conditioning"]["f_hz"]),
        "conditioning_couplers": len(plan["couplers"]["conditioning"]),
        "drive_couplers": len(plan["couplers"]["drive"]),
        "max_couplers_per_cell": max(fan, default=0),
        "mean_couplers_per_cell": sum(fan) / len(fan) if fan else 0.0,
    }
