"""`un0hw cells flicker`: bad input is one line and exit code 2 with nothing written; a run
writes the model and its figures follow from it."""

from __future__ import annotations

import json

import pytest

from hw.spice import run
from un0hw.cli import main


@pytest.mark.parametrize(("args", "message"), [
    (["--process", "ptm32"], "--process must be one of generic180, ptm45, not 'ptm32'"),
    (["--since-trim", "60,x"], "--since-trim must be a comma-separated list of numbers, not '60,x'"),
    (["--since-trim", "0,60"], "--since-trim must be times > 0 s, not '0,60'"),
    (["--inference-s", "0"], "--inference-s must be > 0, not 0.0"),
])
def test_bad_flicker_options_are_one_line_and_exit_code_2(capsys, tmp_path, args, message):
    out = tmp_path / "flicker.json"
    assert main(["cells", "flicker", "-o", str(out), *args]) == 2
    assert capsys.readouterr().err == f"un0hw: error: {message}\n"
    assert not out.exists()


@pytest.mark.skipif(run.unavailable_reason() is not None, reason="ngspice-shared unavailable")
@pytest.mark.slow
def test_a_flicker_run_writes_the_model_and_prints_its_offsets(capsys, tmp_path):
    from hw.flicker import structure_function

    out = tmp_path / "fl.json"
    assert main(["cells", "flicker", "-o", str(out), "--since-trim", "1,3600"]) == 0
    doc = json.loads(out.read_text())
    assert doc["format"] == "un0hw-ring-flicker/1" and doc["process"] == "generic180"
    assert {d["name"] for d in doc["devices"]} == {"bn", "bp", "sn0", "sp0", "in0", "ip0"}
    a = doc["psd_coefficient_hz2"]
    assert a == pytest.approx(sum(d["count"] * d["gain_hz_per_v"] ** 2 * 1e-25 / (doc["cox_f_per_m2"] * d["w_m"] * d["l_m"])
                                  for d in doc["devices"]))
    sigma = structure_function(a, 3600.0, 2.4e-6) ** 0.5
    assert f"{sigma / 1e3:8.2f} kHz" in capsys.readouterr().out
