r"""`ShapedCoupling`: every coupler's coupling function as a fixed shape times its strength.

A circuit's coupler at signed strength M_ij (the sine coefficient a1 it realises) adds

    H_ij(x) = M_ij · (sin x + ρ_b1 cos x + ρ_a2 sin 2x + ρ_b2 cos 2x + ρ_a3 sin 3x + ρ_b3 cos 3x) + b0_ij,

with the ratios ρ = (term / a1) of its code, sign and loads fixed by the hardware (measured,
`hw.Calibration`; realised for an array by `compiler.circuit`) and b0_ij = ρ_b0 · M_ij only
when `constant` is set — a trim against the closed couplers takes the constant part out.
With `reciprocal` set the square blocks (K, C) act through their symmetric parts
M̄ = (M + Mᵀ)/2, sine term included: one reciprocal DAC per pair (a resistor) couples both
cells by the same strength, so a model's antisymmetric part does not reach the circuit —
and a model fine-tuned under the shape learns only what the circuit can hold.
`apply` turns a system's couplings into its `oscsim.Harmonics` with those ratios, so
gradients flow into M through every term: a model trained (or fine-tuned) under a
`ShapedCoupling` learns the coupling function of the circuit it will run on.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from torch import Tensor

from oscsim.errors import OscsimError
from oscsim.harmonics import Harmonics
from oscsim.params import KuramotoParams

#: the ratio planes of a shape, in this order (each divided by a1)
RATIO_TERMS = ("b0", "b1", "a2", "b2", "a3", "b3")


@dataclass(frozen=True, eq=False)
class ShapedCoupling:
    """Ratios (6, *M.shape) per block (`RATIO_TERMS`), None for a block that stays pure sine.

    K: (6, N, N); C: (6, N_c, N_c); drive: (6, classes, N, N_c). constant: whether b0 acts
    (False: trimmed away against the closed couplers). reciprocal: K and C act through their
    symmetric parts (module docstring).
    """

    K: Tensor | None = None
    C: Tensor | None = None
    drive: Tensor | None = None
    constant: bool = False
    reciprocal: bool = False

    def __post_init__(self) -> None:
        for name in ("K", "C", "drive"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, Tensor) or value.shape[0] != len(RATIO_TERMS)):
                raise OscsimError(f"ShapedCoupling.{name} must be a tensor ({len(RATIO_TERMS)}, *M.shape) of "
                                  f"ratios {RATIO_TERMS}, not {getattr(value, 'shape', type(value).__name__)}")

    def harmonics(self, M: Tensor, ratios: Tensor) -> Harmonics:
        """The `Harmonics` of couplings M under `ratios` (differentiable in M)."""
        if tuple(ratios.shape[1:]) != tuple(M.shape):
            raise OscsimError(f"ShapedCoupling ratios {tuple(ratios.shape)} do not fit couplings {tuple(M.shape)}")
        r = ratios.to(dtype=M.dtype, device=M.device)
        b0 = r[0] * M if self.constant else M.new_zeros(M.shape)
        return Harmonics(a=r[[2, 4]] * M, b=r[[1, 3, 5]] * M, b0=b0)

    def apply(self, params: KuramotoParams) -> KuramotoParams:
        """`params` with each block's coupling function under this shape."""
        changes = {}
        if self.reciprocal:
            changes = {name: (getattr(params, name) + getattr(params, name).mT) / 2 for name in ("K", "C")}
        for name, field in (("K", "K_h"), ("C", "C_h"), ("drive", "drive_h")):
            ratios = getattr(self, name)
            if ratios is not None:
                changes[field] = self.harmonics(changes.get(name, getattr(params, name)), ratios)
        return dataclasses.replace(params, **changes) if changes else params

    def to(self, *args, **kwargs) -> ShapedCoupling:
        move = lambda t: None if t is None else t.to(*args, **kwargs)
        return ShapedCoupling(K=move(self.K), C=move(self.C), drive=move(self.drive), constant=self.constant,
                              reciprocal=self.reciprocal)
