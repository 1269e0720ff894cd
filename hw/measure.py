"""Measurements of the cells on ngspice transients: frequency, tuning, energy per cycle,
phase locking, the Adler fit of the coupling function, jitter, ring phase, array trim.

The analysis functions (`rising_crossings`, `frequency_hz`, `energy_per_cycle_j`,
`fit_tuning`, `phase_difference_rad`, `ring_phase`, `phase_dynamics`, `fit_adler`,
`period_jitter_s`) are pure numpy on arrays. The `measure_*` functions, `tuning_curve`,
`ring_snapshot` and `trim_array` build a bench (`hw.spice.cells`), run it in ngspice through
`hw.spice.run` (both imported when called) and feed those functions; `measure_array` runs a
trimmed array of coupled rings from given phases. The whole characterisation that turns
these into a `hw.Calibration` is `hw.characterization`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # hw.spice.cells imports PySpice: only the runners below load it
    from hw.spice.cells import Coupler, CouplerDAC, RingOscillator
    from hw.spice.process import MosModel


class CharacterizeError(ValueError):
    """A waveform does not hold what the measurement needs (too few cycles, bad shapes)."""


def rising_crossings(time_s: np.ndarray, x: np.ndarray, *, level: float) -> np.ndarray:
    """Times where x crosses `level` upwards, linearly interpolated between samples."""
    t = np.asarray(time_s, dtype=np.float64)
    y = np.asarray(x, dtype=np.float64) - level
    if t.shape != y.shape or t.ndim != 1:
        raise CharacterizeError(f"time_s and x must be 1-D of one length, got {t.shape} and {y.shape}")
    k = np.nonzero((y[:-1] < 0) & (y[1:] >= 0))[0]
    frac = -y[k] / (y[k + 1] - y[k])
    return t[k] + frac * (t[k + 1] - t[k])


def frequency_hz(time_s: np.ndarray, x: np.ndarray, *, level: float, skip_cycles: int = 2,
                 min_cycles: int = 3) -> float:
    """Mean frequency from rising crossings: (n - 1) / (t_last - t_first).

    The first `skip_cycles` crossings (start-up) are dropped; at least `min_cycles` whole
    cycles must remain.
    """
    c = rising_crossings(time_s, x, level=level)[skip_cycles:]
    if c.size < min_cycles + 1:
        raise CharacterizeError(
            f"need >= {min_cycles} whole cycles after skipping {skip_cycles}, got {max(c.size - 1, 0)}")
    return (c.size - 1) / (c[-1] - c[0])


def energy_per_cycle_j(time_s: np.ndarray, supply_current_a: np.ndarray, *, supply_v: float,
                       cycle_edges_s: np.ndarray) -> float:
    """Energy drawn from a supply per cycle: V * integral(I dt) from the first to the last edge,
    divided by the number of whole cycles between them.

    `supply_current_a` is the current delivered by the supply (positive out of its + terminal:
    the negative of SPICE's branch current). Integrating over whole cycles cancels the
    charge a node stores at the window's ends.
    """
    t = np.asarray(time_s, dtype=np.float64)
    i = np.asarray(supply_current_a, dtype=np.float64)
    edges = np.asarray(cycle_edges_s, dtype=np.float64)
    if edges.size < 2:
        raise CharacterizeError(f"need >= 2 cycle edges, got {edges.size}")
    t0, t1 = edges[0], edges[-1]
    inside = (t > t0) & (t < t1)
    tt = np.concatenate(([t0], t[inside], [t1]))
    ii = np.concatenate(([np.interp(t0, t, i)], i[inside], [np.interp(t1, t, i)]))
    charge_c = float(np.sum(0.5 * (ii[1:] + ii[:-1]) * np.diff(tt)))
    return supply_v * charge_c / (edges.size - 1)


@dataclass(frozen=True)
class TuningFit:
    """f0(V_ctrl) and how linear it is.

    k_vco_hz_per_v: least-squares slope; linearity_error: max |f - fit| / (f_max - f_min)
    (0 = a straight line); tuning_ratio: f_max / f_min.
    """

    vctrl_v: tuple[float, ...]
    f0_hz: tuple[float, ...]
    k_vco_hz_per_v: float
    intercept_hz: float
    linearity_error: float
    tuning_ratio: float
    monotone: bool


def fit_tuning(vctrl_v: Sequence[float], f0_hz: Sequence[float]) -> TuningFit:
    """Fit a line to a tuning curve and report range, linearity and monotonicity."""
    v = np.asarray(vctrl_v, dtype=np.float64)
    f = np.asarray(f0_hz, dtype=np.float64)
    if v.shape != f.shape or v.size < 3:
        raise CharacterizeError(f"need >= 3 (vctrl, f0) pairs of one length, got {v.shape}, {f.shape}")
    order = np.argsort(v)
    v, f = v[order], f[order]
    slope, intercept = np.polyfit(v, f, 1)
    span = f.max() - f.min()
    lin = float(np.max(np.abs(f - (slope * v + intercept))) / span) if span > 0 else 0.0
    return TuningFit(vctrl_v=tuple(v.tolist()), f0_hz=tuple(f.tolist()), k_vco_hz_per_v=float(slope),
                     intercept_hz=float(intercept), linearity_error=lin,
                     tuning_ratio=float(f.max() / f.min()), monotone=bool(np.all(np.diff(f) > 0)))


@dataclass(frozen=True)
class RingMeasurement:
    """One ring at one control voltage.

    energy_per_cycle_j: drawn from the ring supply (switching: compare with C_total VDD^2);
    bias_energy_per_cycle_j: the bias branch's static current over one period.
    """

    vctrl_v: float
    f0_hz: float
    energy_per_cycle_j: float
    bias_energy_per_cycle_j: float
    cycles: int
    sim_stop_s: float


def measure_ring(osc: RingOscillator, *, vctrl_v: float, cycles: int = 8, skip_cycles: int = 2,
                 points_per_period: int = 100, first_stop_s: float = 20e-9,
                 timeout_s: float = 30.0, cards: dict[str, MosModel] | None = None) -> RingMeasurement:
    """Simulate the ring bench at `vctrl_v` until `cycles` whole cycles follow start-up.

    A first run of `first_stop_s` gives the period; if it held too few cycles the run is
    repeated, long enough and with the step set to period / points_per_period.
    `cards`: per-device model cards (Monte Carlo mismatch).
    """
    from hw.spice import cells, run

    bench = cells.ring_bench(osc, vctrl_v=vctrl_v, cards=cards)
    vdd = osc.process.vdd_v
    stop_s, step_s = first_stop_s, first_stop_s / 4000
    for _ in range(4):
        text = cells.deck(bench, step_s=step_s, stop_s=stop_s, ic=cells.ring_kick(osc))
        tr = run.transient(text, stop_s=stop_s, timeout_s=timeout_s)
        edges = rising_crossings(tr.time_s, tr.v("o0"), level=vdd / 2)[skip_cycles:]
        if edges.size >= cycles + 1 and (edges[1] - edges[0]) / step_s >= points_per_period / 2:
            edges = edges[: cycles + 1]
            break
        if edges.size >= 2:
            period_s = float(np.mean(np.diff(edges)))
        elif edges.size + skip_cycles >= 2:
            period_s = stop_s / 2
        else:
            period_s = stop_s  # no oscillation seen yet: try longer
        stop_s = period_s * (cycles + skip_cycles + 2)
        step_s = period_s / points_per_period
    else:
        raise CharacterizeError(f"ring at vctrl={vctrl_v:g} V gave {edges.size} cycles after start-up "
                                f"in {stop_s:.3g} s; it may not oscillate at this control voltage")
    f0 = (edges.size - 1) / (edges[-1] - edges[0])
    e_ring = energy_per_cycle_j(tr.time_s, -tr.i("vdd"), supply_v=vdd, cycle_edges_s=edges)
    e_bias = energy_per_cycle_j(tr.time_s, -tr.i("vddb"), supply_v=vdd, cycle_edges_s=edges)
    return RingMeasurement(vctrl_v=float(vctrl_v), f0_hz=float(f0), energy_per_cycle_j=e_ring,
                           bias_energy_per_cycle_j=e_bias, cycles=int(edges.size - 1), sim_stop_s=stop_s)


def tuning_curve(osc: RingOscillator, vctrl_v: Sequence[float],
                 **kwargs: float) -> tuple[TuningFit, list[RingMeasurement]]:
    """Measure the ring at each control voltage and fit the tuning line."""
    ms = [measure_ring(osc, vctrl_v=v, **kwargs) for v in vctrl_v]
    return fit_tuning([m.vctrl_v for m in ms], [m.f0_hz for m in ms]), ms


def phase_difference_rad(time_s: np.ndarray, x_a: np.ndarray, x_b: np.ndarray, *, level: float,
                         ) -> tuple[np.ndarray, np.ndarray]:
    """psi = theta_b - theta_a per cycle of A, in (-pi, pi], from rising crossings.

    For each of A's cycles [t_k, t_{k+1}) holding a crossing of B at s:
    psi_k = -2 pi (s - t_k) / (t_{k+1} - t_k)  (B crossing later = B lagging = psi < 0).
    Returns (t_k, psi_k).
    """
    ca = rising_crossings(time_s, x_a, level=level)
    cb = rising_crossings(time_s, x_b, level=level)
    if ca.size < 2 or cb.size < 1:
        raise CharacterizeError(f"need >= 2 crossings of A and >= 1 of B, got {ca.size} and {cb.size}")
    ts, psis = [], []
    for t0, t1 in zip(ca[:-1], ca[1:]):
        inside = cb[(cb >= t0) & (cb < t1)]
        if inside.size:
            lag = -2 * np.pi * (inside[0] - t0) / (t1 - t0)
            ts.append(t0)
            psis.append(np.angle(np.exp(1j * lag)))
    return np.asarray(ts), np.asarray(psis)


@dataclass(frozen=True)
class PairMeasurement:
    """Two coupled rings: the final phase difference and how steady it is.

    final_psi_rad: circular mean of psi over the last `tail_cycles`; psi_spread_rad: circular
    standard deviation over the same cycles (small = locked); f_a_hz, f_b_hz over that tail.
    """

    t_s: tuple[float, ...]
    psi_rad: tuple[float, ...]
    final_psi_rad: float
    psi_spread_rad: float
    f_a_hz: float
    f_b_hz: float


def _circular_mean_std(x: np.ndarray) -> tuple[float, float]:
    z = np.mean(np.exp(1j * x))
    return float(np.angle(z)), float(np.sqrt(abs(-2 * np.log(min(max(abs(z), 1e-300), 1.0)))))


def measure_pair(osc: RingOscillator, coupler: Coupler, *, vctrl_a_v: float = 1.0,
                 vctrl_b_v: float | None = None,
                 cycles: int = 30, tail_cycles: int = 8, points_per_period: int = 100,
                 b_offset_stages: int = 2, timeout_s: float = 60.0) -> PairMeasurement:
    """Simulate two coupled rings for `cycles` periods of A (period from a lone-cell run).

    `b_offset_stages` picks B's starting pattern (`cells.pair_kick`), i.e. the initial psi.
    """
    from hw.spice import cells, run

    vctrl_b_v = vctrl_a_v if vctrl_b_v is None else vctrl_b_v
    period_s = 1 / measure_ring(osc, vctrl_v=vctrl_a_v, timeout_s=timeout_s).f0_hz
    stop_s = cycles * period_s
    bench = cells.pair_bench(osc, coupler, vctrl_a_v=vctrl_a_v, vctrl_b_v=vctrl_b_v)
    text = cells.deck(bench, step_s=period_s / points_per_period, stop_s=stop_s,
                      ic=cells.pair_kick(osc, b_offset_stages=b_offset_stages))
    tr = run.transient(text, stop_s=stop_s, timeout_s=timeout_s)
    level = osc.process.vdd_v / 2
    t, psi = phase_difference_rad(tr.time_s, tr.v("a0"), tr.v("b0"), level=level)
    if psi.size < tail_cycles:
        raise CharacterizeError(f"only {psi.size} cycles with a phase difference; need {tail_cycles}")
    mean, spread = _circular_mean_std(psi[-tail_cycles:])
    ca = rising_crossings(tr.time_s, tr.v("a0"), level=level)[-tail_cycles - 1:]
    cb = rising_crossings(tr.time_s, tr.v("b0"), level=level)[-tail_cycles - 1:]
    return PairMeasurement(t_s=tuple(t.tolist()), psi_rad=tuple(psi.tolist()), final_psi_rad=mean,
                           psi_spread_rad=spread, f_a_hz=float((ca.size - 1) / (ca[-1] - ca[0])),
                           f_b_hz=float((cb.size - 1) / (cb[-1] - cb[0])))


# --- phase of a ring from all its edges, and the Adler fit ---------------------------------
def falling_crossings(time_s: np.ndarray, x: np.ndarray, *, level: float) -> np.ndarray:
    """Times where x crosses `level` downwards, linearly interpolated between samples."""
    return rising_crossings(time_s, -np.asarray(x, dtype=np.float64), level=-level)


def ring_phase(time_s: np.ndarray, stage_v: Sequence[np.ndarray], *, level: float,
               skip_cycles: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Unwrapped phase θ(t) of a ring, sampled at every edge of every stage (2N per cycle).

    θ = 2π k at the k-th rising crossing of stage 0. Each other edge type (stage, rising or
    falling) sits at a fixed fraction of the cycle in a steady ring; that fraction is taken
    as the circular mean over the record (self-calibrated), and every edge is placed at the
    unwrapped θ nearest to 2π (k + fraction seen) that has the calibrated offset. So θ has
    2N samples per cycle instead of one, which the Adler fit needs when ψ moves fast.
    Returns (t, θ) sorted by time, from the `skip_cycles`-th rising edge of stage 0 on.
    """
    t = np.asarray(time_s, dtype=np.float64)
    ref = rising_crossings(t, stage_v[0], level=level)[skip_cycles:]
    if ref.size < 3:
        raise CharacterizeError(f"need >= 3 rising edges of stage 0 after skipping {skip_cycles}, got {ref.size}")
    ts, thetas = [ref], [2 * np.pi * np.arange(ref.size, dtype=np.float64)]
    for k, x in enumerate(stage_v):
        for edges in (rising_crossings(t, x, level=level), falling_crossings(t, x, level=level)):
            if k == 0 and edges is not None and np.array_equal(edges[skip_cycles:], ref):
                continue  # stage 0 rising: the reference itself
            e = edges[(edges >= ref[0]) & (edges < ref[-1])]
            if e.size == 0:
                continue
            j = np.searchsorted(ref, e, side="right") - 1
            frac = (e - ref[j]) / (ref[j + 1] - ref[j])
            rough = 2 * np.pi * (j + frac)
            offset = np.angle(np.mean(np.exp(2j * np.pi * frac)))  # calibrated fraction, rad
            # nearest θ to `rough` that is ≡ offset (mod 2π)
            theta = rough + np.angle(np.exp(1j * (offset - rough)))
            ts.append(e)
            thetas.append(theta)
    tt, th = np.concatenate(ts), np.concatenate(thetas)
    order = np.argsort(tt, kind="stable")
    return tt[order], th[order]


def phase_dynamics(t_a: np.ndarray, theta_a: np.ndarray, t_b: np.ndarray, theta_b: np.ndarray, *,
                   period_s: float, samples_per_period: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ψ = θ_b − θ_a and dψ/dt on a uniform grid, averaged over one carrier period.

    θ_a, θ_b are interpolated linearly between their edge samples; dψ/dt is the central
    difference over a window of one period, (ψ(t + T/2) − ψ(t − T/2)) / T, which removes the
    within-cycle ripple of the edge-based phases and is the cycle-averaged velocity the
    Adler equation describes. Returns (t, ψ wrapped to (−π, π], dψ/dt in rad/s).
    """
    lo = max(t_a[0], t_b[0]) + period_s / 2
    hi = min(t_a[-1], t_b[-1]) - period_s / 2
    if hi - lo < 2 * period_s:
        raise CharacterizeError(f"the two phase records overlap for {max(hi - lo, 0) / period_s:.2g} periods; need >= 2")
    grid = np.arange(lo, hi, period_s / samples_per_period)

    def psi(at: np.ndarray) -> np.ndarray:
        return np.interp(at, t_b, theta_b) - np.interp(at, t_a, theta_a)

    dpsi = (psi(grid + period_s / 2) - psi(grid - period_s / 2)) / period_s
    return grid, np.angle(np.exp(1j * psi(grid))), dpsi


@dataclass(frozen=True)
class AdlerFit:
    """dψ/dt = Δω + Σ_k (a_k sin kψ + b_k cos kψ), k = 1..H, fitted by least squares.

    In the Adler form dψ/dt = Δω − 2K sin ψ: k_rad_s = −a_1 / 2. harmonics: |c_k| / |c_1|
    for k = 2..H (|c_k| = hypot(a_k, b_k)); phase_lag_rad = atan2(b_1, −a_1) (0 for a pure
    sine coupling; a Sakaguchi-type lag otherwise); residual_rel: rms of the residual
    divided by 2|K|; coverage: fraction of 16 equal ψ bins holding samples (drift covers
    the circle, a locked pair does not).
    """

    delta_omega_rad_s: float
    k_rad_s: float
    a: tuple[float, ...]
    b: tuple[float, ...]
    harmonics: tuple[float, ...]
    phase_lag_rad: float
    residual_rel: float
    coverage: float
    samples: int


def fit_adler(psi_rad: np.ndarray, dpsi_rad_s: np.ndarray, *, harmonics: int = 3,
              min_coverage: float = 0.75) -> AdlerFit:
    """Fit the coupling function of two cells from (ψ, dψ/dt) samples of a drifting pair.

    Samples are weighted by 1/(their ψ bin's count), so the slow part of a slip (where a
    drifting pair dwells) does not outweigh the fast part. Raises CharacterizeError when
    ψ covers less than `min_coverage` of the circle (the pair locked: no drift to fit).
    """
    psi = np.asarray(psi_rad, dtype=np.float64)
    y = np.asarray(dpsi_rad_s, dtype=np.float64)
    if psi.shape != y.shape or psi.ndim != 1 or psi.size < 4 * harmonics + 2:
        raise CharacterizeError(f"need 1-D psi and dpsi of one length >= {4 * harmonics + 2}, "
                                f"got {psi.shape} and {y.shape}")
    bins = np.floor((psi + np.pi) / (2 * np.pi) * 16).astype(int).clip(0, 15)
    counts = np.bincount(bins, minlength=16)
    coverage = float(np.count_nonzero(counts) / 16)
    if coverage < min_coverage:
        raise CharacterizeError(f"psi covers {coverage:.0%} of the circle (< {min_coverage:.0%}): the pair "
                                f"did not drift; detune it further to fit the coupling function")
    cols = [np.ones_like(psi)]
    for k in range(1, harmonics + 1):
        cols += [np.sin(k * psi), np.cos(k * psi)]
    a_mat = np.stack(cols, axis=1)
    w = np.sqrt(1.0 / counts[bins])
    coef, *_ = np.linalg.lstsq(a_mat * w[:, None], y * w, rcond=None)
    resid = y - a_mat @ coef
    a, b = coef[1::2], coef[2::2]
    k_eff = -a[0] / 2
    c1 = float(np.hypot(a[0], b[0]))
    harm = tuple(float(np.hypot(a[k], b[k]) / c1) if c1 > 0 else 0.0 for k in range(1, harmonics))
    rms = float(np.sqrt(np.sum(w**2 * resid**2) / np.sum(w**2)))
    return AdlerFit(delta_omega_rad_s=float(coef[0]), k_rad_s=float(k_eff), a=tuple(a.tolist()),
                    b=tuple(b.tolist()), harmonics=harm, phase_lag_rad=float(np.arctan2(b[0], -a[0])),
                    residual_rel=rms / (2 * abs(k_eff)) if k_eff else float("inf"), coverage=coverage,
                    samples=int(psi.size))


def period_jitter_s(edges_s: np.ndarray) -> tuple[float, float]:
    """(mean period, rms period jitter) from successive rising-edge times: std of the periods."""
    e = np.asarray(edges_s, dtype=np.float64)
    if e.size < 10:
        raise CharacterizeError(f"need >= 10 edges for a period jitter, got {e.size}")
    p = np.diff(e)
    return float(np.mean(p)), float(np.std(p, ddof=1))


@dataclass(frozen=True)
class CouplingMeasurement:
    """Two cells joined by a coupler at one code, detuned so that ψ drifts round the circle.

    fit: the Adler fit of (ψ, dψ/dt); delta_omega_free_rad_s: ω_b − ω_a of the two cells
    measured alone (the fit's Δω should match it, up to the coupler's loading);
    coupler_energy_per_cycle_j: resistive dissipation in the coupler per carrier cycle,
    averaged over ψ uniformly (ψ binned in 16 bins, each bin's mean power, then their
    mean: a drifting pair dwells unevenly); coupler_energy_max_j: the worst bin.
    f_a_pair_hz, f_b_pair_hz: the cells' mean frequencies in the pair (coupler attached).
    t_s/psi_rad/dpsi_rad_s: the trace (for plots). deck: the netlist that was run.
    """

    code: int
    vctrl_a_v: float
    vctrl_b_v: float
    period_s: float
    delta_omega_free_rad_s: float
    fit: AdlerFit
    coupler_energy_per_cycle_j: float
    coupler_energy_max_j: float
    f_a_pair_hz: float
    f_b_pair_hz: float
    t_s: np.ndarray
    psi_rad: np.ndarray
    dpsi_rad_s: np.ndarray
    deck: str


#: a pair that locked is detuned this much further, up to this many tries in all
DRIFT_RETRY_FACTOR, DRIFT_TRIES = 1.6, 4


def until_drift(attempt, detune: float, *, what: str, unit: str, fit: str = "coupling"):
    """`attempt(detune)` — a pair run and fit that raises CharacterizeError "… did not drift …"
    when the pair locked — retried at `DRIFT_RETRY_FACTOR`× the detuning, `DRIFT_TRIES` tries
    in all; returns the first result that drifted."""
    for _ in range(DRIFT_TRIES):
        try:
            return attempt(detune)
        except CharacterizeError as exc:
            if "did not drift" not in str(exc):
                raise
            detune *= DRIFT_RETRY_FACTOR
    raise CharacterizeError(f"{what}: the pair stayed locked up to a detuning of "
                            f"{detune / DRIFT_RETRY_FACTOR:.3g} {unit}; cannot fit its {fit}")


def measure_coupling(osc: RingOscillator, dac: CouplerDAC, *, vctrl_a_v: float, vctrl_b_v: float,
                     slips: float = 2.5, k_guess_rad_s: float, harmonics: int = 3,
                     points_per_period: int = 100, max_cycles: int = 3000, timeout_s: float = 120.0,
                     cells_spec: tuple | None = None, f_a_hz: float | None = None,
                     f_b_hz: float | None = None) -> CouplingMeasurement:
    """Run a detuned pair long enough for `slips` phase slips and fit the Adler equation.

    The run length comes from the lone-cell detuning Δω and `k_guess_rad_s`: a slip takes
    2π / sqrt(Δω² − 4K²). f_a_hz/f_b_hz skip the lone-cell runs when already measured;
    `cells_spec` gives the two cells mismatched cards (see `cells.pair_bench`).
    """
    from hw.spice import cells, run

    if f_a_hz is None:
        f_a_hz = measure_ring(osc, vctrl_v=vctrl_a_v).f0_hz
    if f_b_hz is None:
        f_b_hz = measure_ring(osc, vctrl_v=vctrl_b_v).f0_hz
    period_s = 1 / f_a_hz
    dw = 2 * np.pi * (f_b_hz - f_a_hz)
    beat = np.sqrt(max(dw**2 - 4 * k_guess_rad_s**2, (0.3 * dw) ** 2))
    startup_cycles = 6
    cycles = int(min(max_cycles, startup_cycles + slips * 2 * np.pi / beat / period_s + 4))
    stop_s = cycles * period_s
    bench = cells.pair_bench(osc, dac, vctrl_a_v=vctrl_a_v, vctrl_b_v=vctrl_b_v, cells=cells_spec)
    text = cells.deck(bench, step_s=period_s / points_per_period, stop_s=stop_s,
                      ic=cells.pair_kick(osc, b_offset_stages=1))
    tr = run.transient(text, stop_s=stop_s, timeout_s=timeout_s)
    level = osc.process.vdd_v / 2
    n = osc.n_stages
    ta, tha = ring_phase(tr.time_s, [tr.v(f"a{k}") for k in range(n)], level=level, skip_cycles=startup_cycles)
    tb, thb = ring_phase(tr.time_s, [tr.v(f"b{k}") for k in range(n)], level=level, skip_cycles=startup_cycles)
    t, psi, dpsi = phase_dynamics(ta, tha, tb, thb, period_s=period_s)
    fit = fit_adler(psi, dpsi, harmonics=harmonics)
    # coupler dissipation per cycle, as a function of psi, then averaged uniformly over psi
    power = dac.power_w(tr)
    psi_at = np.angle(np.exp(1j * (np.interp(tr.time_s, tb, thb) - np.interp(tr.time_s, ta, tha))))
    inside = (tr.time_s > t[0]) & (tr.time_s < t[-1])
    dt = np.gradient(tr.time_s)[inside]
    bins = np.floor((psi_at[inside] + np.pi) / (2 * np.pi) * 16).astype(int).clip(0, 15)
    energy_per_bin = np.bincount(bins, weights=power[inside] * dt, minlength=16)
    time_per_bin = np.bincount(bins, weights=dt, minlength=16)
    held = time_per_bin > 0
    p_bin = energy_per_bin[held] / time_per_bin[held]
    return CouplingMeasurement(code=dac.code, vctrl_a_v=float(vctrl_a_v), vctrl_b_v=float(vctrl_b_v),
                               period_s=float(period_s), delta_omega_free_rad_s=float(dw), fit=fit,
                               coupler_energy_per_cycle_j=float(np.mean(p_bin) * period_s),
                               coupler_energy_max_j=float(np.max(p_bin) * period_s),
                               f_a_pair_hz=float((tha[-1] - tha[0]) / (2 * np.pi * (ta[-1] - ta[0]))),
                               f_b_pair_hz=float((thb[-1] - thb[0]) / (2 * np.pi * (tb[-1] - tb[0]))),
                               t_s=t, psi_rad=psi, dpsi_rad_s=dpsi, deck=text)


@dataclass(frozen=True)
class JitterMeasurement:
    """A free-running cell with channel-noise sources: period jitter and the numerical floor.

    jitter_s: rms period jitter with noise, floor_s: the same deck without noise (the
    integrator's own timing error), net_s = sqrt(jitter² − floor²). periods_s: the periods
    (for the histogram); noise_psd_a2_per_hz: the current-noise PSD per node.
    """

    vctrl_v: float
    period_s: float
    jitter_s: float
    floor_s: float
    net_s: float
    noise_psd_a2_per_hz: float
    periods_s: np.ndarray
    deck: str


def channel_noise_psd_a2_per_hz(osc: RingOscillator, *, vctrl_v: float, bias_current_a: float) -> float:
    """One-sided drain-current noise PSD at a switching node: 4 k T γ (g_mn + g_mp).

    T is the process's operating temperature (`Process.at`). While a node switches, its
    current is the starved current I through an NMOS (or PMOS)
    starving device in saturation: g_m = 2 I / V_ov with V_ov = V_ctrl − V_TH (the mirror
    gives the PMOS the same I; its V_ov is taken equal). γ = 2/3 (long channel). The
    inverter device in series is in triode and adds less; it is left out.
    """
    from hw.spice.process import BOLTZMANN_J_PER_K, GAMMA_CHANNEL

    v_ov = vctrl_v - osc.process.nmos.vth_v
    if v_ov <= 0:
        raise CharacterizeError(f"vctrl_v={vctrl_v:g} V is below V_TH: the ring does not run")
    gm = 2 * bias_current_a / v_ov
    return 4 * BOLTZMANN_J_PER_K * osc.process.temperature_k * GAMMA_CHANNEL * 2 * gm


def _jitter_edges(text: str, stop_s: float, timeout_s: float, seed: int, level: float) -> np.ndarray:
    """Stage 0's rising crossings of one jitter deck's transient (the first three dropped)."""
    from hw.spice import run

    tr = run.transient(text, stop_s=stop_s, timeout_s=timeout_s, seed=seed)
    return rising_crossings(tr.time_s, tr.v("o0"), level=level)[3:]


def _serial_map(fn, jobs: list[tuple]) -> list:
    return [fn(*job) for job in jobs]


def measure_jitter(osc: RingOscillator, *, vctrl_v: float, cycles: int = 300, points_per_period: int = 200,
                   noise_scale: float = 1.0, seed: int = 1, timeout_s: float = 300.0,
                   map_runs=_serial_map) -> JitterMeasurement:
    """Period jitter of a free-running ring under transient noise (ngspice `trnoise`).

    Noise: a white current source at every stage output with the channel-noise PSD of
    `channel_noise_psd_a2_per_hz` (times `noise_scale`), held for one time step. The same
    deck without the sources gives the numerical floor, subtracted in quadrature.
    `map_runs(fn, jobs)`: how the two transients run (default one after the other; the
    characterisation runs them in two worker processes at once).
    """
    from hw.spice import cells

    ring = measure_ring(osc, vctrl_v=vctrl_v)
    period_s = 1 / ring.f0_hz
    i_bias = ring.bias_energy_per_cycle_j * ring.f0_hz / osc.process.vdd_v
    psd = noise_scale * channel_noise_psd_a2_per_hz(osc, vctrl_v=vctrl_v, bias_current_a=i_bias)
    step_s = period_s / points_per_period
    stop_s = (cycles + 4) * period_s
    bench = cells.ring_bench(osc, vctrl_v=vctrl_v)
    nodes = [f"o{k}" for k in range(osc.n_stages)]
    level = osc.process.vdd_v / 2
    # reltol 1e-4 (not 1e-3) keeps the integrator's own period error well below the jitter.
    # `seed` goes to ngspice's setseed; libngspice 39 still draws different trnoise values per
    # run (measured), so the jitter is repeatable in its statistics (σ of σ ~ 1/sqrt(2 n)) only.
    quiet = cells.deck(bench, step_s=step_s, stop_s=stop_s, ic=cells.ring_kick(osc), options={"reltol": 1e-4})
    noisy = cells.deck(bench, step_s=step_s, stop_s=stop_s, ic=cells.ring_kick(osc), options={"reltol": 1e-4},
                       extra_lines=cells.noise_lines(nodes, psd_a2_per_hz=psd, sample_s=step_s))
    out = [(period_jitter_s(edges), np.diff(edges))
           for edges in map_runs(_jitter_edges, [(text, stop_s, timeout_s, seed, level) for text in (quiet, noisy)])]
    (_, floor), _ = out[0]
    (mean_p, jit), periods = out[1]
    net = float(np.sqrt(max(jit**2 - floor**2, 0.0)))
    return JitterMeasurement(vctrl_v=float(vctrl_v), period_s=mean_p, jitter_s=jit, floor_s=floor, net_s=net,
                             noise_psd_a2_per_hz=psd, periods_s=periods, deck=noisy)


@dataclass(frozen=True)
class RingSnapshot:
    """One steady cycle of a free-running ring, to start cells at chosen phases.

    θ = 0 is stage 0's rising crossing of VDD/2 (as in `ring_phase`); `stage_v[k][m]` is
    stage k's voltage at θ = 2π m / M. `ic(prefix, θ)` gives the `.ic` node voltages that
    put a cell with outputs `{prefix}0..` at phase θ.
    """

    vctrl_v: float
    period_s: float
    stage_v: np.ndarray  # (N, M)

    def ic(self, prefix: str, theta_rad: float) -> dict[str, float]:
        n, m = self.stage_v.shape
        x = (theta_rad / (2 * np.pi)) % 1.0 * m
        grid = np.arange(m + 1)
        return {f"{prefix}{k}": float(np.interp(x, grid, np.append(self.stage_v[k], self.stage_v[k][0])))
                for k in range(n)}


def ring_snapshot(osc: RingOscillator, *, vctrl_v: float, samples: int = 256, timeout_s: float = 30.0) -> RingSnapshot:
    """Record the last whole cycle of a lone ring at `vctrl_v` (after 6 cycles of start-up)."""
    from hw.spice import cells, run

    period_s = 1 / measure_ring(osc, vctrl_v=vctrl_v, timeout_s=timeout_s).f0_hz
    stop_s = 10 * period_s
    text = cells.deck(cells.ring_bench(osc, vctrl_v=vctrl_v), step_s=period_s / 400, stop_s=stop_s,
                      ic=cells.ring_kick(osc))
    tr = run.transient(text, stop_s=stop_s, timeout_s=timeout_s)
    edges = rising_crossings(tr.time_s, tr.v("o0"), level=osc.process.vdd_v / 2)
    if edges.size < 3:
        raise CharacterizeError(f"ring at vctrl={vctrl_v:g} V gave {edges.size} cycles in {stop_s:.3g} s")
    t0, t1 = edges[-2], edges[-1]
    at = t0 + (t1 - t0) * np.arange(samples) / samples
    stage_v = np.stack([np.interp(at, tr.time_s, tr.v(f"o{k}")) for k in range(osc.n_stages)])
    return RingSnapshot(vctrl_v=float(vctrl_v), period_s=float(t1 - t0), stage_v=stage_v)


@dataclass(frozen=True)
class ArrayTrim:
    """Control voltages that bring every cell of an array to its target frequency, measured
    with the couplers loading the cells but not coupling them (`CouplerDAC.open_resistors`).

    vctrl_v: the trimmed controls; f_hz: each cell's loaded free-running frequency at them;
    error_rel: max |f − target| / target after the last iteration; iterations: runs used.
    """

    vctrl_v: tuple[float, ...]
    f_hz: tuple[float, ...]
    error_rel: float
    iterations: int


def trim_array(osc: RingOscillator, *, couplings: dict[tuple[int, int], int], target_f_hz: Sequence[float],
               kvco_hz_per_v: float, vctrl_v: Sequence[float] | None = None, dac: CouplerDAC | None = None,
               tol_rel: float = 2e-3, max_iterations: int = 6, cycles: int = 12,
               timeout_s: float = 120.0, loads: Sequence[tuple[int, int, int]] = ()) -> ArrayTrim:
    """Trim each cell's control so its loaded frequency meets its target.

    A coupler's switches load the ring nodes they touch (tens of % of f0 per coupler, more
    with more bits on), so a cell's frequency in an array depends on its couplers. Each
    iteration runs the array with the resistors open (load kept, coupling removed), reads
    every cell's frequency from its stage-0 rising edges, and moves V_ctrl,i by
    (target_i − f_i) / slope_i: first the lone-cell k_VCO scaled by f_i / f_target (loading
    scales the tuning slope with the frequency), then the secant of each cell's last two runs.
    """
    from hw.spice import cells, run

    dac = dac or cells.dac_for(osc.process, n_stages=osc.n_stages)
    open_dac = type(dac)(**{**{f: getattr(dac, f) for f in dac.__dataclass_fields__}, "open_resistors": True})
    targets = np.asarray(target_f_hz, dtype=np.float64)
    v = np.full(targets.size, osc.vctrl_nominal_v) if vctrl_v is None else np.asarray(vctrl_v, dtype=np.float64).copy()
    period_s = 1 / targets.min()
    level = osc.process.vdd_v / 2
    f = np.zeros_like(targets)
    err = np.inf
    v_prev = f_prev = None
    for it in range(1, max_iterations + 1):
        stop_s = (cycles + 4) * period_s * 1.6  # loaded cells run slower than the target at first
        bench = cells.array_bench(osc, vctrl_v=v.tolist(), couplings=couplings, dac=open_dac, loads=loads)
        ic = {}
        for i in range(targets.size):
            ic.update({f"n{i}_0": 0.0, f"n{i}_1": osc.process.vdd_v})
        tr = run.transient(cells.deck(bench, step_s=period_s / 100, stop_s=stop_s, ic=ic), stop_s=stop_s,
                           timeout_s=timeout_s)
        for i in range(targets.size):
            f[i] = frequency_hz(tr.time_s, tr.v(f"n{i}_0"), level=level, skip_cycles=3)
        err = float(np.max(np.abs(f - targets) / targets))
        if err < tol_rel:
            break
        slope = kvco_hz_per_v * f / targets
        if v_prev is not None:  # secant per cell once two runs exist
            dv = v - v_prev
            ok = np.abs(dv) > 1e-6
            slope = np.where(ok, (f - f_prev) / np.where(ok, dv, 1.0), slope)
            slope = np.where(slope > 0, slope, kvco_hz_per_v * f / targets)
        v_prev, f_prev = v.copy(), f.copy()
        v = v + (targets - f) / slope
        v_top = 1.2 * osc.process.vdd_v
        if np.any(v > v_top) or np.any(v <= 0):
            i = int(np.argmax((v > v_top) | (v <= 0)))
            raise CharacterizeError(f"cell {i} cannot be trimmed to {targets[i] / 1e6:.1f} MHz: it runs at "
                                    f"{f[i] / 1e6:.1f} MHz and would need a control of {v[i]:.2f} V, outside "
                                    f"0..{v_top:.2f} V (loaded beyond what its tuning range holds)")
    return ArrayTrim(vctrl_v=tuple(v.tolist()), f_hz=tuple(f.tolist()), error_rel=err, iterations=it)


def measure_array(osc: RingOscillator, *, couplings: dict[tuple[int, int], int], target_f_hz: Sequence[float],
                  theta0: Sequence[float], carrier_hz: float, stop_s: float, dac: CouplerDAC | None = None,
                  points_per_period: int = 100, trim_tol_rel: float = 5e-4, timeout_s: float = 300.0,
                  deck_path: str | os.PathLike | None = None) -> dict:
    """Build an array of rings joined by coupler DACs at signed `couplings` {(i, j): code},
    trim every cell to its loaded `target_f_hz` (`trim_array`), start cell i at phase
    `theta0[i]` (rad, through `ring_snapshot(...).ic`), run `stop_s` seconds at
    `points_per_period` points per carrier period, and read each cell's phase from every
    edge of its stages (`ring_phase`).

    Returns the trim, its seconds (``trim_s``), the transient's seconds (``transient_s``), the
    deck text (also written to `deck_path` when given), each cell's unwrapped phase record
    (t, θ) from its first rising edge on (``phases``), ``stop_s``, the first-step tuning slope
    (``kvco_hz_per_v``) and the number of couplers. Raises `CharacterizeError` for bad inputs,
    `hw.spice.run.SpiceError` (and its `SpiceTimeout`) from ngspice.
    """
    from hw.spice import cells, run

    n = len(target_f_hz)
    theta0 = np.asarray(theta0, dtype=np.float64)
    if theta0.shape != (n,) or not np.all(np.isfinite(theta0)):
        raise CharacterizeError(f"theta0 must hold {n} finite phases (one per cell), not shape {theta0.shape}")
    dac = dac or cells.dac_for(osc.process, n_stages=osc.n_stages)
    # first-step tuning slope of a lone cell, measured (the trim's secant takes over after one run)
    v_lo, v_hi = osc.vctrl_nominal_v - 0.05, osc.vctrl_nominal_v + 0.05
    kvco = (measure_ring(osc, vctrl_v=v_hi, timeout_s=timeout_s).f0_hz
            - measure_ring(osc, vctrl_v=v_lo, timeout_s=timeout_s).f0_hz) / (v_hi - v_lo)
    t0 = time.perf_counter()
    trim = trim_array(osc, couplings=couplings, target_f_hz=target_f_hz, kvco_hz_per_v=kvco, dac=dac,
                      tol_rel=trim_tol_rel, max_iterations=8, timeout_s=timeout_s)
    trim_s = time.perf_counter() - t0
    snap = ring_snapshot(osc, vctrl_v=float(np.mean(trim.vctrl_v)), timeout_s=timeout_s)
    ic: dict[str, float] = {}
    for i, th in enumerate(theta0):
        ic.update(snap.ic(f"n{i}_", float(th)))
    period_s = 1 / float(carrier_hz)
    bench = cells.array_bench(osc, vctrl_v=list(trim.vctrl_v), couplings=couplings, dac=dac)
    text = cells.deck(bench, step_s=period_s / points_per_period, stop_s=stop_s, ic=ic)
    if deck_path is not None:
        cells.write_cir(text, deck_path)
    t0 = time.perf_counter()
    tr = run.transient(text, stop_s=stop_s, timeout_s=timeout_s)
    run_s = time.perf_counter() - t0
    level = osc.process.vdd_v / 2
    phases = [ring_phase(tr.time_s, [tr.v(f"n{i}_{k}") for k in range(osc.n_stages)], level=level, skip_cycles=0)
              for i in range(n)]
    return {"trim": trim, "trim_s": trim_s, "transient_s": run_s, "deck": text, "phases": phases,
            "stop_s": stop_s, "kvco_hz_per_v": kvco, "couplers": len(couplings)}


# --- the coupling function as it acts on each cell ------------------------------------------
#: the terms of a coupling function H(x) = b0 + Σ_k (a_k sin kx + b_k cos kx), k ≤ 3, in this
#: order wherever a coefficient vector is stored (rad/s)
COUPLING_TERMS = ("b0", "a1", "b1", "a2", "b2", "a3", "b3")


def _basis(x: np.ndarray, harmonics: int) -> np.ndarray:
    """(…, 1 + 2H): 1, sin x, cos x, sin 2x, cos 2x, … ."""
    cols = [np.ones_like(x)]
    for k in range(1, harmonics + 1):
        cols += [np.sin(k * x), np.cos(k * x)]
    return np.stack(cols, axis=-1)


@dataclass(frozen=True)
class CouplingFunctionFit:
    r"""One cell's own phase velocity against the other cell's phase: dθ_i/dt = ω_i + H(x),
    x = θ_j − θ_i, H(x) = b0 + Σ_{k ≤ H} (a_k sin kx + b_k cos kx).

    coef: (b0, a1, b1, a2, b2, …) in rad/s (`COUPLING_TERMS`), b0 = intercept − ω_open;
    intercept_rad_s: the fitted constant (ω_open + b0); omega_open_rad_s: the cell's
    frequency with the coupler's resistors open (its load kept); residual_rel: rms of the
    velocity residual / |a1|; window_bias: for k = 1..H, the factor by which a regression on
    the windowed velocity against point values of sin kx, cos kx would have shrunk |c_k|
    (sinc(k ẋ T/2) averaged over the run) — the bias this fit removes; coverage: fraction
    of 16 equal x bins holding samples.
    """

    coef: tuple[float, ...]
    intercept_rad_s: float
    omega_open_rad_s: float
    residual_rel: float
    window_bias: tuple[float, ...]
    coverage: float
    samples: int

    @property
    def lag_rad(self) -> float:
        """α of a1 sin x + b1 cos x = c sin(x − α) with c of a1's sign: atan2(−b1, a1)·sign(a1)."""
        a1, b1 = self.coef[1], self.coef[2]
        s = 1.0 if a1 >= 0 else -1.0
        return float(np.arctan2(-b1 * s, a1 * s))


def fit_coupling_function(t_self: np.ndarray, theta_self: np.ndarray, t_other: np.ndarray,
                          theta_other: np.ndarray, *, period_s: float, omega_open_rad_s: float,
                          harmonics: int = 3, samples_per_period: int = 4,
                          min_coverage: float = 0.75) -> CouplingFunctionFit:
    r"""Fit H of the coupler into one cell from its own phase record and the other cell's.

    The velocity is taken over windows of one carrier period (the edge phases ripple within
    a cycle): y = (θ_i(t + T/2) − θ_i(t − T/2)) / T. A regression of y on sin kx(t), cos kx(t)
    at the window's centre would be biased — over a window where x moves at ẋ the mean of
    e^{ikx} is e^{ikx(t)}·sinc(kẋT/2), so harmonic k comes out shrunk by that factor (reported
    as `window_bias`). Here each basis function is instead averaged over the same window
    from the interpolated x(t), so y = ω + Σ c_m ⟨basis_m⟩_window holds exactly for the model
    and the fit is unbiased. Samples are weighted by 1/(their x bin's count), so the slow
    part of a slip does not outweigh the fast part.
    """
    lo = max(t_self[0], t_other[0]) + period_s
    hi = min(t_self[-1], t_other[-1]) - period_s
    if hi - lo < 4 * period_s:
        raise CharacterizeError(f"the phase records overlap for {max(hi - lo, 0) / period_s:.2g} periods; need >= 4")
    fine = np.arange(lo - period_s / 2, hi + period_s / 2, period_s / 64)
    x_fine = np.interp(fine, t_other, theta_other) - np.interp(fine, t_self, theta_self)
    basis_fine = _basis(x_fine, harmonics)
    cum = np.concatenate([np.zeros((1, basis_fine.shape[1])),
                          np.cumsum(0.5 * (basis_fine[1:] + basis_fine[:-1]) * np.diff(fine)[:, None], axis=0)])
    grid = np.arange(lo, hi, period_s / samples_per_period)
    lo_w, hi_w = grid - period_s / 2, grid + period_s / 2
    X = np.stack([np.interp(hi_w, fine, cum[:, c]) - np.interp(lo_w, fine, cum[:, c])
                  for c in range(cum.shape[1])], axis=-1) / period_s
    y = (np.interp(hi_w, t_self, theta_self) - np.interp(lo_w, t_self, theta_self)) / period_s
    x_mid = np.interp(grid, t_other, theta_other) - np.interp(grid, t_self, theta_self)
    x_wrapped = np.angle(np.exp(1j * x_mid))
    bins = np.floor((x_wrapped + np.pi) / (2 * np.pi) * 16).astype(int).clip(0, 15)
    counts = np.bincount(bins, minlength=16)
    coverage = float(np.count_nonzero(counts) / 16)
    if coverage < min_coverage:
        raise CharacterizeError(f"the phase difference covers {coverage:.0%} of the circle (< {min_coverage:.0%}): "
                                f"the pair did not drift; detune it further to fit the coupling function")
    if grid.size < 4 * (2 * harmonics + 1):
        raise CharacterizeError(f"only {grid.size} velocity samples; need >= {4 * (2 * harmonics + 1)}")
    w = np.sqrt(1.0 / counts[bins])
    coef, *_ = np.linalg.lstsq(X * w[:, None], y * w, rcond=None)
    resid = y - X @ coef
    a1 = float(coef[1])
    rms = float(np.sqrt(np.sum(w**2 * resid**2) / np.sum(w**2)))
    rate = (np.interp(hi_w, fine, x_fine) - np.interp(lo_w, fine, x_fine)) / period_s
    bias = tuple(float(np.mean(np.sinc(k * rate * period_s / (2 * np.pi)))) for k in range(1, harmonics + 1))
    values = [float(coef[0]) - omega_open_rad_s, *map(float, coef[1:])]
    return CouplingFunctionFit(coef=tuple(values), intercept_rad_s=float(coef[0]),
                               omega_open_rad_s=float(omega_open_rad_s),
                               residual_rel=rms / abs(a1) if a1 else float("inf"), window_bias=bias,
                               coverage=coverage, samples=int(grid.size))


@dataclass(frozen=True)
class CouplingFunctionMeasurement:
    """A pair joined by one coupler at `code`, cell a with `m_a` couplers attached in all and
    b with `m_b` (the others: same-code DACs with open resistors, `cells.array_bench`'s loads),
    both trimmed with the resistors open to carrier ∓ detuning/2, then run closed.

    a: H of the coupler into a (receiver load m_a, sender load m_b); b: into b (m_b, m_a).
    f_open_hz: the cells' trimmed open-coupler frequencies; vctrl_v: their controls;
    closing_shift_hz: what closing the coupler adds to each cell's frequency averaged over
    the phase difference (b0 / 2π); t_s, x_rad: the phase difference (for plots).
    """

    code: int
    m_a: int
    m_b: int
    carrier_hz: float
    a: CouplingFunctionFit
    b: CouplingFunctionFit
    f_open_hz: tuple[float, float]
    vctrl_v: tuple[float, ...]
    closing_shift_hz: tuple[float, float]
    cycles: int
    seconds: float
    t_s: np.ndarray
    x_rad: np.ndarray
    deck: str


def measure_coupling_function(osc: RingOscillator, *, code: int, carrier_hz: float, kvco_hz_per_v: float,
                              k_guess_rad_s: float, m_a: int = 1, m_b: int = 1, dac: CouplerDAC | None = None,
                              detune_per_lock: float = 1.5, slips: float = 5.0, harmonics: int = 3,
                              points_per_period: int = 100, max_cycles: int = 2000,
                              timeout_s: float = 300.0) -> CouplingFunctionMeasurement:
    r"""Measure the coupling function of one coupler into each of its two cells, at a load.

    The pair's phase difference obeys dψ/dt = Δω + H(−ψ) − H(ψ) (ψ = θ_b − θ_a): the even
    part of H cancels there, so a fit on ψ alone (`fit_adler`) cannot see b0 or b_k. Each
    cell's *own* velocity is fitted instead (`fit_coupling_function`), against its frequency
    with the coupler open (the trim run). The cells are trimmed (`trim_array`, resistors
    open, loads kept) to carrier ∓ Δ/2 with Δ = `detune_per_lock` × the locking range 2|a1|
    (from `k_guess_rad_s`), so ψ slips round the circle `slips` times; a pair that still
    locks is detuned 1.6× further (up to three times). Loads: m − 1 open DACs at `code` per
    cell, to a third, uncoupled cell at the carrier when the loads differ or exist.
    """
    from hw.spice import cells, run

    if not (isinstance(m_a, int) and isinstance(m_b, int) and m_a >= 1 and m_b >= 1):
        raise CharacterizeError(f"m_a and m_b must be integers >= 1, not {m_a!r}, {m_b!r}")
    dac = dac or cells.dac_for(osc.process, n_stages=osc.n_stages)
    loads = [(0, 2, code)] * (m_a - 1) + [(1, 2, code)] * (m_b - 1)
    n = 3 if loads else 2
    period_s = 1 / carrier_hz
    level = osc.process.vdd_v / 2
    detune_hz = detune_per_lock * 2 * abs(k_guess_rad_s) / (2 * np.pi)
    t0 = time.perf_counter()
    last_trim = None

    def attempt(detune_hz: float):
        nonlocal last_trim
        targets = [carrier_hz - detune_hz / 2, carrier_hz + detune_hz / 2] + ([carrier_hz] if n == 3 else [])
        trim = trim_array(osc, couplings={(0, 1): code}, target_f_hz=targets, kvco_hz_per_v=kvco_hz_per_v,
                          vctrl_v=None if last_trim is None else last_trim.vctrl_v, dac=dac, tol_rel=3e-4,
                          max_iterations=8, timeout_s=timeout_s, loads=loads)
        last_trim = trim
        beat = 2 * np.pi * (trim.f_hz[1] - trim.f_hz[0]) * np.sqrt(max(1 - 1 / detune_per_lock**2, 0.2))
        cycles = int(min(max_cycles, 8 + slips * 2 * np.pi / beat / period_s))
        stop_s = cycles * period_s
        bench = cells.array_bench(osc, vctrl_v=list(trim.vctrl_v), couplings={(0, 1): code}, dac=dac, loads=loads)
        ic = {"n0_0": 0.0, "n0_1": osc.process.vdd_v, "n1_2": 0.0, "n1_3": osc.process.vdd_v}
        if n == 3:
            ic.update({"n2_0": 0.0, "n2_1": osc.process.vdd_v})
        text = cells.deck(bench, step_s=period_s / points_per_period, stop_s=stop_s, ic=ic)
        tr = run.transient(text, stop_s=stop_s, timeout_s=timeout_s)
        (ta, tha), (tb, thb) = [ring_phase(tr.time_s, [tr.v(f"n{i}_{k}") for k in range(osc.n_stages)], level=level,
                                           skip_cycles=6) for i in (0, 1)]
        fit_a = fit_coupling_function(ta, tha, tb, thb, period_s=period_s, harmonics=harmonics,
                                      omega_open_rad_s=2 * np.pi * trim.f_hz[0])
        fit_b = fit_coupling_function(tb, thb, ta, tha, period_s=period_s, harmonics=harmonics,
                                      omega_open_rad_s=2 * np.pi * trim.f_hz[1])
        return trim, cycles, text, (ta, tha, tb, thb), fit_a, fit_b

    trim, cycles, text, (ta, tha, tb, thb), fit_a, fit_b = until_drift(
        attempt, detune_hz, what=f"code {code:+d} (m = {m_a}, {m_b})", unit="Hz", fit="coupling function")
    grid = np.linspace(max(ta[0], tb[0]), min(ta[-1], tb[-1]), 400)
    x = np.angle(np.exp(1j * (np.interp(grid, tb, thb) - np.interp(grid, ta, tha))))
    return CouplingFunctionMeasurement(
        code=int(code), m_a=m_a, m_b=m_b, carrier_hz=float(carrier_hz), a=fit_a, b=fit_b,
        f_open_hz=(float(trim.f_hz[0]), float(trim.f_hz[1])), vctrl_v=tuple(trim.vctrl_v),
        closing_shift_hz=(fit_a.coef[0] / (2 * np.pi), fit_b.coef[0] / (2 * np.pi)), cycles=cycles,
        seconds=time.perf_counter() - t0, t_s=grid, x_rad=x, deck=text)


# --- loading by fan-out ---------------------------------------------------------------------
@dataclass(frozen=True)
class FanoutLoading:
    """A cell's free-running frequency with m = 0..M couplers attached (coupling off, load
    kept: `open_resistors`), all at one code, their far ends on a second cell.

    f_hz[m]: the loaded cell's frequency with m couplers; shift_rel[m] = 1 − f_hz[m] / f_hz[0];
    shift_per_coupler_rel: the mean shift per attached coupler, shift_rel[M] / M.
    """

    code: int
    vctrl_v: float
    f_hz: tuple[float, ...]
    shift_rel: tuple[float, ...]
    shift_per_coupler_rel: float


def measure_fanout_loading(osc: RingOscillator, dac, *, m_max: int = 4, code: int = 4, vctrl_v: float | None = None,
                           far_detune_rel: float = 0.15, cycles: int = 24,
                           timeout_s: float = 120.0) -> FanoutLoading:
    """Measure how a cell's frequency falls as couplers are attached to it (`FanoutLoading`).

    For m = 0..m_max: an `array_bench` of two cells with m couplers at `code` between them,
    each with its coupling off and its load kept (the bench the trims use), run `cycles`
    periods after start-up; cell 0 (at `vctrl_v`, default the ring's nominal control) is
    measured from its stage-0 rising edges. The far cell runs `far_detune_rel` faster (its
    control raised on the tuning slope): a far end in step with the near one would hide the
    capacitance between them (measured: two identical cells joined by open gm couplers pulled
    each other into step and the load seemed to vanish), as an array's many far ends do not.
    """
    from hw.spice import cells, run

    if not (isinstance(m_max, int) and m_max >= 1):
        raise CharacterizeError(f"m_max must be an integer >= 1, not {m_max!r}")
    v = osc.vctrl_nominal_v if vctrl_v is None else float(vctrl_v)
    ring = measure_ring(osc, vctrl_v=v, timeout_s=timeout_s)
    step = 0.02
    slope = (measure_ring(osc, vctrl_v=v + step, timeout_s=timeout_s).f0_hz - ring.f0_hz) / step
    v_far = v + far_detune_rel * ring.f0_hz / slope
    period_s = 1 / ring.f0_hz
    level = osc.process.vdd_v / 2
    f = []
    for m in range(m_max + 1):
        stop_s = (cycles + 4) * period_s * (1.2 + 0.3 * m)  # loaded cells run slower
        bench = cells.array_bench(osc, vctrl_v=[v, v_far], couplings={}, dac=dac.with_code(0),
                                  loads=[(0, 1, code)] * m)
        ic = {"n0_0": 0.0, "n0_1": osc.process.vdd_v, "n1_0": 0.0, "n1_1": osc.process.vdd_v}
        tr = run.transient(cells.deck(bench, step_s=period_s / 100, stop_s=stop_s, ic=ic), stop_s=stop_s,
                           timeout_s=timeout_s)
        f.append(frequency_hz(tr.time_s, tr.v("n0_0"), level=level, skip_cycles=3))
    shift = [1 - x / f[0] for x in f]
    return FanoutLoading(code=int(code), vctrl_v=v, f_hz=tuple(f), shift_rel=tuple(shift),
                         shift_per_coupler_rel=shift[-1] / m_max)


def gate_sensitivities(osc: RingOscillator, *, vctrl_v: float, devices: Sequence[str] | None = None,
                       dv_v: float = 0.02, cycles: int = 16, timeout_s: float = 60.0) -> dict[str, float]:
    """∂f0/∂v (Hz/V) of the ring at `vctrl_v` for a voltage in series with each device's gate
    (`RingOscillator.gate_offsets_v`), by central difference of ±`dv_v`: the quasi-static gain
    from a device's gate-referred noise to the cell's frequency. `devices` defaults to the bias
    pair and stage 0's starving devices (`bn`, `bp`, `sn0`, `sp0`: the stages are identical,
    so stage 0 stands for every stage) and stage 0's inverter devices (`in0`, `ip0`)."""
    import dataclasses

    devices = list(devices or ("bn", "bp", "sn0", "sp0", "in0", "ip0"))
    if not dv_v > 0:
        raise CharacterizeError(f"dv_v must be > 0, not {dv_v!r}")
    out: dict[str, float] = {}
    for dev in devices:
        f = [measure_ring(dataclasses.replace(osc, gate_offsets_v=((dev, sign * dv_v),)), vctrl_v=vctrl_v,
                          cycles=cycles, timeout_s=timeout_s).f0_hz for sign in (1.0, -1.0)]
        out[dev] = (f[0] - f[1]) / (2 * dv_v)
    return out
