"""`un0hw compile`, `un0hw inspect`, and the other commands on a compiled IR folder."""

from __future__ import annotations

import json

import pytest

from un0hw.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_compile_inspect_simulate_sample(capsys, tmp_path) -> None:
    out = tmp_path / "ir"
    rc, text, _ = run(capsys, "compile", "-o", str(out), "--bits", "6", "--tile", "128", "--target",
                      "sparse-routed", "--links", "64")
    assert rc == 0 and (out / "array.json").is_file() and (out / "weights.safetensors").is_file()
    assert "sparse-routed" in text and "set by weak_coupling" in text and "passes: prune" in text
    assert "mm point-to-point" in text and "; broadcast-bus" in text  # both distributions' wire lengths
    rc, text, _ = run(capsys, "inspect", str(out))
    assert rc == 0 and "τ =" in text and "inter-tile links" in text and "metis" in text
    rc, text, _ = run(capsys, "inspect", str(out), "--json")
    doc = json.loads(text)
    assert doc["options"]["bits"] == 6 and doc["tiles"][0]["oscillators"] == 128
    rc, text, _ = run(capsys, "simulate", str(out), "-n", "2")
    assert rc == 0 and "20 seeds" in text
    rc, text, _ = run(capsys, "sample", str(out), "-n", "2", "-o", str(tmp_path / "grid.png"))
    assert rc == 0 and (tmp_path / "grid.png").is_file()
    rc, text, _ = run(capsys, "emit", str(out), "--rtl-tile", "1", "--label", "3", "-o", str(tmp_path / "rtl"))
    assert rc == 0 and (tmp_path / "rtl" / "tile1.memh").is_file() and "136 cells" in text
    rc, _, err = run(capsys, "emit", str(out), "--rtl-tile", "9", "-o", str(tmp_path / "rtl"))
    assert rc == 2 and "tiles 0..3" in err


@pytest.mark.parametrize("args, message", [
    (["--tile", "1"], "--tile must be an integer >= 2"),
    (["--bits", "17"], "--bits must be an integer in 1..16"),
    (["--bits", "0"], "--bits must be an integer in 1..16"),
    (["--links", "-1"], "--links must be an integer >= 0"),
    (["--target", "mesh"], "--target must be one of dense-tiled, sparse-routed"),
    (["--distribution", "bus"], "--distribution must be one of point-to-point, broadcast-bus"),
    (["--prune", "topk"], "--prune topk needs --topk >= 1"),
    (["--keep", "0"], "--keep must be a fraction in (0, 1]"),
    (["--tau", "1e-12"], "--tau 1e-12 s is too short"),
    (["--calibration", "/nonexistent/cal.json"], "cal.json"),
])
def test_bad_options_give_one_line_and_no_output(capsys, tmp_path, args, message) -> None:
    out = tmp_path / "ir"
    rc, _, err = run(capsys, "compile", "-o", str(out), *args)
    assert rc == 2
    lines = [line for line in err.splitlines() if line.startswith("un0hw: error:")]
    assert len(lines) == 1 and message in lines[0], err
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no temporary folder left either


def test_broken_ir_folders_are_refused(capsys, tmp_path) -> None:
    out = tmp_path / "ir"
    assert run(capsys, "compile", "-o", str(out), "--bits", "4")[0] == 0
    doc = json.loads((out / "array.json").read_text())
    doc["dynamics"]["solver"] = "leapfrog"
    (out / "array.json").write_text(json.dumps(doc))
    rc, _, err = run(capsys, "inspect", str(out))
    assert rc == 2 and "dynamics/solver" in err
    assert run(capsys, "compile", "-o", str(out), "--bits", "4")[0] == 0  # an IR folder is replaced
    (out / "weights.safetensors").write_bytes((out / "weights.safetensors").read_bytes()[:-8])
    rc, _, err = run(capsys, "simulate", str(out))
    assert rc == 2 and "checksum" in err
