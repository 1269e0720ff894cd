"""Sweeps: spec checking, results, resume, Monte Carlo over chips (analysis.sweep)."""

from __future__ import annotations

import csv
import json
from importlib import resources
from pathlib import Path

import pytest
import torch

import models
from analysis import sweep
from analysis.evaluate import digits_extractor, score_model
from analysis.sweep import SweepError, load_spec, run_sweep
from models.data import digits

TINY = """
kind = "one-factor"
factor = "coupling_bits"
values = [2, 8]
seeds = 2
samples = 100
"""


def write(tmp_path: Path, text: str, name: str = "spec.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "message"), [
    ("kind = 'both'", r"'kind' must be one of one-factor, monte-carlo, not 'both'"),
    (TINY + "colour = 1\n", r"unknown key\(s\) colour; valid: "),
    (TINY.replace("coupling_bits", "bits"), r"'factor' must be one of phase_noise_rad_per_sqrt_t, .* not 'bits'"),
    (TINY.replace("[2, 8]", "[0, 8]"), r"'values' entry 0 for coupling_bits: NonIdeal\.coupling_bits must be None or an int"),
    (TINY.replace("[2, 8]", "[]"), r"'values' must be a non-empty list"),
    (TINY.replace("[2, 8]", "[8, 8]"), r"'values' has repeated entries"),
    (TINY.replace("seeds = 2", "seeds = 0"), r"'seeds' must be an integer >= 1, not 0"),
    (TINY + "[nonideal]\nphase_noise = 0.1\n", r"\[nonideal\]: unknown key\(s\) phase_noise; valid: "),
    (TINY + "[nonideal]\nchips = 3\n", r"\[nonideal\]: 'chips' is set by the sweep"),
    (TINY + "[nonideal]\ncoupling_read_noise = -1\n", r"\[nonideal\]: NonIdeal\.coupling_read_noise must be"),
    ("kind = 'one-factor'\nfactor = [", r"not valid TOML"),
    ("kind = 'monte-carlo'\nvalues = [1]\n", r"'values' belongs to one-factor sweeps, not monte-carlo"),
    (TINY.replace("coupling_bits", "compile.keep").replace("[2, 8]", "[0.5, 2.0]"),
     r"'values' entry 2\.0 for compile\.keep: "),
])
def test_bad_specs_name_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SweepError, match=rf"^{tmp_path}/spec\.toml.*{message}"):
        load_spec(path)


def test_shipped_specs_load() -> None:
    specs = resources.files("analysis") / "specs"
    names = sorted(p.name for p in specs.iterdir() if p.name.endswith(".toml"))
    assert {"coupling-bits.toml", "montecarlo.toml", "phase-noise.toml", "sparsity.toml"} <= set(names)
    for name in names:
        spec = load_spec(Path(str(specs / name)))
        assert spec.kind in sweep.KINDS
    bits = load_spec(Path(str(specs / "coupling-bits.toml")))
    assert (len(bits.values), bits.seeds, bits.samples) == (10, 3, 2000)  # the timed sweep
    assert load_spec(Path(str(specs / "montecarlo.toml"))).chips >= 50


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path) as fh:
        return list(csv.DictReader(fh))


@pytest.mark.slow
def test_sweep_results_references_and_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = load_spec(write(tmp_path, TINY))
    calls: list[tuple] = []
    real = sweep._Context.score_point

    def counted(self, value, seed):
        calls.append((value, seed))
        if len(calls) == 4 and not hasattr(counted, "crashed"):
            counted.crashed = True
            raise KeyboardInterrupt  # killed after three finished points
        return real(self, value, seed)

    monkeypatch.setattr(sweep._Context, "score_point", counted)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, tmp_path / "out", progress=False)
    assert len((tmp_path / "out" / "points.jsonl").read_text().splitlines()) == 3
    assert not (tmp_path / "out" / "report.md").exists()
    calls.clear()
    run_sweep(spec, tmp_path / "out", progress=False)
    assert len(calls) == 3  # only what was missing
    calls.clear()
    result = run_sweep(spec, tmp_path / "out", progress=False)
    assert calls == []  # a finished sweep only rewrites its outputs

    points = read_csv(tmp_path / "out" / "points.csv")
    assert [(p["value"], p["seed"]) for p in points] == [
        ("ideal", "0"), ("ideal", "1"), ("2", "0"), ("2", "1"), ("8", "0"), ("8", "1")]
    # an uninterrupted run gives the same numbers
    fresh = run_sweep(spec, tmp_path / "fresh", progress=False)
    assert read_csv(tmp_path / "fresh" / "points.csv") == [
        {**p, "seconds": q["seconds"]} for p, q in zip(points, read_csv(tmp_path / "fresh" / "points.csv"))]
    summary = {e["value"]: e for e in result["summary"]}
    assert summary["ideal"]["runs"] == 2 and summary[8]["fid_lo"] <= summary[8]["fid"] <= summary[8]["fid_hi"]
    # 2-bit couplings wreck the model; 8 bits is close to ideal on the same seed phases
    assert summary[2]["fid"] > 5 * summary["ideal"]["fid"]
    assert abs(summary[8]["fid"] - summary["ideal"]["fid"]) < 0.1 * summary["ideal"]["fid"]
    assert result["floor"] == pytest.approx(fresh["floor"]) and 4 < result["floor"] < 5
    for name in ("summary.csv", "sweep.png", "report.md", "spec.json"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    report = (tmp_path / "out" / "report.md").read_text()
    assert "| ideal |" in report and "| 2 |" in report and "Data floor" in report

    other = load_spec(write(tmp_path, TINY.replace("samples = 100", "samples = 200"), "other.toml"))
    with pytest.raises(SweepError, match=r"holds a sweep of another spec \(differs in samples\)"):
        run_sweep(other, tmp_path / "out", progress=False)


def test_monte_carlo_chips_on_the_chip_axis_equal_chips_alone(tmp_path: Path) -> None:
    """Static terms only: chip c scored inside a group of chips (one simulator call)
    equals chip c scored on its own; the yield counts chips within x % of ideal."""
    spec = load_spec(write(tmp_path, """
kind = "monte-carlo"
chips = 4
chip_group = 3
samples = 100
yield_within = 0.05
[nonideal]
coupling_bits = 4
coupling_mismatch_sigma = 0.2
chip_seed = 10
"""))
    s = run_sweep(spec, tmp_path / "mc", progress=False)
    rows = read_csv(tmp_path / "mc" / "chips.csv")
    assert [int(r["chip"]) for r in rows] == [10, 11, 12, 13]
    model, ex, ref = models.load(models.SHIPPED), digits_extractor(), digits("test")
    alone = score_model(model, ex, ref, per_class=10, seed=0, nonideal=spec.nonideal.replace(chip_seed=12))
    assert float(rows[2]["fid"]) == pytest.approx(alone.fid, rel=1e-6)
    assert len({r["fid"] for r in rows}) == 4  # chips differ
    fids = [float(r["fid"]) for r in rows]
    assert s["yield"] == sum(f <= s["ideal_fid"] * 1.05 for f in fids) / 4
    assert json.loads((tmp_path / "mc" / "summary.json").read_text())["chips"] == 4
    assert (tmp_path / "mc" / "montecarlo.png").stat().st_size > 0


@pytest.mark.slow
def test_parallel_workers_give_the_serial_numbers(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, TINY.replace("seeds = 2", "seeds = 1") + "[nonideal]\nphase_noise_rad_per_sqrt_t = 0.05\n"))
    run_sweep(spec, tmp_path / "serial", progress=False)
    run_sweep(spec, tmp_path / "parallel", jobs=2, progress=False)
    key = lambda r: (r["value"], r["seed"])
    serial = sorted(read_csv(tmp_path / "serial" / "points.csv"), key=key)
    parallel = sorted(read_csv(tmp_path / "parallel" / "points.csv"), key=key)
    for a, b in zip(serial, parallel, strict=True):
        assert key(a) == key(b)
        # one thread per worker vs two in the parent: GEMM sums in another order
        assert float(a["fid"]) == pytest.approx(float(b["fid"]), rel=1e-4)


@pytest.mark.slow
def test_sparsity_through_the_compiler(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, """
kind = "one-factor"
factor = "compile.keep"
values = [0.05, 1.0]
seeds = 1
samples = 100
[compile]
prune = "magnitude"
bits = 8
"""))
    summary = {e["value"]: e for e in run_sweep(spec, tmp_path / "sp", progress=False)["summary"]}
    assert summary[0.05]["fid"] > 1.5 * summary[1.0]["fid"]  # 5 % of the couplings is not the model
    assert summary[1.0]["fid"] < 1.5 * summary["ideal"]["fid"]  # everything kept, 8-bit codes


def test_hardware_from_a_calibration(tmp_path: Path) -> None:
    """A cell's figures → NonIdeal at time scale τ: σ_φ = 2π f0 σ_T √f0 · √τ,
    σ_ω = 2π σ(f0) τ, log-normal σ with the coupler's relative spread, its code width."""
    import math

    from hw.calibration import Calibration

    cal = Calibration.default()
    tau = 1e-7
    ni = sweep.nonideal_from_calibration(cal, tau, readout_bits=6)
    assert ni.phase_noise_rad_per_sqrt_t == pytest.approx(
        2 * math.pi * cal.f0_hz * cal.period_jitter_s * math.sqrt(cal.f0_hz) * math.sqrt(tau))
    assert ni.freq_mismatch_rad_per_t == pytest.approx(2 * math.pi * cal.sigma_f0_rel * cal.f0_hz * tau)
    gains = torch.exp(ni.coupling_mismatch_sigma * torch.randn(200_000, generator=torch.Generator().manual_seed(0),
                                                               dtype=torch.float64))
    assert float(gains.std() / gains.mean()) == pytest.approx(cal.sigma_k_rel, rel=0.02)
    assert (ni.coupling_bits, ni.readout_bits) == (cal.coupler_bits, 6)

    spec = load_spec(write(tmp_path, TINY + f'calibration = "default"\ntau_s = {tau}\n[nonideal]\nreadout_bits = 5\n'))
    assert spec.nonideal == sweep.nonideal_from_calibration(cal, tau, readout_bits=5)
    assert (spec.calibration, spec.tau_s) == ("default", tau)
    with pytest.raises(SweepError, match=r"'tau_s' goes with 'calibration'"):
        load_spec(write(tmp_path, TINY + "tau_s = 1e-7\n", "t.toml"))
    with pytest.raises(SweepError, match=r"'calibration': "):
        load_spec(write(tmp_path, TINY + 'calibration = "nope.json"\n', "c.toml"))
