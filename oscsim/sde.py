r"""Euler–Maruyama: the Itô SDE of `oscsim.nonideal` integrated over a chip axis.

Each step is x ← x + h·v(x) + ΔW for both blocks (main θ, conditioning φ), v the drift of
the sample's chip (its realised system, `oscsim.realize`) and ΔW the dynamic terms:

- phase noise: σ_φ √h ξ, ξ ~ N(0, 1) per oscillator and step;
- coupling read noise: h σ_r ε_i, the summed relative read errors of oscillator i's
  couplers. Given the phases it is Gaussian with variance σ_r² Σ_j K̃²_ij sin²(x_j − θ_i)
  = σ_r² ½[Σ_j K̃²_ij − cos 2θ_i (K̃² cos 2x)_i − sin 2θ_i (K̃² sin 2x)_i] (the drive's D̃[c]²
  alongside K̃²), so it is drawn per oscillator from one more GEMM of the same shape with
  the squared couplings — exact in distribution, no N×N draw per sample.

Without autograd both terms are diffusion inputs (`oscsim.euler.Diffusion`) of the one
no-grad Euler kernel, `oscsim.euler.euler_no_grad`. Under autograd (training with noise)
`rk_step` takes the chip-axis drift and the terms are added out of place, so gradients flow
through the realised system (straight through its rounding). There the drive rides in the
coupling GEMM: the rows [sin θ_b, e_c ⊗ sin φ_b; cos θ_b, e_c ⊗ cos φ_b] (e_c: the sample's
one-hot class, zero for a dropped label) times [K̃ | D̃_flat]ᵀ of their chip give
K̃ sin θ + D̃[c] sin φ and the cos rows at once: all chips in one batched GEMM, no loop over
samples or classes.

With harmonics (`oscsim.harmonics.Harmonics`) the drift is the general coupler's
(`oscsim.euler`, `oscsim.coupling`): under autograd per harmonic k the rows
[sin kθ_b, e_c ⊗ sin kφ_b; cos kθ_b, e_c ⊗ cos kφ_b] times [A_k | A^D_k,flat]ᵀ and times
[B_k | B^D_k,flat]ᵀ (two GEMMs per harmonic, missing coefficients as zeros), the constant
parts added to ω̃. The read noise stays the sine term's: its variance is computed from K̃²
(and D̃², C̃²) alone, the harmonics' couplers read exactly.

Both paths draw the same numbers onto the same samples, from the call's sample generator,
in this order: the conditioning block's phase noise for every step, then its read noise for
every step, then per step the main block's read noise and then its phase noise; each draw
(B, ·) in the caller's sample order. (The readout's jitter draws after, in `simulate`.)
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from oscsim.checks import check_labels
from oscsim.euler import Diffusion, Drive, Layout, coupling_gemm, euler_no_grad
from oscsim.harmonics import Harmonics
from oscsim.nonideal import NonIdeal
from oscsim.params import KuramotoParams
from oscsim.realize import ChipSystems, realize
from oscsim.results import SimResult
from oscsim.solvers import EULER, rk_step


def simulate_sde(params: KuramotoParams, theta0: Tensor, labels: Tensor | None, *, steps: int, T: float,
                 record: bool, nonideal: NonIdeal, generator: torch.Generator,
                 gemm_dtype: torch.dtype | None = None, links=None) -> SimResult:
    """Euler–Maruyama over the chip axis (`simulate` has checked all but the labels).

    The batch is `nonideal.chips` equal contiguous groups, group c on chip c; the dynamic
    draws come from `generator` (the readout, if any, is left to the caller).
    """
    if labels is not None:
        labels = check_labels(params, labels, theta0.shape[0])
    systems = realize(params, nonideal) if nonideal.static else ChipSystems.shared(params)
    if torch.is_grad_enabled():
        return _euler_maruyama_autograd(systems, theta0, labels, steps=steps, T=T, record=record, nonideal=nonideal,
                                        generator=generator)
    noise = _NoiseTerms(systems, nonideal, generator, steps=steps, h=T / steps, like=theta0)
    return euler_no_grad(systems, theta0, labels, steps=steps, T=T, record=record, noise=noise,
                         gemm_dtype=gemm_dtype, links=links)


# --- without autograd: the dynamic terms as the kernel's diffusion inputs --------------------
class _BlockNoise:
    """ΔW_k of one block: σ_φ √h ξ, plus h σ_r √Var ξ' with read noise (module docstring).

    `draw_read(k)` and `draw_phase(k)` give the standard normals of step k (B, D) in the
    kernel's order (called in that order); the read-noise variance takes the squared
    couplings (`coupling2_t`, and the drive's `drive2`), ½ Σ_j of them per sample
    (`half_sq`), and writes sin 2x, cos 2x of every step into `sincos2` if given.
    """

    def __init__(self, *, phase_scale: float, read_scale: float, draw_phase: Callable[[int], Tensor] | None,
                 draw_read: Callable[[int], Tensor] | None, coupling2_t: Tensor | None = None,
                 half_sq: Tensor | None = None, drive2: Drive | None = None, sincos2: Tensor | None = None) -> None:
        self.phase_scale, self.read_scale = phase_scale, read_scale
        self.draw_phase, self.draw_read = draw_phase, draw_read
        self.coupling2_t, self.half_sq, self.sincos2 = coupling2_t, half_sq, sincos2
        self.drive2 = drive2
        self._add_drive2 = None
        self._buffers: tuple[Tensor, Tensor] | None = None

    def __call__(self, step: int, x: Tensor, sincos: Tensor) -> Tensor | None:
        increment = None
        if self.draw_read is not None:
            increment = self._read_noise(step, x).mul_(self.draw_read(step))
        if self.draw_phase is not None:
            xi = self.draw_phase(step)
            increment = xi.mul_(self.phase_scale) if increment is None else increment.add_(xi, alpha=self.phase_scale)
        return increment

    def _read_noise(self, step: int, x: Tensor) -> Tensor:
        """h σ_r √Var (B, D) at the state x before step `step`."""
        if self._buffers is None:
            q = x.new_empty(x.shape[0], 2, x.shape[1])
            own = x.new_empty(x.shape[0], 2, x.shape[1]) if self.sincos2 is None else None
            self._buffers = (q, own)
            self._add_drive2 = self.drive2.bind(q) if self.drive2 is not None else None
        q, own = self._buffers
        sc2 = own if self.sincos2 is None else self.sincos2[step]
        two_x = x * 2.0
        torch.sin(two_x, out=sc2[:, 0])
        torch.cos(two_x, out=sc2[:, 1])
        coupling_gemm(sc2, self.coupling2_t, q)
        if self._add_drive2 is not None:
            self._add_drive2(step)
        var = (self.half_sq - 0.5 * (sc2[:, 1] * q[:, 1] + sc2[:, 0] * q[:, 0])).clamp_min_(0.0)
        return var.sqrt_().mul_(self.read_scale)


class _NoiseTerms:
    """The dynamic terms of one call, built for the kernel's layout (`euler.NoiseTerms`)."""

    def __init__(self, systems: ChipSystems, nonideal: NonIdeal, generator: torch.Generator, *, steps: int,
                 h: float, like: Tensor) -> None:
        self.systems, self.generator, self.steps = systems, generator, steps
        self.phase, self.read = nonideal.phase_noise_rad_per_sqrt_t, nonideal.coupling_read_noise
        self.phase_scale, self.read_scale = self.phase * math.sqrt(h), h * self.read
        self.dtype, self.device = like.dtype, like.device

    def __call__(self, layout: Layout) -> tuple[Diffusion | None, Diffusion | None]:
        phi_term, sc2_phi = self._conditioning(layout)
        return phi_term, self._main(layout, sc2_phi)

    def _randn(self, *shape: int, out: Tensor | None = None) -> Tensor:
        return torch.randn(shape, generator=self.generator, dtype=self.dtype, device=self.device, out=out)

    def _conditioning(self, layout: Layout) -> tuple[_BlockNoise | None, Tensor | None]:
        """φ's term, its draws for every step at once (the module's order), and the buffer
        of sin 2φ, cos 2φ at every step it fills (the main block's read noise reads it)."""
        s, steps, batch = self.systems, self.steps, layout.batch
        n_c = s.C.shape[-1]
        if n_c == 0 or not (self.phase > 0 or self.read > 0):
            return None, None
        phi_phase = layout.sorted(self._randn(steps, batch, n_c), 1) if self.phase > 0 else None
        phi_read = layout.sorted(self._randn(steps, batch, n_c), 1) if self.read > 0 else None
        sc2_phi = phi_read.new_empty(steps, batch, 2, n_c) if phi_read is not None else None
        term = _BlockNoise(phase_scale=self.phase_scale, read_scale=self.read_scale,
                           draw_phase=phi_phase.__getitem__ if phi_phase is not None else None,
                           draw_read=phi_read.__getitem__ if phi_read is not None else None,
                           coupling2_t=(s.C**2).transpose(1, 2), half_sq=layout.by_sample(0.5 * (s.C**2).sum(-1)),
                           sincos2=sc2_phi)
        return term, sc2_phi

    def _main(self, layout: Layout, sc2_phi: Tensor | None) -> _BlockNoise | None:
        """θ's term: per step its read noise, then its phase noise, drawn fresh."""
        s, n = self.systems, self.systems.K.shape[-1]
        if not (self.phase > 0 or self.read > 0):
            return None
        draw_read = self._per_step(layout, n) if self.read > 0 else None
        draw_phase = self._per_step(layout, n) if self.phase > 0 else None
        if self.read == 0:
            return _BlockNoise(phase_scale=self.phase_scale, read_scale=0.0, draw_phase=draw_phase, draw_read=None)
        half_sq, drive2 = layout.by_sample(0.5 * (s.K**2).sum(-1)), None
        if layout.labels is not None:  # + ½ Σ_k D̃[c]²_ik of the sample's class, and D̃[c]² in the GEMM
            half_sq = half_sq + layout.by_class(0.5 * (s.drive**2).sum(-1))
            drive2 = Drive(layout, s.drive**2, sc2_phi)
        return _BlockNoise(phase_scale=self.phase_scale, read_scale=self.read_scale, draw_phase=draw_phase,
                           draw_read=draw_read, coupling2_t=(s.K**2).transpose(1, 2), half_sq=half_sq, drive2=drive2)

    def _per_step(self, layout: Layout, n: int) -> Callable[[int], Tensor]:
        """Fresh (B, N) standard normals per call, in the caller's order, put in the layout's."""
        raw = torch.empty(layout.batch, n, dtype=self.dtype, device=self.device)
        permuted = torch.empty_like(raw) if layout.order is not None else None

        def draw(_step: int) -> Tensor:
            self._randn(*raw.shape, out=raw)
            return raw if permuted is None else layout.sorted(raw, out=permuted)

        return draw


# --- under autograd -------------------------------------------------------------------------
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


def _euler_maruyama_autograd(systems: ChipSystems, theta0: Tensor, labels: Tensor | None, *, steps: int, T: float,
                             record: bool, nonideal: NonIdeal, generator: torch.Generator) -> SimResult:
    """Euler–Maruyama under autograd: `rk_step` (Euler) over the chip-axis drift, the read
    noise inside the drift (Itô: at the step's start), the phase noise added after."""
    ni, s = nonideal, systems
    n, n_c = s.K.shape[-1], s.C.shape[-1]
    batch, chips = theta0.shape[0], ni.chips
    per_chip = batch // chips
    h, sqrt_h = T / steps, math.sqrt(T / steps)
    sigma, read = ni.phase_noise_rad_per_sqrt_t, ni.coupling_read_noise
    dtype, device = theta0.dtype, theta0.device

    def by_sample(x: Tensor) -> Tensor:  # (1 | chips, ...) → (B, ...)
        return x.expand(chips, *x.shape[1:]).repeat_interleave(per_chip, dim=0)

    def randn(*shape: int) -> Tensor:
        return torch.randn(shape, generator=generator, dtype=dtype, device=device)

    def read_noise(x: Tensor, m2t: Tensor, half_sq: Tensor, drive_x: Tensor | None, onehot: Tensor | None) -> Tensor:
        """σ_r √Var (B, D) at x, the drive's doubled angles `drive_x` alongside."""
        sc2 = _sincos(x, 2.0)
        q = _gemm(_with_drive(sc2, drive_x, onehot), m2t, chips)
        var = (half_sq - 0.5 * (sc2[:, 1] * q[:, 1] + sc2[:, 0] * q[:, 0])).clamp_min(0.0)
        return read * torch.sqrt(var)

    # conditioning block first: φ (B, N_c) with its chip's C̃, ν̃
    phi = theta0[:, n:]
    phi_frames, phi_sc = [phi], []  # φ and (sin φ, cos φ) at each step
    if n_c:
        nu, Ct = by_sample(s.nu), s.C.transpose(1, 2)
        phi_noise = randn(steps, batch, n_c) if sigma > 0 else None
        phi_read = randn(steps, batch, n_c) if read > 0 else None
        if read > 0:
            C2t, c_half = (s.C**2).transpose(1, 2), by_sample(0.5 * (s.C**2).sum(-1))
        if s.C_h is not None:  # the general coupler: the constant part, (A_kᵀ, B_kᵀ) per harmonic
            nu = by_sample(s.nu + s.C_h.row_const())
            c_terms = [(A.transpose(1, 2), B.transpose(1, 2)) for A, B in s.C_h.terms(s.C)]
        for k in range(steps):
            sc = _sincos(phi)
            phi_sc.append(sc)

            def drift_phi(x: Tensor, sc: Tensor = sc, k: int = k) -> Tensor:
                if s.C_h is None:
                    w = _gemm(sc, Ct, chips)
                    v = nu + sc[:, 1] * w[:, 0] - sc[:, 0] * w[:, 1]
                else:
                    v = nu + _general_drift(x, None, None, c_terms, chips)
                return v if phi_read is None else v + read_noise(x, C2t, c_half, None, None) * phi_read[k]

            phi = rk_step(drift_phi, phi, h, EULER)
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

    general = s.K_h is not None or (s.drive_h is not None and onehot is not None)
    if general:  # the general coupler: the constant parts, (A_kᵀ, B_kᵀ) per harmonic, drive beside
        omega, m_terms = _general_main(s, onehot, by_sample)

    def drift_theta(x: Tensor, k: int) -> Tensor:
        if general:
            v = omega + _general_drift(x, phi_frames[k] if onehot is not None else None, onehot, m_terms, chips)
        else:
            sc = _sincos(x)
            w = _gemm(_with_drive(sc, phi_sc[k] if onehot is not None else None, onehot), Mt, chips)
            v = omega + sc[:, 1] * w[:, 0] - sc[:, 0] * w[:, 1]
        if read > 0:
            doubled = _sincos(phi_frames[k], 2.0) if onehot is not None else None
            v = v + read_noise(x, M2t, half_sq, doubled, onehot) * randn(batch, n)
        return v

    theta = theta0[:, :n]
    frames = [theta] if record else None
    for k in range(steps):
        theta = rk_step(lambda x, k=k: drift_theta(x, k), theta, h, EULER)
        if sigma > 0:
            theta = theta + (sigma * sqrt_h) * randn(batch, n)
        if frames is not None:
            frames.append(theta)

    final = torch.cat((theta, phi), dim=1)
    if frames is None:
        return SimResult(theta=final, n=n)
    return SimResult.of(final, n, T=T, trajectory=torch.cat((torch.stack(frames), torch.stack(phi_frames)), dim=2))


def _general_main(s: ChipSystems, onehot: Tensor | None, by_sample: Callable[[Tensor], Tensor]
                  ) -> tuple[Tensor, list[tuple[Tensor, Tensor]]]:
    """The main block's general drift: ω̃ + Σ_j b0_ij (+ Σ_k b0[c]_ik of the sample's class)
    per sample (B, N), and per harmonic ([A_k | A^D_k,flat]ᵀ, [B_k | B^D_k,flat]ᵀ) of each
    chip, (1 | chips, N [+ classes·N_c], N); missing coefficients as zeros."""
    n = s.K.shape[-1]
    driven = onehot is not None
    order = max(1 if s.K_h is None else s.K_h.order, s.drive_h.order if driven and s.drive_h is not None else 1)
    k_h = (s.K_h if s.K_h is not None else Harmonics.zeros_like(s.K, 1)).padded(order)
    omega = by_sample(s.omega + k_h.row_const())
    pairs = k_h.terms(s.K)
    if driven:
        d_h = (s.drive_h if s.drive_h is not None else Harmonics.zeros_like(s.drive, 1)).padded(order)
        omega = omega + torch.einsum("bc,bcn->bn", onehot, by_sample(d_h.row_const()))

        def joined(m: Tensor, dm: Tensor) -> Tensor:  # [M | D̃_flat] of each chip: (1 | chips, N, N + classes·N_c)
            flat = dm.permute(0, 2, 1, 3).reshape(dm.shape[0], n, -1)
            lead = max(m.shape[0], flat.shape[0])
            return torch.cat((m.expand(lead, -1, -1), flat.expand(lead, -1, -1)), dim=2)

        pairs = [(joined(A, Ad), joined(B, Bd)) for (A, B), (Ad, Bd) in zip(pairs, d_h.terms(s.drive))]
    return omega, [(A.transpose(1, 2), B.transpose(1, 2)) for A, B in pairs]


def _general_drift(x: Tensor, phi: Tensor | None, onehot: Tensor | None, terms: list[tuple[Tensor, Tensor]],
                   chips: int) -> Tensor:
    """Σ_k [cos kx ⊙ (W^A_k,sin + W^B_k,cos) − sin kx ⊙ (W^A_k,cos − W^B_k,sin)] (B, D), the
    W's from the rows of x (and of φ, by class) times each harmonic's (A_kᵀ, B_kᵀ)."""
    out = None
    for k, (a_t, b_t) in enumerate(terms):
        sc = _sincos(x, float(k + 1))
        rows = _with_drive(sc, _sincos(phi, float(k + 1)) if onehot is not None else None, onehot)
        w_a, w_b = _gemm(rows, a_t, chips), _gemm(rows, b_t, chips)
        term = sc[:, 1] * (w_a[:, 0] + w_b[:, 1]) - sc[:, 0] * (w_a[:, 1] - w_b[:, 0])
        out = term if out is None else out + term
    return out
