"""The array check: compiled (and random) cells in ngspice against oscsim on the measured
coupling function.

Skipped, with the reason, only where PySpice or libngspice is absent. The circuit has no
noise source, so ngspice gives the same waveforms every run and the figures below are
repeatable; the tolerances are set from the measured runs (docs/cells.md) with room for a
different ngspice build, and each is far below what a wrong model gives: the sine-only
oscsim and the uncoupled prediction miss by 0.5–1.5 rad on the same runs.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from hw.spice import run

_REASON = run.unavailable_reason()
pytestmark = pytest.mark.skipif(_REASON is not None, reason=f"ngspice-shared unavailable: {_REASON}")

SEED = 2  # initial phases: uniform in [−π, π) from this seed


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    import compiler
    import models
    from analysis.array_check import run_check
    from hw.calibration import Calibration

    cal = Calibration.default()
    ir = compiler.compile(models.Un0.init(models.PUBLISHED["digits-n64"], seed=0),
                          compiler.CompileOptions(bits=4, tile=8), calibration=cal)
    return run_check(ir, tmp_path_factory.mktemp("array"), quick=True, n_cells=4, calibration=cal, seed=SEED)


@pytest.mark.slow
def test_spice_follows_oscsim_on_the_compiled_cells(report) -> None:
    assert report["trim"]["error_rel"] < 1e-3
    assert report["coupling_model"].startswith("measured coupling function")
    # measured: 0.0x rad; the sine-only model and the uncoupled prediction miss by far more
    assert report["mean_circular_error_rad"] < 0.3
    assert report["mean_circular_error_rad"] < 0.5 * report["uncoupled_mean_circular_error_rad"]
    assert report["mean_circular_error_rad"] < report["sine_only_mean_circular_error_rad"]
    assert report["start_error_rad"] < 0.6  # the .ic start put the cells near their phases


@pytest.mark.slow
def test_check_writes_plot_deck_and_report(report) -> None:
    from pathlib import Path

    for key in ("plot", "deck", "report"):
        assert Path(report[key]).stat().st_size > 0
    assert Path(report["deck"]).name == "array-check.cir"
    assert Path(report["deck"]).read_text().rstrip().endswith(".end")
    doc = json.loads(Path(report["report"]).read_text())
    for key in ("final_circular_error_rad", "mean_circular_error_rad", "uncoupled_final_circular_error_rad",
                "uncoupled_mean_circular_error_rad"):
        assert isinstance(doc[key], float) and doc[key] >= 0
    assert report["seconds"] < 60


@pytest.mark.slow
def test_cli_random_arrays_write_the_distribution(tmp_path) -> None:
    from un0hw.cli import main

    out = tmp_path / "rand"
    assert main(["cells", "check-array", "--random", "2", "--seed", "5", "--quick", "--no-progress",
                 "-o", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    for key in ("median_final_circular_error_rad", "median_mean_circular_error_rad", "median_ratio_to_uncoupled"):
        assert isinstance(summary[key], float)
    assert summary["runs"] == 2 and len(summary["arrays"]) == 2
    assert all(4 <= a["n_cells"] <= 8 for a in summary["arrays"])
    assert summary["median_ratio_to_uncoupled"] < 0.5  # measured ~0.1
    for k in range(2):
        assert (out / f"run{k:02d}" / "array-check.png").stat().st_size > 0


def test_a_bad_input_is_refused() -> None:
    from analysis.array_check import ArrayCheckError, simulate_spice_array

    with pytest.raises(ArrayCheckError, match="need a dict from compiler.emit.spice_array"):
        simulate_spice_array({"format": "other"}, [0.0] * 4)


def test_realised_params_carry_the_coupling_function() -> None:
    from analysis.array_check import realised_params
    from compiler.emit import random_circuit_array
    from hw.calibration import Calibration

    doc = random_circuit_array(np.random.default_rng(0), 5, Calibration.default())
    p = realised_params(doc)
    assert p.K_h is not None and p.K_h.order == 3
    assert p.omega.tolist() == pytest.approx(doc["omega_trimmed"])
    sine = realised_params(doc, sine_only=True)
    assert sine.K_h is None and np.allclose(sine.K.numpy(), p.K.numpy())
    free = realised_params(doc, coupled=False)
    assert not free.K.any() and free.omega.tolist() == pytest.approx(doc["omega"])
    measured = realised_params(doc, f_open_hz=[doc["carrier_hz"]] * 5)
    assert not measured.omega.any()
