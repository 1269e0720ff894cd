"""`un0hw cells corners`: bad input is one line and exit code 2, before ngspice starts and
with nothing written."""

from __future__ import annotations

import pytest

from un0hw.cli import main


@pytest.mark.parametrize(("args", "message"), [
    (["--temps", "27,abc"], "--temps must be a comma-separated list of numbers, not '27,abc'"),
    (["--temps", ","], "--temps must name at least one value"),
    (["--temps", "27,200"], "--temps: temperature must be a number in [-55, 150] °C, not 200.0"),
    (["--vdd", "1.0,2"], "--vdd: supply factor must be a number in [0.7, 1.3], not 2.0"),
    (["--mc-rings", "1"], "--mc-rings must be >= 2 (the differential drift is a spread), not 1"),
    (["--process", "ptm32"], "--process must be one of generic180, ptm45, not 'ptm32'"),
    (["--coupler", "cap"], "--coupler must be one of resistive, gm, not 'cap'"),
    (["--workers", "0"], "--workers must be >= 1, not 0"),
])
def test_bad_corner_options_are_one_line_and_exit_code_2(capsys, tmp_path, args, message):
    out = tmp_path / "corners"
    rc = main(["cells", "corners", "-o", str(out), *args])
    assert rc == 2
    assert capsys.readouterr().err == f"un0hw: error: {message}\n"
    assert not out.exists()


def test_corner_defaults_are_the_issue_corners():
    from un0hw.cli import build_parser

    args = build_parser().parse_args(["cells", "corners", "-o", "c"])
    assert (args.temps, args.vdd, args.process, args.coupler) == ("-40,0,27,85,125", "0.9,1.0,1.1", "generic180",
                                                                 "resistive")
