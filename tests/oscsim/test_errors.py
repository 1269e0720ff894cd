"""Bad input raises OscsimError (a ValueError) naming what was expected and what arrived."""

from __future__ import annotations

import math

import pytest
import torch

from oscsim import KuramotoParams, OscsimError, simulate
from tests.oscsim.systems import F64, random_phases, random_system

# N = 3, N_c = 2, 4 classes; theta0 is (2, 5)
PARAMS = random_system(3, 2, 4, seed=0)
THETA0 = random_phases(2, 5, seed=0)


def case(name: str, pattern: str, **kwargs) -> pytest.param:
    return pytest.param(kwargs, pattern, id=name)


def fields(**changes) -> dict[str, torch.Tensor]:
    base = dict(K=PARAMS.K, omega=PARAMS.omega, drive=PARAMS.drive, C=PARAMS.C, nu=PARAMS.nu)
    return {**base, **changes}


def test_oscsim_error_is_a_value_error() -> None:
    assert issubclass(OscsimError, ValueError)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        case("theta0-width", r"^theta0 must be \(B, N \+ N_c\) = \(B, 5\), not \(2, 4\)$", theta0=THETA0[:, :4]),
        case("theta0-1d", r"^theta0 must be \(B, N \+ N_c\) = \(B, 5\), not \(5,\)$", theta0=THETA0[0]),
        case("theta0-list", r"^theta0 must be \(B, N \+ N_c\) = \(B, 5\), not list$", theta0=THETA0.tolist()),
        case("theta0-dtype", r"^theta0 is torch\.float32 on cpu, params are torch\.float64 on cpu; move one to match$", theta0=THETA0.float()),
        case("theta0-device", r"^theta0 is torch\.float64 on meta, params are torch\.float64 on cpu; move one to match$", theta0=THETA0.to("meta")),
        case("method-unknown", r"^method must be one of euler, heun, rk4, adaptive; got 'rk45'$", method="rk45"),
        case("method-case", r"^method must be one of euler, heun, rk4, adaptive; got 'Euler'$", method="Euler"),
        case("steps-negative", r"^steps must be a non-negative int, not -1$", steps=-1),
        case("steps-float", r"^steps must be a non-negative int, not 2\.0$", steps=2.0),
        case("steps-bool", r"^steps must be a non-negative int, not True$", steps=True),
        case("T-nan", r"^T must be a positive finite number, not nan$", T=math.nan),
        case("T-inf", r"^T must be a positive finite number, not inf$", T=math.inf),
        case("T-zero", r"^T must be a positive finite number, not 0\.0$", T=0.0),
        case("T-negative", r"^T must be a positive finite number, not -1$", T=-1),
        case("T-str", r"^T must be a positive finite number, not '1'$", T="1"),
        case("T-bool", r"^T must be a positive finite number, not True$", T=True),
        case("labels-too-high", r"^labels must lie in \[0, 4\) \(or −1 for no class\); got values in \[0, 4\]$", labels=torch.tensor([0, 4])),
        case("labels-below-minus-one", r"^labels must lie in \[0, 4\) \(or −1 for no class\); got values in \[-2, 1\]$", labels=torch.tensor([-2, 1])),
        case("labels-length", r"^labels must have shape \(2,\), one per seed, not \(3,\)$", labels=torch.tensor([0, 1, 2])),
        case("labels-2d", r"^labels must have shape \(2,\), one per seed, not \(2, 1\)$", labels=torch.tensor([[0], [1]])),
        case("labels-float", r"^labels must be an integer tensor of shape \(2,\), not torch\.float32$", labels=torch.tensor([0.0, 1.0])),
        case("labels-bool", r"^labels must be an integer tensor of shape \(2,\), not torch\.bool$", labels=torch.tensor([True, False])),
        case("labels-list", r"^labels must be an integer tensor of shape \(2,\), not list$", labels=[0, 1]),
    ],
)
@pytest.mark.parametrize("grad", [True, False], ids=["grad", "no_grad"])  # no grad: Euler's own path
def test_simulate_rejects(kwargs: dict, pattern: str, grad: bool) -> None:
    call = {"theta0": THETA0, "labels": None, "steps": 2, **kwargs}
    with torch.set_grad_enabled(grad), pytest.raises(OscsimError, match=pattern):
        simulate(PARAMS, **call)


@pytest.mark.parametrize(
    ("changes", "pattern"),
    [
        case("K-not-square", r"^KuramotoParams\.K must be square \(N, N\), not \(3, 4\)$", K=torch.zeros(3, 4, dtype=F64)),
        case("K-1d", r"^KuramotoParams\.K must be square \(N, N\), not \(3,\)$", K=torch.zeros(3, dtype=F64)),
        case("omega-length", r"^KuramotoParams\.omega must have shape \(3,\), not \(4,\)$", omega=torch.zeros(4, dtype=F64)),
        case("omega-2d", r"^KuramotoParams\.omega must have shape \(3,\), not \(1, 3\)$", omega=torch.zeros(1, 3, dtype=F64)),
        case("drive-N", r"^KuramotoParams\.drive must be \(classes, N=3, N_c\), not \(4, 2, 3\)$", drive=torch.zeros(4, 2, 3, dtype=F64)),
        case("drive-2d", r"^KuramotoParams\.drive must be \(classes, N=3, N_c\), not \(3, 2\)$", drive=torch.zeros(3, 2, dtype=F64)),
        case("C-shape", r"^KuramotoParams\.C must have shape \(2, 2\), not \(3, 3\)$", C=torch.zeros(3, 3, dtype=F64)),
        case("nu-shape", r"^KuramotoParams\.nu must have shape \(2,\), not \(3,\)$", nu=torch.zeros(3, dtype=F64)),
        case("nu-dtype", r"^KuramotoParams\.nu is torch\.float32 on cpu; all fields must match K \(torch\.float64 on cpu\)$", nu=torch.zeros(2)),
        case("C-device", r"^KuramotoParams\.C is torch\.float64 on meta; all fields must match K \(torch\.float64 on cpu\)$", C=PARAMS.C.to("meta")),
        case("omega-int", r"^KuramotoParams\.omega must be floating point, not torch\.int64$", omega=torch.zeros(3, dtype=torch.int64)),
        case("K-list", r"^KuramotoParams\.K must be a torch\.Tensor, not list$", K=[[0.0]]),
    ],
)
def test_params_reject(changes: dict, pattern: str) -> None:
    with pytest.raises(OscsimError, match=pattern):
        KuramotoParams(**fields(**changes))


def test_valid_inputs_pass() -> None:
    """The cases above fail for the stated reason only: the unchanged inputs work."""
    KuramotoParams(**fields())
    simulate(PARAMS, THETA0, torch.tensor([-1, 3]), steps=0, T=1)
    simulate(PARAMS, THETA0, torch.tensor([0, 3], dtype=torch.int32), steps=2, T=0.5, method="heun")
