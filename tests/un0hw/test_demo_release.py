"""`un0hw demo CKPT` on a random-init release-format checkpoint: chip-fidelity rows instead of FID-digits."""

from __future__ import annotations

import json

import pytest

import models
from un0hw.cli import main


@pytest.mark.slow
def test_demo_on_a_release_format_cifar_model(tmp_path, capsys, monkeypatch) -> None:
    import hw.spice.run

    # the SPICE steps are the digits demo's (tests/un0hw/test_demo.py); here they skip, so the
    # family-specific steps (quality, sweep on chip fidelity; compile, RTL, energy) are what runs
    monkeypatch.setattr(hw.spice.run, "unavailable_reason", lambda: "ngspice switched off for this test")
    ckpt = models.save_release(models.Un0.init(models.PUBLISHED["n1024"].replace(n=256), seed=0),
                               tmp_path / "cifar10_n256.pt")
    out = tmp_path / "report"
    rc = main(["demo", str(ckpt), "--quick", "-o", str(out), "--no-progress"])
    text = capsys.readouterr().out
    steps = {s["name"]: s for s in json.loads((out / "steps.json").read_text())}
    assert rc == 0, text
    assert {k: s["status"] for k, s in steps.items()} == {
        "cells": "skipped", "compile": "ok", "quality": "ok", "sweep": "ok", "array": "skipped", "rtl": steps["rtl"]["status"],
        "energy": "ok"}
    md = (out / "index.md").read_text()
    assert md.startswith("# un0hw demo: cifar10_n256 (cifar10, 3×32×32)")
    assert "random-init" in md and "FID vs ideal" in md and "FID-digits" not in md
    assert "| ideal | the checkpoint's model, ideal (float32) | 0 | 0.000 | inf |" in md
    assert "sampling floor" in md and "| A+hw |" in md
    assert (out / "samples-A+H.png").is_file() and (out / "sweep" / "sweep.png").is_file()
    assert f"un0hw demo {ckpt} -o {out} --quick" in md  # the provenance names the checkpoint


def test_demo_refuses_a_checkpoint_that_does_not_load(tmp_path, capsys) -> None:
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a torch file")
    assert main(["demo", str(bad), "-o", str(tmp_path / "report")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "broken.pt" in err[0]
    assert not (tmp_path / "report").exists()
