"""The characterisation run: every measurement of issue 5 (`hw.measure`) in one run,
written as a measured Calibration (`characterize_all`).

Steps (each an ngspice transient under its own wall-clock limit):
1. tuning curve of a lone cell → f0 at the nominal control, range, nonlinearity, energy;
2. the three locking regimes of two cells at full code: in phase (+), anti-phase (−),
   drift when detuned beyond the locking range;
3. K_eff per coupler code from Adler fits of drifting pairs (both signs unless quick),
   the coupling function's harmonics, the coupler's energy per cycle;
4. period jitter under channel-noise `trnoise` sources;
5. Monte Carlo mismatch (Pelgrom VTH/β per device, resistor matching) → σ(f0), σ(K_eff),
   run in worker processes (libngspice is one global state per process).
Writes `calibration.json`, plots (PNG), the representative `.cir` decks and a
`characterization.json` with every raw figure into `out_dir`.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import hashlib
import json
import math
import multiprocessing
import time
from pathlib import Path
from typing import Any

import numpy as np


from hw.calibration import COUPLER_KINDS, COUPLING_TERMS, FORMAT_VERSION, Calibration
from hw.measure import (
    CharacterizeError,
    fit_tuning,
    measure_coupling,
    measure_fanout_loading,
    measure_jitter,
    measure_pair,
    measure_ring,
    until_drift,
)

# generic180's control operating point (`RingOscillator.vctrl_nominal_v`, `vctrl_range_v`; each
# process's ring states its own, `hw.spice.cells.ring_for`):
NOMINAL_VCTRL_V = 1.0  # the carrier's control point: mid-range, where tuning is steepest both ways
VCTRL_RANGE_V = (0.6, 1.8)  # above V_TH = 0.45 V (the ring stalls below ~0.55 V) up to VDD
KVCO_STEP_V = 0.02  # for the local tuning slope at the nominal control
DETUNE_PER_K = 4.0  # lone-cell detuning Δω = 4 K_guess: the coupler's load lowers the cells'
# tuning slope by ~20-30 %, leaving Δω/2K ~ 1.4-1.6 in the pair: a drift whose slips are
# slow enough to sample the coupling function densely and still well clear of locking.
#: the couplers `characterize_all` builds (`hw.spice.cells.coupler_for`; that module loads PySpice)
COUPLERS = COUPLER_KINDS
#: what the calibration's notes say the figures are for, by process
PROCESS_NOTE = {"generic180": "this project's level-1 model process",
                "ptm45": "the PTM 45 nm HP BSIM4 cards (a predictive model, hw.spice.process)"}
MC_TIMEOUT_S = 180.0  # backstop per Monte Carlo task (each transient has its own limit too)


@dataclasses.dataclass(frozen=True)
class Plan:
    """How much to measure: `quick` for a smoke run, the default for the calibration file."""

    tuning_points: int
    both_signs: bool
    jitter_cycles: int
    mc_rings: int
    mc_pairs: int
    fanout_max: int = 8  # the coupling function's load table covers m = 1..fanout_max
    slips: float = 5.0  # phase slips per coupling-function run

    @classmethod
    def of(cls, quick: bool) -> Plan:
        if quick:
            return cls(tuning_points=5, both_signs=False, jitter_cycles=150, mc_rings=8, mc_pairs=4, fanout_max=5,
                       slips=3.0)
        return cls(tuning_points=13, both_signs=True, jitter_cycles=1000, mc_rings=100, mc_pairs=40)


# --- Monte Carlo (worker processes) --------------------------------------------------------
def mismatched_cards(osc: Any, rng: np.random.Generator, tag: str) -> dict[str, Any]:
    """A model card per device of a ring with Pelgrom VTH and β draws (hw.spice.process)."""
    from hw.spice.process import sigma_beta_rel, sigma_vth_v

    cards = {}
    for dev, pol, w, l in osc.device_names():
        base = osc.process.nmos if pol == "nmos" else osc.process.pmos
        dvth = rng.normal(0.0, sigma_vth_v(w, l, process=osc.process))
        dbeta = rng.normal(0.0, sigma_beta_rel(w, l, process=osc.process))
        # |VTH| grows by dvth for both polarities (PMOS thresholds are negative)
        cards[dev] = base.mismatched(name=f"{base.name}_{tag}_{dev}", dvth_v=dvth, dbeta_rel=dbeta)
    return cards


def _mc_ring(seed: int, index: int, vctrl_v: float, osc: Any = None) -> float:
    from hw.spice.cells import RingOscillator

    osc = osc or RingOscillator()
    rng = np.random.default_rng([seed, 1, index])
    return measure_ring(osc, vctrl_v=vctrl_v, cards=mismatched_cards(osc, rng, f"r{index}")).f0_hz


def _mc_pair(seed: int, index: int, vctrl_v: float, code: int, k_guess: float, kvco_hz_per_v: float,
             osc: Any = None, dac: Any = None) -> float:
    """K_eff of one mismatched pair at `code`: both cells and every resistor drawn anew.

    Mismatch detunes the two cells by ~σ(f0)·√2, more than the coupling can bridge; as a
    chip would, B is trimmed (its control moved) to the same lone-cell detuning as nominal.
    """
    from hw.spice.cells import CouplerDAC, RingOscillator

    osc = osc or RingOscillator()
    rng = np.random.default_rng([seed, 2, index])
    card_a, card_b = mismatched_cards(osc, rng, f"a{index}"), mismatched_cards(osc, rng, f"b{index}")
    dac = (dac or CouplerDAC()).with_code(code)
    dac = dac.mismatched(rng)
    f_a = measure_ring(osc, vctrl_v=vctrl_v, cards=card_a).f0_hz
    spec = ((f"{osc.subckt_name}_a{index}", card_a), (f"{osc.subckt_name}_b{index}", card_b))

    def attempt(target_hz: float):
        vb = vctrl_v
        for _ in range(3):  # trim B's control to the target detuning (Newton steps on the nominal slope)
            f_b = measure_ring(osc, vctrl_v=vb, cards=card_b).f0_hz
            err = (f_b - f_a) - target_hz
            if abs(err) < 0.05 * target_hz:
                break
            vb -= err / kvco_hz_per_v
        return measure_coupling(osc, dac, vctrl_a_v=vctrl_v, vctrl_b_v=vb, k_guess_rad_s=k_guess, cells_spec=spec,
                                f_a_hz=f_a, f_b_hz=f_b)

    # a pair that still locks (its loaded tuning slope is lower than the lone cell's) is detuned further
    m = until_drift(attempt, DETUNE_PER_K * k_guess / (2 * math.pi), what=f"Monte Carlo pair {index}", unit="Hz")
    return abs(m.fit.k_rad_s)


def _run_pool(fn: Any, jobs: list[tuple], *, workers: int, bar: Any, task_timeout_s: float | None = None,
              what: str = "Monte Carlo", weights: list[int] | None = None) -> list[Any]:
    """Run fn(*job) for every job in `workers` spawned processes (libngspice is one global
    state per process), results in job order; keep every task under `task_timeout_s` (each
    ngspice run inside has its own, shorter, limit). `weights`: how many progress-bar steps
    each job is (default one). `task_timeout_s` defaults to `MC_TIMEOUT_S` (read at the call)."""
    from hw.spice.run import SpiceTimeout

    task_timeout_s = MC_TIMEOUT_S if task_timeout_s is None else task_timeout_s
    ctx = multiprocessing.get_context("spawn")
    out: list[Any] = []
    ex = cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
    try:
        futures = [ex.submit(fn, *job) for job in jobs]
        deadline = time.monotonic() + task_timeout_s * math.ceil(len(jobs) / workers)
        for i, fut in enumerate(futures):
            left = deadline - time.monotonic()
            try:
                out.append(fut.result(timeout=max(left, 1.0)))
            except cf.TimeoutError:
                raise SpiceTimeout(f"{what} workers ran past their {task_timeout_s:g} s-per-task limit") from None
            bar.update(1 if weights is None else weights[i])
    except BaseException:
        for proc in list(getattr(ex, "_processes", {}).values()):  # only the pool's own workers
            proc.terminate()
        ex.shutdown(wait=False, cancel_futures=True)
        raise
    ex.shutdown(wait=True)
    return out


# --- the whole characterisation -------------------------------------------------------------
def _k_chain(osc: Any, dac: Any, codes: list[int], f_a: float, kvco: float) -> dict[int, Any]:
    """Adler fits of `codes` (one sign, strongest first), each code's K guess the last measured
    K scaled by the DAC's nominal strength (conductance or current); the first code's guess is
    the coupler's own (`k_guess_rad_s`: for the resistor DAC, a 100 kOhm like-node resistor gave
    K ~ 1.2e8 rad/s at 180 nm, first slice). A pair that locks is detuned further."""
    vnom = osc.vctrl_nominal_v
    results: dict[int, Any] = {}
    last: tuple[float, float] | None = None
    for code in codes:
        g = dac.strength(code)
        k_guess = last[0] * g / last[1] if last is not None else dac.k_guess_rad_s(code)

        def attempt(detune: float, code: int = code, k_guess: float = k_guess):
            vb = vnom + detune / (2 * math.pi * kvco)
            f_b = measure_ring(osc, vctrl_v=vb).f0_hz
            return measure_coupling(osc, dac.with_code(code), vctrl_a_v=vnom, vctrl_b_v=vb,
                                    k_guess_rad_s=k_guess, f_a_hz=f_a, f_b_hz=f_b)

        m = until_drift(attempt, DETUNE_PER_K * k_guess, what=f"code {code:+d}", unit="rad/s")
        results[code] = m
        last = (abs(m.fit.k_rad_s), g)
    return results


def _k_table(osc: Any, dac: Any, *, f_a: float, kvco: float, both_signs: bool, bar: Any,
             workers: int = 1) -> dict[int, Any]:
    """Adler fits per signed code: the positive codes from full code down, and the negative
    ones (all of them, or full code alone), each sign one chain of guesses (`_k_chain`); with
    both signs and `workers` > 1 the two chains run in two processes at once (independent:
    same fits as one after the other). Then code 0 at code 1's detuning."""
    vnom = osc.vctrl_nominal_v
    positive = list(range(dac.max_code, 0, -1))
    negative = [-c for c in positive] if both_signs else [-dac.max_code]
    if both_signs and workers > 1:
        chains = _run_pool(_k_chain, [(osc, dac, positive, f_a, kvco), (osc, dac, negative, f_a, kvco)],
                           workers=2, bar=bar, task_timeout_s=CF_TASK_TIMEOUT_S, what="K per code",
                           weights=[len(positive), len(negative)])
    else:
        chains = []
        for codes in (positive, negative):
            chains.append(_k_chain(osc, dac, codes, f_a, kvco))
            bar.update(len(codes))
    results = {**chains[0], **chains[1]}
    # code 0: no resistor switched in; the same detuning as code 1 shows what leaks through
    m1 = results[1]
    f_b1 = measure_ring(osc, vctrl_v=m1.vctrl_b_v).f0_hz
    try:
        results[0] = measure_coupling(osc, dac.with_code(0), vctrl_a_v=vnom, vctrl_b_v=m1.vctrl_b_v,
                                      k_guess_rad_s=0.0, f_a_hz=f_a, f_b_hz=f_b1)
    except CharacterizeError as exc:
        raise CharacterizeError(f"code 0: {exc}") from None
    bar.update(1)
    return {code: results[code] for code in [*positive, *negative, 0]}


#: couplers attached in the fan-out loading run (f0 against m, coupling off, load kept)
FANOUT_LOADING_M = 4
#: the code whose runs give the load tables (mid-scale: one magnitude bit on)
FANOUT_REF_CODE = 4
#: terms below this fraction of |a1| (the k ≥ 2 harmonics) take the a1 load factor: their own ratio is noise
_SMALL_TERM = 0.1


#: backstop per coupling-function task in the worker pool (a code-1 row on BSIM4 cells runs
#: ~2,000 cycles; a fan-out chain is up to `Plan.fanout_max` such runs)
CF_TASK_TIMEOUT_S = 3600.0


def _cf_row(osc: Any, dac: Any, code: int, carrier_hz: float, kvco: float, k_guess: float, slips: float):
    """One code row of the coupling-function table (a worker task): one coupler per cell."""
    from hw.measure import measure_coupling_function

    return measure_coupling_function(osc, code=code, carrier_hz=carrier_hz, kvco_hz_per_v=kvco,
                                     k_guess_rad_s=k_guess, slips=slips, dac=dac)


def _cf_fanout_chain(osc: Any, dac: Any, code: int, carrier_hz: float, kvco: float, k_code: float, slips: float,
                     fanout_max: int) -> tuple[dict[int, Any], dict[str, Any] | None]:
    """The load runs of one sign (a worker task): m = 2..fanout_max couplers on one cell and one
    on the other, until a cell this loaded cannot be trimmed to the carrier. Returns the runs
    by m and the first unreachable m (or None)."""
    from hw.measure import measure_coupling_function

    runs: dict[int, Any] = {}
    for m_load in range(2, fanout_max + 1):
        # a coupler's fundamental falls roughly as 1 / (1 + (m - 1) λ) with load: a guess for the detuning
        guess = k_code / (1 + 0.25 * (m_load - 1))
        try:
            runs[m_load] = measure_coupling_function(osc, code=code, carrier_hz=carrier_hz, kvco_hz_per_v=kvco,
                                                     k_guess_rad_s=guess, m_a=m_load, m_b=1, slips=slips, dac=dac)
        except CharacterizeError as exc:
            # a cell this loaded cannot reach the carrier within its control range (it stalls or
            # tops out): the load table ends at the last m that could be trimmed
            return runs, {"code": code, "m": m_load, "error": str(exc)}
    return runs, None


def _coupling_function_tables(osc: Any, dac: Any, *, carrier_hz: float, kvco: float, k_table: list[float],
                              plan: Plan, bar: Any, workers: int = 2) -> dict[str, Any]:
    """The version-2 tables (`hw.calibration`): H per signed code at one coupler per cell, and
    per sign the load factors by m from runs with m couplers on one cell and one on the other.

    Code rows: the mean of the two cells' fits (they sit at carrier ∓ Δ/2, so the mean is
    the cell at the carrier). Loads: a run (m_a = m, m_b = 1) at ±`FANOUT_REF_CODE` gives
    the receiver factor at m from cell a and the sender factor at m from cell b, each
    against the same cell of the (1, 1) run; terms smaller than 10 % of |a1| take a1's factor.

    Every run is a trimmed pair of its own, independent of the others given `k_table`: the
    two signs' load chains and the code rows run in `workers` processes (the chains first,
    they are the longest), each deck exactly as a serial run would build it.
    """
    max_code = len(k_table) - 1
    codes = [c for c in range(-max_code, max_code + 1) if c]
    ref_codes = [sign * min(FANOUT_REF_CODE, max_code) for sign in (1, -1)]
    chains = [(osc, dac, code, carrier_hz, kvco, k_table[abs(code)], plan.slips, plan.fanout_max) for code in ref_codes]
    rows = [(osc, dac, code, carrier_hz, kvco, k_table[abs(code)], plan.slips) for code in codes]
    tasks = [(_cf_fanout_chain, job) for job in chains] + [(_cf_row, job) for job in rows]
    done = _run_pool(_call, tasks, workers=workers, bar=bar, task_timeout_s=CF_TASK_TIMEOUT_S,
                     what="coupling-function", weights=[plan.fanout_max - 1] * len(chains) + [1] * len(rows))
    chain_out, row_out = done[: len(chains)], done[len(chains):]

    rows_coef, residual, runs = [], [], {}
    for code, m in zip(codes, row_out):
        runs[(code, 1, 1)] = m
        rows_coef.append(((np.asarray(m.a.coef) + np.asarray(m.b.coef)) / 2).tolist())
        residual.append(max(m.a.residual_rel, m.b.residual_rel))
    recv: list[list[list[float]]] = [[], []]
    send: list[list[list[float]]] = [[], []]
    fan_res: list[list[float]] = [[], []]
    unreachable: list[dict[str, Any]] = []
    for s, (code, (load_runs, stop)) in enumerate(zip(ref_codes, chain_out)):
        ref = runs[(code, 1, 1)]
        recv[s].append([1.0] * 7)
        send[s].append([1.0] * 7)
        fan_res[s].append(max(ref.a.residual_rel, ref.b.residual_rel))
        if stop is not None:
            unreachable.append(stop)
        for m_load, run_m in sorted(load_runs.items()):
            runs[(code, m_load, 1)] = run_m
            for table, fit, base in ((recv, run_m.a, ref.a), (send, run_m.b, ref.b)):
                new, old = np.asarray(fit.coef), np.asarray(base.coef)
                factor = new / old
                small = np.abs(old) < _SMALL_TERM * abs(old[1])
                factor[small] = factor[1]
                table[s].append(factor.tolist())
            fan_res[s].append(max(run_m.a.residual_rel, run_m.b.residual_rel))
    m_top = min(len(recv[0]), len(recv[1]))  # both signs' tables cover the same m
    return {"codes": codes, "rows": rows_coef, "residual": residual, "receiver": [t[:m_top] for t in recv],
            "sender": [t[:m_top] for t in send], "fanout_residual": [t[:m_top] for t in fan_res], "runs": runs,
            "fanout_unreachable": unreachable}


def _call(fn: Any, args: tuple) -> Any:
    """fn(*args) in a worker (lets one pool run tasks of different kinds)."""
    return fn(*args)


def _sha256_files(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for p in sorted(paths, key=lambda q: q.name):
        digest.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    return digest.hexdigest()


def characterize_all(out_dir: str | Path, *, quick: bool = False, progress: bool = True, seed: int = 0,
                     workers: int = 2, cal_path: str | Path | None = None, process: Any = "generic180",
                     coupler: str = "resistive", gm_tap: int = 0) -> Calibration:
    """Measure everything, write `calibration.json` (or `cal_path`), plots and decks to
    `out_dir`, and return the measured Calibration. `seed` fixes the Monte Carlo draws (and
    is handed to ngspice for the transient noise, which libngspice 39 does not repeat);
    `workers` processes run the Monte Carlo. `process`: a registry name of
    `hw.spice.process.PROCESSES` (or a `Process`); the cells are the ones sized for it
    (`hw.spice.cells.ring_for`, `coupler_for`). `coupler`: "resistive" (the resistor DAC) or
    "gm" (buffered taps and a current-steering DAC, `hw.spice.cells.GmCouplerDAC`), its tap
    buffer on the sender's ring stage `gm_tap` (0: p0)."""
    from tqdm import tqdm

    from hw.spice import cells, run
    from hw.spice.process import matching_of, process_named

    t_start = time.monotonic()
    plan = Plan.of(quick)
    proc = process_named(process) if isinstance(process, str) else process
    osc = cells.ring_for(proc)
    dac = cells.coupler_for(proc, coupler, n_stages=osc.n_stages, gm_tap=gm_tap)
    vnom, vrange = osc.vctrl_nominal_v, osc.vctrl_range_v
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n_codes = dac.max_code * (2 if plan.both_signs else 1) + (0 if plan.both_signs else 1) + 1
    total = plan.tuning_points + 2 + 3 + n_codes + 1 + plan.mc_rings + plan.mc_pairs + 2 * dac.max_code \
        + 2 * (plan.fanout_max - 1) + 1
    bar = tqdm(total=total, desc="characterize", unit="run", disable=not progress, leave=False)
    raw: dict[str, Any] = {"plan": dataclasses.asdict(plan), "seed": seed, "process": proc.key, "coupler": coupler,
                           "gm_tap": gm_tap}
    steps: dict[str, float] = {}  # wall seconds per step, kept in raw["step_seconds"]
    current = {"name": "", "t": time.monotonic()}

    def step(name: str) -> None:
        now = time.monotonic()
        if current["name"]:
            steps[current["name"]] = now - current["t"]
        current.update(name=name, t=now)
        bar.set_postfix_str(name)

    try:
        # 1. tuning
        step("tuning")
        grid = sorted(set(np.round(np.linspace(*vrange, plan.tuning_points), 4).tolist()) | {vnom})
        rings = []
        for v in grid:
            rings.append(measure_ring(osc, vctrl_v=v))
            bar.update(1)
        fit = fit_tuning([m.vctrl_v for m in rings], [m.f0_hz for m in rings])
        if not fit.monotone:
            raise CharacterizeError(f"tuning curve not monotone: {fit.f0_hz}")
        nominal = next(m for m in rings if m.vctrl_v == vnom)
        lo = measure_ring(osc, vctrl_v=vnom - KVCO_STEP_V)
        hi = measure_ring(osc, vctrl_v=vnom + KVCO_STEP_V)
        bar.update(2)
        kvco = (hi.f0_hz - lo.f0_hz) / (2 * KVCO_STEP_V)
        raw["tuning"] = {"vctrl_v": list(fit.vctrl_v), "f0_hz": list(fit.f0_hz),
                         "ring_energy_per_cycle_j": [m.energy_per_cycle_j for m in rings],
                         "bias_energy_per_cycle_j": [m.bias_energy_per_cycle_j for m in rings],
                         "k_vco_fit_hz_per_v": fit.k_vco_hz_per_v, "k_vco_nominal_hz_per_v": kvco,
                         "linearity_error": fit.linearity_error}
        raw["cv2"] = {"switched_capacitance_f": osc.switched_capacitance_f(),
                      "cv2_j": osc.switched_capacitance_f() * osc.process.vdd_v**2}

        # 2. K_eff per code (needs a K scale before the locking demo picks its detuning)
        step("K per code")
        kfits = _k_table(osc, dac, f_a=nominal.f0_hz, kvco=kvco, both_signs=plan.both_signs, bar=bar,
                         workers=workers)
        kmax = dac.max_code
        k_full = abs(kfits[kmax].fit.k_rad_s)

        # 2b. the coupling function at the array's carrier: a cell with one coupler attached at
        # the nominal control (where K_eff is measured), every cell trimmed to it
        step("coupling function")
        carrier = kfits[0].f_a_pair_hz
        table_k = [0.0] + [float(np.mean([abs(kfits[c].fit.k_rad_s) for c in (k, -k) if c in kfits]))
                           for k in range(1, kmax + 1)]
        hfun = _coupling_function_tables(osc, dac, carrier_hz=carrier, kvco=kvco * carrier / nominal.f0_hz,
                                         k_table=table_k, plan=plan, bar=bar, workers=workers)

        # 3. locking regimes at full code
        step("locking")
        t0 = time.monotonic()
        lock_pos = measure_pair(osc, dac.with_code(kmax), vctrl_a_v=vnom, b_offset_stages=1)
        t_lock = time.monotonic() - t0
        lock_neg = measure_pair(osc, dac.with_code(-kmax), vctrl_a_v=vnom, b_offset_stages=3)
        vb_drift = kfits[kmax].vctrl_b_v  # the detuning that drifted in the K fit: Δω ~ 1.5 (2K)
        drift = measure_pair(osc, dac.with_code(kmax), vctrl_a_v=vnom, vctrl_b_v=vb_drift,
                             cycles=80, tail_cycles=30)
        bar.update(3)
        raw["locking"] = {
            name: {"final_psi_deg": math.degrees(m.final_psi_rad), "psi_spread_deg": math.degrees(m.psi_spread_rad),
                   "f_a_hz": m.f_a_hz, "f_b_hz": m.f_b_hz, "psi_deg": np.degrees(m.psi_rad).tolist()}
            for name, m in (("in_phase", lock_pos), ("anti_phase", lock_neg), ("drift", drift))}
        raw["locking"]["drift"]["vctrl_b_v"] = vb_drift
        raw["locking"]["two_cell_lock_s"] = t_lock

        # 4. jitter
        step("jitter")
        pooled = {"map_runs": lambda fn, jobs: _run_pool(fn, jobs, workers=workers, bar=tqdm(disable=True),
                                                         task_timeout_s=CF_TASK_TIMEOUT_S, what="jitter")}
        jit = measure_jitter(osc, vctrl_v=vnom, cycles=plan.jitter_cycles, seed=seed + 1,
                             **(pooled if workers > 1 else {}))
        bar.update(1)
        raw["jitter"] = {"jitter_s": jit.jitter_s, "floor_s": jit.floor_s, "net_s": jit.net_s,
                         "period_s": jit.period_s, "noise_psd_a2_per_hz": jit.noise_psd_a2_per_hz,
                         "cycles": int(jit.periods_s.size)}

        # 4b. loading by fan-out: a lone cell's f0 with m = 0..FANOUT_LOADING_M couplers attached
        step("fan-out loading")
        fan = measure_fanout_loading(osc, dac, m_max=FANOUT_LOADING_M, code=min(FANOUT_REF_CODE, kmax))
        bar.update(1)
        raw["fanout_loading"] = {"code": fan.code, "vctrl_v": fan.vctrl_v, "f_hz": list(fan.f_hz),
                                 "shift_rel": list(fan.shift_rel),
                                 "shift_per_coupler_rel": fan.shift_per_coupler_rel}
        raw["coupler_area_proxy"] = dac.device_count()

        # 5. Monte Carlo
        step("Monte Carlo")
        f_mc = _run_pool(_mc_ring, [(seed, i, vnom, osc) for i in range(plan.mc_rings)], workers=workers,
                         bar=bar)
        k_mc = _run_pool(_mc_pair, [(seed, i, vnom, kmax, k_full, kvco, osc, dac) for i in range(plan.mc_pairs)],
                         workers=workers, bar=bar)
        sigma_f0 = float(np.std(f_mc, ddof=1) / np.mean(f_mc))
        sigma_k = float(np.std(k_mc, ddof=1) / np.mean(k_mc))
        raw["montecarlo"] = {"f0_hz": f_mc, "k_full_rad_s": k_mc, "sigma_f0_rel": sigma_f0, "sigma_k_rel": sigma_k}
        step("done")
        raw["step_seconds"] = steps
    finally:
        bar.close()

    # --- the table, the decks, the calibration ---------------------------------------------
    k_pos = {c: kfits[c].fit.k_rad_s for c in kfits if c > 0}
    k_neg = {-c: -kfits[c].fit.k_rad_s for c in kfits if c < 0}
    table = [0.0]
    for c in range(1, kmax + 1):
        both = [k_pos[c]] + ([k_neg[c]] if c in k_neg else [])
        table.append(float(np.mean(both)))
    k0 = kfits[0].fit.k_rad_s
    asym = {c: (k_pos[c] - k_neg[c]) / table[c] for c in k_neg}
    residual = max(m.fit.residual_rel for c, m in kfits.items() if c != 0)
    harm = tuple(float(x) for x in np.mean([kfits[kmax].fit.harmonics] +
                                            ([kfits[-kmax].fit.harmonics] if -kmax in kfits else []), axis=0))
    e_coupler = float(np.mean([kfits[c].coupler_energy_per_cycle_j for c in (kmax, -kmax) if c in kfits]))
    raw["k_per_code"] = {
        str(c): {"k_rad_s": m.fit.k_rad_s, "delta_omega_fit_rad_s": m.fit.delta_omega_rad_s,
                 "delta_omega_free_rad_s": m.delta_omega_free_rad_s, "harmonics": list(m.fit.harmonics),
                 "phase_lag_rad": m.fit.phase_lag_rad, "residual_rel": m.fit.residual_rel,
                 "samples": m.fit.samples, "coupler_energy_per_cycle_j": m.coupler_energy_per_cycle_j,
                 "coupler_energy_max_j": m.coupler_energy_max_j, "vctrl_b_v": m.vctrl_b_v,
                 "f_a_pair_hz": m.f_a_pair_hz, "f_b_pair_hz": m.f_b_pair_hz}
        for c, m in sorted(kfits.items())}
    raw["k_table_rad_s"] = table
    raw["coupling_function"] = {
        "terms": list(COUPLING_TERMS), "carrier_hz": carrier, "codes": hfun["codes"], "rows_rad_s": hfun["rows"],
        "residual_rel": hfun["residual"], "fanout_receiver": hfun["receiver"], "fanout_sender": hfun["sender"],
        "fanout_residual": hfun["fanout_residual"], "fanout_ref_code": FANOUT_REF_CODE,
        "fanout_unreachable": hfun["fanout_unreachable"],
        "runs": {f"{c:+d}@{ma},{mb}": {"a": list(m.a.coef), "b": list(m.b.coef), "lag_a_rad": m.a.lag_rad,
                                        "lag_b_rad": m.b.lag_rad, "residual_a": m.a.residual_rel,
                                        "residual_b": m.b.residual_rel, "window_bias_a": list(m.a.window_bias),
                                        "window_bias_b": list(m.b.window_bias), "f_open_hz": list(m.f_open_hz),
                                        "vctrl_v": list(m.vctrl_v), "closing_shift_hz": list(m.closing_shift_hz),
                                        "cycles": m.cycles, "seconds": m.seconds}
                 for (c, ma, mb), m in hfun["runs"].items()}}
    raw["sign_asymmetry"] = {str(c): a for c, a in asym.items()}
    raw[dac.STRENGTH_KEY] = 2 * dac.strength(kmax)  # both paths (or directions) at full code

    deck_dir = out / "decks"
    deck_dir.mkdir(exist_ok=True)
    for old in deck_dir.glob("*.cir"):
        old.unlink()
    period = 1 / nominal.f0_hz
    decks = {
        "ring_nominal.cir": cells.deck(cells.ring_bench(osc, vctrl_v=vnom), step_s=period / 100,
                                       stop_s=12 * period, ic=cells.ring_kick(osc),
                                       extra_lines=cells.period_measure_lines("o0", osc.process.vdd_v / 2)),
        f"pair_code{kmax:+d}_drift.cir": kfits[kmax].deck,
        "ring_trnoise.cir": jit.deck,
    }
    if -kmax in kfits:
        decks[f"pair_code{-kmax:+d}_drift.cir"] = kfits[-kmax].deck
    paths = []
    for name, text in decks.items():
        cells.write_cir(text, deck_dir / name)
        paths.append(deck_dir / name)

    # Loading: A with one coupler at code 0 (no path on, B's phase irrelevant) vs a lone cell;
    # then the in-phase lock at full code, where like nodes carry no current, vs code 0.
    f_code0 = kfits[0].f_a_pair_hz
    load_rel = max(0.0, 1 - f_code0 / nominal.f0_hz)
    bits_on = kmax.bit_count()
    f_on = 0.5 * (lock_pos.f_a_hz + lock_pos.f_b_hz)
    on_rel = max(0.0, (1 - f_on / f_code0) / bits_on)
    raw["loading"] = {"f_lone_hz": nominal.f0_hz, "f_code0_hz": f_code0, "f_in_phase_full_code_hz": f_on,
                      "coupler_load_f_rel": load_rel, "coupler_on_f_rel_per_bit": on_rel}

    version = run.ngspice_version()
    lk = raw["locking"]
    mt = matching_of(proc)
    notes = (
        f"Measured by hw.characterization.characterize_all ({'quick' if quick else 'full'} plan, seed {seed}) with ngspice {version} "
        f"on {osc.n_stages}-stage current-starved rings (c_load {osc.c_load_f:g} F) and a {dac.bits}-bit "
        f"{dac.summary()}. f0 at Vctrl = {vnom} V, range over "
        f"{vrange[0]}-{vrange[1]} V ({len(grid)} points); energies from supply current integrated "
        f"over whole cycles at f0; coupler energy: {dac.ENERGY_NOTE} at full code averaged uniformly over psi. "
        f"K_eff per code: Adler fit of drifting pairs (Dw/2K ~ 1.5), "
        f"{'mean of +code and -code' if plan.both_signs else '+code only'}; code 0 measured "
        f"{k0:.3g} rad/s (no path switched in), stored as 0; worst fit residual {residual:.3f} of 2K; "
        f"sign asymmetry (K+ - K-)/K: " + ", ".join(f"{c}: {a:+.3f}" for c, a in sorted(asym.items())) + ". "
        f"Locking at full code: +{kmax} ends at psi = {lk['in_phase']['final_psi_deg']:.1f} deg, "
        f"-{kmax} at {lk['anti_phase']['final_psi_deg']:.1f} deg, detuned drift spread "
        f"{lk['drift']['psi_spread_deg']:.0f} deg. "
        f"Jitter: trnoise channel noise 4kT(2/3)(2gm) per node, {jit.periods_s.size} periods, numerical floor "
        f"{jit.floor_s:.3g} s subtracted in quadrature. Mismatch: {plan.mc_rings} rings / {plan.mc_pairs} pairs, "
        f"Pelgrom A_VT {mt.a_vt_v_m * 1e9:g} mV um, A_beta {mt.a_beta_m * 1e8:g} % um, resistor A_R "
        f"{mt.a_r_m * 1e8:g} % um; pairs trimmed to the nominal detuning. "
        f"{dac.LOAD_NOTE}: with one "
        f"coupler attached at code 0 a cell at {vnom} V runs at {f_code0 / 1e6:.1f} MHz "
        f"(lone: {nominal.f0_hz / 1e6:.1f} MHz), in-phase locked at code +{kmax} at {f_on / 1e6:.1f} MHz; its tuning "
        f"slope is {kfits[0].fit.delta_omega_rad_s / kfits[0].delta_omega_free_rad_s:.2f} of a lone cell's. K_eff "
        f"is measured with that load. "
        f"Coupling function (format 2): each cell's own phase velocity on a slipping pair (Dw ~ 1.5 x the locking "
        f"range, {plan.slips:g} slips), both cells trimmed with the coupler open to {carrier / 1e6:.1f} MHz -/+ Dw/2, "
        f"regressed on window-averaged sin kx, cos kx (k <= 3; unbiased) against the open-coupler frequency; rows "
        f"per code at one coupler per cell (worst residual {max(hfun['residual']):.3f} of |a1|); load factors from "
        f"runs with m = 2..{len(hfun['receiver'][0])} couplers on one cell at code +/-{FANOUT_REF_CODE} (open DACs "
        f"of that code as the extra load). "
        + (f"With {min(u['m'] for u in hfun['fanout_unreachable'])} couplers a cell could not be trimmed to the "
           f"carrier (it stalls or tops out): the load table ends before. " if hfun["fanout_unreachable"] else "")
        + f"Every figure is for {PROCESS_NOTE.get(proc.key, 'this model process')}, not a foundry PDK."
    )
    cal = Calibration(
        format_version=FORMAT_VERSION, source="measured",
        process=f"{osc.process.name} (hw.spice.process: VDD {osc.process.vdd_v} V, VTH {osc.process.nmos.vth_v} V, "
                f"tox {osc.process.nmos.tox_m * 1e9:g} nm)",
        vdd_v=osc.process.vdd_v, f0_hz=nominal.f0_hz, f_min_hz=min(fit.f0_hz), f_max_hz=max(fit.f0_hz),
        tuning_nonlinearity=fit.linearity_error, cell_energy_per_cycle_j=nominal.energy_per_cycle_j,
        bias_energy_per_cycle_j=nominal.bias_energy_per_cycle_j, coupler_bits=dac.bits,
        coupler_k_rad_s=tuple(table), coupler_energy_per_cycle_j=e_coupler, coupling_harmonics=harm,
        period_jitter_s=jit.net_s, sigma_f0_rel=sigma_f0, sigma_k_rel=sigma_k, ngspice_version=version,
        netlist_sha256=_sha256_files(paths), notes=notes, coupler_load_f_rel=load_rel,
        coupler_on_f_rel_per_bit=on_rel, carrier_hz=carrier, coupling_codes_rad_s=hfun["rows"],
        coupling_residual=hfun["residual"], fanout_receiver=hfun["receiver"], fanout_sender=hfun["sender"],
        fanout_residual=hfun["fanout_residual"], tuning_vctrl_v=fit.vctrl_v, tuning_f_hz=fit.f0_hz,
        fanout_ref_code=min(FANOUT_REF_CODE, kmax), coupler=coupler)
    raw["seconds"] = time.monotonic() - t_start
    from hw.plots import write_plots

    write_plots(out, raw=raw, kfits=kfits, jitter=jit, locks=(lock_pos, lock_neg, drift), tuning=fit)
    from oscsim import atomic_path

    with atomic_path(out / "characterization.json") as tmp:
        tmp.write_text(json.dumps(raw, indent=1) + "\n")
    cal.save(cal_path if cal_path is not None else out / "calibration.json")
    return cal
