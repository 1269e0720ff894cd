"""The one no-grad Euler kernel (`oscsim.euler`): both drive layouts, the chip axis, the
diffusion inputs, against the autograd paths that integrate the same equations."""

from __future__ import annotations

import pytest
import torch

from oscsim import NonIdeal, euler, simulate
from oscsim.euler import Layout, euler_no_grad
from oscsim.realize import ChipSystems
from tests.oscsim.systems import random_labels, random_phases, random_system

# The kernel against the autograd paths (float64): the same arithmetic summed in another
# order (the drive beside the coupling GEMM, not inside it), so round-off of O(1) terms.
ROUND_OFF = 1e-12
# `_RUN_COST_BYTES` forces a drive layout on the CPU: 0 always runs, a huge value always
# the per-sample product
LAYOUTS = {"runs": 0, "per_sample": 2**62}


def system(n=12, n_cond=3, classes=4, batch=12, seed=0):
    params = random_system(n, n_cond, classes, seed)
    labels = random_labels(batch, classes, seed)
    assert bool((labels == -1).any()) and len(set(labels.tolist())) > 2
    return params, random_phases(batch, n + n_cond, seed), labels


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("chips", [1, 3])
def test_both_drive_layouts_equal_the_autograd_path(monkeypatch, layout: str, chips: int) -> None:
    """Noise off: the ideal path (one chip) and a chip axis of static terms (3 chips), with
    the drive by (chip, class) runs or per sample, land where autograd Euler lands."""
    monkeypatch.setattr(euler, "_RUN_COST_BYTES", LAYOUTS[layout])
    params, theta0, labels = system()
    ni = None if chips == 1 else NonIdeal(chips=chips, coupling_mismatch_sigma=0.2, freq_mismatch_rad_per_t=0.3)
    with torch.no_grad():
        fast = simulate(params, theta0, labels, steps=6, T=1.2, record=True, nonideal=ni)
    generic = simulate(params, theta0, labels, steps=6, T=1.2, record=True, nonideal=ni)
    torch.testing.assert_close(fast.trajectory, generic.trajectory, rtol=0, atol=ROUND_OFF)
    assert torch.equal(fast.trajectory[-1], fast.theta) and torch.equal(fast.trajectory[0], theta0)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("chips", [1, 2])
def test_diffusion_inputs_draw_what_the_autograd_path_draws(monkeypatch, layout: str, chips: int) -> None:
    """Phase and coupling read noise as the kernel's diffusion inputs: the same draws on the
    same samples as autograd Euler–Maruyama, whichever order the kernel sorts the batch in."""
    monkeypatch.setattr(euler, "_RUN_COST_BYTES", LAYOUTS[layout])
    params, theta0, labels = system()
    ni = NonIdeal(phase_noise_rad_per_sqrt_t=0.3, coupling_read_noise=0.2, coupling_mismatch_sigma=0.1, chips=chips,
                  sample_seed=4)
    with torch.no_grad():
        fast = simulate(params, theta0, labels, steps=5, record=True, nonideal=ni)
    generic = simulate(params, theta0, labels, steps=5, record=True, nonideal=ni)
    torch.testing.assert_close(fast.trajectory, generic.trajectory, rtol=0, atol=ROUND_OFF)


def test_runs_group_each_chips_classes_and_keep_the_chips_contiguous(monkeypatch) -> None:
    labels = torch.tensor([2, -1, 0, 2, 1, 1, -1, 0, 2, 2, 0, 1])
    cpu = torch.device("cpu")
    tiny = Layout.of(labels, batch=12, chips=3, classes=3, n_main=4, n_cond=2, itemsize=8, device=cpu)
    assert tiny.runs is None and tiny.order is None and torch.equal(tiny.labels, labels)  # gathered per sample
    monkeypatch.setattr(euler, "_RUN_COST_BYTES", LAYOUTS["runs"])
    layout = Layout.of(labels, batch=12, chips=3, classes=3, n_main=4, n_cond=2, itemsize=8, device=cpu)
    order = layout.order.tolist()
    assert sorted(order) == list(range(12))
    assert all(i // 4 == p // 4 for p, i in enumerate(order))  # each chip's group stays in place
    covered = []
    for chip, c, start, stop in layout.runs:
        assert all(labels[order[p]] == c and p // 4 == chip for p in range(start, stop))
        covered += range(start, stop)
    assert sorted(covered) == [p for p in range(12) if labels[order[p]] >= 0]  # dropped: no run


def test_the_ideal_path_is_the_kernel_with_one_shared_chip_and_no_noise() -> None:
    params, theta0, labels = system()
    with torch.no_grad():
        ideal = simulate(params, theta0, labels, steps=4, record=True)
        kernel = euler_no_grad(ChipSystems.shared(params), theta0, labels, steps=4, T=1.0, record=True)
    assert torch.equal(ideal.theta, kernel.theta) and torch.equal(ideal.trajectory, kernel.trajectory)
    assert torch.equal(ideal.times, kernel.times)
