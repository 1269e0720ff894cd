"""`KuramotoParams`: the couplings and frequencies every integrator takes."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from oscsim.errors import OscsimError
from oscsim.harmonics import Harmonics

#: the harmonics fields, each beside the coupling matrix its couplers' function extends
HARMONICS_FIELDS = {"K_h": "K", "drive_h": "drive", "C_h": "C"}


@dataclass(frozen=True, kw_only=True)
class KuramotoParams:
    r"""Effective parameters of a class-conditional Kuramoto system.

    With N main phases θ and N_c conditioning phases φ, for a sample of class c::

        dθ_i/dt = ω_i + Σ_j K_ij sin(θ_j − θ_i) + Σ_k D[c]_ik sin(φ_k − θ_i)
        dφ_k/dt = ν_k + Σ_l C_kl sin(φ_l − φ_k)

    With harmonics (`oscsim.harmonics.Harmonics`, optional per matrix) each coupler adds its
    general function instead of the sine alone, e.g. for K with x = θ_j − θ_i:

        K_ij sin x  →  b0_ij + K_ij sin x + Σ_{k=1..H} b[k-1]_ij cos kx + Σ_{k=2..H} a[k-2]_ij sin kx

    and likewise C with `C_h` and the drive with `drive_h` (x = φ_k − θ_i). None: the
    pure sine coupler, exactly the equations above.

    Fields hold the couplings as the dynamics use them: any parameterisation scale
    (μP) already applied and self-coupling (the diagonals of K and C) already zeroed
    — `from_raw` does both. `drive` is K̃ in the release's layout (classes, N, N_c):
    ``drive[c, i, k]`` couples conditioning oscillator k into main oscillator i;
    conditioning never hears the main block.

    Attributes:
        K: (N, N) main coupling, rad per unit model time.
        omega: (N,) main natural frequencies (rotating-frame offsets), rad per unit time.
        drive: (classes, N, N_c) class-specific conditioning → main coupling.
        C: (N_c, N_c) conditioning coupling.
        nu: (N_c,) conditioning natural frequencies.
        K_h: harmonics of K's couplers (shapes (H−1 | H, N, N), b0 (N, N)) or None.
        drive_h: harmonics of the drive's couplers (shapes (H−1 | H, classes, N, N_c)) or None.
        C_h: harmonics of C's couplers (shapes (H−1 | H, N_c, N_c)) or None.
    """

    K: Tensor
    omega: Tensor
    drive: Tensor
    C: Tensor
    nu: Tensor
    K_h: Harmonics | None = None
    drive_h: Harmonics | None = None
    C_h: Harmonics | None = None

    def __post_init__(self) -> None:
        fields = {"K": self.K, "omega": self.omega, "drive": self.drive, "C": self.C, "nu": self.nu}
        for name, value in fields.items():
            if not isinstance(value, Tensor):
                raise OscsimError(f"KuramotoParams.{name} must be a torch.Tensor, not {type(value).__name__}")
            if not value.is_floating_point():
                raise OscsimError(f"KuramotoParams.{name} must be floating point, not {value.dtype}")
        if self.K.ndim != 2 or self.K.shape[0] != self.K.shape[1]:
            raise OscsimError(f"KuramotoParams.K must be square (N, N), not {tuple(self.K.shape)}")
        n = self.K.shape[0]
        if self.drive.ndim != 3 or self.drive.shape[1] != n:
            raise OscsimError(
                f"KuramotoParams.drive must be (classes, N={n}, N_c), not {tuple(self.drive.shape)}"
            )
        n_c = self.drive.shape[2]
        expected = {"omega": (n,), "C": (n_c, n_c), "nu": (n_c,)}
        for name, shape in expected.items():
            if tuple(fields[name].shape) != shape:
                raise OscsimError(
                    f"KuramotoParams.{name} must have shape {shape}, not {tuple(fields[name].shape)}"
                )
        for name, value in fields.items():
            if value.dtype != self.K.dtype or value.device != self.K.device:
                raise OscsimError(
                    f"KuramotoParams.{name} is {value.dtype} on {value.device}; all fields must "
                    f"match K ({self.K.dtype} on {self.K.device})"
                )
        for name, matrix in HARMONICS_FIELDS.items():
            self._check_harmonics(name, getattr(self, matrix))

    def _check_harmonics(self, name: str, matrix: Tensor) -> None:
        """`name` is None or Harmonics of `matrix`'s shape, dtype and device; for a square
        coupling (K, C) with zero diagonals of b0 and b (no self-coupler)."""
        h = getattr(self, name)
        if h is None:
            return
        if not isinstance(h, Harmonics):
            raise OscsimError(f"KuramotoParams.{name} must be an oscsim.Harmonics or None, not {type(h).__name__}")
        if h.shape != tuple(matrix.shape):
            raise OscsimError(f"KuramotoParams.{name} must be Harmonics of shape {tuple(matrix.shape)} (as "
                              f"{HARMONICS_FIELDS[name]}), not {h.shape}")
        if h.dtype != self.K.dtype or h.device != self.K.device:
            raise OscsimError(f"KuramotoParams.{name} is {h.dtype} on {h.device}; all fields must match K "
                              f"({self.K.dtype} on {self.K.device})")
        if name != "drive_h":
            for part, value in (("b0", h.b0.unsqueeze(0)), ("b", h.b)):
                if bool(value.detach().diagonal(dim1=-2, dim2=-1).ne(0).any()):
                    raise OscsimError(f"KuramotoParams.{name}.{part} must have a zero diagonal (no self-coupler); "
                                      f"KuramotoParams.from_raw zeroes it")

    @classmethod
    def from_raw(
        cls,
        *,
        K: Tensor,
        omega: Tensor,
        drive: Tensor,
        C: Tensor,
        nu: Tensor,
        k_scale: float = 1.0,
        c_scale: float = 1.0,
        drive_scale: float = 1.0,
        K_h: Harmonics | None = None,
        drive_h: Harmonics | None = None,
        C_h: Harmonics | None = None,
    ) -> KuramotoParams:
        """Build from stored weights: zero the diagonals of K and C, apply the scales.

        ``omega``/``nu`` may carry the release's leading singleton axis (1, N). Autograd
        flows through (training builds its params this way every step). Harmonics are
        scaled with their matrix (a coupler's whole function: `k_scale` for K_h, …) and
        those of K and C get zero diagonals too.
        """
        # scale into a fresh tensor, then zero its diagonal in place: one N×N allocation
        # (not three), and the same off-diagonal values as (K − diag K)·s
        K_eff = K * k_scale
        K_eff.diagonal().zero_()
        C_eff = C * c_scale
        C_eff.diagonal().zero_()
        return cls(
            K=K_eff,
            omega=omega.reshape(-1),
            drive=drive * drive_scale,
            C=C_eff,
            nu=nu.reshape(-1),
            K_h=_scaled(K_h, k_scale, square=True),
            drive_h=_scaled(drive_h, drive_scale, square=False),
            C_h=_scaled(C_h, c_scale, square=True),
        )

    @property
    def n(self) -> int:
        """Number of main oscillators N."""
        return self.K.shape[0]

    @property
    def n_cond(self) -> int:
        """Number of conditioning oscillators N_c."""
        return self.C.shape[0]

    @property
    def num_classes(self) -> int:
        """Number of classes the drive knows."""
        return self.drive.shape[0]

    @property
    def has_harmonics(self) -> bool:
        """Whether any coupler has more than the sine (K_h, drive_h or C_h set)."""
        return self.K_h is not None or self.drive_h is not None or self.C_h is not None

    @property
    def harmonics_order(self) -> int:
        """The highest harmonic H of any coupler: 1 for the pure sine system."""
        return max([1] + [h.order for h in (self.K_h, self.drive_h, self.C_h) if h is not None])

    @property
    def dtype(self) -> torch.dtype:
        return self.K.dtype

    @property
    def device(self) -> torch.device:
        return self.K.device

    def to(self, *args, **kwargs) -> KuramotoParams:
        """Move/cast every field, as `Tensor.to`."""
        return KuramotoParams(
            K=self.K.to(*args, **kwargs),
            omega=self.omega.to(*args, **kwargs),
            drive=self.drive.to(*args, **kwargs),
            C=self.C.to(*args, **kwargs),
            nu=self.nu.to(*args, **kwargs),
            K_h=None if self.K_h is None else self.K_h.to(*args, **kwargs),
            drive_h=None if self.drive_h is None else self.drive_h.to(*args, **kwargs),
            C_h=None if self.C_h is None else self.C_h.to(*args, **kwargs),
        )


def _scaled(h: Harmonics | None, scale: float, *, square: bool) -> Harmonics | None:
    """h times `scale` in fresh tensors, with zero diagonals if `square` (K, C)."""
    if h is None:
        return None
    out = h.scaled(scale)
    if square:
        for t in out.tensors:
            t.diagonal(dim1=-2, dim2=-1).zero_()
    return out
