"""Temperature and supply corners (`hw.spice.process.Process.at`, `hw.corners`): the operating
point reaches the deck, the cells move the way device physics says, the card-validity flag
follows the card's own coefficients, and the sweep's file round-trips. The ngspice tests are
slow (seconds each): run with --runslow."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hw.spice import run
from hw.spice.process import GENERIC_180NM, PROCESSES, PTM_45NM, ProcessError, process_named

_REASON = run.unavailable_reason()
needs_ngspice = pytest.mark.skipif(_REASON is not None, reason=f"ngspice-shared unavailable: {_REASON}")


# --- the operating point, without ngspice --------------------------------------------------
def test_at_scales_the_supply_and_sets_the_temperature_leaving_the_original_alone():
    for proc in PROCESSES.values():
        hot = proc.at(temp_c=85, vdd_scale=1.1)
        assert hot.temp_c == 85.0 and hot.vdd_scale == 1.1
        assert hot.vdd_v == pytest.approx(1.1 * proc.vdd_v) and hot.vdd_nominal_v == pytest.approx(proc.vdd_v)
        assert hot.temperature_k == pytest.approx(358.15)
        assert proc.nominal and not hot.nominal and proc.temp_c == 27.0
        # corners compose: a second `at` keeps what it does not change and scales from nominal
        assert hot.at(temp_c=0).vdd_v == pytest.approx(hot.vdd_v)
        assert hot.at(vdd_scale=0.9).vdd_v == pytest.approx(0.9 * proc.vdd_v)


@pytest.mark.parametrize(("kw", "what"), [
    ({"temp_c": -60}, "temperature"), ({"temp_c": 151}, "temperature"), ({"temp_c": "85"}, "temperature"),
    ({"temp_c": True}, "temperature"), ({"vdd_scale": 0.5}, "supply factor"), ({"vdd_scale": 1.4}, "supply factor"),
    ({"vdd_scale": float("nan")}, "supply factor"),
])
def test_at_refuses_an_operating_point_outside_its_range(kw, what):
    with pytest.raises(ProcessError, match=what):
        GENERIC_180NM.at(**kw)


def test_every_bench_carries_the_operating_temperature():
    from hw.spice import cells

    for proc in PROCESSES.values():
        for temp in (27, -40, 125):
            osc = cells.ring_for(proc.at(temp_c=temp))
            lines = str(cells.ring_bench(osc, vctrl_v=osc.vctrl_nominal_v)).splitlines()
            assert lines.count(f".temp {temp:g}") == 1
            pair = cells.pair_bench(osc, cells.coupler_for(osc.process), vctrl_a_v=osc.vctrl_nominal_v,
                                    vctrl_b_v=osc.vctrl_nominal_v)
            assert str(pair).splitlines().count(f".temp {temp:g}") == 1


def test_channel_noise_follows_the_operating_temperature():
    from hw.measure import channel_noise_psd_a2_per_hz
    from hw.spice import cells

    osc = cells.ring_for(GENERIC_180NM)
    hot = cells.ring_for(GENERIC_180NM.at(temp_c=125))
    p27 = channel_noise_psd_a2_per_hz(osc, vctrl_v=1.0, bias_current_a=1e-4)
    p125 = channel_noise_psd_a2_per_hz(hot, vctrl_v=1.0, bias_current_a=1e-4)
    assert p125 / p27 == pytest.approx(398.15 / 300.15)  # 4 k T γ g_m at the same bias


def test_ptm45_cards_are_flagged_where_their_mobility_degradation_turns_negative():
    # the degradation term E (UA(T) + UB(T) E), UA(T) = UA + UA1 (T/TNOM - 1): by hand for the
    # PTM 45 nm NMOS at full drive (VGS = VDD = 1 V): E = (1 + 2 * 0.46893) / 1.25e-9
    e = (1.0 + 2 * 0.46893) / 1.25e-9
    for temp, valid in ((-40, False), (0, True)):
        r = (temp + 273.15) / 300.15 - 1
        assert ((6e-10 + 4.31e-9 * r) + (1.2e-18 + 7.61e-18 * r) * e >= 0) is valid
        assert PTM_45NM.nmos.mobility_valid_at(temp, 1.0) is valid
    # the commercial and automotive hot corners are inside; -40 °C is outside for both devices
    for t in (0, 27, 85, 125):
        assert PTM_45NM.at(temp_c=t).cards_valid
    assert not PTM_45NM.at(temp_c=-40).cards_valid
    assert not PTM_45NM.pmos.mobility_valid_at(-40, 1.0)
    # level 1 has no such terms
    assert all(GENERIC_180NM.at(temp_c=t).cards_valid for t in (-55, 27, 150))


# --- in ngspice ----------------------------------------------------------------------------
def _f0(proc):
    from hw.measure import measure_ring
    from hw.spice import cells

    osc = cells.ring_for(proc)
    return measure_ring(osc, vctrl_v=osc.vctrl_nominal_v).f0_hz


@needs_ngspice
@pytest.mark.slow
@pytest.mark.parametrize("key", list(PROCESSES))
def test_energy_per_cycle_rises_with_the_supply_and_f0_peaks_inside_it(key):
    # The switched charge is C VDD per node, so the energy per cycle ~ C VDD^2 rises
    # monotonically with the supply (at the same control). f0 ~ I_starve / (C VDD) at a fixed
    # control is not monotone: I_starve rises with VDD (channel-length modulation; DIBL on the
    # 45 nm cards) while the swing grows, so f0 has a maximum — near 0.95 VDD on generic180,
    # between 1.05 and 1.1 VDD on ptm45 (measured) — and moves by under 6 % over ±10 %.
    from hw.measure import measure_ring
    from hw.spice import cells

    proc = process_named(key)
    rings = []
    for s in (0.9, 0.95, 1.0, 1.05, 1.1):
        osc = cells.ring_for(proc.at(vdd_scale=s))
        rings.append(measure_ring(osc, vctrl_v=osc.vctrl_nominal_v))
    e = np.array([r.energy_per_cycle_j for r in rings])
    assert np.all(np.diff(e) > 0), e
    assert e[-1] / e[0] == pytest.approx((1.1 / 0.9) ** 2, rel=0.25)  # C VDD^2, C itself bias-dependent
    f = np.array([r.f0_hz for r in rings])
    assert 0 < int(np.argmax(f)) < len(f) - 1, f  # an interior maximum
    assert f.max() / f.min() < 1.08


@needs_ngspice
@pytest.mark.slow
@pytest.mark.parametrize("key", list(PROCESSES))
def test_f0_falls_with_temperature_where_the_cards_are_valid(key):
    # above threshold the carriers' mobility falls as T^-1.5 (and faster with the BSIM4
    # degradation terms): a hotter starved ring runs slower
    proc = process_named(key)
    f = [_f0(proc.at(temp_c=t)) for t in (0, 27, 85, 125)]
    assert all(a > b for a, b in zip(f, f[1:], strict=False)), f


@needs_ngspice
@pytest.mark.slow
def test_corner_sweep_measures_common_and_differential_drift_and_round_trips(tmp_path):
    from hw.corners import CornerSweep, corner_sweep

    sweep = corner_sweep(tmp_path, process="generic180", coupler="resistive", temps_c=(27, 85), vdd_scales=(1.0,),
                         mc_rings=4, progress=False)
    assert [(c.temp_c, c.vdd_scale) for c in sweep.corners] == [(27.0, 1.0), (85.0, 1.0)]
    trim, hot = sweep.trim.model_terms(sweep.trim), sweep.at(85).model_terms(sweep.trim)
    assert trim == {"common_shift_rel": 0.0, "tuning_gain": 1.0, "coupling_gain": 1.0, "diff_drift_rel": 0.0}
    assert hot["common_shift_rel"] < 0 and hot["diff_drift_rel"] > 0
    # the Monte Carlo cells are the same draws at both corners: each one's f0 moves, none jumps
    mc27, mc85 = np.array(sweep.trim.mc_f0_hz), np.array(sweep.at(85).mc_f0_hz)
    assert np.all(mc85 < mc27) and np.std(mc27) > 0
    doc = json.loads((tmp_path / "corners.json").read_text())
    assert doc["format"] == "un0hw-corners/1" and len(doc["corners"]) == 2
    assert CornerSweep.load(tmp_path / "corners.json").corners == sweep.corners
    assert (tmp_path / "corners.png").stat().st_size > 0


def test_a_file_that_is_not_a_corner_sweep_is_one_clear_error(tmp_path):
    from hw.corners import CornerSweep
    from hw.measure import CharacterizeError

    bad = tmp_path / "c.json"
    bad.write_text('{"format": "something-else"}')
    with pytest.raises(CharacterizeError, match="not a corner sweep"):
        CornerSweep.load(bad)
    bad.write_text("{")
    with pytest.raises(CharacterizeError, match="cannot read"):
        CornerSweep.load(bad)
