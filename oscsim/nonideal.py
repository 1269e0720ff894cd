r"""`NonIdeal`: what the hardware does wrong — the model, its settings, the readout.

With per-chip static draws (ω̃ = ω + σ_ω z, K̃_ij = g_ij · a_ij · Q(K)_ij, …) each sample
on a chip integrates the Itô SDE

    dθ_i = [ω̃_i + Σ_j K̃_ij (1 + σ_r ε_ij) sin(θ_j − θ_i) + Σ_k D̃[c]_ik (1 + σ_r ε_ik) sin(φ_k − θ_i)] dt
           + σ_φ dW_i
    dφ_k = [ν̃_k + Σ_l C̃_kl (1 + σ_r ε_kl) sin(φ_l − φ_k)] dt + σ_φ dW_k

by Euler–Maruyama (`oscsim.sde`): θ ← θ + h·v + σ_φ √h ξ, ξ ~ N(0, 1) per oscillator and step.

Static terms (one draw per chip, from the chip's seed; drawn and applied by `oscsim.realize`):
- frequency mismatch: ω̃ = ω + σ_ω z (also ν), z ~ N(0, 1) per oscillator;
- coupling gain mismatch: g = exp(σ_g z) per coupler (log-normal, median 1), shared by
  all classes of the drive (a coupler is one circuit, reprogrammed per class);
- dead couplers: a coupler whose uniform draw u < p outputs nothing (a larger p kills a
  superset of the couplers of a smaller one, on the same chip);
- quantisation of K, K̃, C (`coupling_bits`) and ω, ν (`frequency_bits`) with
  `oscsim.quant` (one scale per tensor), applied to the programmed values before the
  analog gains — what the compiler's codes say, realised by imperfect circuits.
- the operating point, away from the trim point (`hw.corners` measures these per
  temperature and supply corner and converts them): the cells' tuning slope scales every
  programmed frequency, ω̃ = g_t ω (`tuning_gain`); the couplers' strength scales every
  coupling, harmonics included (`coupling_gain`); all cells move together by
  `common_freq_offset_rad_per_t` (main and conditioning alike: a shift of the rotating
  frame, which a mean-relative readout does not see); and each cell moves by its own
  differential drift, σ_d z with z ~ N(0, 1) per oscillator and chip on a stream of its
  own (`drift_mismatch_rad_per_t`: the mismatch of the cells' temperature coefficients).
  Order: ω̃ = g_t (Q(ω) + σ_ω z) + Δ_cm + σ_d z'.

Dynamic terms (from the sample seed):
- phase noise σ_φ (rad/√model time): a Wiener term per oscillator;
- coupling read noise σ_r: every coupler's weight is read with a fresh relative error
  ε ~ N(0, 1) per sample and step (`oscsim.sde` draws the summed error per oscillator
  from its exact variance, one more GEMM with K̃², no N×N draw per sample). Being per
  step, its effect depends on the step count (10 in the released models);
- readout (`read_phases`): the main phases at T are read with Gaussian jitter (rad) and a
  phase-to-digital converter of `readout_bits` (2^b levels around the circle; the turn
  count is kept, as the mean-relative readout uses unwrapped phases).

A chip is one draw of the static terms: chip c of a call is chip number
``chip_seed + c`` and the batch holds ``chips`` equal contiguous groups of samples, group
c on chip c. Every term has its own random stream (seeded from the chip number and the
term), so turning one term on or scaling its σ never changes another's draws.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields

import torch
from torch import Tensor

from oscsim.errors import OscsimError
from oscsim.params import KuramotoParams
from oscsim.quant import SCALE_METHODS, fake_quantize
from oscsim.realize import ChipSystems, derive_seed, realize

__all__ = [
    "ChipSystems",
    "NonIdeal",
    "freq_mismatch_to_model",
    "phase_noise_from_period_jitter",
    "read_phases",
    "realize",
    "to_model_time",
]

_TAG_SAMPLE = 0x756E3073  # "un0s": dynamic (per sample seed) streams
_FLOATS = (
    "phase_noise_rad_per_sqrt_t", "freq_mismatch_rad_per_t", "coupling_mismatch_sigma",
    "coupling_read_noise", "readout_jitter_rad", "drift_mismatch_rad_per_t",
)
#: the operating-point terms and their trim-point values: `to_dict` writes them only when set
_OPERATING = {"tuning_gain": 1.0, "coupling_gain": 1.0, "common_freq_offset_rad_per_t": 0.0,
              "drift_mismatch_rad_per_t": 0.0}
_BITS = {"coupling_bits": 16, "frequency_bits": 16, "readout_bits": 15}


@dataclass(frozen=True, kw_only=True)
class NonIdeal:
    """One frozen description of what the hardware does wrong (all off by default).

    Attributes:
        phase_noise_rad_per_sqrt_t: σ_φ of the Wiener term per oscillator, rad/√(model
            time) (`phase_noise_from_period_jitter` converts a cell's figure).
        freq_mismatch_rad_per_t: σ_ω of the static frequency offsets, rad/model time.
        coupling_mismatch_sigma: σ of ln(gain) per coupler (log-normal, median 1).
        coupling_read_noise: σ_r, relative error of every coupler read, per step.
        dead_coupler_fraction: share p ∈ [0, 1) of couplers that output nothing.
        coupling_bits, frequency_bits: quantisation of K, K̃, C / of ω, ν (None: exact).
        quant_scale: how the quantisation scale is chosen ('max', 'percentile', 'mse').
        readout_bits: phase-to-digital resolution, 2^b levels per turn (None: exact).
        readout_jitter_rad: σ of the Gaussian phase error of the readout, rad.
        tuning_gain: factor on every programmed frequency (the cells' tuning slope against
            the trim point's), > 0.
        coupling_gain: factor on every coupling, harmonics included, > 0.
        common_freq_offset_rad_per_t: shift of every cell's frequency, rad/model time.
        drift_mismatch_rad_per_t: σ of each cell's own frequency drift, rad/model time.
        chips: number of chips the batch is split over (equal contiguous groups).
        chip_seed: number of the first chip (chip c of a call is chip_seed + c).
        sample_seed: seed of the dynamic draws (phase noise, read noise, readout jitter).
    """

    phase_noise_rad_per_sqrt_t: float = 0.0
    freq_mismatch_rad_per_t: float = 0.0
    coupling_mismatch_sigma: float = 0.0
    coupling_read_noise: float = 0.0
    dead_coupler_fraction: float = 0.0
    coupling_bits: int | None = None
    frequency_bits: int | None = None
    quant_scale: str = "max"
    readout_bits: int | None = None
    readout_jitter_rad: float = 0.0
    tuning_gain: float = 1.0
    coupling_gain: float = 1.0
    common_freq_offset_rad_per_t: float = 0.0
    drift_mismatch_rad_per_t: float = 0.0
    chips: int = 1
    chip_seed: int = 0
    sample_seed: int = 0

    def __post_init__(self) -> None:
        for name in _FLOATS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value >= 0):
                raise OscsimError(f"NonIdeal.{name} must be a finite number >= 0, not {value!r}")
            object.__setattr__(self, name, float(value))
        for name in ("tuning_gain", "coupling_gain"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
                raise OscsimError(f"NonIdeal.{name} must be a finite number > 0, not {value!r}")
            object.__setattr__(self, name, float(value))
        value = self.common_freq_offset_rad_per_t
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise OscsimError(f"NonIdeal.common_freq_offset_rad_per_t must be a finite number, not {value!r}")
        object.__setattr__(self, "common_freq_offset_rad_per_t", float(value))
        p = self.dead_coupler_fraction
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
            raise OscsimError(f"NonIdeal.dead_coupler_fraction must be in [0, 1), not {p!r}")
        object.__setattr__(self, "dead_coupler_fraction", float(p))
        for name, top in _BITS.items():
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top):
                raise OscsimError(f"NonIdeal.{name} must be None or an int in 1..{top}, not {value!r}")
        if self.quant_scale not in SCALE_METHODS:
            raise OscsimError(f"NonIdeal.quant_scale must be one of {', '.join(SCALE_METHODS)}; got {self.quant_scale!r}")
        if isinstance(self.chips, bool) or not isinstance(self.chips, int) or self.chips < 1:
            raise OscsimError(f"NonIdeal.chips must be an int >= 1, not {self.chips!r}")
        for name in ("chip_seed", "sample_seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
                raise OscsimError(f"NonIdeal.{name} must be an int in [0, 2^63), not {value!r}")

    # --- what is on -------------------------------------------------------------------
    @property
    def dynamic(self) -> bool:
        """Whether anything is drawn per step (phase noise, coupling read noise)."""
        return self.phase_noise_rad_per_sqrt_t > 0 or self.coupling_read_noise > 0

    @property
    def static(self) -> bool:
        """Whether the chip's parameters differ from the programmed ones."""
        return (self.freq_mismatch_rad_per_t > 0 or self.coupling_mismatch_sigma > 0 or self.dead_coupler_fraction > 0
                or self.coupling_bits is not None or self.frequency_bits is not None or self.off_trim)

    @property
    def off_trim(self) -> bool:
        """Whether the operating point differs from the trim point (any operating-point term set)."""
        return any(getattr(self, name) != value for name, value in _OPERATING.items())

    @property
    def readout(self) -> bool:
        """Whether the readout of the final main phases is imperfect."""
        return self.readout_bits is not None or self.readout_jitter_rad > 0

    @property
    def ideal(self) -> bool:
        """Everything off: `simulate` then takes the ideal path, bit for bit."""
        return not (self.dynamic or self.static or self.readout)

    # --- dict form (spec files, artefacts) ------------------------------------------
    def replace(self, **changes) -> NonIdeal:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """Every field; the operating-point terms only where set (files written before they
        existed read and compare the same)."""
        d = dataclasses.asdict(self)
        for name, value in _OPERATING.items():
            if d[name] == value:
                del d[name]
        return d

    @classmethod
    def from_dict(cls, data: dict, *, source: str = "NonIdeal") -> NonIdeal:
        """Build from a mapping (a spec file's table); unknown keys name the valid ones."""
        if not isinstance(data, dict):
            raise OscsimError(f"{source}: must be a table of NonIdeal fields, not {type(data).__name__}")
        valid = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(valid))
        if unknown:
            raise OscsimError(f"{source}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(valid)}")
        try:
            return cls(**data)
        except OscsimError as exc:
            raise OscsimError(f"{source}: {exc}") from None

    # --- random streams -------------------------------------------------------------
    def chip_numbers(self) -> list[int]:
        return [self.chip_seed + c for c in range(self.chips)]

    def sample_generator(self, device: torch.device | str = "cpu") -> torch.Generator:
        """The generator of the dynamic draws (a fresh one, seeded from `sample_seed`)."""
        return torch.Generator(device=device).manual_seed(derive_seed(_TAG_SAMPLE, self.sample_seed))

    # --- static realisation ---------------------------------------------------------
    def chip_params(self, params: KuramotoParams, chip: int = 0) -> KuramotoParams:
        """The system chip `chip` of this call (chip number chip_seed + chip) realises."""
        if not 0 <= chip < self.chips:
            raise OscsimError(f"chip must be in [0, {self.chips}), not {chip}")
        return realize(params, self.replace(chip_seed=self.chip_seed + chip, chips=1)).chip(0)


# --- readout -------------------------------------------------------------------------------
def read_phases(theta: Tensor, nonideal: NonIdeal, generator: torch.Generator) -> Tensor:
    """Main phases as the readout reports them: Gaussian jitter, then 2^b levels per turn.

    The b-bit phase-to-digital converter is `oscsim.quant` with step 2π/2^b applied to
    the phase reduced to [−π, π) (b + 1 signed bits hold codes ±2^(b−1), the two ends
    being the same point of the circle); the turn count is added back. Under autograd
    the rounding is straight-through.
    """
    if nonideal.readout_jitter_rad > 0:
        noise = torch.randn(theta.shape, generator=generator, dtype=theta.dtype, device=theta.device)
        theta = theta + nonideal.readout_jitter_rad * noise
    if nonideal.readout_bits is not None:
        b = nonideal.readout_bits
        two_pi = 2 * math.pi
        detached = theta.detach()
        turns = torch.floor((detached + math.pi) / two_pi)
        reduced = detached - two_pi * turns
        step = two_pi / 2**b
        q = fake_quantize(reduced, step, b + 1) + two_pi * turns
        theta = theta + (q - detached) if theta.requires_grad else q
    return theta


# --- conversions from a cell's figures --------------------------------------------------
def phase_noise_from_period_jitter(period_jitter_s: float, f0_hz: float) -> float:
    """Phase diffusion σ_phys (rad/√s) of a free-running cell from its rms period jitter.

    Period jitter σ_T per cycle of length 1/f0 accumulates as a random walk of timing:
    variance σ_T² f0 per second, i.e. a phase variance (2π f0)² σ_T² f0 per second.
    """
    if not (period_jitter_s >= 0 and f0_hz > 0):
        raise OscsimError(f"need period_jitter_s >= 0 and f0_hz > 0, not {period_jitter_s!r}, {f0_hz!r}")
    return 2 * math.pi * f0_hz * period_jitter_s * math.sqrt(f0_hz)


def to_model_time(sigma_rad_per_sqrt_s: float, tau_s: float) -> float:
    """σ_model = σ_phys · √τ (rad/√model time), τ in seconds per unit of model time."""
    if not (sigma_rad_per_sqrt_s >= 0 and tau_s > 0):
        raise OscsimError(f"need sigma >= 0 and tau_s > 0, not {sigma_rad_per_sqrt_s!r}, {tau_s!r}")
    return sigma_rad_per_sqrt_s * math.sqrt(tau_s)


def freq_mismatch_to_model(sigma_f_hz: float, tau_s: float) -> float:
    """σ_ω in rad per model time of a static frequency spread σ_f (Hz): 2π σ_f τ."""
    if not (sigma_f_hz >= 0 and tau_s > 0):
        raise OscsimError(f"need sigma_f_hz >= 0 and tau_s > 0, not {sigma_f_hz!r}, {tau_s!r}")
    return 2 * math.pi * sigma_f_hz * tau_s
