"""Pass 7: the physical mapping — model time onto the cells' time (ARCHITECTURE.md).

A cell runs at carrier f0; the model's phases live in the frame rotating with it, and
one unit of model time lasts τ seconds. Then ω/τ (rad/s) is a frequency offset the
cell's tuning must reach, K/τ a coupling the coupler must reach, and the total coupling
into a cell must stay weak beside its carrier (Σ_j |K_ij|/τ ≤ ε·2π f0, the regime where
the phase reduction to the Kuramoto model holds). Each limit gives a smallest τ; the
largest of them is the τ the array can run at, and names the limit that binds.
Latency = T·τ.
"""

from __future__ import annotations

import math

import torch

from compiler.options import CompileError, CompileOptions
from hw.calibration import Calibration


def coupler_linearity(cal: Calibration) -> float:
    """Worst deviation of K_eff(code) from the line code·K_max/max_code, / K_max."""
    k = torch.tensor(cal.coupler_k_rad_s, dtype=torch.float64)
    line = torch.arange(len(k), dtype=torch.float64) * k[-1] / (len(k) - 1)
    return float((k - line).abs().max() / k[-1])


def physical_mapping(*, K_max: float, row_sum_max: float, omega_max: float, T: float, bits: int,
                     calibration: Calibration, options: CompileOptions) -> dict:
    """τ and the report of which limit sets it.

    Args:
        K_max: largest |coupling| in model units (main, conditioning and drive alike).
        row_sum_max: largest Σ|coupling| into one cell (model units).
        omega_max: largest |frequency offset| (model units; ω and ν).
        T: model integration time.
        bits: the coupling codes' width (checked against the coupler's).
    """
    cal = calibration
    two_pi = 2 * math.pi
    limits = {
        "tuning_range": omega_max / (two_pi * cal.tuning_half_range_hz),
        "coupler_range": K_max / cal.k_max_rad_s,
        "weak_coupling": row_sum_max / (options.weak_coupling * two_pi * cal.f0_hz),
    }
    bad = {k: v for k, v in limits.items() if not math.isfinite(v)}
    if bad:
        raise CompileError(f"the calibration ({cal.source}, {cal.process}) cannot hold this array: "
                           + ", ".join(f"{k} needs an unbounded tau" for k in bad))
    binding = max(limits, key=limits.get)
    if options.tau_s is not None:
        tau = float(options.tau_s)
        broken = {k: v for k, v in limits.items() if v > tau * (1 + 1e-12)}
        if broken:
            what = ", ".join(f"{k} needs tau >= {v:.3g} s" for k, v in broken.items())
            raise CompileError(f"--tau {tau:g} s is too short for this array: {what}")
        binding = "fixed by --tau"
    else:
        tau = max(limits.values())
        if tau <= 0:
            tau = 1.0 / cal.f0_hz  # nothing moves: one carrier period per unit of model time
            binding = "none (all parameters zero)"
    return {
        "tau_s": tau,
        "binding_limit": binding,
        "tau_limits_s": limits,
        "latency_s": T * tau,
        "carrier_cycles_per_inference": T * tau * cal.f0_hz,
        "f0_hz": cal.f0_hz,
        "used_fraction": {
            "tuning_range": omega_max / tau / (two_pi * cal.tuning_half_range_hz),
            "coupler_range": K_max / tau / cal.k_max_rad_s,
            "weak_coupling": row_sum_max / tau / (two_pi * cal.f0_hz) / options.weak_coupling,
        },
        "coupler": {
            "calibrated_bits": cal.coupler_bits,
            "code_bits": bits,
            "resolution_ok": bits <= cal.coupler_bits,
            "k_lsb_needed_rad_s": K_max / tau / max(2 ** (bits - 1) - 1, 1),
            "k_lsb_available_rad_s": cal.k_max_rad_s / cal.max_code,
            "linearity_error": coupler_linearity(cal),
        },
    }


# --- the hardware a calibration's cells make, in model units ---------------------------------
def nonideal_from_calibration(calibration: Calibration, tau_s: float, **overrides):
    """The `oscsim.NonIdeal` that `calibration`'s cells make at time scale τ (s per model time).

    Phase noise from the period jitter (σ_model = σ_phys √τ, `oscsim.to_model_time`),
    frequency mismatch from σ(f0)/f0 (σ_ω = 2π σ_f τ), coupling gain mismatch as the
    log-normal σ with the calibration's relative spread (σ² = ln(1 + s²)), and the
    coupler's code width; `overrides` (NonIdeal fields) win.
    """
    from oscsim import NonIdeal, freq_mismatch_to_model, to_model_time

    if isinstance(tau_s, bool) or not (isinstance(tau_s, (int, float)) and math.isfinite(tau_s) and tau_s > 0):
        raise CompileError(f"tau_s must be a positive number of seconds, not {tau_s!r}")
    base = {
        "phase_noise_rad_per_sqrt_t": to_model_time(calibration.phase_noise_rad_per_sqrt_s, tau_s),
        "freq_mismatch_rad_per_t": freq_mismatch_to_model(calibration.sigma_f0_rel * calibration.f0_hz, tau_s),
        "coupling_mismatch_sigma": math.sqrt(math.log1p(calibration.sigma_k_rel**2)),
        "coupling_bits": calibration.coupler_bits,
    }
    return NonIdeal(**{**base, **overrides})


def trimmed_freq_mismatch(ir) -> float:
    """σ of the frequency error (model units) left after trimming every cell of `ir` to its
    frequency code: the ω code's LSB, the error uniform over one LSB (LSB/√12)."""
    return float(ir.tensors["omega.scale"].abs().max()) / 12**0.5


def array_nonideal(ir, *, trimmed: bool = True, **overrides):
    """The hardware an array makes: the calibration stored in `ir` at the array's τ, with
    the couplings as the IR's codes already are (no second quantisation) and — when
    `trimmed` — the cells' frequency mismatch trimmed to the ω code's resolution
    (`trimmed_freq_mismatch`) instead of σ(f0)·f0 of untrimmed cells."""
    base = {"coupling_bits": None}
    if trimmed:
        base["freq_mismatch_rad_per_t"] = trimmed_freq_mismatch(ir)
    return nonideal_from_calibration(ir.calibration, ir.tau_s, **{**base, **overrides})
