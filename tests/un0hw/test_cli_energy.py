"""`un0hw energy`: the table and its files from a compiled IR folder; errors as one line, exit 2."""

from __future__ import annotations

import csv

import pytest

import compiler
import models
from un0hw.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def ir_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("energy") / "ir"
    model = models.Un0.init(models.PUBLISHED["digits-n64"], seed=0)
    compiler.compile(model, compiler.CompileOptions(tile=32), source="test").save(out)
    return out


def test_energy_on_an_ir_folder_writes_table_plots_and_csv(capsys, tmp_path, ir_dir) -> None:
    rc, text, _ = run(capsys, "energy", str(ir_dir), "--no-measure")
    assert rc == 0 and "| digits-n64 | 64 |" in text and "H100 est." in text
    assert "Area per chip" in text and "| digits-n64 | generic180/resistive |" in text
    out = tmp_path / "report"
    rc, text, _ = run(capsys, "energy", str(ir_dir), "-o", str(out), "--precision", "fp16")
    assert rc == 0
    assert {p.name for p in out.iterdir()} == {"energy.csv", "area.csv", "energy.md", "breakdown.png",
                                               "tornado.png", "sensitivity.csv"}
    area_rows = list(csv.DictReader((out / "area.csv").open()))
    assert len(area_rows) == 1 and area_rows[0]["process"] == "generic180" and float(area_rows[0]["total_mm2"]) > 0
    rows = list(csv.DictReader((out / "energy.csv").open()))
    assert len(rows) == 1 and rows[0]["model"] == "digits-n64" and float(rows[0]["ratio_h100_with_decoder"]) > 0
    md = (out / "energy.md").read_text()
    assert "decoder precision fp16" in md and "`gpu_h100_tdp`" in md and "Horowitz" in md
    assert "## Area per chip" in md and "`nand2_area_45nm`" in md


@pytest.mark.parametrize("args, message", [
    (["--constants", "/nonexistent/table.toml"], "--constants /nonexistent/table.toml: no such file"),
    (["--calibration", "/nonexistent/cal.json"], "--calibration /nonexistent/cal.json: no such file"),
    (["--gpu-batch", "0"], "--gpu-batch and --gpu-repeats must be >= 1"),
    (["/nonexistent/ckpt.safetensors"], "CKPT_OR_IR /nonexistent/ckpt.safetensors: no such checkpoint file or IR folder"),
])
def test_bad_options_give_one_line(capsys, tmp_path, ir_dir, args, message) -> None:
    argv = ["energy", *args] if args[0].startswith("/") else ["energy", str(ir_dir), *args]
    rc, _, err = run(capsys, *argv)
    lines = [line for line in err.splitlines() if line.startswith("un0hw: error:")]
    assert rc == 2 and len(lines) == 1 and message in lines[0], err


def test_wrong_unit_in_a_table_is_one_line(capsys, tmp_path, ir_dir) -> None:
    from analysis import energy

    text = (energy.resources.files("analysis") / energy.DEFAULT_CONSTANTS).read_text()
    bad = tmp_path / "t.toml"
    bad.write_text(text.replace('value = 700\nunit = "W"', 'value = 700\nunit = "pJ"', 1))
    rc, _, err = run(capsys, "energy", str(ir_dir), "--constants", str(bad))
    assert rc == 2 and err.count("un0hw: error:") == 1 and "'gpu_h100_tdp' is a power but was given in 'pJ'" in err
