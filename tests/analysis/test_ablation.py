"""The dynamics ablation: all eight release variants, a subset, resuming, raw readout, merging."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch

import analysis.ablation as ablation
import models
from analysis.ablation import VARIANTS, AblationError, findings, merge_results, parse_variants, run_ablation, variant_config
from models.readout import relativize
from un0hw.cli import main

TINY = {"steps": 2, "size": "digits-n64", "per_class": 10, "progress": False}


def _rows(path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


# --- the variants --------------------------------------------------------------------------
def test_the_release_eight_variants() -> None:
    assert {v.release for v in VARIANTS.values()} == {
        "decoder_only_raw", "decoder_only", "reservoir_euler1", "reservoir_euler10",
        "trained_euler1", "trained_euler2", "trained_euler5", "trained_euler10"}
    for name, v in VARIANTS.items():
        config = variant_config(name, "digits-n512")
        expected = int(v.release.rsplit("euler", 1)[1]) if "euler" in v.release else 0
        assert config.num_steps == v.steps == expected
        assert v.frozen == v.release.startswith("reservoir")
        assert config.encoding == ("raw" if v.release == "decoder_only_raw" else "sin_cos")


def test_parse_variants_keeps_the_table_order_once_each() -> None:
    assert parse_variants("all") == tuple(VARIANTS)
    assert parse_variants("decoder-only-raw, trained-5,trained-10,trained-5") == ("trained-10", "trained-5", "decoder-only-raw")
    with pytest.raises(AblationError, match=r"^unknown variant 'trained-3'; choose from trained-10, trained-5, "):
        parse_variants("trained-10,trained-3")
    with pytest.raises(AblationError, match=r"^unknown variant ''"):
        parse_variants("trained-10,")


def test_run_ablation_refuses_an_unknown_variant_before_training(tmp_path) -> None:
    with pytest.raises(AblationError, match=r"^unknown variants \['trained-3'\]; choose from trained-10, "):
        run_ablation(tmp_path / "abl", variants=("trained-1", "trained-3"), **TINY)
    with pytest.raises(AblationError, match=r"^no variants to run$"):
        run_ablation(tmp_path / "abl", variants=(), **TINY)
    assert not (tmp_path / "abl").exists()


@pytest.mark.parametrize("size", ["digits-n64", "digits-n512"])
def test_decoder_only_raw_feeds_the_raw_phases_to_the_decoder(size) -> None:
    """decoder-only-raw: the decoder's input is the (relativized) seed phases themselves,
    N numbers; decoder-only: their sin and cos, 2N numbers. The decoder's width follows."""
    theta0 = torch.empty(6, 0)
    seen = {}
    for name in ("decoder-only-raw", "decoder-only"):
        config = variant_config(name, size)
        model = models.Un0.init(config, seed=3)
        theta0 = model.sample_theta0(6, generator=torch.Generator().manual_seed(1))
        hook = model.decoder.register_forward_hook(lambda mod, args, out, name=name: seen.__setitem__(name, args[0]))
        images = model(torch.arange(6) % 10, theta0)
        hook.remove()
        assert images.shape == (6, *config.image_shape)
        assert sum(p.numel() for p in model.decoder.parameters()) == config.decoder_params
    n = models.PUBLISHED[size].n
    phases = relativize(theta0[:, :n], models.PUBLISHED[size].relativization)
    assert seen["decoder-only-raw"].shape == (6, n)
    assert torch.equal(seen["decoder-only-raw"], phases)
    assert seen["decoder-only-raw"].abs().max() > 1.5  # phases, not sines: values beyond ±1
    assert seen["decoder-only"].shape == (6, 2 * n)
    assert torch.allclose(seen["decoder-only"], torch.cat((phases.sin(), phases.cos()), dim=-1))


# --- the report's sentences ------------------------------------------------------------------
def _summary(fids: dict[str, float], sd: float = 1.0) -> list[dict]:
    return [{"variant": v, "fid": f, "fid_sd": sd} for v, f in fids.items()]


def test_findings_follow_the_numbers() -> None:
    lines = findings(_summary({"trained-10": 20.0, "trained-5": 50.0, "trained-2": 90.0, "trained-1": 150.0,
                               "reservoir-10": 140.0, "decoder-only": 160.0, "decoder-only-raw": 161.0}))
    assert lines[0] == "Release ordering (trained 10-step < reservoir < decoder only): holds here (20.00 / 140.00 / 160.00)."
    assert lines[1].startswith("Trained dynamics by Euler steps (1: 150.00 ± 1.00 → 2: 90.00 ± 1.00 → 5: 50.00")
    assert lines[1].endswith("FID falls with every added step.")
    assert lines[2].endswith("(within the two spreads added).")
    lines = findings(_summary({"trained-10": 20.0, "trained-2": 10.0, "reservoir-10": 170.0, "decoder-only": 160.0,
                               "decoder-only-raw": 190.0}))
    assert "does not hold" in lines[0]
    assert lines[1].endswith("FID does not fall with every added step.")
    assert lines[2] == "Decoder only, sin/cos vs raw readout: 160.00 ± 1.00 vs 190.00 ± 1.00 (further apart than the two spreads added)."
    assert findings(_summary({"trained-5": 1.0, "decoder-only-raw": 2.0})) == []


# --- tiny runs ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ablation")
    torch.set_num_threads(1)
    summary = run_ablation(out, variants=("decoder-only-raw", "trained-2", "trained-5"), seeds=(0, 1), **TINY)
    return out, summary


@pytest.mark.slow
def test_a_subset_of_the_new_variants_runs_end_to_end(tiny_run) -> None:
    out, summary = tiny_run
    assert {e["variant"] for e in summary} == {"trained-5", "trained-2", "decoder-only-raw"}
    assert [e["fid"] for e in summary] == sorted(e["fid"] for e in summary)
    rows = _rows(out / "ablation.csv")
    assert [(r["variant"], r["seed"]) for r in rows] == [
        ("trained-5", "0"), ("trained-5", "1"), ("trained-2", "0"), ("trained-2", "1"),
        ("decoder-only-raw", "0"), ("decoder-only-raw", "1")]
    assert all(math.isfinite(float(r["fid"])) and 0 <= float(r["precision"]) <= 1 for r in rows)
    for variant, steps, encoding in (("trained-5", 5, "sin_cos"), ("trained-2", 2, "sin_cos"), ("decoder-only-raw", 0, "raw")):
        model = models.load(out / f"{variant}-s1" / "ema.safetensors")
        assert (model.config.num_steps, model.config.encoding) == (steps, encoding)
        meta = json.loads((out / f"{variant}-s1" / "ema.json").read_text())
        assert meta["extra"]["release_variant"] == VARIANTS[variant].release
    report = (out / "ablation.md").read_text()
    assert "| decoder-only-raw |" in report and "| trained-2 |" in report
    assert "Trained dynamics by Euler steps (2: " in report
    assert "Release ordering" not in report  # trained-10 / reservoir-10 / decoder-only not run
    assert _rows(out / "pr_over_time.csv") == []  # neither 10-step model was run
    assert json.loads((out / "ablation.json").read_text())["summary"] == json.loads(json.dumps(summary))
    assert (out / "ablation.png").stat().st_size > 0


@pytest.mark.slow
def test_a_finished_run_is_not_retrained(tiny_run, monkeypatch) -> None:
    out, summary = tiny_run
    states = {p: p.stat().st_mtime_ns for p in out.glob("*-s*/train-state.pt")}
    assert len(states) == 6

    def refuse(self, **kwargs):
        raise AssertionError(f"retrained {self.out}")

    monkeypatch.setattr(ablation.Trainer, "run", refuse)
    again = run_ablation(out, variants=("trained-5", "trained-2", "decoder-only-raw"), seeds=(0, 1), **TINY)
    assert again == summary  # same checkpoints, same scoring seeds
    assert {p: p.stat().st_mtime_ns for p in out.glob("*-s*/train-state.pt")} == states


@pytest.mark.slow
def test_merge_names_its_sources_and_refuses_a_doubled_variant(tiny_run, tmp_path) -> None:
    out, _ = tiny_run
    other = tmp_path / "other"
    torch.set_num_threads(1)
    run_ablation(other, variants=("decoder-only",), seeds=(0, 1), **TINY)
    merged = tmp_path / "merged"
    summary = merge_results(merged, {"run A": out, "run B": other}, steps=2, seeds=(0, 1))
    assert {e["variant"] for e in summary} == {"trained-5", "trained-2", "decoder-only", "decoder-only-raw"}
    assert [r["variant"] for r in _rows(merged / "ablation.csv")][::2] == ["trained-5", "trained-2", "decoder-only", "decoder-only-raw"]
    report = (merged / "ablation.md").read_text()
    assert report.endswith("Merged: trained-5, trained-2, decoder-only-raw from run A; decoder-only from run B.\n")
    assert "Decoder only, sin/cos vs raw readout" in report
    part = merge_results(tmp_path / "part", {"A": (out, ["trained-2"]), "B": other}, steps=2, seeds=(0, 1))
    assert [e["variant"] for e in part] == sorted(["trained-2", "decoder-only"], key={e["variant"]: e["fid"] for e in part}.get)
    assert (tmp_path / "part" / "ablation.md").read_text().endswith("Merged: trained-2 from A; decoder-only from B.\n")
    with pytest.raises(AblationError, match=r"ablation\.csv has no rows of trained-10$"):
        merge_results(tmp_path / "bad", {"A": (out, ["trained-2", "trained-10"])}, steps=2, seeds=(0, 1))
    with pytest.raises(AblationError, match=r"^variant trained-5 is in both 'run A' and 'again'$"):
        merge_results(tmp_path / "bad", {"run A": out, "again": out}, steps=2, seeds=(0, 1))
    with pytest.raises(AblationError, match=r"has seeds \[0, 1\], not \[0, 1, 2\]$"):
        merge_results(tmp_path / "bad", {"run B": other}, steps=2, seeds=(0, 1, 2))
    rows = _rows(other / "ablation.csv")
    for r in rows:
        r["floor"] = str(float(r["floor"]) * 1.01)  # scored against other data
    with open(other / "ablation.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(AblationError, match=r"^the folders' data floors differ"):
        merge_results(tmp_path / "bad", {"run A": out, "run B": other}, steps=2, seeds=(0, 1))


# --- the command line ------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "named"), [("trained-10,trained-3", "'trained-3'"), ("everything", "'everything'"),
                                              ("", "''")])
def test_cli_refuses_an_unknown_variant_in_one_line(capsys, tmp_path, value, named) -> None:
    out = tmp_path / "abl"
    assert main(["ablate", "--out", str(out), "--variants", value, "--no-progress"]) == 2
    captured = capsys.readouterr()
    lines = [ln for ln in captured.err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"un0hw: error: --variants: unknown variant {named}; choose from "), lines
    assert "decoder-only-raw" in lines[0] and captured.out == ""
    assert not out.exists()  # refused before anything was created


def test_cli_runs_the_chosen_variants_only(capsys, tmp_path) -> None:
    out = tmp_path / "abl"
    torch.set_num_threads(1)
    rc = main(["ablate", "--out", str(out), "--variants", "decoder-only-raw", "--steps", "1", "--seeds", "1",
               "--size", "digits-n64", "--per-class", "10", "--no-progress"])
    assert rc == 0
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["decoder-only-raw-s0"]
    assert [r["variant"] for r in _rows(out / "ablation.csv")] == ["decoder-only-raw"]
    assert "(1 variants)" in capsys.readouterr().out
