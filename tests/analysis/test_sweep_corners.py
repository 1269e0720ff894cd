"""Operating-point sweeps (factor ``temperature_c`` / ``vdd_scale`` with measured ``corners``):
the spec is checked (corners and a calibration required, values inside the measured range),
and each point's NonIdeal carries the corner's terms in model units, by hand. No ngspice:
the corners file is written from known figures."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from analysis.sweep import SweepError, load_spec
from hw.corners import CornerResult, CornerSweep

F0 = 4.0e8


def _corner(t: float, v: float, shift: float, kvco: float, k: float, mc: tuple[float, ...]) -> CornerResult:
    return CornerResult(temp_c=t, vdd_scale=v, vdd_v=1.8 * v, card_valid=True, f0_hz=F0 * (1 + shift),
                        kvco_hz_per_v=kvco, ring_energy_per_cycle_j=2e-13, k_eff_rad_s=k, phase_lag_rad=0.0,
                        harmonics=(0.01, 0.01), coupler_energy_per_cycle_j=1e-14, mc_f0_hz=mc)


def corners_file(tmp_path: Path) -> Path:
    base = (F0 * 0.99, F0, F0 * 1.01)
    # at 87 °C: f0 -6 %, K_VCO x0.8, K x0.9; the three cells move by -6 % + (-300, 0, +300) ppm
    hot = tuple(f - 0.06 * F0 + d * F0 for f, d in zip(base, (-3e-4, 0.0, 3e-4), strict=True))
    sweep = CornerSweep(process="generic180", coupler="resistive", mc_rings=3, seed=0, wall_s=1.0, corners=(
        _corner(27, 1.0, 0.0, 1e9, 1e8, base), _corner(87, 1.0, -0.06, 0.8e9, 0.9e8, hot),
        _corner(27, 1.1, 0.01, 1.1e9, 1.05e8, tuple(f + 0.01 * F0 for f in base))))
    path = tmp_path / "corners.json"
    sweep.save(path)
    return path


def spec(tmp_path: Path, body: str) -> Path:
    corners_file(tmp_path)
    path = tmp_path / "spec.toml"
    path.write_text('kind = "one-factor"\nseeds = 1\nsamples = 100\ncalibration = "default"\ntau_s = 2e-6\n' + body)
    return path


def test_each_point_carries_its_corner_in_model_units(tmp_path):
    s = load_spec(spec(tmp_path, 'corners = "corners.json"\nfactor = "temperature_c"\nvalues = [27.0, 57.0, 87.0]\n'))
    from analysis.sweep import _Context  # the point's NonIdeal, as a run builds it

    ctx = _Context.__new__(_Context)
    ctx.spec = s
    w = 2 * math.pi * F0 * 2e-6
    hot = ctx.nonideal_for(87.0, 0)
    assert hot.tuning_gain == pytest.approx(0.8) and hot.coupling_gain == pytest.approx(0.9)
    assert hot.common_freq_offset_rad_per_t == pytest.approx(-0.06 * w)
    assert hot.drift_mismatch_rad_per_t == pytest.approx(3e-4 * w, rel=1e-6)  # sd of (-300, 0, 300) ppm, ddof 1
    half = ctx.nonideal_for(57.0, 0)  # linear between the measured corners
    assert half.tuning_gain == pytest.approx(0.9) and half.drift_mismatch_rad_per_t == pytest.approx(1.5e-4 * w)
    trim = ctx.nonideal_for(27.0, 0)
    assert not trim.off_trim


def test_a_supply_point_uses_the_supply_corners(tmp_path):
    s = load_spec(spec(tmp_path, 'corners = "corners.json"\nfactor = "vdd_scale"\nvalues = [1.0, 1.05]\n'))
    terms = s.corner_terms(1.05)
    assert terms["tuning_gain"] == pytest.approx(1.05) and terms["coupling_gain"] == pytest.approx(1.025)
    assert terms["drift_mismatch_rad_per_t"] == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize(("body", "message"), [
    ('factor = "temperature_c"\nvalues = [27.0]\n', "needs 'corners'"),
    ('corners = "corners.json"\nfactor = "temperature_c"\nvalues = [100.0]\n', "outside the measured corners"),
    ('corners = "corners.json"\nfactor = "vdd_scale"\nvalues = [0.9]\n', "outside the measured corners"),
    ('corners = "corners.json"\nfactor = "temperature_c"\nvalues = ["hot"]\n', "must be a number"),
    ('corners = "missing.json"\nfactor = "temperature_c"\nvalues = [27.0]\n', "cannot read a corner sweep"),
    ('corners = "corners.json"\nfactor = "coupling_bits"\nvalues = [4]\n', "'corners' goes with an operating factor"),
])
def test_a_bad_operating_sweep_is_one_line_naming_the_file(tmp_path, body, message):
    path = spec(tmp_path, body)
    with pytest.raises(SweepError, match=message) as info:
        load_spec(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_an_operating_factor_needs_a_calibration(tmp_path):
    corners_file(tmp_path)
    path = tmp_path / "spec.toml"
    path.write_text('kind = "one-factor"\ncorners = "corners.json"\nfactor = "temperature_c"\nvalues = [27.0]\n')
    with pytest.raises(SweepError, match="needs 'calibration'"):
        load_spec(path)


@pytest.mark.parametrize("name", ["temperature.toml", "temperature-generic180-gm.toml",
                                  "temperature-ptm45-resistive.toml", "supply.toml"])
def test_the_shipped_operating_specs_load(name):
    from importlib import resources

    path = resources.files("analysis") / "specs" / name
    s = load_spec(Path(str(path)))
    assert s.factor in ("temperature_c", "vdd_scale") and s.corners
