"""Helpers for SPICE arrays: start a ring at a chosen phase, trim loaded cells to a target
frequency, and a trimmed 3-cell chain with positive codes locks in phase.

Skipped, with the reason, only where PySpice or libngspice is absent.
"""

from __future__ import annotations

import numpy as np
import pytest

from hw.spice import run

_REASON = run.unavailable_reason()
pytestmark = pytest.mark.skipif(_REASON is not None, reason=f"ngspice-shared unavailable: {_REASON}")

VCTRL_V = 1.0
KVCO_HZ_PER_V = 1.04e9  # lone-cell slope at 1.0 V (docs/cells/calibration run); only a first step
PHASE_TOL_PERIODS = 0.01  # where the first rising edge falls, in periods


@pytest.fixture(scope="module")
def osc():
    from hw.spice.cells import RingOscillator

    return RingOscillator()


@pytest.fixture(scope="module")
def snap(osc):
    from hw.measure import ring_snapshot

    return ring_snapshot(osc, vctrl_v=VCTRL_V)


@pytest.mark.parametrize("theta_rad", [0.3, 2.0, 4.0])
def test_a_ring_starts_at_the_phase_its_snapshot_sets(osc, snap, theta_rad):
    # θ = 0 at stage 0's rising crossing, so a ring started at θ next crosses at (1 − θ/2π) T.
    from hw.measure import rising_crossings
    from hw.spice.cells import deck, ring_bench

    period_s = snap.period_s
    text = deck(ring_bench(osc, vctrl_v=VCTRL_V), step_s=period_s / 200, stop_s=3 * period_s,
                ic=snap.ic("o", theta_rad))
    tr = run.transient(text, stop_s=3 * period_s)
    first = rising_crossings(tr.time_s, tr.v("o0"), level=osc.process.vdd_v / 2)[0]
    assert first / period_s == pytest.approx((1 - theta_rad / (2 * np.pi)) % 1, abs=PHASE_TOL_PERIODS)


def test_array_settings_are_checked(osc):
    from hw.spice.cells import CellError, array_bench

    with pytest.raises(CellError, match=r"^coupling \(0, 0\) must join two different cells of 0\.\.1$"):
        array_bench(osc, vctrl_v=[1.0, 1.0], couplings={(0, 0): 3})


@pytest.mark.slow
def test_trimmed_chain_locks_in_phase(osc, snap):
    # The middle cell carries two couplers, the ends one: untrimmed, the middle runs ~15 %
    # slower, far beyond 2K, and the chain cannot lock. Trimmed, it locks in phase.
    from hw.measure import ring_phase, trim_array
    from hw.spice.cells import array_bench, deck

    couplings = {(0, 1): 7, (1, 2): 7}
    target_hz = 300e6
    trim = trim_array(osc, couplings=couplings, target_f_hz=[target_hz] * 3, kvco_hz_per_v=KVCO_HZ_PER_V)
    assert trim.error_rel < 2e-3
    assert trim.vctrl_v[1] > trim.vctrl_v[0] + 0.05  # the more loaded cell needs more control
    ic: dict[str, float] = {}
    for i, theta in enumerate((0.0, -2.0, 1.5)):
        ic.update(snap.ic(f"n{i}_", theta))
    period_s = 1 / target_hz
    stop_s = 60 * period_s  # from these starts the chain's slow mode settles by ~45 periods
    tr = run.transient(deck(array_bench(osc, vctrl_v=list(trim.vctrl_v), couplings=couplings),
                            step_s=period_s / 100, stop_s=stop_s, ic=ic), stop_s=stop_s)
    phases = [ring_phase(tr.time_s, [tr.v(f"n{i}_{k}") for k in range(osc.n_stages)], level=0.9, skip_cycles=0)
              for i in range(3)]
    end = [np.interp(stop_s - 2 * period_s, t, th) for t, th in phases]
    psi = np.angle(np.exp(1j * (np.array(end) - end[0])))
    # in phase up to a static offset of ~1.5 deg: the middle cell runs at a higher control, so
    # its edges (where phase is read) have a slightly different shape
    np.testing.assert_allclose(psi, 0.0, atol=np.radians(3))


def test_measure_array_checks_its_phases(osc):
    from hw.measure import CharacterizeError, measure_array

    with pytest.raises(CharacterizeError, match=r"^theta0 must hold 2 finite phases \(one per cell\), not shape \(3,\)$"):
        measure_array(osc, couplings={(0, 1): 7}, target_f_hz=[300e6] * 2, theta0=[0.0, 1.0, 2.0],
                      carrier_hz=300e6, stop_s=1e-9)


def test_measure_array_with_a_relative_deck_path_from_another_cwd(osc, tmp_path, monkeypatch):
    # Paths given relative to the caller's folder: the deck lands there and ngspice's run (in
    # this process, the deck as text) does not depend on the working folder.
    from hw.measure import measure_array

    monkeypatch.chdir(tmp_path)
    target_hz = 300e6
    stop_s = 20 / target_hz
    got = measure_array(osc, couplings={(0, 1): 7}, target_f_hz=[target_hz] * 2, theta0=[0.0, 1.0],
                        carrier_hz=target_hz, stop_s=stop_s, points_per_period=60, trim_tol_rel=2e-3,
                        deck_path="rel/decks/array.cir")
    assert (tmp_path / "rel" / "decks" / "array.cir").read_text() == got["deck"]
    assert got["trim"].error_rel < 2e-3 and got["couplers"] == 1 and got["stop_s"] == stop_s
    assert len(got["phases"]) == 2
    for t, theta in got["phases"]:
        assert t[-1] > 0.8 * stop_s and np.all(np.diff(theta) > 0)  # every cell ran to the end
