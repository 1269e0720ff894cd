"""`un0hw cells characterize --process` (and --coupler): a bad name is one line and exit code 2,
refused before ngspice starts or any file is written."""

from __future__ import annotations

import pytest

from un0hw.cli import main


@pytest.mark.parametrize("value", ["ptm32", "GENERIC180", ""])
def test_bad_process_is_one_line_and_exit_code_2(capsys, tmp_path, value):
    rc = main(["cells", "characterize", "-o", str(tmp_path / "c.json"), "--process", value])
    assert rc == 2
    assert capsys.readouterr().err == f"un0hw: error: --process must be one of generic180, ptm45, not {value!r}\n"
    assert not (tmp_path / "c.json").exists()


def test_process_default_is_generic180():
    from un0hw.cli import build_parser

    args = build_parser().parse_args(["cells", "characterize", "-o", "c.json"])
    assert args.process == "generic180"


@pytest.mark.parametrize("value", ["capacitive", "GM", ""])
def test_bad_coupler_is_one_line_and_exit_code_2(capsys, tmp_path, value):
    rc = main(["cells", "characterize", "-o", str(tmp_path / "c.json"), "--coupler", value])
    assert rc == 2
    assert capsys.readouterr().err == f"un0hw: error: --coupler must be one of resistive, gm, not {value!r}\n"
    assert not (tmp_path / "c.json").exists()


def test_coupler_default_is_resistive_and_the_names_match_the_cells():
    from hw.characterization import COUPLERS
    from un0hw.cli import build_parser

    assert build_parser().parse_args(["cells", "characterize", "-o", "c.json"]).coupler == "resistive"
    assert COUPLERS == ("resistive", "gm")
