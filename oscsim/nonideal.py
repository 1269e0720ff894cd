r"""`NonIdeal`: what the hardware does wrong, and the Euler–Maruyama integrator that shows it
(the static terms are drawn and applied by `oscsim.realize`).

With per-chip static draws (ω̃ = ω + σ_ω z, K̃_ij = g_ij · a_ij · Q(K)_ij, …) each sample
on a chip integrates the Itô SDE

    dθ_i = [ω̃_i + Σ_j K̃_ij (1 + σ_r ε_ij) sin(θ_j − θ_i) + Σ_k D̃[c]_ik (1 + σ_r ε_ik) sin(φ_k − θ_i)] dt
           + σ_φ dW_i
    dφ_k = [ν̃_k + Σ_l C̃_kl (1 + σ_r ε_kl) sin(φ_l − φ_k)] dt + σ_φ dW_k

by Euler–Maruyama: θ ← θ + h·v + σ_φ √h ξ, ξ ~ N(0, 1) per oscillator and step.

Static terms (one draw per chip, from the chip's seed):
- frequency mismatch: ω̃ = ω + σ_ω z (also ν), z ~ N(0, 1) per oscillator;
- coupling gain mismatch: g = exp(σ_g z) per coupler (log-normal, median 1), shared by
  all classes of the drive (a coupler is one circuit, reprogrammed per class);
- dead couplers: a coupler whose uniform draw u < p outputs nothing (a larger p kills a
  superset of the couplers of a smaller one, on the same chip);
- quantisation of K, K̃, C (`coupling_bits`) and ω, ν (`frequency_bits`) with
  `oscsim.quant` (one scale per tensor), applied to the programmed values before the
  analog gains — what the compiler's codes say, realised by imperfect circuits.

Dynamic terms (from the sample seed):
- phase noise σ_φ (rad/√model time): a Wiener term per oscillator;
- coupling read noise σ_r: every coupler's weight is read with a fresh relative error
  ε ~ N(0, 1) per sample and step. Given the phases, the summed error at oscillator i is
  Gaussian with variance σ_r² Σ_j K̃²_ij sin²(x_j − θ_i) = σ_r² ½[Σ_j K̃²_ij −
  cos 2θ_i (K̃² cos 2x)_i − sin 2θ_i (K̃² sin 2x)_i], so it is drawn per oscillator from
  one more GEMM (with K̃² elementwise) — exact in distribution, no N×N draw per sample.
  Being per step, its effect depends on the step count (10 in the released models);
- readout: the main phases at T are read with Gaussian jitter (rad) and a phase-to-
  digital converter of `readout_bits` (2^b levels around the circle; the turn count is
  kept, as the mean-relative readout uses unwrapped phases).

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
    "simulate_nonideal",
    "to_model_time",
]

_TAG_SAMPLE = 0x756E3073  # "un0s": dynamic (per sample seed) streams
_FLOATS = (
    "phase_noise_rad_per_sqrt_t", "freq_mismatch_rad_per_t", "coupling_mismatch_sigma",
    "coupling_read_noise", "readout_jitter_rad",
)
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
    chips: int = 1
    chip_seed: int = 0
    sample_seed: int = 0

    def __post_init__(self) -> None:
        for name in _FLOATS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value >= 0):
                raise OscsimError(f"NonIdeal.{name} must be a finite number >= 0, not {value!r}")
            object.__setattr__(self, name, float(value))
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
                or self.coupling_bits is not None or self.frequency_bits is not None)

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
        return dataclasses.asdict(self)

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


# --- the integrator ---------------------------------------------------------------------
def simulate_nonideal(params: KuramotoParams, theta0: Tensor, labels: Tensor | None, *, steps: int, T: float,
                      method: str, record: bool, nonideal: NonIdeal, ideal_simulate):
    """`simulate` with non-idealities (arguments already checked by `simulate`).

    Static-only on one chip: the realised system goes through the ideal integrators (any
    method, autograd as usual). With dynamic noise or several chips: Euler–Maruyama.
    """
    from oscsim.simulate import SimResult

    batch = theta0.shape[0]
    if batch % nonideal.chips:
        raise OscsimError(f"batch {batch} does not split into NonIdeal.chips = {nonideal.chips} equal groups")
    generator = nonideal.sample_generator(theta0.device)
    if not nonideal.dynamic and nonideal.chips == 1:
        chip = nonideal.chip_params(params) if nonideal.static else params
        res = ideal_simulate(chip, theta0, labels, steps=steps, T=T, method=method, record=record)
    elif (method == "euler" and nonideal.chips == 1 and nonideal.coupling_read_noise == 0
          and not torch.is_grad_enabled()):
        # one chip, phase noise only: the ideal no-grad Euler path with the Wiener term
        from oscsim.simulate import _euler_no_grad

        chip = nonideal.chip_params(params) if nonideal.static else params
        res = _euler_no_grad(chip, theta0, labels, steps=steps, T=T, record=record,
                             phase_noise=(nonideal.phase_noise_rad_per_sqrt_t, generator))
    elif method != "euler":
        raise OscsimError(f"with phase or read noise, or several chips, the integrator is Euler–Maruyama: "
                          f"method must be 'euler', not {method!r}")
    else:
        res = _euler_maruyama(params, theta0, labels, steps=steps, T=T, record=record, nonideal=nonideal,
                              generator=generator)
    if not nonideal.readout:
        return res
    main = read_phases(res.theta[:, : params.n], nonideal, generator)
    theta = torch.cat((main, res.theta[:, params.n:]), dim=1)
    return SimResult(theta=theta, n=res.n, times=res.times, trajectory=res.trajectory)


def _drive_layout(systems: ChipSystems, labels: Tensor | None, n_c: int) -> tuple[Tensor | None, Tensor | None]:
    """The drive as extra GEMM columns: (chips, N, classes·N_c), and the samples' one-hot
    class rows (B, classes) (zero for a dropped label), or (None, None) without drive."""
    if labels is None or n_c == 0:
        return None, None
    classes = systems.drive.shape[1]
    flat = systems.drive.permute(0, 2, 1, 3).reshape(systems.drive.shape[0], -1, classes * n_c)
    onehot = torch.zeros(labels.shape[0], classes, dtype=systems.K.dtype, device=systems.K.device)
    kept = labels >= 0
    onehot[kept, labels[kept]] = 1.0
    return flat, onehot


def _gemm(rows: Tensor, mt: Tensor, chips: int) -> Tensor:
    """(B, 2, W) GEMM rows, chip-major, times (1 | chips, W, N): (B, 2, N). One GEMM
    when the matrix is shared, one batched GEMM over the chip axis otherwise."""
    batch = rows.shape[0]
    if mt.shape[0] == 1:
        return (rows.view(2 * batch, -1) @ mt[0]).view(batch, 2, -1)
    return torch.bmm(rows.view(chips, 2 * batch // chips, -1), mt).view(batch, 2, -1)


def _with_drive(x: Tensor, drive_x: Tensor | None, onehot: Tensor | None) -> Tensor:
    """GEMM rows (B, 2, N [+ classes·N_c]): x (B, 2, N), plus e_c ⊗ drive_x (B, 2, N_c)."""
    if onehot is None:
        return x
    outer = onehot[:, None, :, None] * drive_x[:, :, None, :]  # (B, 2, classes, N_c)
    return torch.cat((x, outer.flatten(2)), dim=2)


def _sincos(x: Tensor, factor: float = 1.0) -> Tensor:
    """(B, 2, D): sin(factor·x), cos(factor·x)."""
    x = x * factor if factor != 1.0 else x
    return torch.stack((torch.sin(x), torch.cos(x)), dim=1)


def _main_no_grad(theta: Tensor, phi_sc: list[Tensor], onehot: Tensor | None, Mt: Tensor, omega: Tensor, *,
                  chips: int, steps: int, h: float, noise_scale: float, generator: torch.Generator,
                  frames: list[Tensor] | None) -> Tensor:
    """The main block's Euler–Maruyama loop without autograd or read noise: the same
    arithmetic and draws as the generic loop, in reused buffers (as `_euler_no_grad`)."""
    batch, n = theta.shape
    width = Mt.shape[1]
    rows = theta.new_zeros(batch, 2, width)  # [sin θ_b, e_c ⊗ sin φ_b; cos θ_b, e_c ⊗ cos φ_b]
    sin, cos = rows[:, 0, :n], rows[:, 1, :n]
    weighted = theta.new_empty(batch, 2, n)
    w_sin, w_cos = weighted[:, 0], weighted[:, 1]
    noise = theta.new_empty(batch, n) if noise_scale > 0 else None
    theta = theta.clone(memory_format=torch.contiguous_format)
    for k in range(steps):
        torch.sin(theta, out=sin)
        torch.cos(theta, out=cos)
        if onehot is not None:
            rows[:, :, n:] = (onehot[:, None, :, None] * phi_sc[k][:, :, None, :]).flatten(2)
        if Mt.shape[0] == 1:
            torch.mm(rows.view(2 * batch, width), Mt[0], out=weighted.view(2 * batch, n))
        else:
            torch.bmm(rows.view(chips, -1, width), Mt, out=weighted.view(chips, -1, n))
        velocity = torch.addcmul(omega, cos, w_sin, out=w_sin).addcmul_(sin, w_cos, value=-1.0)
        theta.add_(velocity, alpha=h)
        if noise is not None:
            torch.randn(noise.shape, generator=generator, dtype=noise.dtype, device=noise.device, out=noise)
            theta.add_(noise, alpha=noise_scale)
        if frames is not None:
            frames.append(theta.clone())
    return theta


def _euler_maruyama(params: KuramotoParams, theta0: Tensor, labels: Tensor | None, *, steps: int, T: float,
                    record: bool, nonideal: NonIdeal, generator: torch.Generator):
    r"""Euler–Maruyama over a chip axis; the drive rides in the coupling GEMM.

    Per step the GEMM rows [sin θ_b, e_c ⊗ sin φ_b; cos θ_b, e_c ⊗ cos φ_b] (e_c: the
    sample's one-hot class; zero for a dropped label) multiply [K̃ | D̃_flat]ᵀ of their
    chip, giving K̃ sin θ + D̃[c] sin φ and the cos rows at once: many samples per chip in
    one GEMM, all chips in one batched GEMM, no loop over samples or classes. The
    conditioning block (which never hears the main one) is integrated first. Read noise
    takes one more GEMM of the same shape with the squared couplings (see the module).
    """
    from oscsim.simulate import SimResult, _checked_labels

    ni, n, n_c = nonideal, params.n, params.n_cond
    batch, chips = theta0.shape[0], nonideal.chips
    per_chip = batch // chips
    h, sqrt_h = T / steps, math.sqrt(T / steps)
    sigma, read = ni.phase_noise_rad_per_sqrt_t, ni.coupling_read_noise
    dtype, device = theta0.dtype, theta0.device
    if labels is not None:
        labels = _checked_labels(params, labels, batch)
    s = realize(params, ni)

    def by_sample(x: Tensor) -> Tensor:  # (1 | chips, ...) → (B, ...)
        return x.expand(chips, *x.shape[1:]).repeat_interleave(per_chip, dim=0)

    def randn(*shape: int) -> Tensor:
        return torch.randn(shape, generator=generator, dtype=dtype, device=device)

    # conditioning block first: φ (B, N_c) with its chip's C̃, ν̃
    phi = theta0[:, n:]
    phi_frames, phi_sc = [phi], []  # φ and (sin φ, cos φ) at each step
    if n_c:
        nu, Ct = by_sample(s.nu), s.C.transpose(1, 2)
        phi_noise = randn(steps, batch, n_c) if sigma > 0 else None
        phi_read = randn(steps, batch, n_c) if read > 0 else None
        if read > 0:
            C2t, c_half = (s.C**2).transpose(1, 2), by_sample(0.5 * (s.C**2).sum(-1))
        for k in range(steps):
            sc = _sincos(phi)
            phi_sc.append(sc)
            w = _gemm(sc, Ct, chips)
            v = nu + sc[:, 1] * w[:, 0] - sc[:, 0] * w[:, 1]
            if phi_read is not None:
                sc2 = _sincos(phi, 2.0)
                q = _gemm(sc2, C2t, chips)
                var = (c_half - 0.5 * (sc2[:, 1] * q[:, 1] + sc2[:, 0] * q[:, 0])).clamp_min(0.0)
                v = v + read * torch.sqrt(var) * phi_read[k]
            phi = phi + h * v
            if phi_noise is not None:
                phi = phi + (sigma * sqrt_h) * phi_noise[k]
            phi_frames.append(phi)

    # main block: M = [K̃ | D̃_flat] of each chip
    flat, onehot = _drive_layout(s, labels, n_c)
    M = s.K
    if flat is not None:
        lead = max(s.K.shape[0], flat.shape[0])
        M = torch.cat((s.K.expand(lead, -1, -1), flat.expand(lead, -1, -1)), dim=2)
    Mt = M.transpose(1, 2)
    omega = by_sample(s.omega)
    if read > 0:
        M2t = (M**2).transpose(1, 2)
        half_sq = by_sample(0.5 * (s.K**2).sum(-1))
        if onehot is not None:  # + ½ Σ_k D̃[c]²_ik of the sample's class
            half_sq = half_sq + 0.5 * torch.einsum("bc,bcn->bn", onehot, by_sample((s.drive**2).sum(-1)))

    theta = theta0[:, :n]
    frames = [theta] if record else None
    if read == 0 and not torch.is_grad_enabled():
        theta = _main_no_grad(theta, phi_sc, onehot, Mt, omega, chips=chips, steps=steps, h=h,
                              noise_scale=sigma * sqrt_h, generator=generator, frames=frames)
    for k in range(steps if read > 0 or torch.is_grad_enabled() else 0):
        sc = _sincos(theta)
        sin, cos = sc[:, 0], sc[:, 1]
        w = _gemm(_with_drive(sc, phi_sc[k] if onehot is not None else None, onehot), Mt, chips)
        v = omega + cos * w[:, 0] - sin * w[:, 1]
        if read > 0:
            sc2 = _sincos(theta, 2.0)
            q = _gemm(_with_drive(sc2, _sincos(phi_frames[k], 2.0) if onehot is not None else None, onehot), M2t, chips)
            var = (half_sq - 0.5 * (sc2[:, 1] * q[:, 1] + sc2[:, 0] * q[:, 0])).clamp_min(0.0)
            v = v + read * torch.sqrt(var) * randn(batch, n)
        theta = theta + h * v
        if sigma > 0:
            theta = theta + (sigma * sqrt_h) * randn(batch, n)
        if frames is not None:
            frames.append(theta)

    final = torch.cat((theta, phi), dim=1)
    if frames is None:
        return SimResult(theta=final, n=n)
    trajectory = torch.cat((torch.stack(frames), torch.stack(phi_frames)), dim=2)
    times = torch.linspace(0.0, T, steps + 1, dtype=dtype, device=device)
    return SimResult(theta=final, n=n, times=times, trajectory=trajectory)
