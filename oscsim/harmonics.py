r"""`Harmonics`: the coupling function of a coupler beyond the Kuramoto sine.

A coupler of the circuit adds, for x = θ_j − θ_i (what oscillator i hears from j),

    H_ij(x) = b0_ij + Σ_{k=1..H} (a_k,ij sin kx + b_k,ij cos kx)

(H ≤ 3 in the circuit: Kuramoto–Sakaguchi, a lag α being a_1 = K cos α, b_1 = −K sin α,
plus an even part and harmonics). The sine coefficient of the fundamental, a_1, stays the
coupling matrix M itself (`KuramotoParams.K`, `C`, `drive`), so a system without
`Harmonics` is the pure Kuramoto system; a `Harmonics` holds the rest of H_ij.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from oscsim.errors import OscsimError

__all__ = ["Harmonics", "sakaguchi"]


@dataclass(frozen=True, eq=False)
class Harmonics:
    r"""What one coupling matrix M's couplers add beyond M_ij sin x (x = θ_j − θ_i):

        H_ij(x) = b0_ij + M_ij sin x + Σ_{k=1..H} b[k-1]_ij cos kx + Σ_{k=2..H} a[k-2]_ij sin kx

    Every tensor has M's shape behind its coefficient axis, whatever that shape is:
    (N, N) for K, (classes, N, N_c) for the drive, and a leading chip axis (1 | chips)
    in front of those in `oscsim.realize.ChipSystems`.

    Attributes:
        a: (H−1, *M.shape) sine coefficients of k = 2..H (H−1 may be 0).
        b: (H, *M.shape) cosine coefficients of k = 1..H.
        b0: M.shape, the constant part. For K and C the diagonals of b0 and b must be zero
            (no self-coupler: its cos terms would add a constant; `KuramotoParams` checks).
    """

    a: Tensor
    b: Tensor
    b0: Tensor

    def __post_init__(self) -> None:
        for name in ("a", "b", "b0"):
            value = getattr(self, name)
            if not isinstance(value, Tensor):
                raise OscsimError(f"Harmonics.{name} must be a torch.Tensor, not {type(value).__name__}")
            if not value.is_floating_point():
                raise OscsimError(f"Harmonics.{name} must be floating point, not {value.dtype}")
        shape = tuple(self.b0.shape)
        if self.b.ndim != len(shape) + 1 or tuple(self.b.shape[1:]) != shape or self.b.shape[0] < 1:
            raise OscsimError(f"Harmonics.b must be (H >= 1, *b0.shape) = (H, {_dims(shape)}), not {tuple(self.b.shape)}")
        order = self.b.shape[0]
        if tuple(self.a.shape) != (order - 1, *shape):
            raise OscsimError(f"Harmonics.a must be (H−1, *b0.shape) = {(order - 1, *shape)} for H = {order}, "
                              f"not {tuple(self.a.shape)}")
        for name in ("a", "b"):
            value = getattr(self, name)
            if value.dtype != self.b0.dtype or value.device != self.b0.device:
                raise OscsimError(f"Harmonics.{name} is {value.dtype} on {value.device}; it must match b0 "
                                  f"({self.b0.dtype} on {self.b0.device})")

    # --- construction ---------------------------------------------------------------
    @classmethod
    def zeros(cls, shape: tuple[int, ...], order: int, *, dtype: torch.dtype = torch.float32,
              device: torch.device | str | None = None) -> Harmonics:
        """All coefficients zero, of order H = `order` ≥ 1, for a matrix of `shape`."""
        if isinstance(order, bool) or not isinstance(order, int) or order < 1:
            raise OscsimError(f"Harmonics order must be an int >= 1, not {order!r}")
        shape = tuple(shape)
        kw = {"dtype": dtype, "device": device}
        return cls(a=torch.zeros(order - 1, *shape, **kw), b=torch.zeros(order, *shape, **kw),
                   b0=torch.zeros(shape, **kw))

    @classmethod
    def zeros_like(cls, M: Tensor, order: int = 1) -> Harmonics:
        """All coefficients zero, of order `order`, for the matrix M (its shape, dtype, device)."""
        return cls.zeros(tuple(M.shape), order, dtype=M.dtype, device=M.device)

    # --- what it is -----------------------------------------------------------------
    @property
    def order(self) -> int:
        """H: the highest harmonic."""
        return self.b.shape[0]

    @property
    def shape(self) -> tuple[int, ...]:
        """The matrix M's shape."""
        return tuple(self.b0.shape)

    @property
    def dtype(self) -> torch.dtype:
        return self.b0.dtype

    @property
    def device(self) -> torch.device:
        return self.b0.device

    @property
    def tensors(self) -> tuple[Tensor, Tensor, Tensor]:
        """(a, b, b0)."""
        return self.a, self.b, self.b0

    def terms(self, M: Tensor) -> list[tuple[Tensor, Tensor]]:
        """(A_k, B_k) for k = 1..H, the sin kx and cos kx coefficients: A_1 = M, A_k = a[k−2]."""
        return [(M if k == 0 else self.a[k - 1], self.b[k]) for k in range(self.order)]

    def row_const(self) -> Tensor:
        """Σ_j b0_ij: the state-independent part of the drift, M.shape[:-1]."""
        return self.b0.sum(-1)

    # --- new coefficients -----------------------------------------------------------
    def map(self, fn: Callable[[Tensor], Tensor]) -> Harmonics:
        """The coefficients with M's axes transformed: fn takes and returns a tensor whose
        first axis counts coefficients (m, *M.shape) → (m, *new_shape), e.g.
        ``lambda t: t.unsqueeze(1)`` (a chip axis) or ``lambda t: t[:, labels]``."""
        return Harmonics(a=fn(self.a), b=fn(self.b), b0=fn(self.b0.unsqueeze(0)).squeeze(0))

    def scaled(self, factor: Tensor | float) -> Harmonics:
        """Every coefficient times `factor` (broadcasting against M.shape): a coupler's gain
        or dead-coupler factor multiplies its whole function (one coupler, one circuit)."""
        return Harmonics(a=self.a * factor, b=self.b * factor, b0=self.b0 * factor)

    def padded(self, order: int) -> Harmonics:
        """The same function with zero coefficients up to order `order` ≥ H."""
        extra = order - self.order
        if extra < 0:
            raise OscsimError(f"cannot pad Harmonics of order {self.order} to the lower order {order}")
        if extra == 0:
            return self
        pad = self.b0.new_zeros(extra, *self.shape)
        return Harmonics(a=torch.cat((self.a, pad)), b=torch.cat((self.b, pad)), b0=self.b0)

    def to(self, *args, **kwargs) -> Harmonics:
        """Move/cast every tensor, as `Tensor.to`."""
        return Harmonics(a=self.a.to(*args, **kwargs), b=self.b.to(*args, **kwargs), b0=self.b0.to(*args, **kwargs))

    def detach(self) -> Harmonics:
        return Harmonics(a=self.a.detach(), b=self.b.detach(), b0=self.b0.detach())

    def clone(self) -> Harmonics:
        return Harmonics(a=self.a.clone(), b=self.b.clone(), b0=self.b0.clone())


def sakaguchi(K: Tensor, alpha: Tensor | float, *, b0: Tensor | None = None) -> tuple[Tensor, Harmonics]:
    r"""The Kuramoto–Sakaguchi coupler H_ij(x) = K_ij sin(x − α_ij) (+ b0_ij) as (M, Harmonics):

        K sin(x − α) = K cos α · sin x − K sin α · cos x

    so M = K cos α (the matrix field of `KuramotoParams`) and b[0] = −K sin α (order H = 1).
    `alpha` (rad) is one lag or one per coupler (broadcasting against K).
    """
    alpha = torch.as_tensor(alpha, dtype=K.dtype, device=K.device)
    M = K * torch.cos(alpha)
    b = (-K * torch.sin(alpha)).unsqueeze(0)
    return M, Harmonics(a=K.new_zeros(0, *K.shape), b=b, b0=K.new_zeros(K.shape) if b0 is None else b0)


def _dims(shape: tuple[int, ...]) -> str:
    return ", ".join(str(s) for s in shape)
