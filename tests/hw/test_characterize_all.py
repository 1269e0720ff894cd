"""`un0hw cells characterize --quick` end to end: a measured calibration that loads, with its
plots and the decks whose hash it records. Slow (~15 s): run with --runslow."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from hw.spice import run

_REASON = run.unavailable_reason()
pytestmark = [pytest.mark.skipif(_REASON is not None, reason=f"ngspice-shared unavailable: {_REASON}"),
              pytest.mark.slow]


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    from un0hw.cli import main

    out = tmp_path_factory.mktemp("cells")
    rc = main(["cells", "characterize", "-o", str(out / "cal.json"), "--quick", "--plots", str(out / "plots"),
               "--no-progress"])
    return rc, out


def test_cli_writes_a_measured_calibration(done, capsys):
    from hw import Calibration

    rc, out = done
    assert rc == 0
    cal = Calibration.load(out / "cal.json")
    assert cal.source == "measured" and cal.ngspice_version
    assert cal.f_min_hz < cal.f0_hz < cal.f_max_hz
    k = np.array(cal.coupler_k_rad_s)
    assert k[0] == 0 and np.all(np.diff(k) > 0)
    assert k[-1] < 0.1 * 2 * np.pi * cal.f0_hz  # weak coupling: K << 2 pi f0
    assert 0 < cal.period_jitter_s < 1e-3 / cal.f0_hz
    assert 0 < cal.sigma_f0_rel < 0.2 and 0 < cal.sigma_k_rel < 0.2
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []  # no temporaries


def test_plots_and_decks_and_their_hash(done):
    from hw import Calibration

    _, out = done
    plots = out / "plots"
    for name in ("tuning.png", "k_per_code.png", "locking.png", "jitter.png"):
        assert (plots / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    decks = sorted((plots / "decks").glob("*.cir"), key=lambda p: p.name)
    assert decks and all(d.read_text().rstrip().endswith(".end") for d in decks)
    digest = hashlib.sha256()
    for d in decks:
        digest.update(d.name.encode() + b"\0" + d.read_bytes() + b"\0")
    assert Calibration.load(out / "cal.json").netlist_sha256 == digest.hexdigest()
    raw = json.loads((plots / "characterization.json").read_text())
    assert abs(raw["locking"]["in_phase"]["final_psi_deg"]) < 10
    assert abs(abs(raw["locking"]["anti_phase"]["final_psi_deg"]) - 180) < 10


def test_cli_reports_a_bad_option_as_one_line(capsys, tmp_path):
    from un0hw.cli import main

    assert main(["cells", "characterize", "-o", str(tmp_path / "c.json"), "--workers", "0"]) == 2
    assert capsys.readouterr().err == "un0hw: error: --workers must be >= 1, not 0\n"
    assert not (tmp_path / "c.json").exists()
