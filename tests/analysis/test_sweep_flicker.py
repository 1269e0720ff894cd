"""Sweeps against the time since the cells' trim (`factor = "since_trim_s"`, `flicker = ...`):
the ring flicker model's per-cell offset as the per-cell drift term (analysis.sweep, hw.flicker)."""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path

import pytest

from analysis.sweep import SweepError, load_spec
from hw.flicker import Device, FlickerError, RingFlicker, structure_function

ROOT = Path(__file__).resolve().parents[2]


def _flicker(tmp_path: Path) -> Path:
    m = RingFlicker(process="generic180", f0_hz=3.8e8, kvco_hz_per_v=1e9, cox_f_per_m2=8.6e-3, k_n_v2f=1e-25,
                    k_p_v2f=1e-25, n_stages=5, devices=(Device("bn", "nmos", 5e-7, 3.6e-7, 1, 4.6e8),),
                    k_source="test")
    m.save(tmp_path / "fl.json")
    return tmp_path / "fl.json"


def _spec(tmp_path: Path, extra: str = "", values: str = "[1.0, 3600.0]") -> Path:
    text = (f'kind = "one-factor"\ncalibration = "{ROOT}/docs/cells/calibration.json"\ntau_s = 2.4e-6\n'
            f'factor = "since_trim_s"\nvalues = {values}\nseeds = 1\nsamples = 100\n' + extra)
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return path


def test_the_terms_are_the_offset_in_model_units(tmp_path: Path) -> None:
    fl = _flicker(tmp_path)
    spec = load_spec(_spec(tmp_path, 'flicker = "fl.json"\n'))
    model = RingFlicker.load(fl)
    a = 4.6e8**2 * 1e-25 / (8.6e-3 * 5e-7 * 3.6e-7)
    assert model.psd_coefficient_hz2 == pytest.approx(a)
    for t in (1.0, 3600.0):
        sigma = math.sqrt(structure_function(a, t, 2.4e-6))
        assert spec.flicker_terms(t) == pytest.approx({"drift_mismatch_rad_per_t": 2 * math.pi * sigma * 2.4e-6})
    assert spec.to_dict()["flicker"] == "fl.json"


@pytest.mark.parametrize(("extra", "values", "message"), [
    ("", "[1.0]", r"factor \"since_trim_s\" needs 'flicker', the flicker\.json of un0hw cells flicker"),
    ('flicker = "fl.json"\n', "[0.0]", r"'values' entry 0\.0 for since_trim_s: must be a time > 0 s"),
    ('flicker = "fl.json"\n', '["1h"]', r"'values' entry '1h' for since_trim_s: must be a time > 0 s"),
    ('flicker = "nope.json"\n', "[1.0]", r"'flicker': .*nope\.json: no such flicker file"),
    ('flicker = "bad.json"\n', "[1.0]", r"'flicker': .*bad\.json: format must be 'un0hw-ring-flicker/1'"),
])
def test_bad_flicker_specs_name_the_file_and_key(tmp_path: Path, extra: str, values: str, message: str) -> None:
    _flicker(tmp_path)
    (tmp_path / "bad.json").write_text(json.dumps({"format": "something"}))
    with pytest.raises(SweepError, match=rf"^{tmp_path}/spec\.toml: {message}"):
        load_spec(_spec(tmp_path, extra, values))


def test_flicker_needs_its_factor_and_a_calibration(tmp_path: Path) -> None:
    _flicker(tmp_path)
    path = tmp_path / "other.toml"
    path.write_text('kind = "one-factor"\nfactor = "phase_noise_rad_per_sqrt_t"\nvalues = [0.1]\nflicker = "fl.json"\n')
    with pytest.raises(SweepError, match=r"'flicker' goes with factor = \"since_trim_s\""):
        load_spec(path)
    path.write_text('kind = "one-factor"\nfactor = "since_trim_s"\nvalues = [1.0]\nflicker = "fl.json"\n')
    with pytest.raises(SweepError, match=r"needs 'calibration'"):
        load_spec(path)


def test_a_flicker_file_round_trips_and_bad_ones_are_one_line(tmp_path: Path) -> None:
    fl = _flicker(tmp_path)
    assert RingFlicker.load(fl).to_dict() == json.loads(fl.read_text())
    doc = json.loads(fl.read_text())
    doc.pop("devices")
    (tmp_path / "x.json").write_text(json.dumps(doc))
    with pytest.raises(FlickerError, match=r"x\.json: missing or malformed field"):
        RingFlicker.load(tmp_path / "x.json")
    (tmp_path / "y.json").write_text(json.dumps({**json.loads(fl.read_text()), "f0_hz": -1}))
    with pytest.raises(FlickerError, match=r"y\.json: f0_hz must be a finite number > 0"):
        RingFlicker.load(tmp_path / "y.json")
    (tmp_path / "z.json").write_text("{not json")
    with pytest.raises(FlickerError, match=r"z\.json: not a readable flicker JSON"):
        RingFlicker.load(tmp_path / "z.json")


@pytest.mark.parametrize("name", ["flicker.toml", "flicker-ptm45.toml"])
def test_the_shipped_flicker_specs_load(name: str) -> None:
    spec = load_spec(Path(str(resources.files("analysis") / "specs" / name)))
    assert spec.factor == "since_trim_s" and spec.flicker and spec.tau_s > 0
    assert spec.flicker_terms(3600.0)["drift_mismatch_rad_per_t"] > 0
