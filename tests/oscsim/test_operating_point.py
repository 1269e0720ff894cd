"""The operating-point terms of `NonIdeal` (tuning gain, coupling gain, common-mode offset,
differential drift): each realises exactly what its definition says, a common-mode offset
through `NonIdeal` leaves a relative readout's images unchanged, the drift has its own
stream (turning it on changes no other draw), and bad values are refused."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import models
from oscsim import NonIdeal, OscsimError, simulate
from oscsim.realize import realize
from tests.oscsim.systems import random_labels, random_phases, random_system


def _params():
    return random_system(24, 4, 3, 0)


def test_each_term_realises_its_definition():
    p = _params()
    ni = NonIdeal(freq_mismatch_rad_per_t=0.1, tuning_gain=0.8, coupling_gain=1.3, common_freq_offset_rad_per_t=0.5,
                  drift_mismatch_rad_per_t=0.05, chip_seed=3)
    off = NonIdeal(freq_mismatch_rad_per_t=0.1, chip_seed=3)
    drift_only = NonIdeal(drift_mismatch_rad_per_t=0.05, chip_seed=3)
    got, trim, d = realize(p, ni).chip(0), realize(p, off).chip(0), realize(p, drift_only).chip(0)
    # ω̃ = g_t (ω + σ_ω z) + Δ_cm + σ_d z'   (z' the drift's own draws)
    torch.testing.assert_close(got.omega, 0.8 * trim.omega + 0.5 + (d.omega - p.omega), rtol=0, atol=1e-12)
    torch.testing.assert_close(got.nu, 0.8 * trim.nu + 0.5 + (d.nu - p.nu), rtol=0, atol=1e-12)
    for name in ("K", "drive", "C"):
        torch.testing.assert_close(getattr(got, name), 1.3 * getattr(p, name), rtol=1e-12, atol=0)


def test_the_drift_has_its_own_stream_and_scales_linearly():
    p = _params()
    a = realize(p, NonIdeal(drift_mismatch_rad_per_t=0.05, chip_seed=1)).chip(0).omega - p.omega
    b = realize(p, NonIdeal(drift_mismatch_rad_per_t=0.10, chip_seed=1)).chip(0).omega - p.omega
    torch.testing.assert_close(b, 2 * a, rtol=1e-6, atol=1e-9)
    # the static mismatch's draws are not the drift's, and do not move when the drift is on
    m = realize(p, NonIdeal(freq_mismatch_rad_per_t=0.05, chip_seed=1)).chip(0).omega - p.omega
    both = realize(p, NonIdeal(freq_mismatch_rad_per_t=0.05, drift_mismatch_rad_per_t=0.05,
                               chip_seed=1)).chip(0).omega - p.omega
    assert float((m - a).abs().max()) > 1e-3
    torch.testing.assert_close(both, m + a, rtol=0, atol=1e-6)


def test_a_common_mode_offset_through_nonideal_rotates_every_phase_by_delta_t():
    p = _params()
    theta0, labels = random_phases(6, 28, 0), random_labels(6, 3, 0)
    with torch.no_grad():
        base = simulate(p, theta0, labels, steps=10, T=1.0, nonideal=NonIdeal(freq_mismatch_rad_per_t=0.1)).theta
        moved = simulate(p, theta0, labels, steps=10, T=1.0,
                         nonideal=NonIdeal(freq_mismatch_rad_per_t=0.1, common_freq_offset_rad_per_t=0.7)).theta
    torch.testing.assert_close(moved - base, torch.full_like(base, 0.7), rtol=0, atol=1e-5)


def test_relative_readout_images_ignore_the_common_mode_but_not_the_drift():
    config = models.PUBLISHED["n1024"].replace(n=32)
    model = models.Un0.init(config, seed=0)
    labels = torch.arange(8) % config.num_classes
    theta0 = model.sample_theta0(8, generator=torch.Generator().manual_seed(1))
    base = model.generate(labels, theta0, nonideal=NonIdeal(coupling_gain=0.9))
    cm = model.generate(labels, theta0, nonideal=NonIdeal(coupling_gain=0.9, common_freq_offset_rad_per_t=2.5))
    torch.testing.assert_close(cm, base, rtol=0, atol=2e-5)
    drift = model.generate(labels, theta0, nonideal=NonIdeal(coupling_gain=0.9, drift_mismatch_rad_per_t=0.5))
    assert float((drift - base).abs().max()) > 1e-2


def test_the_trim_point_is_ideal_and_old_files_compare_the_same():
    ni = NonIdeal()
    assert ni.ideal and not ni.off_trim
    assert set(ni.to_dict()) >= {"phase_noise_rad_per_sqrt_t", "chips"}
    assert not set(ni.to_dict()) & {"tuning_gain", "coupling_gain", "common_freq_offset_rad_per_t",
                                    "drift_mismatch_rad_per_t"}
    hot = NonIdeal(tuning_gain=0.8, drift_mismatch_rad_per_t=0.1)
    assert hot.static and hot.off_trim and not hot.ideal
    assert NonIdeal.from_dict(hot.to_dict()) == hot
    assert dataclasses.replace(hot, tuning_gain=1.0, drift_mismatch_rad_per_t=0.0) == ni


@pytest.mark.parametrize(("field", "value"), [
    ("tuning_gain", 0.0), ("tuning_gain", -1.0), ("coupling_gain", float("inf")), ("coupling_gain", True),
    ("common_freq_offset_rad_per_t", float("nan")), ("common_freq_offset_rad_per_t", "1"),
    ("drift_mismatch_rad_per_t", -0.1),
])
def test_bad_operating_point_values_are_refused(field, value):
    with pytest.raises(OscsimError, match=field):
        NonIdeal(**{field: value})


def test_a_report_of_set_terms_reads_the_operating_point_too():
    # every reader of a NonIdeal dict compares against the field defaults, not against
    # NonIdeal().to_dict() (which leaves the operating-point terms out)
    from un0hw.cmd_finetune import _hardware_text

    assert _hardware_text(NonIdeal().to_dict()) == ""
    assert '"tuning_gain": 0.8' in _hardware_text(NonIdeal(tuning_gain=0.8).to_dict())
