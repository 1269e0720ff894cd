"""Sweeps and Monte Carlo for every checkpoint family: release-format CIFAR-shaped and
ImageNet-shaped models, chip fidelity without data, FID with a data set in its real layout."""

from __future__ import annotations

import csv
import json
import pickle
from pathlib import Path

import numpy as np
import pytest

import models
from analysis.sweep import SweepError, load_spec, run_sweep
from un0hw.cli import main


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path) as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def release_files(tmp_path_factory) -> dict[str, Path]:
    """Small random-init models in the release's .pt layout: CIFAR-10-shaped (10 classes,
    3×32×32, standard parameterisation) and ImageNet-64-shaped (1000 classes, 3×64×64, μP,
    reference-oscillator readout)."""
    root = tmp_path_factory.mktemp("release")
    cifar = models.Un0.init(models.PUBLISHED["n1024"].replace(n=64), seed=0)
    imagenet = models.Un0.init(models.PUBLISHED["n6656"].replace(n=32), seed=0)
    return {"cifar": models.save_release(cifar, root / "cifar10_n64.pt"),
            "imagenet": models.save_release(imagenet, root / "imagenet64_n32.pt")}


def spec_file(tmp_path: Path, ckpt: Path, body: str, name: str = "spec.toml") -> Path:
    path = tmp_path / name
    path.write_text(f'checkpoint = "{ckpt}"\n' + body)
    return path


ONE_FACTOR = """
kind = "one-factor"
factor = "coupling_bits"
values = [2, 8]
seeds = 2
samples = {samples}
"""


@pytest.mark.slow
@pytest.mark.parametrize(("family", "samples"), [("cifar", 60), ("imagenet", 1000)])
def test_a_release_checkpoint_sweeps_on_chip_fidelity(tmp_path: Path, release_files, family: str,
                                                      samples: int) -> None:
    spec = load_spec(spec_file(tmp_path, release_files[family], ONE_FACTOR.format(samples=samples)))
    result = run_sweep(spec, tmp_path / "out", progress=False)
    assert result["metric"] == "fidelity" and result["feature_space"].startswith("pixels:3x8x8")
    s = {e["value"]: e for e in result["summary"]}
    ideal = s["ideal"]
    assert ideal["phase_error_rad"] == 0 and ideal["psnr_db"] == float("inf") and ideal["fid_vs_ideal"] < 1e-9
    assert ideal["fid"] is None  # no data set: no FID against data
    assert s[2]["phase_error_rad"] > s[8]["phase_error_rad"] > 0
    assert s[2]["psnr_db"] < s[8]["psnr_db"]
    assert s[2]["fid_vs_ideal"] > s[8]["fid_vs_ideal"]
    assert result["floor"] > 0  # the sampling floor sets the scale
    points = read_csv(tmp_path / "out" / "points.csv")
    assert len(points) == 6 and points[0]["fid"] == "" and float(points[-1]["psnr_db"]) > 0
    report = (tmp_path / "out" / "report.md").read_text()
    assert "FID vs ideal" in report and "Sampling floor" in report and "| ideal |" in report
    assert (tmp_path / "out" / "sweep.png").stat().st_size > 0


@pytest.mark.slow
def test_monte_carlo_yield_on_chip_fidelity(tmp_path: Path, release_files) -> None:
    spec = load_spec(spec_file(tmp_path, release_files["cifar"], """
kind = "monte-carlo"
chips = 5
chip_group = 2
samples = 40
yield_within = 0.5
[nonideal]
coupling_bits = 5
coupling_mismatch_sigma = 0.3
"""))
    s = run_sweep(spec, tmp_path / "mc", progress=False)
    rows = read_csv(tmp_path / "mc" / "chips.csv")
    values = [float(r["fid_vs_ideal"]) for r in rows]
    assert len(rows) == 5 and len(set(values)) == 5  # every chip its own
    assert s["metric"] == "fidelity" and s["limit"] == pytest.approx(0.5 * s["sampling_floor"])
    assert s["yield"] == sum(v <= s["limit"] for v in values) / 5
    assert json.loads((tmp_path / "mc" / "summary.json").read_text())["chips"] == 5
    assert "sampling floor" in (tmp_path / "mc" / "report.md").read_text()


def write_cifar(root: Path, per_batch: int = 40) -> Path:
    """A tiny CIFAR-10 in the real "python version" layout (random images)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                 b"labels": [int(x) for x in rng.integers(0, 10, per_batch)]}
        with open(folder / name, "wb") as fh:
            pickle.dump(batch, fh)
    return root


@pytest.mark.slow
def test_with_a_data_set_the_points_score_fid_too(tmp_path: Path, release_files) -> None:
    data = write_cifar(tmp_path / "cifar")
    spec = load_spec(spec_file(tmp_path, release_files["cifar"], ONE_FACTOR.format(samples=60).replace(
        "seeds = 2", "seeds = 1") + f'data = "{data}"\nfeatures = "pixels"\n'))
    result = run_sweep(spec, tmp_path / "out", progress=False)
    assert result["metric"] == "fid" and result["label"].startswith("FID (pixels) vs cifar10-train")
    s = {e["value"]: e for e in result["summary"]}
    assert s["ideal"]["fid"] > 0 and s[2]["fid"] is not None and s[2]["precision"] is not None
    assert s[2]["phase_error_rad"] > 0  # fidelity rides along
    assert result["floor"] > 0  # test split vs train split
    # the same spec asking for chip fidelity alone needs no data key
    with pytest.raises(SweepError, match=r"'data' goes unused with metric = \"fidelity\""):
        load_spec(spec_file(tmp_path, release_files["cifar"], ONE_FACTOR.format(samples=60)
                            + f'data = "{data}"\nmetric = "fidelity"\n', "f.toml"))


@pytest.mark.parametrize(("body", "message"), [
    ('metric = "fid"\n', r"metric = \"fid\" needs a data set: 'data'"),
    ('features = "digits"\n', r"'features': feature space 'digits' takes 1×8×8 images"),
])
def test_family_mistakes_are_one_line(tmp_path: Path, release_files, body: str, message: str) -> None:
    spec = load_spec(spec_file(tmp_path, release_files["cifar"], ONE_FACTOR.format(samples=20) + body))
    with pytest.raises(SweepError, match=message):
        run_sweep(spec, tmp_path / "out", progress=False)
    assert not (tmp_path / "out" / "spec.json").exists()  # nothing left that blocks a rerun


@pytest.mark.parametrize(("body", "message"), [
    ('metric = "best"\n', r"'metric' must be one of auto, fid, fidelity, not 'best'"),
    ('data = "nowhere"\n', r"'data': .*nowhere does not exist"),
    ('inception_weights = "none.pth"\n', r"'inception_weights': .*none\.pth does not exist"),
])
def test_bad_quality_keys_name_the_file_and_key(tmp_path: Path, release_files, body: str, message: str) -> None:
    with pytest.raises(SweepError, match=rf"^{tmp_path}/spec\.toml: {message}"):
        load_spec(spec_file(tmp_path, release_files["cifar"], ONE_FACTOR.format(samples=20) + body))


def test_the_cli_sweeps_a_release_file(tmp_path: Path, release_files, capsys) -> None:
    path = spec_file(tmp_path, release_files["cifar"], ONE_FACTOR.format(samples=20).replace("seeds = 2", "seeds = 1"))
    assert main(["sweep", str(path), "-o", str(tmp_path / "cli"), "--no-progress"]) == 0
    assert "FID vs ideal" in capsys.readouterr().out
