"""The design-space search: spec checks, the front's invariants, refusals, resume (analysis.explore)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import models
from analysis import explore
from analysis.explore import ExploreError, dominates, load_spec, pareto, run_explore
from un0hw.cli import main

HW = """
checkpoint = "published:digits-n64"
quality = "none"
trials = 6
population = 3
[space]
bits = [4, 8]
tile = [16, 32, 64]
distribution = ["point-to-point", "broadcast-bus"]
decoder = ["int8", "fp16"]
"""


def write(tmp_path: Path, text: str, name: str = "spec.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def objectives(row: dict, names) -> list[float]:
    return [float(row[o]) for o in names]


# --- the spec ----------------------------------------------------------------------------------
@pytest.mark.parametrize("text, message", [
    ("trials = 3\n[space]\nbits = [4]\n[oops]\n", "unknown key(s) oops"),
    ("trials = 3\n", "needs a [space] table"),
    ("[space]\nwidth = [4]\n", "[space] width: not a design choice"),
    ("[space]\nbits = []\n", "[space] bits: an empty list"),
    ("[space]\nbits = [4, 4]\n", "listed twice"),
    ("[space]\nkeep = { low = 1.0, high = 0.5 }\n", "[space] keep: needs low < high"),
    ("[space]\nkeep = { low = 0.1 }\n", "[space] keep: a range is"),
    ("[space]\ndecoder = [\"int3\"]\n", "'int3' is not a decoder"),
    ("[space]\ncells = { low = 1, high = 2 }\n", "[space] cells: takes a list"),
    ("[space]\ncells = [\"nowhere.json\"]\n", "'calibration'"),
    ("trials = 0\n[space]\nbits = [4]\n", "'trials' must be an integer >= 1"),
    ("quality = \"best\"\n[space]\nbits = [4]\n", "'quality' must be one of"),
    ("objectives = [\"speed\"]\n[space]\nbits = [4]\n", "'objectives' must be a list"),
    ("checkpoint = \"published:n99\"\nquality = \"none\"\n[space]\nbits = [4]\n", "published sizes are"),
    ("checkpoint = \"published:digits-n64\"\n[space]\nbits = [4]\n", "set quality = \"none\""),
    ("checkpoint = \"missing.safetensors\"\n[space]\nbits = [4]\n", "no such file"),
    ("[space]\nbits = [4]\n[compile]\nbits = 6\n", "bits both fixed in [compile] and searched"),
    ("[space]\nbits = [4]\n[compile]\ntile = 1\n", "[compile]"),
    ("[space]\nbits = [4, 20]\n", "[space] bits: 20: --bits must be an integer in 1..16"),
    ("[space]\nbits = [4]\n[constraints]\nfid_within = -1\n", "fid_within: must be a number >= 0"),
    ("[space]\nbits = [4]\n[constraints]\nmax_speed = 1\n", "unknown key 'max_speed'"),
    ("quality = \"none\"\n[space]\nbits = [4]\n[constraints]\nfid_within = 0.1\n", "needs quality other than"),
    ("[space]\nbits = [4]\n[nonideal]\nphase_noise = 1\n", "[nonideal]"),
])
def test_a_bad_spec_is_one_line_naming_file_and_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ExploreError) as err:
        load_spec(path)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_a_bad_spec_exits_2_and_writes_nothing(tmp_path, capsys):
    path = write(tmp_path, "[space]\nwidth = [4]\n")
    assert main(["explore", str(path), "-o", str(tmp_path / "out")]) == 2
    assert "width: not a design choice" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# --- the front -----------------------------------------------------------------------------------
designs_strategy = st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4), st.integers(0, 4), st.booleans()),
                            min_size=7, max_size=7)
picks_strategy = st.lists(st.integers(0, 6), min_size=1, max_size=25)


@settings(max_examples=200, deadline=None)
@given(designs_strategy, picks_strategy)
def test_the_front_is_non_dominated_and_dominates_the_rest(designs, picks):
    """A design's figures are its own (a design proposed twice scores the same), so the rows
    are picks from one table of designs."""
    spec = explore.ExploreSpec(source="x.toml", space=(explore.Choice("bits", choices=tuple(range(7))),),
                               objectives=("energy_j", "area_mm2", "latency_s"), quality="none")
    rows = [{"trial": i, "feasible": designs[d][3], "energy_j": designs[d][0], "area_mm2": designs[d][1],
             "latency_s": designs[d][2], "bits": d} for i, d in enumerate(picks)]
    front = pareto(spec, rows)
    names = list(spec.objectives)
    vals = [[r[o] for o in names] for r in front]
    assert all(r["feasible"] for r in front)
    assert not any(dominates(a, b) for a in vals for b in vals)  # non-dominated among themselves
    for r in rows:  # every feasible design off the front is dominated by, or equal to, one on it
        if r["feasible"] and r not in front:
            v = [r[o] for o in names]
            assert any(dominates(w, v) or w == v for w in vals)
    assert len({r["bits"] for r in front}) == len(front)  # one row per design


def test_dominates_is_strict():
    assert dominates([1, 2], [1, 3]) and not dominates([1, 3], [1, 3]) and not dominates([0, 4], [1, 3])


# --- a search ------------------------------------------------------------------------------------
def test_search_writes_a_non_dominated_front_with_every_objective_and_choice(tmp_path):
    spec = load_spec(write(tmp_path, HW))
    s = run_explore(spec, tmp_path / "out", progress=False)
    out = tmp_path / "out"
    for name in ("pareto.csv", "trials.csv", "pareto.png", "report.md", "summary.json", "study.journal"):
        assert (out / name).is_file(), name
    trials = read_csv(out / "trials.csv")
    front = read_csv(out / "pareto.csv")
    assert len(trials) == 6 and s["trials"] == 6 and s["front"] == len(front) >= 1
    cols = set(front[0])
    assert {"energy_j", "area_mm2", "latency_s", "bits", "tile", "distribution", "decoder"} <= cols
    names = list(spec.objectives)
    vals = [objectives(r, names) for r in front]
    assert not any(dominates(a, b) for a in vals for b in vals)
    for r in trials:
        if r["state"] == "complete":
            v = objectives(r, names)
            assert any(dominates(w, v) or w == v for w in vals)
    # the figures are the estimates' own
    assert all(float(r["energy_j"]) > 0 and float(r["area_mm2"]) > 0 for r in front)


def test_resume_continues_the_same_study_and_refuses_another_spec(tmp_path):
    path = write(tmp_path, HW)
    spec = load_spec(path)
    run_explore(spec, tmp_path / "out", progress=False)
    import dataclasses

    s = run_explore(dataclasses.replace(spec, trials=8), tmp_path / "out", progress=False)
    assert s["trials"] == 8 and len(read_csv(tmp_path / "out" / "trials.csv")) == 8
    other = load_spec(write(tmp_path, HW.replace("population = 3", "population = 4"), "other.toml"))
    with pytest.raises(ExploreError, match="another spec"):
        run_explore(other, tmp_path / "out", progress=False)


def test_a_design_proposed_again_is_not_evaluated_again(tmp_path, monkeypatch):
    calls = []
    real = explore.Evaluator.evaluate

    def counting(self, design):
        calls.append(dict(design))
        return real(self, design)

    monkeypatch.setattr(explore.Evaluator, "evaluate", counting)
    spec = load_spec(write(tmp_path, HW.replace("bits = [4, 8]", "bits = [4]").replace(
        "tile = [16, 32, 64]", "tile = [32]").replace("distribution = [\"point-to-point\", \"broadcast-bus\"]",
                                                    "distribution = [\"broadcast-bus\"]").replace(
        "decoder = [\"int8\", \"fp16\"]", "decoder = [\"int8\"]")))
    s = run_explore(spec, tmp_path / "out", progress=False)
    assert len(calls) == 1 and s["trials"] == 6 and s["complete"] == 6 and s["front"] == 1


def test_a_design_the_compiler_refuses_is_a_failed_trial_with_its_reason(tmp_path):
    spec = load_spec(write(tmp_path, HW + "couplers = [\"directed\"]\n"))
    s = run_explore(spec, tmp_path / "out", progress=False)
    trials = read_csv(tmp_path / "out" / "trials.csv")
    assert s["complete"] == 0 and s["failed"] == 6
    assert all("needs a one-way coupler" in r["error"] for r in trials)
    assert "No design could be evaluated" in (tmp_path / "out" / "report.md").read_text()


def test_cli_exits_1_when_no_design_can_be_built(tmp_path, capsys):
    path = write(tmp_path, HW.replace("trials = 6", "trials = 2") + "couplers = [\"directed\"]\n")
    assert main(["explore", str(path), "-o", str(tmp_path / "out"), "--no-progress"]) == 1
    assert "no design could be built" in capsys.readouterr().err


def test_a_constraint_that_cannot_be_met_says_so(tmp_path, capsys):
    path = write(tmp_path, HW + "[constraints]\nmax_area_mm2 = 1e-6\n")
    code = main(["explore", str(path), "-o", str(tmp_path / "out"), "--no-progress"])
    captured = capsys.readouterr()
    assert code == 1
    assert "no design met the constraints" in captured.err
    report = (tmp_path / "out" / "report.md").read_text()
    assert "**No design met the constraints.** The nearest" in report and "max_area_mm2 +" in report
    assert read_csv(tmp_path / "out" / "pareto.csv") == []
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["feasible"] == 0 and summary["nearest"] is not None


def test_a_met_constraint_keeps_only_feasible_designs_on_the_front(tmp_path):
    spec = load_spec(write(tmp_path, HW + "[constraints]\nmax_latency_s = 1.0\nmax_energy_j = 1.0\n"))
    s = run_explore(spec, tmp_path / "out", progress=False)
    front = read_csv(tmp_path / "out" / "pareto.csv")
    assert s["feasible"] == s["complete"] > 0 and front
    assert all(float(r["constraint_max_energy_j"]) <= 0 for r in front)


@pytest.mark.slow
def test_parallel_workers_give_the_serial_figures(tmp_path):
    spec = load_spec(write(tmp_path, HW))
    run_explore(spec, tmp_path / "serial", progress=False)
    run_explore(spec, tmp_path / "parallel", jobs=2, progress=False)
    key = ("bits", "tile", "distribution", "decoder")
    serial = {tuple(r[k] for k in key): r["energy_j"] for r in read_csv(tmp_path / "serial" / "trials.csv")}
    parallel = read_csv(tmp_path / "parallel" / "trials.csv")
    assert len(parallel) == 6
    for r in parallel:  # a design's figures do not depend on the process that evaluated it
        k = tuple(r[c] for c in key)
        if k in serial:
            assert r["energy_j"] == serial[k]


@pytest.mark.slow
def test_quality_is_the_chips_fid_and_the_constraint_its_distance_to_the_ideal(tmp_path):
    models.save(models.Un0.init(models.PUBLISHED["digits-n64"], seed=0), tmp_path / "tiny")
    spec = load_spec(write(tmp_path, """
checkpoint = "tiny.safetensors"
trials = 2
population = 2
samples = 100
[space]
bits = [3, 8]
tile = [32]
distribution = ["time-multiplexed", "low-swing"]
decoder = ["int8", "analog", "int4"]
[constraints]
fid_within = 0.5
"""))
    s = run_explore(spec, tmp_path / "out", progress=False)
    ideal = s["ideal"]["quality"]
    assert s["quality"] == "FID-digits" and ideal > 0
    for r in read_csv(tmp_path / "out" / "trials.csv"):
        q = float(r["quality"])
        assert q == float(r["fid"]) and 0 <= float(r["class_accuracy"]) <= 1
        assert float(r["constraint_fid_within"]) == pytest.approx((q - 1.5 * ideal) / (1.5 * ideal))
