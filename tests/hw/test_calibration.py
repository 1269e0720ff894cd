"""hw.Calibration: round-trips through its JSON file, and refuses files that are wrong."""

from __future__ import annotations

import dataclasses
import json
import math
import re

import pytest

from hw import Calibration, CalibrationError


@pytest.fixture
def cal() -> Calibration:
    return Calibration.default()


def test_default_is_valid_and_says_where_its_figures_come_from(cal):
    assert cal.source == "default" and cal.format_version == 1
    assert cal.f_min_hz < cal.f0_hz < cal.f_max_hz
    assert len(cal.coupler_k_rad_s) == 2 ** (cal.coupler_bits - 1)
    assert "un0hw cells characterize" in cal.notes and "docs/cells/calibration.json" in cal.notes


def test_default_agrees_with_the_measured_file_it_quotes():
    # The default is the shipped measured run rounded to 3 significant figures.
    from pathlib import Path

    measured = Calibration.load(Path(__file__).parents[2] / "docs" / "cells" / "calibration.json")
    default = Calibration.default()
    assert measured.source == "measured"
    for name in ("f0_hz", "f_min_hz", "f_max_hz", "cell_energy_per_cycle_j", "bias_energy_per_cycle_j",
                 "coupler_energy_per_cycle_j", "period_jitter_s", "sigma_f0_rel", "sigma_k_rel",
                 "tuning_nonlinearity", "coupler_load_f_rel", "coupler_on_f_rel_per_bit"):
        assert getattr(default, name) == pytest.approx(getattr(measured, name), rel=5e-3), name
    assert default.coupler_k_rad_s == pytest.approx(measured.coupler_k_rad_s, rel=5e-3)


def test_save_load_round_trip_is_exact(cal, tmp_path):
    measured = dataclasses.replace(cal, source="measured", coupling_harmonics=(0.05, 0.01),
                                   ngspice_version="39", netlist_sha256="ab" * 32)
    path = tmp_path / "cal.json"
    measured.save(path)
    assert Calibration.load(path) == measured
    assert [p.name for p in tmp_path.iterdir()] == ["cal.json"]  # no temporary left behind
    assert json.loads(path.read_text())["format"] == "un0hw-calibration"


def test_derived_figures(cal):
    assert cal.k_max_rad_s == cal.coupler_k_rad_s[-1]
    assert cal.tuning_half_range_hz == min(cal.f0_hz - cal.f_min_hz, cal.f_max_hz - cal.f0_hz)
    # one period's phase error 2 pi f0 sigma_T, f0 independent periods per second
    per_period = 2 * math.pi * cal.f0_hz * cal.period_jitter_s
    assert cal.phase_noise_rad_per_sqrt_s == pytest.approx(per_period * math.sqrt(cal.f0_hz))
    assert cal.k_of_code(3) == cal.coupler_k_rad_s[3]
    assert cal.k_of_code(-3) == -cal.coupler_k_rad_s[3]
    assert cal.k_of_code(0) == 0.0
    with pytest.raises(CalibrationError, match=r"^code must be in -7\.\.7 \(4-bit sign-magnitude\), not 8$"):
        cal.k_of_code(8)
    with pytest.raises(CalibrationError, match=r"^code must be an integer, not 1\.5$"):
        cal.k_of_code(1.5)


def _write(tmp_path, doc):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    return path


def test_schema_rejects_a_missing_field_and_a_wrong_type(cal, tmp_path):
    doc = cal.to_dict()
    del doc["f0_hz"]
    path = _write(tmp_path, doc)
    with pytest.raises(CalibrationError, match=rf"^{re.escape(str(path))}: invalid calibration at top level: "
                                               r"'f0_hz' is a required property$"):
        Calibration.load(path)
    doc = cal.to_dict()
    doc["coupler_k_rad_s"][2] = "fast"
    with pytest.raises(CalibrationError, match=r": invalid calibration at coupler_k_rad_s/2: 'fast' is not of type"):
        Calibration.load(_write(tmp_path, doc))
    doc = cal.to_dict()
    doc["vdd_v"] = -1.8
    with pytest.raises(CalibrationError, match=r"at vdd_v: -1\.8 is less than or equal to the minimum of 0$"):
        Calibration.load(_write(tmp_path, doc))


def test_non_monotone_k_table_is_rejected(cal, tmp_path):
    doc = cal.to_dict()
    doc["coupler_k_rad_s"][5] = doc["coupler_k_rad_s"][4] * 0.5
    path = _write(tmp_path, doc)
    with pytest.raises(CalibrationError, match=rf"^{re.escape(str(path))}: coupler_k_rad_s must be "
                                               r"non-decreasing in the code; it falls at code 5"):
        Calibration.load(path)


def test_table_length_must_match_the_bits(cal):
    with pytest.raises(CalibrationError, match=r"^coupler_k_rad_s must hold 16 values"):
        dataclasses.replace(cal, coupler_bits=5)


def test_f0_outside_the_tuning_range_is_rejected(cal):
    with pytest.raises(CalibrationError, match=r"^need f_min_hz < f0_hz < f_max_hz"):
        dataclasses.replace(cal, f0_hz=2 * cal.f_max_hz)


def test_not_json_and_newer_version_and_missing_file(cal, tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text("{not json")
    with pytest.raises(CalibrationError, match=r"x\.json: not valid JSON"):
        Calibration.load(bad)
    with pytest.raises(CalibrationError, match=r"nope\.json: no such calibration file$"):
        Calibration.load(tmp_path / "nope.json")
    doc = cal.to_dict()
    doc["format_version"] = 2
    with pytest.raises(CalibrationError, match=r"format_version 2 is newer than this un0hw reads \(1\)$"):
        Calibration.load(_write(tmp_path, doc))
