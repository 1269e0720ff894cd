"""The second process, ptm45 (PTM 45 nm HP BSIM4 cards, ngspice level 54): the registry, the
cards, and the ring on it in ngspice — BSIM4 decks converge in time, the ring oscillates, and
f0 rises with the supply. The ngspice tests are slow (a few seconds each): run with --runslow."""

from __future__ import annotations

import dataclasses
import time

import pytest

from hw.spice import run
from hw.spice.process import (
    GENERIC_180NM,
    PROCESSES,
    PTM_45NM,
    Bsim4Model,
    ProcessError,
    process_named,
    sigma_vth_v,
)

_REASON = run.unavailable_reason()
needs_ngspice = pytest.mark.skipif(_REASON is not None, reason=f"ngspice-shared unavailable: {_REASON}")

DECK_LIMIT_S = 60.0  # wall-clock limit of one BSIM4 transient (run.transient halts it beyond)
# A 10-cycle ring transient at 100 points per period takes ~1 s on a 2-core machine; a run
# that converges badly (timestep cut, Newton retries) takes tens of seconds: 10 s tells them apart.
RING_CONVERGE_S = 10.0
PAIR_CONVERGE_S = 20.0  # two rings and a coupler DAC, 40 cycles
SUPPLY_STEPS = (0.9, 1.0, 1.1)  # x VDD: the supply corners of the issue (±10 %)
ENERGY_WINDOW = (0.3, 3.0)  # as in test_ring_spice: energy per cycle against C_total VDD^2


def test_registry_names_both_processes():
    assert list(PROCESSES) == ["generic180", "ptm45"]
    assert process_named("generic180") is GENERIC_180NM and process_named("ptm45") is PTM_45NM
    assert PTM_45NM.key == "ptm45" and PTM_45NM.vdd_v == 1.0  # PTM 45 nm HP: nominal VDD 1.0 V


@pytest.mark.parametrize("name", ["ptm32", "", "PTM45", None])
def test_registry_rejects_an_unknown_name(name):
    with pytest.raises(ProcessError, match=r"^process must be one of generic180, ptm45, not .+$"):
        process_named(name)


def test_ptm45_cards_are_bsim4_level_54():
    for card, pol in ((PTM_45NM.nmos, "nmos"), (PTM_45NM.pmos, "pmos")):
        p = card.spice_params()
        assert isinstance(card, Bsim4Model) and card.polarity == pol
        assert p["level"] == 54 and str(p["version"]).startswith("4.")
        assert p["vth0"] == card.vth0_v and (p["vth0"] > 0) == (pol == "nmos")
    # L_eff = 45 nm + XL - 2 LINT = 17.5 nm, as PTM states
    assert 45e-9 + PTM_45NM.nmos.dl_m == pytest.approx(17.5e-9)
    with pytest.raises(ValueError, match=r"params must not repeat a named field, got \['vth0'\]"):
        dataclasses.replace(PTM_45NM.nmos, params=(("vth0", 0.3),))


def test_mismatch_moves_the_threshold_magnitude_for_both_polarities():
    n = PTM_45NM.nmos.mismatched(name="n1", dvth_v=0.01, dbeta_rel=0.02)
    p = PTM_45NM.pmos.mismatched(name="p1", dvth_v=0.01, dbeta_rel=0.02)
    assert n.vth0_v == pytest.approx(PTM_45NM.nmos.vth0_v + 0.01) and p.vth0_v == pytest.approx(PTM_45NM.pmos.vth0_v - 0.01)
    assert n.u0_m2_per_vs == pytest.approx(PTM_45NM.nmos.u0_m2_per_vs * 1.02)
    # Pelgrom per process: the 45 nm A_VT (2.5 mV um) is half the 180 nm one (5 mV um)
    assert sigma_vth_v(1e-6, 1e-6, process=PTM_45NM) == pytest.approx(0.5 * sigma_vth_v(1e-6, 1e-6))


def test_generic180_cells_are_unchanged_by_the_registry():
    from hw.spice.cells import CouplerDAC, RingOscillator, dac_for, ring_for

    assert ring_for("generic180") == RingOscillator() and dac_for("generic180") == CouplerDAC()
    assert ring_for("ptm45").process is PTM_45NM and dac_for("ptm45").process is PTM_45NM


@pytest.fixture(scope="module")
def osc45():
    from hw.spice.cells import ring_for

    return ring_for("ptm45")


@pytest.mark.slow
@needs_ngspice
def test_bsim4_ring_deck_converges_under_its_limit(osc45):
    from hw.measure import rising_crossings
    from hw.spice.cells import deck, ring_bench, ring_kick

    period_s = 1 / 2.5e9
    stop_s = 12 * period_s
    text = deck(ring_bench(osc45, vctrl_v=osc45.vctrl_nominal_v), step_s=period_s / 100, stop_s=stop_s,
                ic=ring_kick(osc45))
    assert "level=54" in text.replace(" ", "").lower()
    t0 = time.perf_counter()
    tr = run.transient(text, stop_s=stop_s, timeout_s=DECK_LIMIT_S)
    wall = time.perf_counter() - t0
    assert wall < RING_CONVERGE_S, f"BSIM4 ring took {wall:.1f} s"
    assert tr.time_s[-1] == pytest.approx(stop_s, rel=1e-6)
    assert rising_crossings(tr.time_s, tr.v("o0"), level=osc45.process.vdd_v / 2).size >= 8


@pytest.mark.slow
@needs_ngspice
def test_bsim4_pair_deck_converges_under_its_limit(osc45):
    from hw.spice.cells import dac_for, deck, pair_bench, pair_kick

    period_s = 1 / 1.5e9  # one coupler's load slows the 2.5 GHz cell to ~1.5 GHz
    stop_s = 40 * period_s
    bench = pair_bench(osc45, dac_for("ptm45").with_code(7), vctrl_a_v=osc45.vctrl_nominal_v,
                       vctrl_b_v=osc45.vctrl_nominal_v)
    text = deck(bench, step_s=period_s / 100, stop_s=stop_s, ic=pair_kick(osc45))
    t0 = time.perf_counter()
    tr = run.transient(text, stop_s=stop_s, timeout_s=DECK_LIMIT_S)
    wall = time.perf_counter() - t0
    assert wall < PAIR_CONVERGE_S, f"BSIM4 pair took {wall:.1f} s"
    assert tr.time_s[-1] == pytest.approx(stop_s, rel=1e-6)


@pytest.mark.slow
@needs_ngspice
def test_ring_on_ptm45_oscillates_and_its_energy_is_the_switched_cv2(osc45):
    from hw.measure import measure_ring

    m = measure_ring(osc45, vctrl_v=osc45.vctrl_nominal_v)
    assert m.cycles >= 8
    assert 0.5e9 < m.f0_hz < 10e9  # five 45 nm stages on ~2 fF nodes: GHz
    ratio = m.energy_per_cycle_j / (osc45.switched_capacitance_f() * osc45.process.vdd_v**2)
    assert ENERGY_WINDOW[0] < ratio < ENERGY_WINDOW[1], ratio


@pytest.mark.slow
@needs_ngspice
def test_f0_rises_with_the_supply_on_ptm45():
    """The supply corners at the trimmed control: f0(0.9 VDD) < f0(VDD) < f0(1.1 VDD)."""
    from hw.measure import measure_ring
    from hw.spice.cells import ring_for

    f = []
    for scale in SUPPLY_STEPS:
        osc = ring_for(dataclasses.replace(PTM_45NM, vdd_v=PTM_45NM.vdd_v * scale))
        f.append(measure_ring(osc, vctrl_v=osc.vctrl_nominal_v).f0_hz)
    assert f[0] < f[1] < f[2], f


@needs_ngspice
def test_ngspice_runs_bsim4_in_one_thread() -> None:
    """Set when libngspice loads (`hw.spice.run`): steady BSIM4 run times on a shared machine."""
    # ngspice may print a line about its background thread before the value
    assert run._ngspice().exec_command("echo $num_threads").strip().splitlines()[-1] == "1"
