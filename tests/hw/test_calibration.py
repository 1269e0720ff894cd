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
    assert cal.source == "default" and cal.format_version == 2 and not cal.sine_only
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
    def flat(t):
        return [x for row in t for x in flat(row)] if isinstance(t, tuple) else [t]

    for name in ("coupling_codes_rad_s", "fanout_receiver", "fanout_sender", "tuning_f_hz"):
        assert flat(getattr(default, name)) == pytest.approx(flat(getattr(measured, name)), rel=5e-3, abs=1e4), name


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
    doc["format_version"] = 3
    with pytest.raises(CalibrationError, match=r"format_version 3 is newer than this un0hw reads \(2\)$"):
        Calibration.load(_write(tmp_path, doc))


# --- format 2: the coupling function -------------------------------------------------------
from hw.calibration import FORMAT_2_FIELDS as V2_FIELDS


def test_a_version_1_file_loads_as_the_sine_only_approximation(cal, tmp_path):
    doc = cal.to_dict()
    doc["format_version"] = 1
    for name in V2_FIELDS:
        doc.pop(name)
    old = Calibration.load(_write(tmp_path, doc))
    assert old.sine_only and old.fanout_max == 1 and old == cal.as_sine_only()
    import numpy as np

    coef = old.coupling_coefficients(np.array([3, -7, 0]), 5, 2)
    assert coef[:, 1].tolist() == [old.coupler_k_rad_s[3], -old.coupler_k_rad_s[7], 0.0]
    assert not coef[:, [0, 2, 3, 4, 5, 6]].any()
    # the shipped measured file of format 1 history: still loads the same way
    with pytest.raises(CalibrationError, match="format_version 1 has no coupling-function tables; carrier_hz needs "):
        Calibration.from_dict({**doc, "carrier_hz": 3e8})


def test_coupling_coefficients_follow_the_tables_term_by_term(cal):
    import numpy as np

    rows = np.asarray(cal.coupling_codes_rad_s)
    recv, send = np.asarray(cal.fanout_receiver), np.asarray(cal.fanout_sender)
    for code in (-7, -1, 1, 4, 7):
        row = rows[code + cal.max_code if code < 0 else code + cal.max_code - 1]
        s = int(code < 0)
        got = cal.coupling_coefficients(np.array(code), 3, 5)
        assert got == pytest.approx(row * recv[s, 2] * send[s, 4])
        assert np.sign(got[1]) == np.sign(code)
    assert cal.coupling_coefficients(np.array(0), 2, 2).tolist() == [0.0] * 7
    # beyond the table: held at its last row, and counted
    assert cal.coupling_coefficients(np.array(4), 50, 1) == pytest.approx(cal.coupling_coefficients(np.array(4), 8, 1))
    assert cal.fanout_beyond(np.array([1, 8, 9, 50])) == 2
    with pytest.raises(CalibrationError, match="codes must be integers in -7..7"):
        cal.coupling_coefficients(np.array(8))
    # measured shape: a Sakaguchi lag of ~0.6 rad and an even part b0 > 0 for both signs
    for code in (-7, 7):
        b0, a1, b1 = cal.coupling_coefficients(np.array(code))[:3]
        assert b0 > 0.5 * abs(a1) and 0.4 < math.atan2(-b1 * np.sign(a1), abs(a1)) < 0.8


@pytest.mark.parametrize("change, match", [
    (lambda d: d.pop("fanout_sender"), "format_version 2 needs fanout_sender"),
    (lambda d: d.update(carrier_hz=1e12), "carrier_hz must lie inside the tuning range"),
    (lambda d: d["coupling_codes_rad_s"].pop(), "coupling_codes_rad_s must be 14 rows"),
    (lambda d: d["coupling_codes_rad_s"][0].__setitem__(1, 5e7), r"row of code -7 must be finite with a1 of the code's sign"),
    (lambda d: d["fanout_receiver"][0][0].__setitem__(1, 0.9), "factors at m = 1 must be 1"),
    (lambda d: d["fanout_receiver"][1].pop(), "fanout_receiver must be"),
    (lambda d: d["tuning_f_hz"].reverse(), "both increasing"),
])
def test_format_2_tables_are_checked(cal, tmp_path, change, match):
    doc = cal.to_dict()
    change(doc)
    with pytest.raises(CalibrationError, match=match):
        Calibration.load(_write(tmp_path, doc))


def test_the_coupler_kind_is_recorded_and_checked(cal, tmp_path):
    doc = cal.to_dict()
    assert doc["coupler"] == "resistive" and cal.reciprocal
    old = {k: v for k, v in doc.items() if k != "coupler"}  # files before the field: the resistor DAC
    assert Calibration.load(_write(tmp_path, old)).coupler == "resistive"
    gm = Calibration.load(_write(tmp_path, {**doc, "coupler": "gm"}))
    assert gm.coupler == "gm" and not gm.reciprocal
    with pytest.raises(CalibrationError, match=r"invalid calibration at coupler: 'capacitive' is not one of"):
        Calibration.load(_write(tmp_path, {**doc, "coupler": "capacitive"}))
    with pytest.raises(CalibrationError, match=r"^coupler must be one of resistive, gm, not 'x'$"):
        dataclasses.replace(cal, coupler="x")
