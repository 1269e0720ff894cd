"""`simulate`: integrate a batch of seeds of a conditional Kuramoto system to time T."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from oscsim.checks import check_labels as _checked_labels
from oscsim.checks import check_run
from oscsim.coupling import _coupling_sincos, gather_drive, velocity
from oscsim.errors import OscsimError
from oscsim.nonideal import NonIdeal, simulate_nonideal
from oscsim.params import KuramotoParams
from oscsim.reference import solve_adaptive
from oscsim.results import SimResult
from oscsim.solvers import TABLEAUS, rk_step

__all__ = ["METHODS", "SimResult", "check_run", "gather_drive", "simulate"]

METHODS: tuple[str, ...] = (*TABLEAUS, "adaptive")


def simulate(
    params: KuramotoParams,
    theta0: Tensor,
    labels: Tensor | None = None,
    *,
    steps: int = 10,
    T: float = 1.0,
    method: str = "euler",
    record: bool = False,
    nonideal: NonIdeal | None = None,
) -> SimResult:
    r"""Integrate the conditional Kuramoto equations (see `KuramotoParams`) from 0 to T.

    Pure: no global state, no randomness. Works on CPU and CUDA, float32 and float64,
    and autograd flows through the fixed-step methods.

    Args:
        params: the system (its dtype/device set the computation's).
        theta0: (B, N + N_c) initial phases, main then conditioning (the seed).
        labels: (B,) class per seed (−1: none), or None for no conditioning drive.
        steps: number of fixed steps, h = T / steps (for 'adaptive': the number of
            recorded intervals; the solver picks its own steps). 0 returns theta0.
        T: integration time in model units (the release trains with T = 1).
        method: 'euler' (the training default), 'heun', 'rk4', or 'adaptive'
            (scipy DOP853 at rtol 1e-10, float64, no autograd; a reference).
        record: also return the trajectory at the steps + 1 step boundaries.
        nonideal: what the hardware does wrong (`oscsim.NonIdeal`; then the result is
            random but reproducible from its seeds). None or all off: the ideal path,
            bit for bit. With phase or read noise, or several chips, the method must be
            'euler' (Euler–Maruyama); `theta` then holds the main phases as read out.
    """
    if method not in METHODS:
        raise OscsimError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    check_run(params, theta0, steps=steps, T=T)
    if theta0.dtype != params.dtype or theta0.device != params.device:
        raise OscsimError(
            f"theta0 is {theta0.dtype} on {theta0.device}, params are {params.dtype} on "
            f"{params.device}; move one to match"
        )
    if nonideal is not None and not isinstance(nonideal, NonIdeal):
        raise OscsimError(f"nonideal must be an oscsim.NonIdeal or None, not {type(nonideal).__name__}")
    if nonideal is not None and not nonideal.ideal and steps > 0:
        return simulate_nonideal(params, theta0, labels, steps=steps, T=float(T), method=method, record=record,
                                 nonideal=nonideal, ideal_simulate=simulate)
    n = params.n
    if steps == 0:  # every method: nothing to integrate
        gather_drive(params, labels, theta0.shape[0])  # labels are still checked
        if not record:
            return SimResult(theta=theta0, n=n)
        times = torch.zeros(1, dtype=theta0.dtype, device=theta0.device)
        return SimResult(theta=theta0, n=n, times=times, trajectory=theta0.unsqueeze(0))
    if method == "euler" and not torch.is_grad_enabled():
        # generation and evaluation: nothing will be differentiated
        return _euler_no_grad(params, theta0, labels, steps=steps, T=float(T), record=record)
    drive = gather_drive(params, labels, theta0.shape[0])

    if method == "adaptive":
        t_eval = np.linspace(0.0, T, steps + 1) if record else None
        final, traj = solve_adaptive(params, theta0, drive, T=float(T), t_eval=t_eval)
        times = torch.from_numpy(t_eval).to(theta0) if record else None
        return SimResult(theta=final, n=n, times=times, trajectory=traj)

    tableau = TABLEAUS[method]
    h = float(T) / steps if steps else 0.0
    state = theta0
    frames = [state] if record else None

    def f(y: Tensor) -> Tensor:
        return velocity(params, y, drive)

    for _ in range(steps):
        state = rk_step(f, state, h, tableau)
        if frames is not None:
            frames.append(state)
    if frames is None:
        return SimResult(theta=state, n=n)
    times = torch.linspace(0.0, float(T), steps + 1, dtype=theta0.dtype, device=theta0.device)
    return SimResult(theta=state, n=n, times=times, trajectory=torch.stack(frames))


def _class_runs(labels: Tensor) -> tuple[Tensor, list[tuple[int, int, int]]]:
    """A stable order of the batch that puts each class's samples together, and the
    (class, start, stop) of each class's run in that order; dropped samples (−1) are
    left out of the runs (no drive)."""
    sorted_labels, order = torch.sort(labels, stable=True)
    classes, counts = torch.unique_consecutive(sorted_labels, return_counts=True)
    runs, start = [], 0
    for c, count in zip(classes.tolist(), counts.tolist()):
        if c >= 0:
            runs.append((c, start, start + count))
        start += count
    return order, runs


def _drive_by_class(device: torch.device) -> bool:
    """Whether `_euler_no_grad` applies the drive class by class (CPU) or by one batched
    product of the per-sample drives (GPU)."""
    return device.type == "cpu"


def _euler_no_grad(
    params: KuramotoParams, theta0: Tensor, labels: Tensor | None, *, steps: int, T: float, record: bool,
    phase_noise: tuple[float, torch.Generator] | None = None,
) -> SimResult:
    r"""Euler without autograd: the arithmetic of `velocity` and `rk_step`, rearranged.

    `simulate` takes this path when grad mode is off (generation, evaluation); training
    keeps the generic path, whose intermediate tensors autograd needs. The result is the
    same up to float rounding (the main update's terms are summed in another order).

    - The conditioning phases φ never hear the main block, so their Euler trajectory is
      integrated first, on its own (N_c oscillators: cheap).
    - Per step, sin θ and cos θ go straight into a reused (B, 2, N) buffer whose rows
      [sin θ_b; cos θ_b] are the GEMM's input, and W = [sin θ; cos θ] Kᵀ (the identity
      of `kuramoto_coupling`) goes by one matmul into a reused output.
    - The drive terms D sin φ and D cos φ are added onto W, since they are multiplied by
      the same cos θ and sin θ. On a CPU the batch is sorted by class so that a class's
      drive is one small GEMM with K̃[c]: a gathered per-sample (B, N, N_c) drive would be
      streamed from memory every step (~10% of the coupling GEMM at N = 1024). On a GPU
      that batched product is one kernel instead of one per class, and is used there.
    - v = ω + cos θ · W_sin − sin θ · W_cos in place over W_sin, then θ += h·v.
    - `phase_noise` (σ, generator): Euler–Maruyama, θ += σ√h ξ after each step (the
      `oscsim.nonideal` draws: all conditioning increments first, then the main ones step
      by step, each in the caller's sample order).
    """
    batch, n, n_c = theta0.shape[0], params.n, params.n_cond
    h = T / steps
    order, runs, drive_t = None, [], None
    if labels is not None and n_c > 0:
        if _drive_by_class(theta0.device):
            labels = _checked_labels(params, labels, batch)
            order, runs = _class_runs(labels)
            theta0 = theta0[order]
        else:
            drive_t = gather_drive(params, labels, batch).transpose(1, 2)  # (B, N_c, N)
    elif labels is not None:
        _checked_labels(params, labels, batch)

    noise_scale, generator = (phase_noise[0] * math.sqrt(h), phase_noise[1]) if phase_noise else (0.0, None)

    def draws(*shape: int) -> Tensor:  # in the caller's order, then the batch's
        x = torch.randn(shape, generator=generator, dtype=theta0.dtype, device=theta0.device)
        return x if order is None else x.index_select(-2, order)

    phi_noise = draws(steps, batch, n_c) if noise_scale > 0 and n_c else None
    if noise_scale > 0:  # reused buffers of the main block's draws
        raw = theta0.new_empty(batch, n)
        permuted = torch.empty_like(raw) if order is not None else None
    # the conditioning block alone, as `velocity` integrates it; sin φ, cos φ at each step
    phi = theta0[:, n:]
    phi_frames = [phi]
    phi_sincos = theta0.new_empty(steps, batch, 2, n_c)  # [s, b] = (sin φ_b, cos φ_b) at step s
    for s in range(steps):
        sin_phi = torch.sin(phi, out=phi_sincos[s, :, 0])
        cos_phi = torch.cos(phi, out=phi_sincos[s, :, 1])
        phi = phi + h * (params.nu + _coupling_sincos(sin_phi, cos_phi, params.C))
        if phi_noise is not None:
            phi = phi + noise_scale * phi_noise[s]
        phi_frames.append(phi)

    theta = theta0[:, :n].clone(memory_format=torch.contiguous_format)
    theta_frames = [theta.clone()] if record else None
    sincos = theta0.new_empty(batch, 2, n)  # rows sin θ_b, cos θ_b: the GEMM's input
    weighted = torch.empty_like(sincos)  # rows (K sin θ_b)ᵀ, (K cos θ_b)ᵀ, plus the drive
    sin, cos = sincos[:, 0], sincos[:, 1]
    w_sin, w_cos = weighted[:, 0], weighted[:, 1]
    # each class run's rows of W, its sin/cos φ per step (steps, 2m, N_c), and K̃[c]ᵀ
    class_terms = [
        (weighted[start:stop].view(-1, n), phi_sincos[:, start:stop].view(steps, -1, n_c), params.drive[c].T)
        for c, start, stop in runs
    ]
    for s in range(steps):
        torch.sin(theta, out=sin)
        torch.cos(theta, out=cos)
        torch.mm(sincos.view(2 * batch, n), params.K.T, out=weighted.view(2 * batch, n))
        for w_c, phi_c, drive_c in class_terms:
            w_c.addmm_(phi_c[s], drive_c)
        if drive_t is not None:
            weighted.baddbmm_(phi_sincos[s], drive_t)
        velocity_main = torch.addcmul(params.omega, cos, w_sin, out=w_sin).addcmul_(sin, w_cos, value=-1.0)
        theta.add_(velocity_main, alpha=h)
        if noise_scale > 0:
            torch.randn(raw.shape, generator=generator, dtype=raw.dtype, device=raw.device, out=raw)
            theta.add_(raw if order is None else torch.index_select(raw, 0, order, out=permuted), alpha=noise_scale)
        if theta_frames is not None:
            theta_frames.append(theta.clone())

    final = torch.cat((theta, phi), dim=1)
    trajectory = None
    if theta_frames is not None:
        trajectory = torch.cat((torch.stack(theta_frames), torch.stack(phi_frames)), dim=2)
    if order is not None:  # back to the caller's order
        final = torch.empty_like(final).index_copy_(0, order, final)
        if trajectory is not None:
            trajectory = torch.empty_like(trajectory).index_copy_(1, order, trajectory)
    if trajectory is None:
        return SimResult(theta=final, n=n)
    times = torch.linspace(0.0, T, steps + 1, dtype=theta0.dtype, device=theta0.device)
    return SimResult(theta=final, n=n, times=times, trajectory=trajectory)
