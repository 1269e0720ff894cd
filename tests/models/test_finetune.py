"""Hardware-aware training: non-idealities in the forward pass, STE, resume, `un0hw finetune`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import models
from analysis.features import digits_encoder, digits_feature_weights
from models.data import digits
from models.train import TRAIN_CHIPS_FROM, Trainer, TrainError, TrainOptions
from oscsim import NonIdeal
from un0hw.cli import main

HARDWARE = NonIdeal(coupling_bits=3, phase_noise_rad_per_sqrt_t=0.5, coupling_mismatch_sigma=0.2, readout_bits=4)


def trainer(tmp_path: Path, nonideal: NonIdeal | None, name: str = "run") -> Trainer:
    model = models.Un0.init(models.PUBLISHED["digits-n64"], seed=0)
    options = TrainOptions(steps=4, classes_per_step=2, fake_per_class=6, real_per_class=6, seed=1, nonideal=nonideal,
                           feature_weights=digits_feature_weights(), checkpoint_every=2)
    return Trainer(model, digits("train"), digits_encoder(), options, tmp_path / name)


def test_the_forward_pass_runs_on_a_fresh_chip_and_gradients_pass_the_rounding(tmp_path: Path, monkeypatch) -> None:
    seen = []
    real_forward = models.Un0.forward

    def spy(self, labels, theta0, **kw):
        seen.append(kw.get("nonideal"))
        return real_forward(self, labels, theta0, **kw)

    monkeypatch.setattr(models.Un0, "forward", spy)
    t = trainer(tmp_path, HARDWARE)
    K0 = t.model.dynamics.K.detach().clone()
    t.train_step()
    t.train_step()
    assert [ni.chip_seed for ni in seen] == [TRAIN_CHIPS_FROM, TRAIN_CHIPS_FROM + 1]
    assert [ni.sample_seed for ni in seen] == [0, 1]
    assert all(ni.replace(chip_seed=0, sample_seed=0) == HARDWARE for ni in seen)
    # 3-bit couplings: without the straight-through estimator K would get no gradient
    assert t.model.dynamics.K.grad is not None and float(t.model.dynamics.K.grad.abs().sum()) > 0
    assert not torch.equal(t.model.dynamics.K.detach(), K0)


def test_hardware_changes_what_is_trained(tmp_path: Path) -> None:
    a, b = trainer(tmp_path, None, "ideal"), trainer(tmp_path, HARDWARE, "hw")
    a.train_step()
    b.train_step()
    assert not torch.equal(a.model.dynamics.K, b.model.dynamics.K)


def test_resume_refuses_other_hardware(tmp_path: Path) -> None:
    t = trainer(tmp_path, HARDWARE)
    t.run(progress=False, stop_after=2)
    other = trainer(tmp_path, HARDWARE.replace(coupling_bits=4))
    with pytest.raises(TrainError, match=r"started with other options \(nonideal\)"):
        other.try_resume()
    same = trainer(tmp_path, HARDWARE)
    assert same.try_resume() and same.step == 2


@pytest.mark.slow
def test_finetune_command_scores_before_and_after_on_the_same_chips(tmp_path: Path, capsys) -> None:
    ckpt = tmp_path / "small"
    models.save(models.Un0.init(models.PUBLISHED["digits-n64"], seed=2), ckpt)
    spec = tmp_path / "hw.toml"
    spec.write_text("[nonideal]\ncoupling_bits = 3\nphase_noise_rad_per_sqrt_t = 0.5\n")
    args = ["finetune", str(ckpt.with_suffix(".safetensors")), "--nonideal", str(spec), "-o", str(tmp_path / "ft"),
            "--steps", "3", "--chips", "2", "--per-class", "8", "--no-progress"]
    assert main(args) == 0
    assert "| before |" in capsys.readouterr().out
    result = json.loads((tmp_path / "ft" / "finetune.json").read_text())
    assert [r["chip"] for r in result["before"]["hardware"]] == [0, 1] == [r["chip"] for r in result["after"]["hardware"]]
    # the 'before' numbers are the untouched model's on those chips and seeds
    from analysis.evaluate import score_digits

    again = score_digits(models.load(ckpt.with_suffix(".safetensors")), per_class=8, seed=1000,
                         nonideal=NonIdeal(coupling_bits=3, phase_noise_rad_per_sqrt_t=0.5, chip_seed=1, sample_seed=1))
    assert result["before"]["hardware"][1]["fid"] == pytest.approx(again.fid, rel=1e-9)
    assert (tmp_path / "ft" / "ema.safetensors").is_file() and (tmp_path / "ft" / "finetune.md").is_file()


@pytest.mark.parametrize(("table", "expect"), [
    ("", "needs a [nonideal] table"),
    ("[nonideal]\n", "every non-ideality is off"),
    ("[nonideal]\ncoupling_bits = 40\n", "NonIdeal.coupling_bits must be None or an int in 1..16"),
])
def test_finetune_errors_are_one_line(tmp_path: Path, capsys, table: str, expect: str) -> None:
    spec = tmp_path / "hw.toml"
    spec.write_text(table)
    assert main(["finetune", "--nonideal", str(spec), "-o", str(tmp_path / "ft")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("un0hw: error: ") and expect in err[0]
    assert not (tmp_path / "ft").exists()
