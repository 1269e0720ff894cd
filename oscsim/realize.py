r"""A chip: the static terms of `NonIdeal` drawn and applied to a programmed system.

`realize` turns the programmed system into the systems of a call's chips (`ChipSystems`,
a leading chip axis), applying the static terms `oscsim.nonideal` describes in this order:
quantisation of the programmed values (one scale per tensor, straight-through under
autograd), then per coupler the gain mismatch and the dead couplers (one factor for every
class of the drive: a coupler is one circuit, reprogrammed per class), then per oscillator
the frequency offsets, then the operating point (tuning gain, common-mode offset,
differential drift; the coupling gain on every coupler). A coupler's harmonics (`oscsim.harmonics.Harmonics`) take the same
gain and dead-coupler factor as its sine term (one coupler, one circuit); quantisation is
the sine term's only (the harmonics come realised from the hardware's tables). Terms that are off leave their tensor shared (chip axis of 1).

Chip c of a call is chip number ``chip_seed + c``. Every static term has its own random
stream per chip (seeded from the chip number and the term), drawn in float64 on the CPU
(the same on every device and dtype). Draws and realisations are cached, bounded: a chip
is simulated batch after batch.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from oscsim.harmonics import Harmonics
from oscsim.params import KuramotoParams
from oscsim.quant import choose_scale, fake_quantize

if TYPE_CHECKING:
    from oscsim.nonideal import NonIdeal

_TAG_CHIP = 0x756E3063  # "un0c": static (per chip) streams
#: static terms, each with its own stream per chip
_TERMS = ("omega", "nu", "K_gain", "drive_gain", "C_gain", "K_dead", "drive_dead", "C_dead", "omega_drift",
          "nu_drift")


def derive_seed(*words: int) -> int:
    """A 63-bit torch seed from integers, through numpy's SeedSequence (well mixed)."""
    return int(np.random.SeedSequence(list(words)).generate_state(1, np.uint64)[0] >> 1)


@dataclass(frozen=True)
class ChipSystems:
    """The systems of a call's chips: a leading chip axis of 1 (shared) or `chips`.

    The harmonics are `Harmonics` of the chip-axis matrices: K_h's b is (H, 1 | chips, N, N),
    its b0 (1 | chips, N, N), and so on (None: the pure sine coupler).
    """

    K: Tensor  # (1 | chips, N, N)
    omega: Tensor  # (1 | chips, N)
    drive: Tensor  # (1 | chips, classes, N, N_c)
    C: Tensor  # (1 | chips, N_c, N_c)
    nu: Tensor  # (1 | chips, N_c)
    K_h: Harmonics | None = None  # of K: (H−1 | H, 1 | chips, N, N)
    drive_h: Harmonics | None = None  # of drive: (H−1 | H, 1 | chips, classes, N, N_c)
    C_h: Harmonics | None = None  # of C: (H−1 | H, 1 | chips, N_c, N_c)

    @classmethod
    def shared(cls, params: KuramotoParams) -> ChipSystems:
        """`params` as one system every chip shares (views, no copy)."""
        return cls(K=params.K.unsqueeze(0), omega=params.omega.unsqueeze(0), drive=params.drive.unsqueeze(0),
                   C=params.C.unsqueeze(0), nu=params.nu.unsqueeze(0), K_h=_chip_axis(params.K_h),
                   drive_h=_chip_axis(params.drive_h), C_h=_chip_axis(params.C_h))

    @property
    def harmonics(self) -> tuple[Harmonics | None, Harmonics | None, Harmonics | None]:
        """(K_h, drive_h, C_h)."""
        return self.K_h, self.drive_h, self.C_h

    @property
    def chips(self) -> int:
        """The chip axis: 1 when every tensor is shared, else the number of chips."""
        sizes = [t.shape[0] for t in (self.K, self.omega, self.drive, self.C, self.nu)]
        return max(sizes + [h.b0.shape[0] for h in self.harmonics if h is not None])

    def chip(self, c: int) -> KuramotoParams:
        """The system of chip c (of this call)."""
        pick = lambda t: t[c if t.shape[0] > 1 else 0]

        def pick_h(h: Harmonics | None) -> Harmonics | None:
            return None if h is None else h.map(lambda t: t[:, c if t.shape[1] > 1 else 0])

        return KuramotoParams(K=pick(self.K), omega=pick(self.omega), drive=pick(self.drive), C=pick(self.C),
                              nu=pick(self.nu), K_h=pick_h(self.K_h), drive_h=pick_h(self.drive_h),
                              C_h=pick_h(self.C_h))

    def clone(self) -> ChipSystems:
        """A copy that owns its storage."""
        return ChipSystems(K=self.K.clone(), omega=self.omega.clone(), drive=self.drive.clone(), C=self.C.clone(),
                           nu=self.nu.clone(), **{name: None if h is None else h.clone()
                                                  for name, h in zip(("K_h", "drive_h", "C_h"), self.harmonics)})


def _chip_axis(h: Harmonics | None) -> Harmonics | None:
    """h with a chip axis of 1 in front of its matrix's axes (views)."""
    return None if h is None else h.map(lambda t: t.unsqueeze(1))


#: recently drawn static terms, (chip, term, shape, kind) → tensor; bounded in bytes
_DRAWS: OrderedDict[tuple, Tensor] = OrderedDict()
_DRAWS_BUDGET_BYTES = 256 * 2**20


def _chip_draw(chip: int, term: str, shape: tuple[int, ...], kind: str) -> Tensor:
    """Standard normal ('normal') or uniform [0, 1) ('uniform') draws of one static term
    of one chip, float64 on the CPU (the same on every device and dtype). Read-only:
    recent draws are kept (a chip is simulated batch after batch)."""
    key = (chip, term, tuple(shape), kind)
    hit = _DRAWS.get(key)
    if hit is not None:
        _DRAWS.move_to_end(key)
        return hit
    g = torch.Generator().manual_seed(derive_seed(_TAG_CHIP, chip, _TERMS.index(term)))
    with torch.inference_mode(False), torch.no_grad():
        draw = (torch.randn if kind == "normal" else torch.rand)(shape, generator=g, dtype=torch.float64)
    nbytes = draw.numel() * 8
    if nbytes <= _DRAWS_BUDGET_BYTES // 4:
        _DRAWS[key] = draw
        while sum(t.numel() * 8 for t in _DRAWS.values()) > _DRAWS_BUDGET_BYTES:
            _DRAWS.popitem(last=False)
    return draw


def _stacked(chips: list[int], term: str, shape: tuple[int, ...], kind: str, like: Tensor) -> Tensor:
    return torch.stack([_chip_draw(c, term, shape, kind) for c in chips]).to(dtype=like.dtype, device=like.device)


def _quantized(x: Tensor, bits: int | None, method: str) -> Tensor:
    """x on its b-bit grid (one scale for the tensor); straight-through under autograd."""
    if bits is None or x.numel() == 0:
        return x
    detached = x.detach()
    q = fake_quantize(detached, choose_scale(detached, bits, method=method), bits)
    return x + (q - detached) if x.requires_grad else q


#: recent realisations without autograd: (fingerprint of the params, static key) → systems
_REALIZED: OrderedDict[tuple, ChipSystems] = OrderedDict()
_REALIZED_ENTRIES = 4


def _fingerprint(params: KuramotoParams) -> tuple:
    """Shapes, dtype, device, and per tensor (harmonics included) its sum and a strided
    sample of its values: `Un0.params()` builds new tensors every call, so identity cannot
    be the key."""
    out: list = [params.dtype, str(params.device), *_fingerprint_tensors(
        (params.K, params.omega, params.drive, params.C, params.nu))]
    for h in (params.K_h, params.drive_h, params.C_h):
        out.append(None if h is None else _fingerprint_tensors(h.tensors))
    return tuple(out)


def _fingerprint_tensors(tensors: tuple[Tensor, ...]) -> tuple:
    out: list = []
    for t in tensors:
        flat = t.detach().reshape(-1)
        out += [tuple(t.shape), float(flat.sum()), tuple(flat[:: max(1, flat.numel() // 4096)].tolist())]
    return tuple(out)


def _tensors(params: KuramotoParams) -> list[Tensor]:
    """Every tensor of `params`, harmonics included."""
    out = [params.K, params.omega, params.drive, params.C, params.nu]
    for h in (params.K_h, params.drive_h, params.C_h):
        if h is not None:
            out += h.tensors
    return out


def realize(params: KuramotoParams, nonideal: NonIdeal) -> ChipSystems:
    """Apply quantisation, then per-chip gains, dead couplers and frequency offsets.

    Terms that are off leave their tensor shared (chip axis of 1, no copy beyond a view).
    Without autograd a recent result (of the last four) is reused when params with the same values (by a
    fingerprint: sums and a strided sample) meet the same static terms and chips again —
    batch after batch of one chip costs one realisation.
    """
    static_key = (nonideal.freq_mismatch_rad_per_t, nonideal.coupling_mismatch_sigma, nonideal.dead_coupler_fraction,
                  nonideal.coupling_bits, nonideal.frequency_bits, nonideal.quant_scale, nonideal.chip_seed,
                  nonideal.chips, nonideal.tuning_gain, nonideal.coupling_gain,
                  nonideal.common_freq_offset_rad_per_t, nonideal.drift_mismatch_rad_per_t)
    cacheable = not torch.is_grad_enabled() or not any(t.requires_grad for t in _tensors(params))
    if cacheable:
        key = (_fingerprint(params), static_key)
        if key in _REALIZED:
            _REALIZED.move_to_end(key)
            return _REALIZED[key]
    systems = _realize(params, nonideal)
    if cacheable:  # the kept copy owns its storage: terms that are off return views of `params`
        systems = systems.clone()
        _REALIZED[key] = systems
        while len(_REALIZED) > _REALIZED_ENTRIES:
            _REALIZED.popitem(last=False)
    return systems


def _realize(params: KuramotoParams, nonideal: NonIdeal) -> ChipSystems:
    ni, chips = nonideal, nonideal.chip_numbers()
    n, n_c = params.n, params.n_cond
    K = _quantized(params.K, ni.coupling_bits, ni.quant_scale).unsqueeze(0)
    drive = _quantized(params.drive, ni.coupling_bits, ni.quant_scale).unsqueeze(0)
    C = _quantized(params.C, ni.coupling_bits, ni.quant_scale).unsqueeze(0)
    omega = _quantized(params.omega, ni.frequency_bits, ni.quant_scale).unsqueeze(0)
    nu = _quantized(params.nu, ni.frequency_bits, ni.quant_scale).unsqueeze(0)
    K_h, drive_h, C_h = (_chip_axis(h) for h in (params.K_h, params.drive_h, params.C_h))  # not quantised
    if ni.freq_mismatch_rad_per_t > 0:
        omega = omega + ni.freq_mismatch_rad_per_t * _stacked(chips, "omega", (n,), "normal", omega)
        nu = nu + ni.freq_mismatch_rad_per_t * _stacked(chips, "nu", (n_c,), "normal", nu)
    if ni.coupling_mismatch_sigma > 0 or ni.dead_coupler_fraction > 0:
        gains = {"K": (n, n), "drive": (n, n_c), "C": (n_c, n_c)}
        factor = {}
        for name, shape in gains.items():
            f = torch.ones((len(chips), *shape), dtype=torch.float64)
            if ni.coupling_mismatch_sigma > 0:
                f = f * torch.exp(ni.coupling_mismatch_sigma * torch.stack(
                    [_chip_draw(c, f"{name}_gain", shape, "normal") for c in chips]))
            if ni.dead_coupler_fraction > 0:
                u = torch.stack([_chip_draw(c, f"{name}_dead", shape, "uniform") for c in chips])
                f = f * (u >= ni.dead_coupler_fraction)
            factor[name] = f.to(dtype=params.dtype, device=params.device)
        K = K * factor["K"]
        drive = drive * factor["drive"].unsqueeze(1)  # every class through the same couplers
        C = C * factor["C"]
        # a coupler's harmonics: the same factor as its sine term (one circuit)
        K_h = K_h.scaled(factor["K"]) if K_h is not None else None
        drive_h = drive_h.scaled(factor["drive"].unsqueeze(1)) if drive_h is not None else None
        C_h = C_h.scaled(factor["C"]) if C_h is not None else None
    # the operating point: tuning slope, then the common-mode and differential shifts
    if ni.tuning_gain != 1.0:
        omega, nu = ni.tuning_gain * omega, ni.tuning_gain * nu
    if ni.common_freq_offset_rad_per_t != 0.0:
        omega, nu = omega + ni.common_freq_offset_rad_per_t, nu + ni.common_freq_offset_rad_per_t
    if ni.drift_mismatch_rad_per_t > 0:
        omega = omega + ni.drift_mismatch_rad_per_t * _stacked(chips, "omega_drift", (n,), "normal", omega)
        nu = nu + ni.drift_mismatch_rad_per_t * _stacked(chips, "nu_drift", (n_c,), "normal", nu)
    if ni.coupling_gain != 1.0:
        g = ni.coupling_gain
        K, drive, C = g * K, g * drive, g * C
        K_h, drive_h, C_h = (None if h is None else h.scaled(g) for h in (K_h, drive_h, C_h))
    return ChipSystems(K=K, omega=omega, drive=drive, C=C, nu=nu, K_h=K_h, drive_h=drive_h, C_h=C_h)
