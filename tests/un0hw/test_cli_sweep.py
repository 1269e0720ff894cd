"""`un0hw sweep`: a run end to end, and bad specs as one line with exit code 2."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from un0hw.cli import main


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_sweep_command_writes_the_report(tmp_path: Path, capsys) -> None:
    spec = tmp_path / "s.toml"
    spec.write_text('kind = "one-factor"\nfactor = "readout_bits"\nvalues = [3]\nseeds = 1\nsamples = 60\n')
    assert main(["sweep", str(spec), "-o", str(tmp_path / "out"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "| ideal |" in out and "| 3 |" in out and "wrote" in out
    with open(tmp_path / "out" / "points.csv") as fh:
        assert [r["value"] for r in csv.DictReader(fh)] == ["ideal", "3"]


@pytest.mark.parametrize(("text", "expect"), [
    ('kind = "one-factor"\nfactor = "coupling_bits"\nvalues = [99]\n', "'values' entry 99 for coupling_bits"),
    ('kind = "sideways"\n', "'kind' must be one of one-factor, monte-carlo"),
    ("kind = \n", "not valid TOML"),
])
def test_bad_spec_is_one_line_and_nothing_is_written(tmp_path: Path, capsys, text: str, expect: str) -> None:
    spec = tmp_path / "bad.toml"
    spec.write_text(text)
    assert main(["sweep", str(spec), "-o", str(tmp_path / "out")]) == 2
    line = _error_line(capsys)
    assert line.startswith(f"un0hw: error: {spec}") and expect in line
    assert not (tmp_path / "out").exists()


def test_missing_spec_and_bad_jobs(tmp_path: Path, capsys) -> None:
    assert main(["sweep", str(tmp_path / "nope.toml"), "-o", str(tmp_path / "out")]) == 2
    assert _error_line(capsys) == f"un0hw: error: SPEC {tmp_path / 'nope.toml'}: no such file"
    (tmp_path / "spec.toml").write_text("")  # paths are checked first: give an existing spec
    assert main(["sweep", str(tmp_path / "spec.toml"), "-o", str(tmp_path / "out"), "--jobs", "0"]) == 2
    assert "--jobs must be >= 1" in _error_line(capsys)
