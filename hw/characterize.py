"""Characterise oscillator cells from ngspice transients: frequency, tuning curve, energy.

The analysis functions (`rising_crossings`, `frequency_hz`, `energy_per_cycle_j`,
`fit_tuning`) are pure numpy on arrays; `measure_ring` and `tuning_curve` run ngspice
through `hw.spice.run` (imported when called) and feed those functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # hw.spice.cells imports PySpice: only the runners below load it
    from hw.spice.cells import ResistiveCoupler, RingOscillator


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
                 timeout_s: float = 30.0) -> RingMeasurement:
    """Simulate the ring bench at `vctrl_v` until `cycles` whole cycles follow start-up.

    A first run of `first_stop_s` gives the period; if it held too few cycles the run is
    repeated, long enough and with the step set to period / points_per_period.
    """
    from hw.spice import cells, run

    bench = cells.ring_bench(osc, vctrl_v=vctrl_v)
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


def measure_pair(osc: RingOscillator, coupler: ResistiveCoupler, *, vctrl_a_v: float = 1.0,
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
