"""The command line: every subcommand works, and bad input is one line and exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys

import matplotlib.image
import pytest
import torch

import models
from un0hw.cli import build_parser, main


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    out = tmp_path_factory.mktemp("ck") / "digits"
    assert main(["init", "--size", "digits-n64", "-o", str(out), "--seed", "3"]) == 0
    return out.with_suffix(".safetensors")


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_help_on_everything() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in sub.choices:
        with pytest.raises(SystemExit) as exc:
            main([name, "--help"])
        assert exc.value.code == 0
    out = subprocess.run([sys.executable, "-m", "un0hw", "--help"], capture_output=True, text=True, check=True)
    assert all(name in out.stdout for name in ("info", "init", "sample", "simulate"))


def test_init_is_reproducible_from_seed(tmp_path) -> None:
    for name in ("a", "b", "c"):
        seed = "1" if name != "c" else "2"
        assert main(["init", "--size", "digits-n64", "-o", str(tmp_path / name), "--seed", seed]) == 0
    a, b, c = (models.load(tmp_path / f"{n}.safetensors") for n in "abc")
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
    assert not torch.equal(a.dynamics.K, c.dynamics.K)


def test_info_text_and_json(ckpt, capsys) -> None:
    assert main(["info", str(ckpt)]) == 0
    out = capsys.readouterr().out
    assert "N = 64 main, N_c = 8 conditioning, 10 classes" in out
    assert main(["info", str(ckpt), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    cfg = models.PUBLISHED["digits-n64"]
    assert info["parameters"] == {"oscillator": cfg.oscillator_params, "decoder": cfg.decoder_params, "total": cfg.total_params}
    assert info["decoder_fraction"] == pytest.approx(cfg.decoder_params / cfg.total_params)


def test_info_on_a_release_file_just_works(tmp_path, capsys) -> None:
    assert main(["init", "--size", "n1024", "-o", str(tmp_path / "cifar10_n1024"), "--format", "release"]) == 0
    capsys.readouterr()
    assert main(["info", str(tmp_path / "cifar10_n1024.pt")]) == 0
    out = capsys.readouterr().out
    assert "1,289,387 total" in out and "Un-0.n1024: 1.29M parameters, FID@50k 11.01" in out


def test_sample_writes_a_grid(ckpt, tmp_path) -> None:
    out = tmp_path / "grid.png"
    assert main(["sample", str(ckpt), "--classes", "1,4,7", "-n", "5", "-o", str(out), "--batch-size", "4"]) == 0
    img = matplotlib.image.imread(out)
    cell = 32 + 1  # 8×8 digits upscaled ×4, 1 px padding
    assert img.shape[:2] == (3 * cell + 1, 5 * cell + 1)


def test_simulate_reports_and_saves(ckpt, tmp_path, capsys) -> None:
    from safetensors.torch import load_file

    out = tmp_path / "phases.safetensors"
    assert main(["simulate", str(ckpt), "-n", "3", "--steps", "20", "--method", "rk4", "--save", str(out)]) == 0
    text = capsys.readouterr().out
    assert "rk4, 20 steps to T = 1" in text and "order parameter" in text
    saved = load_file(str(out))
    assert saved["theta"].shape == (30, 72) and saved["labels"].tolist() == [c for c in range(10) for _ in range(3)]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["init", "--size", "n99", "-o", "x"], r"^un0hw: error: --size must be one of n1024, .*; got 'n99'$"),
        (["ablate", "--out", "x", "--size", "n99"], r"^un0hw: error: --size must be one of n1024, .*; got 'n99'$"),
        (["train", "--out", "x", "--size", "n99"], r"^un0hw: error: --size must be one of n1024, .*; got 'n99'$"),
        (["info", "missing.safetensors"], r"^un0hw: error: missing\.safetensors: no such file$"),
        (["sample", "{ckpt}", "--classes", "3,12"], r"^un0hw: error: --classes '3,12': this model has classes 0\.\.9$"),
        (["sample", "{ckpt}", "--classes", "a,b"], r"^un0hw: error: --classes must be comma-separated integers or 'all', not 'a,b'$"),
        (["sample", "{ckpt}", "-n", "0"], r"^un0hw: error: -n must be >= 1, not 0$"),
        (["simulate", "{ckpt}", "--method", "leapfrog"], r"^un0hw: error: --method must be one of euler, heun, rk4, adaptive; got 'leapfrog'$"),
        (["simulate", "{ckpt}", "--steps", "-1"], r"^un0hw: error: --steps must be >= 0, not -1$"),
        (["simulate", "{ckpt}", "--T", "0"], r"^un0hw: error: --T must be positive, not 0\.0$"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(ckpt, capsys, argv, message) -> None:
    argv = [a.replace("{ckpt}", str(ckpt)) for a in argv]
    assert main(argv) == 2
    import re

    assert re.match(message, _error_line(capsys))


def test_cuda_requested_without_cuda(ckpt, capsys) -> None:
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    assert main(["info", str(ckpt), "--device", "cuda"]) == 2
    assert _error_line(capsys) == "un0hw: error: --device cuda: no CUDA device is available here (use --device cpu)"


def test_console_script_exit_code_on_bad_file(tmp_path) -> None:
    bad = tmp_path / "junk.pt"
    bad.write_bytes(b"\x00" * 64)
    proc = subprocess.run([sys.executable, "-m", "un0hw", "info", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith("junk.pt: neither a torch checkpoint nor a safetensors file (first bytes do not match)")
    assert proc.stdout == ""


def test_train_then_fid_on_the_result(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("UN0HW_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    assert main(["train", "--size", "digits-n64", "--out", str(out), "--steps", "3", "--checkpoint-every", "2",
                 "--classes-per-step", "2", "--fake-per-class", "4", "--real-per-class", "8", "--no-progress"]) == 0
    assert {p.name for p in out.iterdir()} >= {"train-state.pt", "ema.safetensors", "ema.json", "metrics.jsonl", "loss.png"}
    capsys.readouterr()
    assert main(["fid", str(out / "ema.safetensors"), "--per-class", "10", "--json"]) == 0
    score = json.loads(capsys.readouterr().out)
    assert score["samples"] == 100 and score["fid"] > score["floor"] > 0


def test_fid_refuses_a_model_that_is_not_digits(tmp_path, capsys) -> None:
    assert main(["init", "--size", "n1024", "-o", str(tmp_path / "c")]) == 0
    capsys.readouterr()
    assert main(["fid", str(tmp_path / "c.safetensors")]) == 2
    assert "--extractor digits scores 1×8×8 digits models" in _error_line(capsys)


def test_default_checkpoint_is_the_shipped_model(capsys) -> None:
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["config"]["name"] == "digits-n512" and info["checkpoint"].endswith("un0-digits.safetensors")
