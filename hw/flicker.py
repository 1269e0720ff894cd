r"""Flicker (1/f) noise of a ring cell as a frequency offset since its last trim.

Every MOSFET of a cell has a gate-referred flicker noise S_vg,d(f) = K_d / (Cox W_d L_d f)
(`hw.spice.process.FLICKER_K_V2F`, sourced there). Flicker lives far below the carrier, so
each device moves the cell's frequency quasi-statically by its measured gain
s_d = ∂f0/∂v_d (`hw.measure.gate_sensitivities`: ngspice, a DC source in series with that
gate; the stages are identical, so stage 0's gains stand for all N). The devices are
independent, so the cell's frequency noise is

    S_f(f) = A / f,   A = Σ_d s_d² K_d / (Cox W_d L_d)   (Hz²; one-sided).

What the array sees is the frequency averaged over an inference (duration T_inf) relative
to what it was when the cell was trimmed, a time t before. For 1/f noise that difference has
the structure function

    D(t) = E[(f̄(t) − f̄(0))²] = 2 ∫₀^∞ S_f(f) (1 − cos 2πft) sinc²(f T_inf) df,

finite without a low-frequency cut-off and, for t ≫ T_inf, 2A ln(t / T_inf) plus a constant
of order one: it grows only as the logarithm of the time since trim — flicker alone does not
make a cell drift away, it widens by a fixed 2A ln 10 per decade of waiting. σ = √D(t) is
a per-cell random offset that is static within one inference and changes from inference to
inference; in the simulator it is the per-cell drift term (`oscsim.NonIdeal.
drift_mismatch_rad_per_t`, σ·2π·τ in model units) with one chip per inference drawn.

`tests/hw/test_flicker.py` checks D(t) against synthesised 1/f noise and the gains against
the cell's own tuning slope (the control drives the bias NMOS and every NMOS starving device:
s_bn + N s_sn = K_VCO). Pure numpy/scipy; the gains come from `hw.measure` (ngspice).
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "un0hw-ring-flicker/1"


class FlickerError(ValueError):
    """Bad input to the flicker model (one line)."""


@dataclass(frozen=True)
class Device:
    """One MOSFET of the cell: name, polarity, W, L (m), count (stage devices: N), gain (Hz/V)."""

    name: str
    polarity: str
    w_m: float
    l_m: float
    count: int
    gain_hz_per_v: float


@dataclass(frozen=True)
class RingFlicker:
    """A cell's flicker model: its devices with their gains, the oxide and K per polarity."""

    process: str
    f0_hz: float
    kvco_hz_per_v: float
    cox_f_per_m2: float
    k_n_v2f: float
    k_p_v2f: float
    n_stages: int
    devices: tuple[Device, ...]
    k_source: str

    def __post_init__(self) -> None:
        for name in ("f0_hz", "cox_f_per_m2", "k_n_v2f", "k_p_v2f"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and v > 0):
                raise FlickerError(f"{name} must be a finite number > 0, not {v!r}")

    def device_share(self) -> dict[str, float]:
        """Each device kind's share of A (all its copies together)."""
        terms = {d.name: self._term(d) for d in self.devices}
        total = sum(terms.values())
        return {k: v / total for k, v in terms.items()} if total > 0 else terms

    def _term(self, d: Device) -> float:
        k = self.k_n_v2f if d.polarity == "nmos" else self.k_p_v2f
        return d.count * d.gain_hz_per_v**2 * k / (self.cox_f_per_m2 * d.w_m * d.l_m)

    @property
    def psd_coefficient_hz2(self) -> float:
        """A of S_f(f) = A / f (Hz²)."""
        return sum(self._term(d) for d in self.devices)

    def offset_sigma_hz(self, since_trim_s, inference_s: float):
        """√D(t): rms frequency offset of the inference-averaged frequency a time `since_trim_s`
        after the trim (array or scalar), for inferences of `inference_s`."""
        return np.sqrt(structure_function(self.psd_coefficient_hz2, since_trim_s, inference_s))

    def to_dict(self) -> dict[str, Any]:
        doc = {"format": FORMAT, **asdict(self)}
        doc["devices"] = [asdict(d) for d in self.devices]
        doc["psd_coefficient_hz2"] = self.psd_coefficient_hz2
        doc["device_share"] = self.device_share()
        return doc

    def nonideal_terms(self, tau_s: float, since_trim_s: float, *, inference_model_t: float = 1.0) -> dict[str, float]:
        """The `oscsim.NonIdeal` field of the offset `since_trim_s` after the trim, in model
        units at τ: the per-cell spread drift_mismatch_rad_per_t = 2π σ τ, for an inference of
        `inference_model_t` model time (T_inf = that × τ)."""
        if isinstance(tau_s, bool) or not (isinstance(tau_s, (int, float)) and math.isfinite(tau_s) and tau_s > 0):
            raise FlickerError(f"tau_s must be a positive number of seconds, not {tau_s!r}")
        sigma = float(self.offset_sigma_hz(float(since_trim_s), inference_model_t * tau_s))
        return {"drift_mismatch_rad_per_t": 2 * math.pi * sigma * tau_s}

    @classmethod
    def load(cls, path: str | Path) -> RingFlicker:
        """Read a flicker.json of `un0hw cells flicker`; FlickerError (one line naming the file) if not one."""
        path = Path(path)
        try:
            doc = json.loads(path.read_text())
        except FileNotFoundError:
            raise FlickerError(f"{path}: no such flicker file (un0hw cells flicker -o writes one)") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise FlickerError(f"{path}: not a readable flicker JSON ({exc})") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            got = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
            raise FlickerError(f"{path}: format must be {FORMAT!r}, not {got!r}")
        try:
            devices = tuple(Device(**d) for d in doc["devices"])
            keep = {f: doc[f] for f in ("process", "f0_hz", "kvco_hz_per_v", "cox_f_per_m2", "k_n_v2f", "k_p_v2f",
                                        "n_stages", "k_source")}
            return cls(devices=devices, **keep)
        except (KeyError, TypeError) as exc:
            raise FlickerError(f"{path}: missing or malformed field ({exc})") from None
        except FlickerError as exc:
            raise FlickerError(f"{path}: {exc}") from None

    def save(self, path: str | Path) -> None:
        from oscsim import atomic_path

        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")


#: D(t) / 2A − ln(t / T_inf) for t ≫ T_inf: the rectangular inference window's constant (the
#: quadrature gives 1.4992, 1.49999 at t / T = 10, 100; `tests/hw/test_flicker.py`)
WINDOW_CONSTANT = 1.5
#: above this t / T_inf the quadrature's cosine is too fast to follow: the asymptote is used
ASYMPTOTE_FROM = 100.0


def structure_function(a_hz2: float, since_trim_s, inference_s: float, *, exact: bool = False):
    """D(t) = 2 ∫ (A/f)(1 − cos 2πft) sinc²(f T) df (module docstring), array or scalar t: by
    quadrature in ln f up to t / T = `ASYMPTOTE_FROM` (or always, `exact`), beyond it
    2A (ln(t / T) + `WINDOW_CONSTANT`)."""
    from scipy.integrate import IntegrationWarning, quad

    if isinstance(inference_s, bool) or not (isinstance(inference_s, (int, float)) and inference_s > 0):
        raise FlickerError(f"inference time must be > 0 s, not {inference_s!r}")
    t_all = np.atleast_1d(np.asarray(since_trim_s, dtype=np.float64))
    if not np.all(np.isfinite(t_all) & (t_all > 0)):
        raise FlickerError(f"time since trim must be > 0 s, got {since_trim_s!r}")
    out = []
    for t in t_all:
        if t / inference_s > ASYMPTOTE_FROM and not exact:
            out.append(2.0 * a_hz2 * (math.log(t / inference_s) + WINDOW_CONSTANT))
            continue

        def g(u: float, t: float = t) -> float:  # u = ln f, df / f = du
            f = math.exp(u)
            return (1.0 - math.cos(2 * math.pi * f * t)) * float(np.sinc(f * inference_s)) ** 2

        knots = [math.log(1e-6 / t), math.log(1 / t), math.log(1 / inference_s), math.log(1e3 / inference_s)]
        with warnings.catch_warnings():  # the fast cosine near t / T = 100: quad's warning, not its error
            warnings.simplefilter("ignore", IntegrationWarning)
            total = sum(quad(g, a, b, limit=4000)[0] for a, b in zip(knots, knots[1:]))
        out.append(2.0 * a_hz2 * total)
    out = np.asarray(out)
    return out if np.ndim(since_trim_s) else float(out[0])


def ring_flicker(process: str = "generic180", *, vctrl_v: float | None = None) -> RingFlicker:
    """The flicker model of `process`'s ring at its nominal control (ngspice for the gains)."""
    from hw.measure import gate_sensitivities, measure_ring
    from hw.spice.cells import ring_for
    from hw.spice.process import FLICKER_K_SOURCE, process_named

    proc = process_named(process)
    osc = ring_for(proc)
    v = osc.vctrl_nominal_v if vctrl_v is None else float(vctrl_v)
    gains = gate_sensitivities(osc, vctrl_v=v)
    dv = 0.02
    f_hi = measure_ring(osc, vctrl_v=v + dv, cycles=16).f0_hz
    f_lo = measure_ring(osc, vctrl_v=v - dv, cycles=16).f0_hz
    f0 = measure_ring(osc, vctrl_v=v, cycles=16).f0_hz
    sizes = {name: (pol, w, l) for name, pol, w, l in osc.device_names()}
    devices = tuple(Device(name=name, polarity=sizes[name][0], w_m=sizes[name][1], l_m=sizes[name][2],
                           count=1 if name in ("bn", "bp") else osc.n_stages, gain_hz_per_v=float(g))
                    for name, g in gains.items())
    return RingFlicker(process=proc.key, f0_hz=float(f0), kvco_hz_per_v=(f_hi - f_lo) / (2 * dv),
                       cox_f_per_m2=proc.cox_f_per_m2, k_n_v2f=proc.flicker_k_n_v2f, k_p_v2f=proc.flicker_k_p_v2f,
                       n_stages=osc.n_stages, devices=devices, k_source=FLICKER_K_SOURCE)
