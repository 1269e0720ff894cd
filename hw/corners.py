"""Temperature and supply corners of one process × coupler, measured in ngspice (`corner_sweep`).

The trim point is 27 °C at the nominal supply: every cell's control voltage is set there
and held (a reference-derived Vctrl). At each corner (`hw.spice.process.Process.at`: the
decks carry `.temp T` and the scaled VDD) the sweep measures, with the same cells:

- the lone cell: f0 at the trimmed control, the local tuning slope K_VCO, energy per cycle;
- a pair at full code, drifting: K_eff, the coupling function's lag and harmonics (the
  Adler fit of `hw.measure.measure_coupling`), the coupler's energy per cycle;
- Monte Carlo rings (Pelgrom draws, the *same* draws at every corner): each cell's f0. The
  mean shift is the common-mode drift, which a relative readout in the rotating frame does
  not see; the spread of the shifts about their mean is the differential drift — the
  mismatch of the temperature (or supply) coefficient, which no common trim removes.

What the model needs from a corner is `CornerResult.model_terms`: the common-mode
frequency offset, the tuning and coupling gains relative to the trim point, and the
differential drift σ, each in the units `oscsim.NonIdeal` takes once τ is known.

Runs go to `workers` processes (libngspice is one global state per process). Written
atomically to ``corners.json`` (and a PNG of f0, K_eff and σ_diff against temperature).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hw.characterization import DETUNE_PER_K, KVCO_STEP_V  # the characterisation's own pair and slope settings
from hw.measure import CharacterizeError, measure_coupling, measure_ring, until_drift

#: the corners the issue asks for: −40/27/85/125 °C at nominal supply, ±10 % at 27 °C
TEMPS_C = (-40.0, 0.0, 27.0, 85.0, 125.0)
VDD_SCALES = (0.9, 1.0, 1.1)
COMMERCIAL_C = (0.0, 85.0)
FORMAT = "un0hw-corners/1"


@dataclass(frozen=True)
class CornerResult:
    """What one corner measured (SI units; relative figures are against the trim point)."""

    temp_c: float
    vdd_scale: float
    vdd_v: float
    card_valid: bool  # the cards' mobility model stays physical here (`Process.cards_valid`)
    f0_hz: float
    kvco_hz_per_v: float
    ring_energy_per_cycle_j: float
    k_eff_rad_s: float
    phase_lag_rad: float
    harmonics: tuple[float, ...]
    coupler_energy_per_cycle_j: float
    mc_f0_hz: tuple[float, ...]  # the Monte Carlo rings, same draws at every corner

    def model_terms(self, trim: CornerResult) -> dict[str, float]:
        """This corner against the trim point: common-mode shift (relative), the tuning and
        coupling gains, and the differential drift σ (relative to f0, across the MC cells)."""
        mc, mc0 = np.asarray(self.mc_f0_hz), np.asarray(trim.mc_f0_hz)
        shift = (mc - mc0) / trim.f0_hz
        return {"common_shift_rel": self.f0_hz / trim.f0_hz - 1,
                "tuning_gain": self.kvco_hz_per_v / trim.kvco_hz_per_v,
                "coupling_gain": self.k_eff_rad_s / trim.k_eff_rad_s,
                "diff_drift_rel": float(np.std(shift - shift.mean(), ddof=1)) if mc.size > 1 else 0.0}


def _measure_cell(proc_key: str, coupler: str, temp_c: float, vdd_scale: float, k_guess: float) -> dict[str, Any]:
    """A corner's lone cell and drifting pair (one worker task)."""
    from hw.spice import cells
    from hw.spice.process import process_named

    proc = process_named(proc_key).at(temp_c=temp_c, vdd_scale=vdd_scale)
    osc = cells.ring_for(proc)
    dac = cells.coupler_for(proc, coupler, n_stages=osc.n_stages)
    vnom = osc.vctrl_nominal_v
    ring = measure_ring(osc, vctrl_v=vnom)
    kvco = (measure_ring(osc, vctrl_v=vnom + KVCO_STEP_V).f0_hz
            - measure_ring(osc, vctrl_v=vnom - KVCO_STEP_V).f0_hz) / (2 * KVCO_STEP_V)
    if kvco <= 0:
        raise CharacterizeError(f"corner {proc.corner}: tuning slope {kvco:.3g} Hz/V is not positive")
    code = dac.max_code
    k_guess = k_guess or dac.k_guess_rad_s(code)

    def attempt(detune: float):
        vb = vnom + detune / (2 * math.pi * kvco)
        f_b = measure_ring(osc, vctrl_v=vb).f0_hz
        return measure_coupling(osc, dac.with_code(code), vctrl_a_v=vnom, vctrl_b_v=vb, k_guess_rad_s=k_guess,
                                f_a_hz=ring.f0_hz, f_b_hz=f_b)

    m = until_drift(attempt, DETUNE_PER_K * k_guess, what=f"corner {proc.corner}", unit="rad/s")
    return {"f0_hz": ring.f0_hz, "kvco_hz_per_v": kvco, "ring_energy_per_cycle_j": ring.energy_per_cycle_j
            + ring.bias_energy_per_cycle_j, "k_eff_rad_s": abs(m.fit.k_rad_s), "phase_lag_rad": m.fit.phase_lag_rad,
            "harmonics": tuple(m.fit.harmonics), "coupler_energy_per_cycle_j": m.coupler_energy_per_cycle_j,
            "card_valid": proc.cards_valid}


def _measure_mc(proc_key: str, seed: int, index: int, corners: tuple[tuple[float, float], ...]) -> list[float]:
    """One Monte Carlo ring (its own Pelgrom draws) at every corner: f0 at the trimmed control."""
    from hw.characterization import mismatched_cards
    from hw.spice import cells
    from hw.spice.process import process_named

    base = process_named(proc_key)
    out = []
    for temp_c, vdd_scale in corners:
        osc = cells.ring_for(base.at(temp_c=temp_c, vdd_scale=vdd_scale))
        rng = np.random.default_rng([seed, 7, index])  # the same cell at every corner
        out.append(measure_ring(osc, vctrl_v=osc.vctrl_nominal_v, cards=mismatched_cards(osc, rng, f"t{index}")).f0_hz)
    return out


def corner_list(temps_c=TEMPS_C, vdd_scales=VDD_SCALES) -> tuple[tuple[float, float], ...]:
    """Every temperature at nominal supply, and every supply at 27 °C (the trim point once)."""
    pts = [(float(t), 1.0) for t in temps_c] + [(27.0, float(v)) for v in vdd_scales]
    seen: list[tuple[float, float]] = []
    for p in pts:
        if p not in seen:
            seen.append(p)
    if (27.0, 1.0) not in seen:
        seen.insert(0, (27.0, 1.0))
    return tuple(seen)


@dataclass(frozen=True)
class CornerSweep:
    process: str
    coupler: str
    corners: tuple[CornerResult, ...]
    mc_rings: int
    seed: int
    wall_s: float

    @property
    def trim(self) -> CornerResult:
        return next(c for c in self.corners if c.temp_c == 27.0 and c.vdd_scale == 1.0)

    def at(self, temp_c: float, vdd_scale: float = 1.0) -> CornerResult:
        for c in self.corners:
            if c.temp_c == temp_c and c.vdd_scale == vdd_scale:
                return c
        raise KeyError(f"no corner {temp_c:g} °C / {vdd_scale:g} VDD in this sweep")

    def temperature_terms(self) -> list[dict[str, float]]:
        """`model_terms` of every nominal-supply corner, by temperature."""
        return [{"temp_c": c.temp_c, **c.model_terms(self.trim)}
                for c in sorted(self.corners, key=lambda c: c.temp_c) if c.vdd_scale == 1.0]

    def _line(self, axis: str, value: float) -> dict[str, float]:
        """model_terms interpolated linearly in temperature (nominal supply) or supply (27 °C)
        between the measured corners; never extrapolated."""
        if axis == "temp_c":
            pts = sorted((c.temp_c, c) for c in self.corners if c.vdd_scale == 1.0)
        else:
            pts = sorted((c.vdd_scale, c) for c in self.corners if c.temp_c == 27.0)
        xs = [x for x, _ in pts]
        if not xs[0] <= value <= xs[-1]:
            unit = " °C" if axis == "temp_c" else "x VDD"
            raise CharacterizeError(f"{axis} {value:g}{unit} is outside the measured corners "
                                    f"({xs[0]:g}..{xs[-1]:g}{unit}); measure it first (un0hw cells corners)")
        rows = [c.model_terms(self.trim) for _, c in pts]
        return {k: float(np.interp(value, xs, [r[k] for r in rows])) for k in rows[0]}

    def nonideal_terms(self, tau_s: float, *, temp_c: float = 27.0, vdd_scale: float = 1.0) -> dict[str, float]:
        """The `oscsim.NonIdeal` operating-point fields at (temp_c, vdd_scale) for a model
        whose time unit is `tau_s` seconds: common-mode offset 2π f0 Δf/f τ, differential drift
        2π f0 σ_d τ, and the tuning and coupling gains. Temperature and supply combine
        separably (gains multiply, offsets add, drifts add in quadrature): the sweep measures
        supply at 27 °C only."""
        if not (isinstance(tau_s, (int, float)) and math.isfinite(tau_s) and tau_s > 0):
            raise CharacterizeError(f"tau_s must be a positive number of seconds, not {tau_s!r}")
        t, v = self._line("temp_c", temp_c), self._line("vdd_scale", vdd_scale)
        w = 2 * math.pi * self.trim.f0_hz * tau_s
        return {"tuning_gain": t["tuning_gain"] * v["tuning_gain"],
                "coupling_gain": t["coupling_gain"] * v["coupling_gain"],
                "common_freq_offset_rad_per_t": w * (t["common_shift_rel"] + v["common_shift_rel"]),
                "drift_mismatch_rad_per_t": w * math.hypot(t["diff_drift_rel"], v["diff_drift_rel"])}

    def to_dict(self) -> dict[str, Any]:
        trim = self.trim
        return {"format": FORMAT, "process": self.process, "coupler": self.coupler, "mc_rings": self.mc_rings,
                "seed": self.seed, "wall_s": self.wall_s,
                "corners": [{**asdict(c), "model_terms": c.model_terms(trim)} for c in self.corners]}

    def save(self, path: str | Path) -> None:
        from oscsim import atomic_path

        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> CornerSweep:
        try:
            doc = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise CharacterizeError(f"{path}: cannot read a corner sweep: {exc}") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise CharacterizeError(f"{path}: not a corner sweep (format {FORMAT!r} expected)")
        try:
            corners = tuple(CornerResult(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in c.items()
                                            if k != "model_terms"}) for c in doc["corners"])
            return cls(process=doc["process"], coupler=doc["coupler"], corners=corners, mc_rings=doc["mc_rings"],
                       seed=doc["seed"], wall_s=doc["wall_s"])
        except (KeyError, TypeError) as exc:
            raise CharacterizeError(f"{path}: malformed corner sweep: {exc}") from None


def corner_sweep(out_dir: str | Path, *, process: str = "generic180", coupler: str = "resistive",
                 temps_c=TEMPS_C, vdd_scales=VDD_SCALES, mc_rings: int = 24, seed: int = 0, workers: int = 2,
                 progress: bool = True) -> CornerSweep:
    """Measure every corner of `corner_list(temps_c, vdd_scales)`; write corners.json and a plot."""
    from tqdm import tqdm

    from hw.characterization import COUPLERS, _run_pool
    from hw.spice.process import process_named

    process_named(process)  # the one check of the name
    if coupler not in COUPLERS:
        raise CharacterizeError(f"coupler must be one of {', '.join(COUPLERS)}, not {coupler!r}")
    if isinstance(mc_rings, bool) or not isinstance(mc_rings, int) or mc_rings < 0:
        raise CharacterizeError(f"mc_rings must be an int >= 0, not {mc_rings!r}")
    pts = corner_list(temps_c, vdd_scales)
    t0 = time.monotonic()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=len(pts) + mc_rings, desc=f"corners {process}/{coupler}", unit="run", disable=not progress,
               leave=False)
    try:
        cells = _run_pool(_measure_cell, [(process, coupler, t, v, 0.0) for t, v in pts], workers=workers, bar=bar)
        mc = _run_pool(_measure_mc, [(process, seed, i, pts) for i in range(mc_rings)], workers=workers, bar=bar)
    finally:
        bar.close()
    results = tuple(CornerResult(temp_c=t, vdd_scale=v, vdd_v=process_named(process).at(vdd_scale=v).vdd_v,
                                 mc_f0_hz=tuple(ring[i] for ring in mc), **cell)
                    for i, ((t, v), cell) in enumerate(zip(pts, cells, strict=True)))
    sweep = CornerSweep(process=process, coupler=coupler, corners=results, mc_rings=mc_rings, seed=seed,
                        wall_s=time.monotonic() - t0)
    sweep.save(out / "corners.json")
    plot_corners(sweep, out / "corners.png")
    return sweep


def plot_corners(sweep: CornerSweep, path: str | Path) -> None:
    """f0, K_eff (relative to the trim point) and the differential drift σ against temperature."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hw.plots import _save

    rows = sweep.temperature_terms()
    temps = [r["temp_c"] for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
    ax1.plot(temps, [100 * r["common_shift_rel"] for r in rows], "o-", label="f0 (common mode)")
    ax1.plot(temps, [100 * (r["coupling_gain"] - 1) for r in rows], "s-", label="K_eff")
    ax1.plot(temps, [100 * (r["tuning_gain"] - 1) for r in rows], "^-", label="K_VCO")
    ax1.set_xlabel("temperature (°C)")
    ax1.set_ylabel("change from 27 °C (%)")
    ax1.legend(fontsize=8)
    ax2.plot(temps, [1e6 * r["diff_drift_rel"] for r in rows], "o-")
    ax2.set_xlabel("temperature (°C)")
    ax2.set_ylabel("differential drift σ (ppm of f0)")
    for c in sweep.corners:
        if not c.card_valid:
            for ax in (ax1, ax2):
                ax.axvspan(c.temp_c - 3, c.temp_c + 3, color="0.85")
    fig.suptitle(f"{sweep.process} / {sweep.coupler}: corners (grey: outside the cards' valid range)", fontsize=9)
    fig.tight_layout()
    _save(fig, Path(path))
    plt.close(fig)
