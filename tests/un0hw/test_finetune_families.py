"""`un0hw finetune` beyond digits: CIFAR-10- and ImageNet-64-shaped models, release `.pt`
files, data-free fine-tuning toward the ideal model's own samples, scored by chip fidelity."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

import models
from analysis.evaluate import sample_plan
from analysis.fidelity import IdealReference, chip_fidelity, feature_space
from oscsim import NonIdeal
from un0hw import cmd_finetune
from un0hw.cli import main


def _release(tmp_path: Path, name: str, *, n: int = 64, seed: int = 0) -> Path:
    model = models.Un0.init(models.PUBLISHED[name].replace(n=n), seed=seed)
    return models.save_release(model, tmp_path / f"{name}-tiny.pt")


def _spec(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hw.toml"
    path.write_text("[nonideal]\n" + text)
    return path


def test_ideal_samples_are_class_balanced_and_deterministic() -> None:
    model = models.Un0.init(models.PUBLISHED["n1024"].replace(n=16), seed=0)
    a = cmd_finetune.ideal_samples(model, per_class=3, seed=7)
    b = cmd_finetune.ideal_samples(model, per_class=3, seed=7)
    c = cmd_finetune.ideal_samples(model, per_class=3, seed=8)
    assert a.images.shape == (30, 3, 32, 32) and a.num_classes == 10
    assert torch.bincount(a.labels).tolist() == [3] * 10
    assert torch.equal(a.images, b.images) and not torch.equal(a.images, c.images)
    labels, theta0, _ = sample_plan(model, per_class=3, seed=7, batch_size=30)  # the model's own samples
    with torch.no_grad():
        assert torch.allclose(a.images, model.generate(labels, theta0), atol=1e-6)


def test_the_ideal_set_is_memory_bounded() -> None:
    cifar, imagenet = models.PUBLISHED["n1024"], models.PUBLISHED["n6656"]
    assert cmd_finetune.ideal_per_class(cifar) == cmd_finetune.IDEAL_SET_MAX_PER_CLASS
    per = cmd_finetune.ideal_per_class(imagenet)
    assert 1 <= per < cmd_finetune.IDEAL_SET_MAX_PER_CLASS
    assert per * 1000 * 4 * 3 * 64 * 64 <= cmd_finetune.IDEAL_SET_BYTES


def test_the_multiscale_encoder_pools_down_to_4x4() -> None:
    x = torch.randn(2, 3, 32, 32)
    feats = cmd_finetune.multiscale_pixel_encoder(x)
    assert [f.shape[1] for f in feats] == [3 * 32 * 32, 3 * 16 * 16, 3 * 8 * 8, 3 * 4 * 4]
    assert torch.allclose(feats[-1], torch.nn.functional.avg_pool2d(x, 8).flatten(1))


def test_a_release_cifar_model_finetunes_data_free_and_is_scored_by_chip_fidelity(tmp_path: Path, capsys) -> None:
    ckpt = _release(tmp_path, "n1024")
    out = tmp_path / "ft"
    args = ["finetune", str(ckpt), "--nonideal", str(_spec(tmp_path, "coupling_bits = 3\n")), "-o", str(out),
            "--steps", "2", "--chips", "2", "--per-class", "3", "--objective", "drifting", "--ideal-per-class", "4",
            "--no-progress"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "| before | hardware |" in printed and "distillation of the ideal model" in printed
    r = json.loads((out / "finetune.json").read_text())
    assert r["metric"]["name"] == "fid_vs_ideal" and r["metric"]["feature_space"].startswith("pixels:3x8x8")
    assert "ideal model" in r["metric"]["against"] and set(r["metric"]["meaning"]) >= {"fid_vs_ideal", "psnr_db"}
    assert r["target"]["kind"].startswith("ideal model samples") and r["target"]["per_class"] == 4
    assert r["objective"] == "drifting" and "the drifting loss pulling toward the ideal model's own samples" in printed
    assert r["samples_per_chip"] == 30 and r["sampling_floor"] > 0
    for when in ("before", "after"):
        for row in ("hardware", "ideal"):
            assert [c["chip"] for c in r[when][row]] == [0, 1]
            assert {"fid_vs_ideal", "psnr_db", "phase_error_rad", "feature_distance"} <= set(r[when][row][0])
            assert "fid" not in r[when][row][0]  # no data set: no FID against data
    # before, the ideal row is the reference itself; the hardware rows are chip fidelity on chips 0, 1
    assert all(c["fid_vs_ideal"] == 0 and c["psnr_db"] == math.inf for c in r["before"]["ideal"])
    model = models.load(ckpt)
    labels, theta0, starts = sample_plan(model, per_class=3, seed=1000, batch_size=1000)
    ref = IdealReference(model, feature_space("pixels", (3, 32, 32)), labels, theta0, starts, 1000)
    direct = chip_fidelity(ref, model, nonideal=NonIdeal(coupling_bits=3, chip_seed=1, sample_seed=1))
    assert r["before"]["hardware"][1]["fid_vs_ideal"] == pytest.approx(direct.fid_vs_ideal, rel=1e-6)
    assert r["before"]["hardware"][1]["psnr_db"] == pytest.approx(direct.psnr_db, rel=1e-9)
    lost = statistics_mean(r["before"]["hardware"], "fid_vs_ideal")
    won = (lost - statistics_mean(r["after"]["hardware"], "fid_vs_ideal")) / lost
    assert r["won_back"] == pytest.approx(won)
    # the result is in the project's format and is the trained model
    tuned = models.load(r["tuned"])
    assert tuned.config == model.config and r["tuned"].endswith(".safetensors")
    assert not torch.equal(tuned.dynamics.K, model.dynamics.K)
    assert (out / "finetune.md").read_text() in printed


def statistics_mean(rows: list[dict], key: str) -> float:
    return sum(c[key] for c in rows) / len(rows)


@pytest.mark.slow
def test_an_imagenet_shaped_model_finetunes(tmp_path: Path) -> None:
    ckpt = _release(tmp_path, "n6656")
    out = tmp_path / "ft"
    args = ["finetune", str(ckpt), "--nonideal", str(_spec(tmp_path, "coupling_bits = 3\n")), "-o", str(out),
            "--steps", "1", "--chips", "1", "--per-class", "1", "--no-progress"]
    assert main(args) == 0
    r = json.loads((out / "finetune.json").read_text())
    assert r["num_classes"] == 1000 and r["image_shape"] == [3, 64, 64] and r["samples_per_chip"] == 1000
    assert r["metric"]["name"] == "fid_vs_ideal" and r["before"]["hardware"][0]["fid_vs_ideal"] > 0
    assert models.load(r["tuned"]).config.num_classes == 1000 and r["objective"] == "paired"


@pytest.mark.parametrize(("extra", "message"), [
    (["--features", "digits"], "feature space 'digits' takes 1×8×8 images"),
    (["--data-root", "{tmp}"], "a CIFAR-10 folder (3×32×32 images); the model makes (3, 64, 64)"),
    (["--ideal-per-class", "0"], "--ideal-per-class"),
    (["--features", "nope"], "--features must be one of"),
    (["--objective", "mse"], "--objective must be one of drifting, paired, not 'mse'"),
    (["--objective", "paired", "--data-root", "{tmp}"], "--objective paired distils the ideal model on common seeds"),
    (["--ideal-per-class", "3"], "--ideal-per-class sizes the drifting objective's set"),
])
def test_bad_options_of_other_families_are_one_line_and_write_nothing(tmp_path: Path, capsys, extra, message) -> None:
    ckpt = _release(tmp_path, "n6656", n=16)
    out = tmp_path / "ft"
    args = ["finetune", str(ckpt), "--nonideal", str(_spec(tmp_path, "coupling_bits = 3\n")), "-o", str(out),
            "--steps", "1", "--no-progress", *[a.format(tmp=tmp_path) for a in extra]]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (out / "finetune.json").exists() and not (out / "train-state.pt").exists()


def test_digits_models_refuse_the_other_families_options(tmp_path: Path, capsys) -> None:
    ckpt = tmp_path / "digits"
    models.save(models.Un0.init(models.PUBLISHED["digits-n64"], seed=0), ckpt)
    args = ["finetune", str(ckpt.with_suffix(".safetensors")), "--nonideal",
            str(_spec(tmp_path, "coupling_bits = 3\n")), "-o", str(tmp_path / "ft"), "--ideal-per-class", "4"]
    assert main(args) == 2
    assert "--ideal-per-class goes with non-digits models" in capsys.readouterr().err
    args[-2:] = ["--objective", "paired"]
    assert main(args) == 2
    assert "--objective goes with non-digits models" in capsys.readouterr().err


def test_the_default_data_free_objective_is_paired_distillation(tmp_path: Path, capsys) -> None:
    """Without a data set the chip trains against the ideal model on common seeds; the report
    gives the share of the per-sample image error won back, from the chips' PSNR."""
    ckpt = _release(tmp_path, "n1024")
    out = tmp_path / "ft"
    args = ["finetune", str(ckpt), "--nonideal", str(_spec(tmp_path, "coupling_bits = 3\n")), "-o", str(out),
            "--steps", "3", "--chips", "2", "--per-class", "2", "--no-progress"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    r = json.loads((out / "finetune.json").read_text())
    assert r["objective"] == "paired" and r["target"]["kind"].startswith("ideal model, paired")
    assert "the paired loss (mean squared difference to the untouched ideal model's images" in printed
    log = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    assert all("mse_0" in row and "drift_t0.2" not in row for row in log)  # the paired loss, not the drifting one
    mse = [statistics_mean([{"m": 4 * 10 ** (-c["psnr_db"] / 10)} for c in r[w]["hardware"]], "m")
           for w in ("before", "after")]
    assert r["won_back_image_error"] == pytest.approx((mse[0] - mse[1]) / mse[0])
    assert f"won back: **{100 * r['won_back_image_error']:.0f} %**" in printed


def test_a_cifar_model_finetunes_under_the_circuits_coupling(tmp_path: Path) -> None:
    ckpt = _release(tmp_path, "n1024")
    out = tmp_path / "ft"
    args = ["finetune", str(ckpt), "--coupling", "circuit", "-o", str(out), "--steps", "2", "--chips", "1",
            "--per-class", "3", "--no-progress"]
    assert main(args) == 0
    r = json.loads((out / "finetune.json").read_text())
    assert r["coupling"]["coupling"] == "circuit" and r["metric"]["name"] == "fid_vs_ideal"
    assert set(r["before"]) == {"hardware", "array", "ideal"} == set(r["after"])
    assert r["before"]["hardware"][0]["phase_error_rad"] > 0 and r["before"]["ideal"][0]["fid_vs_ideal"] == 0
    assert (out / cmd_finetune.COUPLING_FILE).is_file() and r["tau_s"]["before"] > 0
    # the tuned model is saved without the shape: on ideal oscillators it is the plain tuned model
    assert models.load(r["tuned"]).dynamics.shape is None
