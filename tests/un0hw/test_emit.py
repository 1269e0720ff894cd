"""`un0hw emit --spice`: the whole compiled array as a netlist folder, and the inputs it refuses
(one line, exit code 2, refused before any computing, nothing left behind)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from un0hw.cli import main

pytest.importorskip("PySpice")

UNWRITABLE = "/proc/un0hw-no/such"  # a place no process can create files in, root included


def snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def refused(capsys, *argv) -> tuple[str, float]:
    t0 = time.perf_counter()
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    errors = [ln for ln in err.splitlines() if ln.startswith("un0hw: error:")]
    assert rc == 2, f"rc {rc}: {err}"
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0], time.perf_counter() - t0


@pytest.fixture(scope="module")
def ir_dir(tmp_path_factory) -> Path:
    """8 main cells in 2 tiles of 4, 2 conditioning cells, saved as an IR folder."""
    import compiler
    import models
    from hw.calibration import Calibration

    config = models.PUBLISHED["digits-n64"].replace(n=8, n_cond=2)
    ir = compiler.compile(models.Un0.init(config, seed=0), compiler.CompileOptions(bits=4, tile=4),
                          calibration=Calibration.default())
    return ir.save(tmp_path_factory.mktemp("ir") / "ir")


@pytest.fixture
def a_file(tmp_path) -> Path:
    path = tmp_path / "plain.txt"
    path.write_text("not a folder\n")
    return path


def test_emit_spice_writes_the_library_the_top_and_the_summary(capsys, tmp_path, ir_dir) -> None:
    out = tmp_path / "net"
    rc = main(["emit", str(ir_dir), "--spice", "--tau", "coupler-range", "--label", "3", "-o", str(out)])
    text = capsys.readouterr().out
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == ["array.cir", "array.lib", "array_netlist.json"]
    doc = json.loads((out / "array_netlist.json").read_text())
    assert doc["files"] == ["array.lib", "array.cir"] and doc["label"] == 3 and doc["tau_rule"] == "given"
    s = doc["summary"]
    assert [t["cells"] for t in s["tiles"]] == [4, 4] and s["conditioning_cells"] == 2
    lib, top = (out / "array.lib").read_text(), (out / "array.cir").read_text()
    for t, tile in enumerate(s["tiles"]):
        body = lib.split(f".subckt un0_tile{t} ")[1].split(".ends")[0]
        assert len(re.findall(r"^Xk\d+_\d+ ", body, re.M)) == tile["couplers"]
    assert len(re.findall(r"^Xl\d+_\d+ ", top, re.M)) == s["inter_tile_links"] > 0
    assert len(re.findall(r"^Xd\d+_\d+ ", top, re.M)) == s["drive_couplers"] > 0
    assert f"{s['cells']} cells in 2 tiles" in text and "class 3" in text
    assert not list(out.glob("tile*"))  # --spice alone writes no RTL image


def test_the_irs_own_tau_is_the_default_and_a_note_says_when_no_coupler_is_left(capsys, tmp_path, ir_dir) -> None:
    assert main(["emit", str(ir_dir), "--spice", "-o", str(tmp_path / "a")]) == 0
    doc = json.loads((tmp_path / "a" / "array_netlist.json").read_text())
    assert doc["tau_rule"] == "the IR's tau" and doc["label"] == 0 and doc["tau_s"] == doc["source"]["ir_tau_s"]
    capsys.readouterr()
    # a long tau puts every coupling below half the LSB: no coupler instances, and the note says why
    assert main(["emit", str(ir_dir), "--spice", "--tau", "1e-3", "-o", str(tmp_path / "b")]) == 0
    text = capsys.readouterr().out
    s = json.loads((tmp_path / "b" / "array_netlist.json").read_text())["summary"]
    assert s["couplers_inside_tiles"] == s["inter_tile_links"] == 0
    assert "got code 0 (no instances); --tau coupler-range" in text
    assert not re.search(r"^X[kld]", (tmp_path / "b" / "array.cir").read_text(), re.M)


def test_emit_spice_and_the_rtl_tile_together(capsys, tmp_path, ir_dir) -> None:
    out = tmp_path / "both"
    assert main(["emit", str(ir_dir), "--spice", "--rtl-tile", "1", "-o", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["array.cir", "array.lib", "array_netlist.json", "tile1.bus.json", "tile1.json", "tile1.memh"]
    capsys.readouterr()


@pytest.mark.parametrize("argv, named", [
    (["emit", "{tmp}/missing", "--spice", "-o", "{tmp}/net"], "{tmp}/missing"),
    (["emit", "{a_file}", "--spice", "-o", "{tmp}/net"], "{a_file}"),
    (["emit", "{tmp}/empty", "--spice", "-o", "{tmp}/net"], "{tmp}/empty"),
])
def test_inputs_that_are_not_an_ir_are_refused(capsys, tmp_path, a_file, argv, named) -> None:
    (tmp_path / "empty").mkdir()
    sub = {"tmp": tmp_path, "a_file": a_file}
    before = snapshot(tmp_path)
    line, seconds = refused(capsys, *[a.format(**sub) for a in argv])
    assert named.format(**sub) in line, line
    assert seconds < 15
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("argv", [
    ["emit", "{ir}", "--spice", "-o", "{a_file}"],
    ["emit", "{ir}", "--spice", "-o", "{a_file}/net"],
    ["emit", "{ir}", "--spice", "-o", UNWRITABLE],
])
def test_outputs_that_cannot_be_written_are_refused_at_once(capsys, tmp_path, ir_dir, a_file, argv) -> None:
    before = snapshot(tmp_path)
    line, seconds = refused(capsys, *[a.format(ir=ir_dir, a_file=a_file) for a in argv])
    assert line.startswith("un0hw: error: -o/--output "), line
    assert seconds < 15
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("extra, message", [
    (["--label", "10"], "--label 10: this model has classes 0..9"),
    (["--label", "-1"], "--label -1: this model has classes 0..9"),
    (["--tau", "0"], "--tau must be a positive number of seconds, 'ir' or 'coupler-range', not '0'"),
    (["--tau", "fast"], "--tau must be a positive number of seconds, 'ir' or 'coupler-range', not 'fast'"),
    (["--tau", "nan"], "--tau must be a positive number"),
    (["--rtl-tile", "x"], "--rtl-tile must be a tile index or 'all', not 'x'"),
    (["--rtl-tile", "9"], "--rtl-tile 9: this IR has tiles 0..1"),
])
def test_bad_values_are_one_line_and_leave_nothing(capsys, tmp_path, ir_dir, extra, message) -> None:
    line, _ = refused(capsys, "emit", ir_dir, "--spice", *extra, "-o", tmp_path / "net")
    assert message in line, line
    assert not (tmp_path / "net").exists()


def test_tau_without_spice_is_refused(capsys, tmp_path, ir_dir) -> None:
    line, _ = refused(capsys, "emit", ir_dir, "--tau", "1e-8", "-o", tmp_path / "rtl")
    assert "--tau applies to --spice" in line, line
    assert not (tmp_path / "rtl").exists()


def test_an_ir_whose_checksum_fails_is_refused(capsys, tmp_path, ir_dir) -> None:
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(ir_dir, bad)
    with open(bad / "weights.safetensors", "r+b") as f:
        f.seek(-4, 2)
        f.write(b"\0\0\0\1")
    line, _ = refused(capsys, "emit", bad, "--spice", "-o", tmp_path / "net")
    assert "checksum" in line and str(bad) in line, line
    assert not (tmp_path / "net").exists()
