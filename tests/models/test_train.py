"""Training: a killed run resumes to the same weights; options and outputs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

import models
from models.data import digits
from models.train import Trainer, TrainError, TrainOptions, pixel_encoder

ARGS = ["--size", "digits-n64", "--steps", "30", "--checkpoint-every", "3", "--seed", "5", "--no-progress",
        "--classes-per-step", "3", "--fake-per-class", "8", "--real-per-class", "16"]


def _train(out, *, kill_after_checkpoint: bool = False) -> subprocess.CompletedProcess | None:
    cmd = [sys.executable, "-m", "un0hw", "train", "--out", str(out), *ARGS]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if not kill_after_checkpoint:
        return subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "train-state.pt").is_file():  # first checkpoint: step 3
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return None


@pytest.mark.slow
def test_killed_run_resumes_to_identical_weights(tmp_path) -> None:
    _train(tmp_path / "straight")
    _train(tmp_path / "killed", kill_after_checkpoint=True)
    state = torch.load(tmp_path / "killed" / "train-state.pt", weights_only=True)
    assert 3 <= state["step"] < 30, "the kill must land mid-run"
    done = _train(tmp_path / "killed")
    assert "resuming" in done.stderr
    a = load_file(str(tmp_path / "straight" / "ema.safetensors"))
    b = load_file(str(tmp_path / "killed" / "ema.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    steps = [json.loads(ln)["step"] for ln in (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 30  # no duplicated lines after resuming
    assert (tmp_path / "killed" / "loss.png").stat().st_size > 0


def test_resume_refuses_other_options(tmp_path) -> None:
    model = models.Un0.init(models.PUBLISHED["digits-n64"], seed=0)
    opts = TrainOptions(steps=2, checkpoint_every=1, classes_per_step=2, fake_per_class=4, real_per_class=4)
    Trainer(model, digits("train"), pixel_encoder, opts, tmp_path).run(progress=False)
    other = TrainOptions(steps=4, checkpoint_every=1, classes_per_step=2, fake_per_class=4, real_per_class=4, lr=1e-2)
    trainer = Trainer(models.Un0.init(models.PUBLISHED["digits-n64"], seed=0), digits("train"), pixel_encoder, other, tmp_path)
    with pytest.raises(TrainError, match=r"train-state\.pt: the run was started with other options \(lr\); use a new --out folder$"):
        trainer.try_resume()


def test_frozen_dynamics_stay_at_init(tmp_path) -> None:
    model = models.Un0.init(models.PUBLISHED["digits-n64"], seed=0)
    before = {k: v.clone() for k, v in model.dynamics.state_dict().items()}
    dec_before = model.decoder.to_output.weight.clone()
    opts = TrainOptions(steps=3, classes_per_step=2, fake_per_class=4, real_per_class=4, freeze_dynamics=True)
    Trainer(model, digits("train"), pixel_encoder, opts, tmp_path).run(progress=False)
    assert all(torch.equal(before[k], v) for k, v in model.dynamics.state_dict().items())
    assert not torch.equal(dec_before, model.decoder.to_output.weight)


def test_data_model_mismatch_is_refused(tmp_path) -> None:
    model = models.Un0.init(models.PUBLISHED["n1024"].replace(n=64), seed=0)
    with pytest.raises(TrainError, match=r"^data set digits-train images are \(1, 8, 8\), the model makes \(3, 32, 32\)$"):
        Trainer(model, digits("train"), pixel_encoder, TrainOptions(), tmp_path)


# --- the paired objective (distillation toward a teacher on common seeds) -------------------------------------

def _held_out_mse(student, teacher, *, n: int = 200, seed: int = 123) -> float:
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(student.config.num_classes, (n,), generator=g)
    theta0 = student.sample_theta0(n, generator=g)
    with torch.no_grad():
        return float(torch.mean((student.eval().generate(labels, theta0) - teacher.eval().generate(labels, theta0)) ** 2))


@pytest.mark.slow
def test_the_paired_objective_pulls_a_mistrimmed_student_onto_its_teacher(tmp_path) -> None:
    """A student whose natural frequencies are off from its teacher's by a static trim error
    (σ = 0.05 rad per unit model time per main oscillator) learns back toward the teacher's
    images on seeds it never trained on: the per-sample error falls by over half."""
    config = models.PUBLISHED["n1024"].replace(n=32)
    teacher = models.Un0.init(config, seed=0)
    student = models.Un0.init(config, seed=0)
    with torch.no_grad():
        student.dynamics.omega.add_(0.05 * torch.randn(student.dynamics.omega.shape,
                                                       generator=torch.Generator().manual_seed(5)))
    before = _held_out_mse(student, teacher)
    assert before > 1e-4  # the mis-trim is visible in the images
    opts = TrainOptions(steps=80, lr=1e-3, warmup=10, ema_decay=0.0, objective="paired", fake_per_class=16,
                        checkpoint_every=80, log_every=5)
    Trainer(student, None, pixel_encoder, opts, tmp_path, teacher=teacher).run(progress=False)
    tuned = models.load(tmp_path / "ema.safetensors")
    after = _held_out_mse(tuned, teacher)
    assert after < 0.5 * before, (before, after)
    log = [json.loads(ln) for ln in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert "mse_0" in log[0] and log[-1]["loss"] < 0.5 * log[0]["loss"]
    assert (tmp_path / "loss.png").stat().st_size > 0


def test_the_paired_loss_is_the_weighted_mse_of_every_feature_set() -> None:
    from models.train import paired_loss

    a = [torch.zeros(4, 6), torch.zeros(4, 2)]
    b = [torch.full((4, 6), 2.0), torch.ones(4, 2)]
    loss, stats = paired_loss(a, b)
    assert float(loss) == pytest.approx(0.5 * 4.0 + 0.5 * 1.0) and stats == {"mse_0": 4.0, "mse_1": 1.0}
    assert float(paired_loss(a, b, weights=(1.0, 0.0))[0]) == pytest.approx(4.0)
    assert float(paired_loss(b, b)[0]) == 0.0
    with pytest.raises(ValueError, match="differ in number or shape"):
        paired_loss(a, b[:1])
    with pytest.raises(ValueError, match="2 weights for 1 feature sets"):
        paired_loss(a[:1], b[:1], weights=(1.0, 1.0))


def test_each_objective_takes_its_own_target(tmp_path) -> None:
    from models.errors import ConfigError

    model = models.Un0.init(models.PUBLISHED["digits-n64"], seed=0)
    with pytest.raises(ConfigError, match="objective must be one of drifting, paired, not 'mse'"):
        TrainOptions(objective="mse")
    paired = TrainOptions(objective="paired")
    with pytest.raises(TrainError, match="toward a teacher model, not a data set"):
        Trainer(model, digits("train"), pixel_encoder, paired, tmp_path, teacher=model)
    with pytest.raises(TrainError, match="toward a teacher model"):
        Trainer(model, None, pixel_encoder, paired, tmp_path)
    with pytest.raises(TrainError, match="teacher must have the student's config"):
        Trainer(model, None, pixel_encoder, paired, tmp_path,
                teacher=models.Un0.init(models.PUBLISHED["digits-n64"].replace(n=32), seed=0))
    with pytest.raises(TrainError, match="drifting objective trains toward a data set"):
        Trainer(model, None, pixel_encoder, TrainOptions(), tmp_path)
