"""The array check: a few compiled cells in ngspice against `oscsim` on the same system.

`compiler.emit.spice_array` turns a handful of an IR's main oscillators into numbers a
circuit can realise (target frequencies, signed coupler codes, the realised K and the τ
that maps model time onto seconds). `hw.measure.measure_array` makes those numbers a
circuit (`hw.spice.cells.array_bench`, each cell trimmed by `hw.measure.trim_array` to its
open-coupler target frequency), starts every cell at a given phase (`ring_snapshot(...).ic`),
runs ngspice for T_check·τ seconds and reads each cell's phase from every edge of its
stages (`ring_phase`). Here `oscsim.simulate` integrates the realised system

    dθ_i/dt = ω̃_i + Σ_j H_ij(θ_j − θ_i)      (model units, t_model = t / τ)

with each coupler's measured coupling function H_ij (`compiler.circuit`: K̂_ij sin x plus
the constant, cosine and higher-harmonic terms of its code at its cells' loads, an
`oscsim.Harmonics`) and the trimmed open-coupler frequencies ω̃ — or, with a sine-only
calibration, H_ij = K̂_ij sin x — from the same initial phases, and the two are compared on
the relative phases
ψ_i = θ_i − θ_0 (the carrier and the frame drop out) at the same physical times:

    e(t) = mean_{i ≥ 1} |wrap(ψ_i^spice(t) − ψ_i^oscsim(t))|      (rad, wrap to (−π, π]).

The report holds e at the end, its mean over the run, and the same error for the
uncoupled prediction (no couplers: every cell at its model frequency ω_i), so a reader sees
how much of the agreement the coupling model earns. `check_random` runs many random small
arrays (`compiler.emit.random_circuit_array`) and writes the distribution.

It lives in analysis because it joins the rooms: the compiler's output, hw's circuits and
oscsim's integrator. ngspice (through `hw.measure` and `hw.spice.run`, every run under a
wall-clock limit) and matplotlib are loaded where used.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["ArrayCheckError", "realised_params", "run_check", "simulate_spice_array"]


class ArrayCheckError(ValueError):
    """An array-check input is not usable: wrong format, bad initial phases, no comparable run."""


def _wrap(x: np.ndarray) -> np.ndarray:
    return np.angle(np.exp(1j * np.asarray(x, dtype=np.float64)))


def _checked(doc: Any) -> dict:
    from compiler.emit import SPICE_ARRAY_FORMAT

    if not isinstance(doc, dict) or doc.get("format") != SPICE_ARRAY_FORMAT:
        got = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise ArrayCheckError(f"need a dict from compiler.emit.spice_array (format {SPICE_ARRAY_FORMAT!r}), not {got!r}")
    return doc


def realised_params(doc: dict, *, coupled: bool = True, sine_only: bool = False, f_open_hz=None):
    """The `oscsim.KuramotoParams` the circuit realises: the cells' trimmed open-coupler
    frequencies ω̃, K̂ and the rest of each coupler's H (`Harmonics`), no conditioning.

    `f_open_hz`: the open-coupler frequencies the trim measured (then ω̃_i = 2π τ (f_i − f_c),
    the trim's residual error out of the comparison); None: the trim targets.
    `coupled=False`: the prediction without couplers (K̂ = 0, every cell at its model ω).
    `sine_only=True`: the couplers as K̂ sin x alone, at the same trims (what oscsim predicted
    before it carried H)."""
    from oscsim import Harmonics, KuramotoParams

    doc = _checked(doc)
    f64 = torch.float64
    K = torch.tensor(doc["K_realised_model"], dtype=f64)
    n = K.shape[0]
    empty = {"drive": torch.zeros(1, n, 0, dtype=f64), "C": torch.zeros(0, 0, dtype=f64),
             "nu": torch.zeros(0, dtype=f64)}
    if not coupled:
        return KuramotoParams(K=torch.zeros_like(K), omega=torch.tensor(doc["omega"], dtype=f64), **empty)
    omega = torch.tensor(doc.get("omega_trimmed", doc["omega"]), dtype=f64)
    if f_open_hz is not None:
        omega = 2 * math.pi * float(doc["tau_s"]) * (torch.tensor(list(f_open_hz), dtype=f64) - float(doc["carrier_hz"]))
    h = doc.get("harmonics_model")
    if h is None or sine_only:
        return KuramotoParams(K=K, omega=omega, **empty)
    harmonics = Harmonics(a=torch.tensor(h["a"], dtype=f64).reshape(-1, n, n), b=torch.tensor(h["b"], dtype=f64),
                          b0=torch.tensor(h["b0"], dtype=f64))
    return KuramotoParams(K=K, omega=omega, K_h=harmonics, **empty)


def _oscsim_relative(doc: dict, theta_start: np.ndarray, t_start_s: float, samples: int, *,
                     coupled: bool = True, sine_only: bool = False, f_open_hz=None) -> tuple[np.ndarray, np.ndarray]:
    """(physical times s, relative phases (samples + 1, n − 1)) of the realised system (DOP853),
    started at `theta_start` at physical time `t_start_s` and run to T_check·τ."""
    from oscsim import simulate

    tau = float(doc["tau_s"])
    span = float(doc["T_check"]) - t_start_s / tau
    system = realised_params(doc, coupled=coupled, sine_only=sine_only, f_open_hz=f_open_hz)
    res = simulate(system, torch.tensor(theta_start, dtype=torch.float64)[None], None,
                   steps=samples, T=span, method="adaptive", record=True)
    th = res.trajectory[:, 0, :].numpy()
    return t_start_s + res.times.numpy() * tau, th[:, 1:] - th[:, :1]


def simulate_spice_array(doc: dict, theta0, *, points_per_period: int = 100, trim_tol_rel: float = 5e-4,
                         timeout_s: float = 300.0, out_dir: str | Path | None = None) -> dict:
    """Build, trim and run the circuit `doc` describes from phases `theta0` (rad, one per cell)
    with `hw.measure.measure_array`; the deck goes to `out_dir`/array-check.cir when given.

    Returns the trim, the deck text, and each cell's unwrapped phase record (t, θ) from its
    first rising edge on. Raises `hw.spice.run.SpiceError` (and its `SpiceTimeout`) from
    ngspice, `ArrayCheckError` for bad inputs.
    """
    from hw.measure import measure_array
    from hw.spice import cells

    doc = _checked(doc)
    n = len(doc["cells"])
    theta0 = np.asarray(theta0, dtype=np.float64)
    if theta0.shape != (n,) or not np.all(np.isfinite(theta0)):
        raise ArrayCheckError(f"theta0 must hold {n} finite phases (one per cell), not shape {theta0.shape}")
    osc = cells.RingOscillator()
    couplings = {(int(i), int(j)): int(c) for i, j, c in doc["couplings"]}
    dac = cells.CouplerDAC(n_stages=osc.n_stages, bits=round(math.log2(len(doc["calibration"]["k_eff_rad_s"]))) + 1)
    return measure_array(osc, couplings=couplings, target_f_hz=doc["target_f_hz"], theta0=theta0,
                         carrier_hz=float(doc["carrier_hz"]), stop_s=float(doc["T_check"]) * float(doc["tau_s"]),
                         dac=dac, points_per_period=points_per_period, trim_tol_rel=trim_tol_rel,
                         timeout_s=timeout_s,
                         deck_path=None if out_dir is None else Path(out_dir) / DECK)


def compare(doc: dict, theta0, phases: list[tuple[np.ndarray, np.ndarray]], *, f_open_hz=None,
            settle_cycles: float = 2.0,
            samples: int = 400) -> dict:
    """Relative phases of SPICE and oscsim at the same physical times, and their circular error.

    A ring started from node voltages (`.ic`) needs a cycle or so before its phase is the
    phase model's (the first edges settle, every cell must have crossed once): oscsim starts
    at t_s = `settle_cycles` carrier periods from the phases SPICE has there, and both are
    compared from t_s on. `start_error_rad` says how far those phases are from `theta0`
    advanced by oscsim over [0, t_s] (how well the `.ic` start set them). `f_open_hz`: the
    open-coupler frequencies the trim measured, which the coupled predictions start from
    (`realised_params`); the uncoupled prediction keeps every cell at its model frequency.
    """
    doc = _checked(doc)
    theta0 = np.asarray(theta0, dtype=np.float64)
    t_s_start = settle_cycles / float(doc["carrier_hz"])
    lo = max(t[0] for t, _ in phases)
    hi = min(t[-1] for t, _ in phases)
    if lo > t_s_start:
        raise ArrayCheckError(f"a cell's first edge comes at {lo:.3g} s, after the settle time {t_s_start:.3g} s")
    # phases at t_s: the rotating frame's carrier (common to every cell) is left in; only
    # differences enter the model's dynamics
    th_start = np.array([np.interp(t_s_start, t, p) for t, p in phases])
    t_s, psi_osc = _oscsim_relative(doc, th_start, t_s_start, samples, f_open_hz=f_open_hz)
    _, psi_free = _oscsim_relative(doc, th_start, t_s_start, samples, coupled=False)
    _, psi_sine = _oscsim_relative(doc, th_start, t_s_start, samples, sine_only=True, f_open_hz=f_open_hz)
    t_ic, psi_ic = _oscsim_relative(doc, theta0, 0.0, samples, f_open_hz=f_open_hz)
    psi_ic_at_start = np.array([np.interp(t_s_start, t_ic, psi_ic[:, i]) for i in range(psi_ic.shape[1])])
    start_err = float(np.abs(_wrap(th_start[1:] - th_start[0] - psi_ic_at_start)).mean())
    keep = t_s <= hi
    if keep.sum() < 2:
        raise ArrayCheckError(f"the SPICE phase records end at {hi:.3g} s; nothing to compare after {t_s_start:.3g} s")
    t_s, psi_osc, psi_free, psi_sine = t_s[keep], psi_osc[keep], psi_free[keep], psi_sine[keep]
    th = np.stack([np.interp(t_s, t, p) for t, p in phases], axis=1)
    psi_spice = th[:, 1:] - th[:, :1]
    err = np.abs(_wrap(psi_spice - psi_osc)).mean(axis=1)
    err_free = np.abs(_wrap(psi_spice - psi_free)).mean(axis=1)
    err_sine = np.abs(_wrap(psi_spice - psi_sine)).mean(axis=1)
    return {"t_s": t_s, "psi_spice": psi_spice, "psi_oscsim": psi_osc, "psi_uncoupled": psi_free,
            "psi_sine_only": psi_sine, "error_rad": err, "error_uncoupled_rad": err_free,
            "error_sine_only_rad": err_sine, "settle_s": t_s_start,
            "final_error_rad": float(err[-1]), "mean_error_rad": float(err.mean()),
            "final_error_uncoupled_rad": float(err_free[-1]), "mean_error_uncoupled_rad": float(err_free.mean()),
            "final_error_sine_only_rad": float(err_sine[-1]), "mean_error_sine_only_rad": float(err_sine.mean()),
            "start_error_rad": start_err}


def _save_png(fig, path: str | Path) -> Path:
    """Write a matplotlib figure as a PNG, atomically, and close it."""
    import matplotlib.pyplot as plt

    from oscsim import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path


def plot(doc: dict, cmp: dict, path: str | Path) -> Path:
    """Relative phases of SPICE (solid) and oscsim (dashed) over time, and e(t) below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt


    t_ns = cmp["t_s"] * 1e9
    fig, (ax, bx) = plt.subplots(2, 1, figsize=(8, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    cells = doc["cells"]
    for i in range(cmp["psi_spice"].shape[1]):
        color = f"C{i}"
        ax.plot(t_ns, cmp["psi_spice"][:, i], color=color, lw=1.6,
                label=f"θ{i + 1} − θ0 (IR cells {cells[i + 1]} − {cells[0]})")
        ax.plot(t_ns, cmp["psi_oscsim"][:, i], color=color, lw=1.2, ls="--")
    ax.plot([], [], color="k", lw=1.6, label="ngspice (transistor-level array)")
    ax.plot([], [], color="k", lw=1.2, ls="--", label="oscsim (measured coupling function)")
    ax.set_ylabel("relative phase (rad)")
    ax.set_title(f"{len(cells)} compiled cells, {len(doc['couplings'])} coupler DACs, τ = {doc['tau_s'] * 1e9:.3g} ns "
                 f"per model time unit, {doc['cycles']:.0f} carrier cycles")
    ax.legend(fontsize=7, loc="best")
    bx.plot(t_ns, cmp["error_rad"], color="k", label="vs oscsim")
    bx.plot(t_ns, cmp["error_uncoupled_rad"], color="0.6", ls=":", label="vs uncoupled prediction")
    bx.plot(t_ns, cmp["error_sine_only_rad"], color="C3", ls="-.", lw=0.9, label="vs sine-only oscsim")
    bx.set_ylabel("mean |Δψ| (rad)")
    bx.set_xlabel("physical time (ns)")
    bx.legend(fontsize=7)
    fig.tight_layout()
    return _save_png(fig, path)


#: the report's files in OUT
REPORT, PLOT, DECK, SUMMARY = "array-check.json", "array-check.png", "array-check.cir", "summary.json"


def _run_one(doc: dict, out: Path, *, theta0: np.ndarray, quick: bool, timeout_s: float) -> dict:
    """SPICE vs oscsim on one `spice_array` doc from `theta0`: the report dict (files in `out`)."""
    t_start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    sim = simulate_spice_array(doc, theta0, points_per_period=60 if quick else 100,
                               trim_tol_rel=1e-3 if quick else 5e-4, timeout_s=timeout_s, out_dir=out)
    cmp = compare(doc, theta0, sim["phases"], f_open_hz=sim["trim"].f_hz)
    png = plot(doc, cmp, out / PLOT)
    trim = sim["trim"]
    free_final, free_mean = cmp["final_error_uncoupled_rad"], cmp["mean_error_uncoupled_rad"]
    return {
        "cells": doc["cells"], "theta0_rad": theta0.tolist(), "couplings": doc["couplings"],
        "tau_s": doc["tau_s"], "tau_rule": doc["tau_rule"], "tau_ir_s": doc["tau_ir_s"], "trim_rule": doc.get("trim"),
        "coupling_model": doc["physical"].get("coupling_model"),
        "T_check": doc["T_check"], "physical_time_s": sim["stop_s"], "cycles": doc["cycles"],
        "final_circular_error_rad": cmp["final_error_rad"], "mean_circular_error_rad": cmp["mean_error_rad"],
        "uncoupled_final_circular_error_rad": free_final, "uncoupled_mean_circular_error_rad": free_mean,
        "sine_only_final_circular_error_rad": cmp["final_error_sine_only_rad"],
        "sine_only_mean_circular_error_rad": cmp["mean_error_sine_only_rad"],
        "ratio_to_uncoupled": cmp["mean_error_rad"] / free_mean if free_mean > 0 else float("inf"),
        "start_error_rad": cmp["start_error_rad"],
        "final_psi_spice_rad": _wrap(cmp["psi_spice"][-1]).tolist(),
        "final_psi_oscsim_rad": _wrap(cmp["psi_oscsim"][-1]).tolist(),
        "trim": {"vctrl_v": list(trim.vctrl_v), "f_hz": list(trim.f_hz), "target_f_hz": doc["target_f_hz"],
                 "error_rel": trim.error_rel, "iterations": trim.iterations, "seconds": sim["trim_s"]},
        "transient_s": sim["transient_s"], "seconds": time.perf_counter() - t_start,
        "dropped": doc["dropped"], "quick": quick,
        "plot": str(png), "deck": str(out / DECK), "spice_array": doc,
    }


def write_json(path: Path, doc: dict) -> None:
    """`doc` as indented JSON at `path`, atomically."""
    from oscsim import atomic_path

    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(doc, indent=1) + "\n")


def run_check(ir_or_dict, out_dir: str | Path, *, quick: bool = True, n_cells: int | None = None,
              calibration=None, theta0=None, seed: int = 0, timeout_s: float = 300.0, trim: str = "closed") -> dict:
    """One call: (IR or `spice_array` dict) → SPICE vs oscsim → report, plot and deck in `out_dir`.

    From an `ArrayIR`, `compiler.emit.choose_cells` picks `n_cells` cells (quick: 4, else 6)
    and `spice_array` maps them with `calibration` (when None: the one stored in the IR, which
    it was compiled with) and the trim rule `trim`.
    `theta0`: one initial phase per cell; default uniform in [−π, π) from `seed`.
    quick: 40 carrier cycles at 60 points per period and a 1e-3 trim (about 5 s for 4 cells on 2
    cores); otherwise 60 cycles, 100 points, 5e-4. Writes `array-check.png`, `array-check.cir`
    and `array-check.json` (keys `final_circular_error_rad`, `mean_circular_error_rad`,
    `uncoupled_final_circular_error_rad`, `uncoupled_mean_circular_error_rad`, the sine-only
    model's errors beside them); returns the report (metrics and paths).
    """
    from compiler.emit import choose_cells, spice_array

    out = Path(out_dir)
    if isinstance(ir_or_dict, dict):
        doc = _checked(ir_or_dict)
    else:
        calibration = calibration or ir_or_dict.calibration  # the cells the array was compiled onto
        cells = choose_cells(ir_or_dict, n_cells or (4 if quick else 6))
        doc = spice_array(ir_or_dict, cells, calibration=calibration, min_cycles=40.0 if quick else 60.0, trim=trim)
    n = len(doc["cells"])
    if theta0 is None:
        theta0 = np.random.default_rng(seed).uniform(-np.pi, np.pi, n)
    theta0 = np.asarray(theta0, dtype=np.float64)
    report = _run_one(doc, out, theta0=theta0, quick=quick, timeout_s=timeout_s)
    write_json(out / REPORT, report)
    report["report"] = str(out / REPORT)
    return report


def distribution(reports: list[dict]) -> dict:
    """Median, worst and every value of each error (and of the ratio to uncoupled) over `reports`."""
    keys = ("final_circular_error_rad", "mean_circular_error_rad", "uncoupled_final_circular_error_rad",
            "uncoupled_mean_circular_error_rad", "sine_only_final_circular_error_rad",
            "sine_only_mean_circular_error_rad", "ratio_to_uncoupled")
    out: dict = {"runs": len(reports)}
    for key in keys:
        values = np.array([r[key] for r in reports], dtype=np.float64)
        stem = key.removesuffix("_rad")
        out[f"median_{key}"] = float(np.median(values))
        out[f"worst_{key}"] = float(values.max())
        out[f"{stem}_all" + ("_rad" if key.endswith("_rad") else "")] = values.tolist()
    return out


def plot_distribution(summary: dict, path: str | Path, *, title: str) -> Path:
    """Per array: the final and run-mean errors of oscsim on H, of the sine-only oscsim and of
    the uncoupled prediction (sorted by oscsim's run-mean error), with the medians."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt


    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
    for ax, kind in zip(axes, ("final", "mean"), strict=True):
        h = np.array(summary[f"{kind}_circular_error_all_rad"])
        order = np.argsort(h)
        x = np.arange(1, h.size + 1)
        for key, label, style in ((f"{kind}_circular_error_all_rad", "oscsim, measured coupling function", "o-"),
                                  (f"sine_only_{kind}_circular_error_all_rad", "oscsim, sine only", "s:"),
                                  (f"uncoupled_{kind}_circular_error_all_rad", "uncoupled prediction", "^:")):
            values = np.array(summary[key])[order]
            ax.plot(x, values, style, ms=4, lw=1, label=f"{label} (median {np.median(values):.2f})")
        ax.set_xlabel("array (sorted by oscsim's error)")
        ax.set_title(f"{'at the end' if kind == 'final' else 'mean over the run'}")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("mean circular error of the relative phases (rad)")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save_png(fig, path)


def check_random(count: int, out_dir: str | Path, *, calibration, seed: int = 0, quick: bool = False,
                 timeout_s: float = 300.0, trim: str = "closed", progress: bool = True) -> dict:
    """`count` random small arrays (`compiler.emit.random_circuit_array`: 4–8 cells, random codes
    of both signs, random frequencies and starts) through SPICE vs oscsim. Each run's report goes
    to OUT/runNN/; the distribution (median and worst of each error, the ratio to the uncoupled
    prediction) to OUT/summary.json with keys `median_final_circular_error_rad`,
    `median_mean_circular_error_rad` and `median_ratio_to_uncoupled`."""
    from tqdm import tqdm

    from compiler.emit import (
        SPICE_ARRAY_MAX_CELLS,
        SPICE_ARRAY_MIN_CELLS,
        random_circuit_array,
    )

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    reports = []
    for k in tqdm(range(count), desc="random arrays", unit="array", disable=not progress, leave=False):
        n = int(rng.integers(SPICE_ARRAY_MIN_CELLS, SPICE_ARRAY_MAX_CELLS + 1))
        doc = random_circuit_array(rng, n, calibration, min_cycles=40.0 if quick else 60.0, trim=trim)
        theta0 = rng.uniform(-np.pi, np.pi, n)
        report = _run_one(doc, out / f"run{k:02d}", theta0=theta0, quick=quick, timeout_s=timeout_s)
        write_json(out / f"run{k:02d}" / REPORT, report)
        reports.append({key: report[key] for key in report if key != "spice_array"} | {"n_cells": n})
    summary = {"count": count, "seed": seed, "trim": trim, "calibration": calibration.source,
               "coupling_model": reports[0]["coupling_model"] if reports else None,
               **distribution(reports), "arrays": reports}
    write_json(out / SUMMARY, summary)
    plot_distribution(summary, out / "summary.png", title=f"{count} random arrays of 4–8 cells in ngspice against "
                      f"oscsim (seed {seed}, {summary['coupling_model']})")
    summary["summary"] = str(out / SUMMARY)
    return summary
