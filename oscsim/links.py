r"""Couplings that hear their sender over a link: delayed and jittered phases.

On a chip, a coupling between oscillators of two tiles travels over an inter-tile link; how
the phases are distributed (`compiler.route.phase_groups`) decides what the receiving
coupler sees. A direct wire (point-to-point or a broadcast bus) carries the waveform itself.
A time-multiplexed link carries each phase as a digital word once per frame; the receiver
holds the last word it got, so it sees the sender's phase as it was some time ago. A
low-swing link carries the waveform at a small swing, and its receiver adds timing jitter.

`Links` states that for the main couplings K: a mask of the couplings that travel over links
(receiver i, sender j), the delay (model time units) and the per-step Gaussian error (rad)
of the received phase. The conditioning drive (conditioning tile → every main cell) travels
over the same links when `drive` is set. With x̂_j the received phase, the step of
`oscsim.euler` becomes, for the linked couplings,

    K_ij sin(x̂_j − x_i)        x̂_j(t_k) = x_j(t_k − delay) + σ ξ_jk

(each harmonic of a general coupling function likewise), everything else unchanged. A
delay of d steps of size h = T/steps reads x at step k − d; a fractional d interpolates
linearly between the two neighbouring steps; before the start the history is the initial
phases (a constant history, as a delay equation's initial condition). In the kernel this is
one more GEMM per coupling term: W += ([sin x̂; cos x̂] − [sin x; cos x]) (K ⊙ mask)ᵀ.

The Euler kernel without autograd runs links (`oscsim.simulate` refuses them elsewhere: a
delay has no place in a velocity function for Runge–Kutta or the adaptive reference).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from oscsim.errors import OscsimError


@dataclass(frozen=True, eq=False)
class Links:
    """The inter-tile links of an array, as the dynamics see them (module docstring).

    Attributes:
        mask: (N, N) bool, True where K[i, j] travels over a link (receiver i, sender j).
        delay: how long ago (model time units) the received phase was the sender's (≥ 0).
        jitter_rad: σ of the received phase's Gaussian error at each step (rad, ≥ 0),
            independent per step, sample and sender.
        drive: the conditioning drive travels over links too (same delay and jitter).
        seed: the jitter's generator seed.
    """

    mask: Tensor
    delay: float = 0.0
    jitter_rad: float = 0.0
    drive: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.mask, Tensor) or self.mask.dtype != torch.bool or self.mask.ndim != 2 \
                or self.mask.shape[0] != self.mask.shape[1]:
            raise OscsimError("Links.mask must be a square (N, N) bool tensor (receiver i, sender j)")
        for name in ("delay", "jitter_rad"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and v >= 0):
                raise OscsimError(f"Links.{name} must be a finite number >= 0, not {v!r}")

    @property
    def active(self) -> bool:
        """Whether the links change anything (a delay or jitter on some coupling or the drive)."""
        return (self.delay > 0 or self.jitter_rad > 0) and (self.drive or bool(self.mask.any()))

    @staticmethod
    def of_tiles(tiles: Tensor, **kw) -> Links:
        """Links between oscillators of different tiles: `tiles` (N,) the tile of each."""
        tiles = torch.as_tensor(tiles)
        return Links(mask=tiles.view(-1, 1) != tiles.view(1, -1), **kw)


class History:
    """The received phases of one block: a ring of its last states, read `delay_steps` back
    (interpolated), plus the jitter. `push(x)` before step k's read stores x at step k."""

    def __init__(self, x0: Tensor, *, delay_steps: float, jitter_rad: float, generator: torch.Generator | None) -> None:
        self.d0 = int(math.floor(delay_steps))
        self.frac = float(delay_steps - self.d0)
        self.size = self.d0 + 2
        self.ring = x0.new_empty(self.size, *x0.shape)
        self.first = x0.clone()
        self.jitter = float(jitter_rad)
        self.generator = generator
        self.step = -1
        self.out = torch.empty_like(x0)

    def push(self, x: Tensor) -> None:
        self.step += 1
        self.ring[self.step % self.size].copy_(x)

    def _at(self, k: int) -> Tensor:
        return self.first if k < 0 else self.ring[k % self.size]

    def received(self) -> Tensor:
        """x̂ at the current step: x(k − d) (+ the jitter)."""
        k = self.step
        out = self.out
        if self.frac == 0.0:
            out.copy_(self._at(k - self.d0))
        else:
            torch.lerp(self._at(k - self.d0), self._at(k - self.d0 - 1), self.frac, out=out)
        if self.jitter > 0:
            out.add_(torch.randn(out.shape, generator=self.generator, dtype=out.dtype, device=out.device),
                     alpha=self.jitter)
        return out


def generator_for(links: Links, device: torch.device) -> torch.Generator | None:
    if links.jitter_rad <= 0:
        return None
    return torch.Generator(device=device).manual_seed(links.seed)


def received_frames(frames: list[Tensor], links: Links, *, h: float, generator: torch.Generator | None
                    ) -> list[Tensor]:
    """The received versions of a block's states at steps 0..len−1 (the drive's input)."""
    hist = History(frames[0], delay_steps=links.delay / h, jitter_rad=links.jitter_rad, generator=generator)
    out = []
    for x in frames:
        hist.push(x)
        out.append(hist.received().clone())
    return out
