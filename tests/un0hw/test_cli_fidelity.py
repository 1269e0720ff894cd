"""`un0hw fidelity`: a compiled array or imperfect hardware against the ideal model, any family."""

from __future__ import annotations

import json

import pytest

import models
from un0hw.cli import main


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    root = tmp_path_factory.mktemp("fidelity")
    ckpt = models.save_release(models.Un0.init(models.PUBLISHED["n1024"].replace(n=64), seed=0), root / "c.pt")
    assert main(["compile", str(ckpt), "-o", str(root / "ir"), "--bits", "3", "--tile", "32"]) == 0
    (root / "ni.toml").write_text("[nonideal]\ncoupling_bits = 8\n")
    (root / "off.toml").write_text("[nonideal]\n")
    return root


def run_json(capsys, *argv: str) -> dict:
    assert main(["fidelity", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_an_array_and_hardware_against_the_release_model(cifar, capsys) -> None:
    ckpt = str(cifar / "c.pt")
    coarse = run_json(capsys, ckpt, "--ir", str(cifar / "ir"), "--per-class", "10")
    fine = run_json(capsys, ckpt, "--nonideal", str(cifar / "ni.toml"), "--per-class", "10")
    both = run_json(capsys, ckpt, "--ir", str(cifar / "ir"), "--nonideal", str(cifar / "ni.toml"), "--per-class", "10")
    for r in (coarse, fine, both):
        assert r["samples"] == 100 and r["feature_space"] == "pixels:3x8x8" and r["sampling_floor"] > 0
    # 3-bit codes are further from the model than 8-bit couplings
    assert coarse["phase_error_rad"] > fine["phase_error_rad"] > 0
    assert coarse["psnr_db"] < fine["psnr_db"]
    assert main(["fidelity", ckpt, "--ir", str(cifar / "ir"), "--per-class", "5"]) == 0
    assert "FID vs ideal" in capsys.readouterr().out


@pytest.mark.parametrize(("extra", "message"), [
    ([], r"nothing to compare: give the chip as --ir IR"),
    (["--nonideal", "{root}/off.toml"], r"nothing to compare"),
    (["--coupling", "circuit", "--nonideal", "{root}/ni.toml"], r"--coupling circuit runs a compiled array's couplers"),
])
def test_mistakes_are_one_line(cifar, capsys, extra, message) -> None:
    import re

    argv = [str(cifar / "c.pt"), *[a.format(root=cifar) for a in extra]]
    assert main(["fidelity", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.search(message, err[0]), err


def test_an_array_of_another_model_is_refused(cifar, capsys) -> None:
    assert main(["fidelity", "--ir", str(cifar / "ir"), "--per-class", "2"]) == 2  # the shipped digits model
    assert "an array of" in capsys.readouterr().err


def test_the_int8_decoder_against_the_model(cifar, capsys) -> None:
    """The int8 decoder alone is a chip to compare: the same phases (zero phase error), images
    within its quantisation error; with hardware it adds to the hardware's error."""
    ckpt = str(cifar / "c.pt")
    int8 = run_json(capsys, ckpt, "--decoder", "int8", "--per-class", "10")
    assert int8["phase_error_rad"] == 0 and 25 < int8["psnr_db"] < float("inf")
    fine = run_json(capsys, ckpt, "--nonideal", str(cifar / "ni.toml"), "--per-class", "10")
    both = run_json(capsys, ckpt, "--nonideal", str(cifar / "ni.toml"), "--decoder", "int8", "--per-class", "10")
    assert both["phase_error_rad"] == pytest.approx(fine["phase_error_rad"]) and both["psnr_db"] < fine["psnr_db"]
    assert main(["fidelity", ckpt, "--decoder", "int2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--decoder must be one of float, int8, int4, analog, not 'int2'" in err[0], err
