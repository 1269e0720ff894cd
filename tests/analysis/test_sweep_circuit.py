"""Sweeps under the circuit's coupling function: `coupling = "circuit"`, `trim` (analysis.sweep)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

import models
from analysis import sweep
from analysis.evaluate import digits_extractor, score_model
from analysis.sweep import IDEAL, SweepError, circuit_shape, load_spec, run_sweep
from hw.calibration import Calibration
from models.data import digits

BASE = """
kind = "one-factor"
checkpoint = "tiny.safetensors"
factor = "phase_noise_rad_per_sqrt_t"
values = [0.1]
seeds = 1
samples = 100
"""


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    models.save(models.Un0.init(models.PUBLISHED["digits-n64"], seed=0), tmp_path / "tiny")
    return tmp_path / "tiny.safetensors"


def write(tmp_path: Path, text: str, name: str = "spec.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_default_spec_is_unchanged(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, BASE))
    assert (spec.coupling, spec.trim) == ("sine", None)
    # spec.json of a sine sweep has exactly the keys it had before: old folders resume
    assert set(spec.to_dict()) == {
        "kind", "title", "checkpoint", "nonideal", "compile", "factor", "values", "seeds", "samples", "x_scale",
        "batch_size", "seed", "chips", "yield_within", "chip_group", "calibration", "tau_s"}
    assert "circuit" not in sweep._coupling_note(spec) and sweep._coupling_note(spec) == ""


def test_a_circuit_spec_loads_and_records_its_coupling(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, BASE + 'coupling = "circuit"\n'))
    assert (spec.coupling, spec.trim) == ("circuit", "closed")
    assert spec.to_dict()["coupling"] == "circuit" and spec.to_dict()["trim"] == "closed"
    assert load_spec(write(tmp_path, BASE + 'coupling = "circuit"\ntrim = "open"\n', "o.toml")).trim == "open"
    assert "trim closed" in sweep._coupling_note(spec)


@pytest.mark.parametrize(("extra", "message"), [
    ('coupling = "cosine"\n', r"'coupling' must be one of sine, circuit, not 'cosine'"),
    ('trim = "open"\n', r"'trim' goes with coupling = \"circuit\""),
    ('coupling = "sine"\ntrim = "closed"\n', r"'trim' goes with coupling = \"circuit\""),
    ('coupling = "circuit"\ntrim = "trajectory"\n', r"'trim' must be one of closed, open, not 'trajectory'"),
    ('coupling = "circuit"\ncalibration = "sine.json"\ntau_s = 1e-6\n', r"is sine-only \(format 1\)"),
    ('coupling = "circuit"\ncalibration = "nope.json"\n', r"'calibration': "),
])
def test_bad_coupling_keys_name_the_file_and_key(tmp_path: Path, extra: str, message: str) -> None:
    Calibration.default().as_sine_only().save(tmp_path / "sine.json")
    with pytest.raises(SweepError, match=rf"^{tmp_path}/spec\.toml: .*{message}"):
        load_spec(write(tmp_path, BASE + extra))


def test_the_points_run_under_the_shape_and_the_ideal_stays_sine(tmp_path: Path, tiny: Path) -> None:
    spec = load_spec(write(tmp_path, BASE + 'coupling = "circuit"\n[compile]\nbits = 6\ntile = 32\n'))
    ctx = sweep._Context(spec)
    assert ctx.model_for(IDEAL) is ctx.model and ctx.model.dynamics.shape is None
    point = ctx.model_for(0.1)
    assert point is not ctx.model and point is ctx.hardware_model()
    _, shape = circuit_shape(ctx.model, {"bits": 6, "tile": 32}, Calibration.default(), trim="closed")
    assert torch.equal(point.dynamics.shape.K, shape.K) and torch.equal(point.dynamics.shape.drive, shape.drive)
    assert torch.equal(point.dynamics.K, ctx.model.dynamics.K)  # the checkpoint itself, not its array

    sine = sweep._Context(load_spec(write(tmp_path, BASE, "sine.toml")))
    assert sine.model_for(0.1) is sine.model and sine.hardware_model() is sine.model


def test_a_compile_factor_runs_each_array_under_its_own_shape(tmp_path: Path, tiny: Path) -> None:
    text = BASE.replace('"phase_noise_rad_per_sqrt_t"', '"compile.bits"').replace("[0.1]", "[6]")
    ctx = sweep._Context(load_spec(write(tmp_path, text + 'coupling = "circuit"\ntrim = "open"\n[compile]\ntile = 32\n')))
    model = ctx.model_for(6)
    assert model.dynamics.shape is not None and model.dynamics.shape.constant
    assert model.config.parameterization == "standard"  # the array's model (ArrayIR.to_model)


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path) as fh:
        return list(csv.DictReader(fh))


def test_a_circuit_sweep_and_monte_carlo_score_under_the_measured_h(tmp_path: Path, tiny: Path) -> None:
    text = BASE + 'coupling = "circuit"\n[compile]\nbits = 6\ntile = 32\n'
    spec = load_spec(write(tmp_path, text))
    run_sweep(spec, tmp_path / "out", progress=False)
    rows = {r["value"]: r for r in read_csv(tmp_path / "out" / "points.csv")}
    model, ex, ref = models.load(tiny), digits_extractor(), digits("test")
    ideal = score_model(model, ex, ref, per_class=10, seed=0)
    assert float(rows["ideal"]["fid"]) == pytest.approx(ideal.fid, rel=1e-6)  # the sine model
    _, shape = circuit_shape(model, {"bits": 6, "tile": 32}, Calibration.default(), trim="closed")
    model.dynamics.shape = shape
    hw = spec.nonideal.replace(phase_noise_rad_per_sqrt_t=0.1)
    assert float(rows["0.1"]["fid"]) == pytest.approx(score_model(model, ex, ref, per_class=10, seed=0, nonideal=hw).fid,
                                                      rel=1e-6)
    assert "circuit's measured coupling function" in (tmp_path / "out" / "report.md").read_text()
    assert json.loads((tmp_path / "out" / "spec.json").read_text())["coupling"] == "circuit"
    # the same spec with the sine coupling is another sweep (a folder of one refuses the other)
    with pytest.raises(SweepError, match=r"differs in coupling, trim"):
        run_sweep(load_spec(write(tmp_path, BASE + "[compile]\nbits = 6\ntile = 32\n", "sine.toml")), tmp_path / "out",
                  progress=False)

    mc = load_spec(write(tmp_path, 'kind = "monte-carlo"\ncheckpoint = "tiny.safetensors"\nchips = 2\nchip_group = 2\n'
                                   'samples = 100\ncoupling = "circuit"\n[compile]\nbits = 6\ntile = 32\n'
                                   '[nonideal]\ncoupling_mismatch_sigma = 0.2\nchip_seed = 4\n', "mc.toml"))
    s = run_sweep(mc, tmp_path / "mc", progress=False)
    chips = read_csv(tmp_path / "mc" / "chips.csv")
    alone = score_model(model, ex, ref, per_class=10, seed=0, nonideal=mc.nonideal.replace(chip_seed=5))
    assert float(chips[1]["fid"]) == pytest.approx(alone.fid, rel=1e-5)
    assert s["ideal_fid"] == pytest.approx(ideal.fid, rel=1e-6)


def test_a_categorical_compile_factor_sweeps_and_plots(tmp_path: Path, tiny: Path) -> None:
    """String-valued compile factors (compile.couplers, compile.target, ...) run, table and plot."""
    gm = Calibration.load(Path(__file__).resolve().parents[2] / "docs" / "cells" / "generic180-gm" / "calibration.json")
    gm.save(tmp_path / "gm.json")
    text = (BASE.replace('"phase_noise_rad_per_sqrt_t"', '"compile.couplers"').replace("[0.1]", '["reciprocal", "directed"]')
            + 'coupling = "circuit"\ncalibration = "gm.json"\n[compile]\nbits = 6\ntile = 32\n')
    spec = load_spec(write(tmp_path, text))
    ctx = sweep._Context(spec)
    assert ctx.model_for("reciprocal").dynamics.shape.reciprocal
    assert not ctx.model_for("directed").dynamics.shape.reciprocal
    run_sweep(spec, tmp_path / "out", progress=False)
    rows = {r["value"]: r for r in read_csv(tmp_path / "out" / "summary.csv")}
    assert set(rows) == {"ideal", "reciprocal", "directed"}
    assert (tmp_path / "out" / "sweep.png").stat().st_size > 0
    # a reciprocal coupler cannot take 'directed': the spec says so before anything runs
    res = BASE.replace('"phase_noise_rad_per_sqrt_t"', '"compile.couplers"').replace("[0.1]", '["directed"]')
    with pytest.raises(SweepError, match=r"res\.toml: 'values' entry 'directed' for compile\.couplers: --couplers "
                                         r"directed needs a one-way coupler; the calibration's 'resistive'"):
        load_spec(write(tmp_path, res + 'coupling = "circuit"\n[compile]\ntile = 32\n', "res.toml"))
    with pytest.raises(SweepError, match=r"base\.toml \[compile\]: --couplers directed needs a one-way coupler"):
        load_spec(write(tmp_path, BASE + 'coupling = "circuit"\n[compile]\ncouplers = "directed"\n', "base.toml"))
    assert load_spec(write(tmp_path, text.replace('["reciprocal", "directed"]', '["auto"]'), "auto.toml"))
