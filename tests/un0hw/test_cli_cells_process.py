"""`un0hw cells characterize --process` (and --coupler): a bad name is one line and exit code 2,
refused before ngspice starts or any file is written."""

from __future__ import annotations

import pytest

from un0hw.cli import main


@pytest.mark.parametrize(("option", "value", "names"), [
    *[("--process", v, "generic180, ptm45") for v in ("ptm32", "GENERIC180", "")],
    *[("--coupler", v, "resistive, gm") for v in ("capacitive", "GM", "")],
])
def test_a_bad_process_or_coupler_is_one_line_and_exit_code_2(capsys, tmp_path, option, value, names):
    rc = main(["cells", "characterize", "-o", str(tmp_path / "c.json"), option, value])
    assert rc == 2
    assert capsys.readouterr().err == f"un0hw: error: {option} must be one of {names}, not {value!r}\n"
    assert not (tmp_path / "c.json").exists()


def test_process_default_is_generic180():
    from un0hw.cli import build_parser

    args = build_parser().parse_args(["cells", "characterize", "-o", "c.json"])
    assert args.process == "generic180"


def test_coupler_default_is_resistive_and_the_names_match_the_cells():
    from hw.characterization import COUPLERS
    from un0hw.cli import build_parser

    assert build_parser().parse_args(["cells", "characterize", "-o", "c.json"]).coupler == "resistive"
    assert COUPLERS == ("resistive", "gm")


@pytest.mark.parametrize(("args", "message"), [
    (["--gm-tap", "4"], "--gm-tap goes with --coupler gm (the resistor DAC joins the p0 nodes), not 4"),
    (["--coupler", "gm", "--gm-tap", "5"], "--gm-tap must be a ring stage 0..4, not 5"),
    (["--coupler", "gm", "--gm-tap", "-1"], "--gm-tap must be a ring stage 0..4, not -1"),
])
def test_a_bad_gm_tap_is_one_line_and_exit_code_2(capsys, tmp_path, args, message):
    assert main(["cells", "characterize", "-o", str(tmp_path / "c.json"), *args]) == 2
    assert capsys.readouterr().err == f"un0hw: error: {message}\n"
    assert not (tmp_path / "c.json").exists()
