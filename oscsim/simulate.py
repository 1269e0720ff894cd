"""`simulate`: integrate a batch of seeds of a conditional Kuramoto system to time T.

The one entry point; it picks the integrator and imports them, never the other way:

- Euler with grad mode off (generation, evaluation): the one no-grad Euler kernel
  (`oscsim.euler`), as one shared chip with no noise;
- Euler, Heun, RK4 otherwise (training: autograd flows through): `rk_step` over `velocity`;
- 'adaptive': the scipy reference (`oscsim.reference`);
- with non-idealities (`NonIdeal`): static terms only on one chip, the realised chip
  (`oscsim.realize`) through the above; with phase or read noise, or several chips,
  Euler–Maruyama over the chip axis (`oscsim.sde`); then the readout (`read_phases`).

Every path takes the general coupler of `KuramotoParams`' harmonics (`oscsim.harmonics`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from oscsim.checks import check_labels, check_run
from oscsim.coupling import gather_drive, gather_drive_harmonics, velocity
from oscsim.errors import OscsimError
from oscsim.euler import euler_no_grad
from oscsim.links import Links
from oscsim.nonideal import NonIdeal, read_phases
from oscsim.params import KuramotoParams
from oscsim.realize import ChipSystems
from oscsim.reference import solve_adaptive
from oscsim.results import SimResult
from oscsim.sde import simulate_sde
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
    gemm_dtype: torch.dtype | None = None,
    links: Links | None = None,
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
        gemm_dtype: None (default), or torch.bfloat16: an opt-in bf16 main coupling GEMM
            (`oscsim.euler`), for float32 sine-coupled systems in the no-grad Euler kernel
            (generation, evaluation; ideal or noisy), on a device with bf16 units
            (`oscsim.euler.bf16_gemm_supported`). Its extra error is measured by
            `benchmarks/simulate.py` against float64 (docs/benchmarks.md); it is never the
            default.
        links: the couplings that hear their sender over an inter-tile link, delayed and
            jittered (`oscsim.links.Links`); the no-grad Euler kernel runs them.
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
    if gemm_dtype is not None:
        check_gemm_dtype(params, gemm_dtype, method=method)
    links = check_links(params, links, method=method, gemm_dtype=gemm_dtype)
    if nonideal is not None and not nonideal.ideal and steps > 0:
        return _simulate_nonideal(params, theta0, labels, steps=steps, T=float(T), method=method, record=record,
                                  nonideal=nonideal, gemm_dtype=gemm_dtype, links=links)
    n = params.n
    if steps == 0:  # every method: nothing to integrate
        gather_drive(params, labels, theta0.shape[0])  # labels are still checked
        if not record:
            return SimResult(theta=theta0, n=n)
        times = torch.zeros(1, dtype=theta0.dtype, device=theta0.device)
        return SimResult(theta=theta0, n=n, times=times, trajectory=theta0.unsqueeze(0))
    if method == "euler" and not torch.is_grad_enabled():
        # generation and evaluation: nothing will be differentiated
        if labels is not None:
            labels = check_labels(params, labels, theta0.shape[0])
        return euler_no_grad(ChipSystems.shared(params), theta0, labels, steps=steps, T=float(T), record=record,
                             gemm_dtype=gemm_dtype, links=links)
    drive = gather_drive(params, labels, theta0.shape[0])
    drive_h = gather_drive_harmonics(params, labels, theta0.shape[0]) if params.n_cond > 0 else None

    if method == "adaptive":
        t_eval = np.linspace(0.0, T, steps + 1) if record else None
        final, traj = solve_adaptive(params, theta0, drive, drive_h=drive_h, T=float(T), t_eval=t_eval)
        times = torch.from_numpy(t_eval).to(theta0) if record else None
        return SimResult(theta=final, n=n, times=times, trajectory=traj)

    tableau = TABLEAUS[method]
    h = float(T) / steps if steps else 0.0
    state = theta0
    frames = [state] if record else None

    def f(y: Tensor) -> Tensor:
        return velocity(params, y, drive, drive_h)

    for _ in range(steps):
        state = rk_step(f, state, h, tableau)
        if frames is not None:
            frames.append(state)
    return SimResult.of(state, n, T=float(T), trajectory=None if frames is None else torch.stack(frames))


def check_links(params: KuramotoParams, links: Links | None, *, method: str, gemm_dtype: torch.dtype | None
                ) -> Links | None:
    """`simulate`'s links: None where they change nothing; else checked against the system
    and the path (the no-grad Euler kernel, float32/64 GEMMs)."""
    if links is None:
        return None
    if not isinstance(links, Links):
        raise OscsimError(f"links must be an oscsim.links.Links or None, not {type(links).__name__}")
    if tuple(links.mask.shape) != (params.n, params.n):
        raise OscsimError(f"Links.mask is {tuple(links.mask.shape)}; this system has N = {params.n}")
    if not links.active:
        return None
    if method != "euler" or torch.is_grad_enabled():
        raise OscsimError("delayed or jittered links run in the no-grad Euler kernel (generation and evaluation): "
                          "use method 'euler' under torch.no_grad()")
    if gemm_dtype is not None:
        raise OscsimError("gemm_dtype and links do not combine (the links' GEMM runs in the state's dtype)")
    return links


def check_gemm_dtype(params: KuramotoParams, gemm_dtype: torch.dtype, *, method: str = "euler") -> None:
    """`simulate`'s gemm_dtype is one it takes, for a system, method and device it serves."""
    from oscsim.euler import GEMM_DTYPES, bf16_gemm_supported

    if gemm_dtype not in GEMM_DTYPES:
        raise OscsimError(f"gemm_dtype must be None or one of {', '.join(map(str, GEMM_DTYPES))}, not {gemm_dtype!r}")
    if method != "euler" or torch.is_grad_enabled():
        raise OscsimError("gemm_dtype applies to the no-grad Euler kernel (generation and evaluation): use method "
                          "'euler' under torch.no_grad()")
    if params.dtype != torch.float32:
        raise OscsimError(f"gemm_dtype {gemm_dtype} takes a float32 system, not {params.dtype}")
    if params.K_h is not None or params.drive_h is not None:
        raise OscsimError("gemm_dtype takes sine couplers only; this system has a general coupling function")
    if not bf16_gemm_supported(params.device):
        raise OscsimError(f"gemm_dtype {gemm_dtype}: {params.device} has no bf16 matrix units (a CPU needs "
                          "AVX512-BF16 or AMX, a GPU bf16 support); emulated it would be slower than float32")


def _simulate_nonideal(params: KuramotoParams, theta0: Tensor, labels: Tensor | None, *, steps: int, T: float,
                       method: str, record: bool, nonideal: NonIdeal,
                       gemm_dtype: torch.dtype | None = None, links: Links | None = None) -> SimResult:
    """`simulate` with non-idealities (arguments already checked by `simulate`).

    Static-only on one chip: the realised system goes through the ideal integrators (any
    method, autograd as usual). With dynamic noise or several chips: Euler–Maruyama.
    """
    batch = theta0.shape[0]
    if batch % nonideal.chips:
        raise OscsimError(f"batch {batch} does not split into NonIdeal.chips = {nonideal.chips} equal groups")
    generator = nonideal.sample_generator(theta0.device)
    if not nonideal.dynamic and nonideal.chips == 1:
        chip = nonideal.chip_params(params) if nonideal.static else params
        res = simulate(chip, theta0, labels, steps=steps, T=T, method=method, record=record, gemm_dtype=gemm_dtype,
                       links=links)
    elif method != "euler":
        raise OscsimError(f"with phase or read noise, or several chips, the integrator is Euler–Maruyama: "
                          f"method must be 'euler', not {method!r}")
    else:
        res = simulate_sde(params, theta0, labels, steps=steps, T=T, record=record, nonideal=nonideal,
                           generator=generator, gemm_dtype=gemm_dtype, links=links)
    if not nonideal.readout:
        return res
    main = read_phases(res.theta[:, : params.n], nonideal, generator)
    theta = torch.cat((main, res.theta[:, params.n:]), dim=1)
    return SimResult(theta=theta, n=res.n, times=res.times, trajectory=res.trajectory)
