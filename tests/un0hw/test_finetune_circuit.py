"""`un0hw finetune --coupling circuit`: fine-tuning under the circuit's measured coupling function."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch

import models
from analysis.features import digits_encoder, digits_feature_weights
from analysis.sweep import circuit_shape
from hw.calibration import Calibration
from models.data import digits
from models.train import Trainer, TrainOptions
from oscsim import NonIdeal
from un0hw import cmd_finetune
from un0hw.cli import build_parser, main


@pytest.fixture(scope="module")
def tiny_and_shape():
    model = models.Un0.init(models.PUBLISHED["digits-n64"], seed=0)
    ir, shape = circuit_shape(model, cmd_finetune.operating_point(), Calibration.default(), trim="closed")
    return model, ir, shape


def _trainer(tmp_path: Path, shape, name: str) -> Trainer:
    model = models.Un0.init(models.PUBLISHED["digits-n64"], seed=0)
    model.dynamics.shape = shape
    options = TrainOptions(steps=4, classes_per_step=2, fake_per_class=6, real_per_class=6, seed=1,
                           feature_weights=digits_feature_weights(), checkpoint_every=2)
    return Trainer(model, digits("train"), digits_encoder(), options, tmp_path / name)


def test_the_operating_point_is_the_demos_array_a() -> None:
    from un0hw.demo import OPERATING_POINTS, SEED

    options = cmd_finetune.operating_point()
    assert {k: getattr(options, k) for k in OPERATING_POINTS["A"]} == OPERATING_POINTS["A"] and options.seed == SEED


def test_the_shape_fits_the_model_and_trims_as_asked(tiny_and_shape) -> None:
    model, ir, shape = tiny_and_shape
    cfg = model.config
    assert ir.n == cfg.n
    assert shape.K.shape == (6, cfg.n, cfg.n) and shape.drive.shape == (6, cfg.num_classes, cfg.n, cfg.n_cond)
    assert not shape.constant and float(shape.K[1].abs().max()) > 0  # b1 cos x is there
    _, open_shape = circuit_shape(model, cmd_finetune.operating_point(), Calibration.default(), trim="open")
    assert open_shape.constant and torch.equal(open_shape.K, shape.K)


def test_the_training_forward_runs_under_the_shape(tmp_path: Path, tiny_and_shape, monkeypatch) -> None:
    """Same init, same batch: the shaped model's loss and gradient differ from the sine
    model's, the gradient reaches K, and every forward pass ran with the harmonics on."""
    _, _, shape = tiny_and_shape
    seen = []
    real_forward = models.Un0.forward

    def spy(self, labels, theta0, **kw):
        seen.append(self.params().K_h is not None and self.params().drive_h is not None)
        return real_forward(self, labels, theta0, **kw)

    monkeypatch.setattr(models.Un0, "forward", spy)
    sine, circuit = _trainer(tmp_path, None, "sine"), _trainer(tmp_path, shape, "circuit")
    a, b = sine.train_step(), circuit.train_step()
    assert seen == [False, True]
    assert a["loss"] != pytest.approx(b["loss"], rel=1e-6)
    grad = circuit.model.dynamics.K.grad
    assert grad is not None and float(grad.abs().sum()) > 0
    assert not torch.allclose(grad, sine.model.dynamics.K.grad)
    assert circuit.model.dynamics.shape is shape  # kept across the step (not in the state dict)
    assert "shape" not in " ".join(circuit.model.state_dict())


def _args(**kw) -> argparse.Namespace:
    argv = ["finetune", "-o", "/tmp/unused"]
    for k, v in kw.items():
        argv += [f"--{k}", str(v)]
    return build_parser().parse_args(argv)


def test_the_default_is_the_sine_coupling() -> None:
    args = _args(nonideal="x.toml")
    assert (args.coupling, args.trim, args.calibration) == (None, None, None)
    assert cmd_finetune.circuit_option(args) is None
    circuit = cmd_finetune.circuit_option(_args(coupling="circuit"))
    assert circuit == cmd_finetune.CircuitCoupling(trim="closed", calibration=None)
    record = circuit.record()
    assert record["operating_point"]["name"] == "A" and record["calibration"].startswith("built-in")


def test_a_folder_resumes_only_under_its_own_coupling(tmp_path: Path) -> None:
    from analysis.sweep import SweepError

    out = tmp_path / "run"
    out.mkdir()
    closed = cmd_finetune.CircuitCoupling().record()
    cmd_finetune._check_folder(out, None)  # nothing started: anything goes
    cmd_finetune._check_folder(out, closed)
    (out / "train-state.pt").write_bytes(b"started")
    cmd_finetune._check_folder(out, None)  # a sine run resumes as before
    with pytest.raises(SweepError, match="under the sine coupling"):
        cmd_finetune._check_folder(out, closed)
    (out / cmd_finetune.COUPLING_FILE).write_text(json.dumps(closed))
    cmd_finetune._check_folder(out, closed)
    with pytest.raises(SweepError, match="another circuit coupling"):
        cmd_finetune._check_folder(out, cmd_finetune.CircuitCoupling(trim="open").record())
    with pytest.raises(SweepError, match="under the circuit's coupling"):
        cmd_finetune._check_folder(out, None)


@pytest.mark.slow
def test_finetune_under_the_circuit_coupling_end_to_end(tmp_path: Path, capsys) -> None:
    from analysis.evaluate import score_digits

    ckpt = tmp_path / "small"
    models.save(models.Un0.init(models.PUBLISHED["digits-n64"], seed=2), ckpt)
    ckpt = ckpt.with_suffix(".safetensors")
    spec = tmp_path / "hw.toml"
    spec.write_text("[nonideal]\nphase_noise_rad_per_sqrt_t = 0.3\n")
    out = tmp_path / "ft"
    args = ["finetune", str(ckpt), "--coupling", "circuit", "--nonideal", str(spec), "-o", str(out),
            "--steps", "2", "--chips", "2", "--per-class", "8", "--no-progress"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "circuit's coupling function" in text and "| before |" in text and "trim closed" in text
    r = json.loads((out / "finetune.json").read_text())
    assert r["coupling"]["coupling"] == "circuit" and r["coupling"]["trim"] == "closed"
    assert r["nonideal"]["phase_noise_rad_per_sqrt_t"] == 0.3
    for when in ("before", "after"):
        assert set(r[when]) == {"hardware", "array", "ideal"}
        assert [row["chip"] for row in r[when]["hardware"]] == [0, 1]
    # 'before' is the untouched model under the shape on chip 1 / its sine equations, seed phases 1000
    model = models.load(ckpt)
    hw = NonIdeal(phase_noise_rad_per_sqrt_t=0.3, chip_seed=1, sample_seed=1)
    assert r["before"]["ideal"][1]["fid"] == pytest.approx(score_digits(model, per_class=8, seed=1000).fid, rel=1e-9)
    _, shape = circuit_shape(model, cmd_finetune.operating_point(), Calibration.default(), trim="closed")
    model.dynamics.shape = shape
    again = score_digits(model, per_class=8, seed=1000, nonideal=hw)
    assert r["before"]["hardware"][1]["fid"] == pytest.approx(again.fid, rel=1e-9)
    assert json.loads((out / "coupling.json").read_text()) == r["coupling"]
    assert (out / "ema.safetensors").is_file() and (out / "finetune.md").is_file()

    # the finished folder refuses another coupling, in one line
    assert main([*args[:2], "--coupling", "circuit", "--trim", "open", "-o", str(out), "--no-progress"]) == 2
    assert "another circuit coupling" in capsys.readouterr().err
    assert main(["finetune", str(ckpt), "--nonideal", str(spec), "-o", str(out), "--no-progress"]) == 2
    assert "under the circuit's coupling" in capsys.readouterr().err
