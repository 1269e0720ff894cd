"""`KuramotoParams`: the couplings and frequencies every integrator takes."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from oscsim.errors import OscsimError


@dataclass(frozen=True, kw_only=True)
class KuramotoParams:
    r"""Effective parameters of a class-conditional Kuramoto system.

    With N main phases θ and N_c conditioning phases φ, for a sample of class c::

        dθ_i/dt = ω_i + Σ_j K_ij sin(θ_j − θ_i) + Σ_k D[c]_ik sin(φ_k − θ_i)
        dφ_k/dt = ν_k + Σ_l C_kl sin(φ_l − φ_k)

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
    """

    K: Tensor
    omega: Tensor
    drive: Tensor
    C: Tensor
    nu: Tensor

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
    ) -> KuramotoParams:
        """Build from stored weights: zero the diagonals of K and C, apply the scales.

        ``omega``/``nu`` may carry the release's leading singleton axis (1, N). Autograd
        flows through (training builds its params this way every step).
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
        )
