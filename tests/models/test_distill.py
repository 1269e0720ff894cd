"""A smaller decoder by distillation (models.distill, `un0hw distill`)."""

from __future__ import annotations

import pytest
import torch

import models
from models.distill import distill_decoder
from models.errors import ConfigError
from un0hw.cli import main


@pytest.fixture(scope="module")
def teacher():
    return models.Un0.init(models.PUBLISHED["digits-n64"], seed=0)


def test_the_student_is_narrower_learns_the_teacher_and_keeps_the_oscillators(teacher, tmp_path):
    student, info = distill_decoder(teacher, 2, steps=300, features=1024, progress=False)
    assert student.config.decoder_widths == tuple(w // 2 for w in teacher.config.decoder_widths)
    assert sum(p.numel() for p in student.decoder.parameters()) < sum(p.numel() for p in teacher.decoder.parameters())
    assert info["rms_after"] < 0.5 * info["rms_before"]
    for name, p in teacher.dynamics.named_parameters():
        assert torch.equal(p, dict(student.dynamics.named_parameters())[name])
    models.save(student, tmp_path / "s")
    back = models.load(tmp_path / "s.safetensors")
    assert back.config == student.config
    labels = torch.arange(6) % 10
    theta0 = teacher.sample_theta0(6, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(back.generate(labels, theta0), student.generate(labels, theta0))


def test_a_divisor_below_two_is_refused(teacher):
    with pytest.raises(ConfigError, match="--width-divisor must be an integer >= 2"):
        distill_decoder(teacher, 1, steps=1, progress=False)


def test_cli_distill_writes_the_checkpoint_and_refuses_bad_input(teacher, tmp_path, capsys):
    models.save(teacher, tmp_path / "t")
    out = tmp_path / "small"
    assert main(["distill", str(tmp_path / "t.safetensors"), "--width-divisor", "1", "-o", str(out)]) == 2
    assert "--width-divisor must be an integer >= 2" in capsys.readouterr().err
    assert not (tmp_path / "small.safetensors").exists() and not (tmp_path / "small.json").exists()
    assert main(["distill", str(tmp_path / "t.safetensors"), "--width-divisor", "2", "--steps", "20",
                 "-o", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "decoder widths 32 -> 16" in text and (tmp_path / "small.safetensors").is_file()
    assert models.load(tmp_path / "small.safetensors").config.decoder_width_divisor == 2
