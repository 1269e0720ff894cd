"""Adaptive reference solution with scipy's `solve_ivp` (for accuracy checks only).

Integrates the same velocity as the fixed-step solvers (`oscsim.coupling.velocity`, the
general coupler's harmonics included), in float64 on the CPU, with a high-order adaptive
method (DOP853 by default) at tight tolerances. No autograd.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.integrate import solve_ivp
from torch import Tensor

from oscsim.coupling import velocity
from oscsim.errors import OscsimError
from oscsim.harmonics import Harmonics
from oscsim.params import KuramotoParams


def solve_adaptive(
    params: KuramotoParams,
    theta0: Tensor,
    drive: Tensor | None,
    *,
    drive_h: Harmonics | None = None,
    T: float,
    t_eval: np.ndarray | None = None,
    rtol: float = 1e-10,
    atol: float = 1e-12,
    scipy_method: str = "DOP853",
) -> tuple[Tensor, Tensor | None]:
    """Integrate to T; return the final state and, if `t_eval` is given, the states there.

    `drive` (B, N, N_c) and `drive_h` are the per-sample drive and its harmonics
    (`gather_drive`, `gather_drive_harmonics`). Returns tensors in the dtype/device of
    `theta0`; the trajectory is (len(t_eval), B, D).
    """
    p64 = params.to(device="cpu", dtype=torch.float64)
    shape = theta0.shape
    d64 = None if drive is None else drive.detach().to(device="cpu", dtype=torch.float64)
    d64_h = None if drive_h is None else drive_h.detach().to(device="cpu", dtype=torch.float64)

    def rhs(_t: float, y: np.ndarray) -> np.ndarray:
        state = torch.from_numpy(y).reshape(shape)
        with torch.no_grad():
            return velocity(p64, state, d64, d64_h).reshape(-1).numpy()

    y0 = theta0.detach().to(device="cpu", dtype=torch.float64).reshape(-1).numpy()
    sol = solve_ivp(rhs, (0.0, T), y0, method=scipy_method, rtol=rtol, atol=atol, t_eval=t_eval)
    if not sol.success:
        raise OscsimError(f"adaptive reference solver failed: {sol.message}")
    final = torch.from_numpy(sol.y[:, -1].copy()).reshape(shape)
    if t_eval is None:
        # without t_eval, solve_ivp's last column is the state at T
        return final.to(theta0), None
    traj = torch.from_numpy(sol.y.T.copy()).reshape(len(t_eval), *shape)
    return final.to(theta0), traj.to(theta0)
