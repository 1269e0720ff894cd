"""The current-starved ring cell in ngspice: tuning, energy against C V^2, errors, .cir files.

Skipped, with the reason, only where PySpice or libngspice is absent.
"""

from __future__ import annotations

import re
import subprocess
import time

import numpy as np
import pytest

from hw.spice import run
from hw.tools import find_tool

_REASON = run.unavailable_reason()
pytestmark = pytest.mark.skipif(_REASON is not None, reason=f"ngspice-shared unavailable: {_REASON}")

CONTROL_V = (0.6, 0.7, 0.8, 0.9, 1.0, 1.2, 1.4, 1.6, 1.8)  # above V_TH = 0.45 V: the ring runs
# Window for energy per cycle vs C_total VDD^2 (brief: 0.3x..3x). C_total is the estimate of
# RingOscillator.node_capacitance_f (load + gate + overlap + junction, x N stages); it leaves
# out the starving devices' internal nodes and short-circuit current, which add, and takes
# zero-bias junction and full Meyer gate capacitance, which overstate: hence a wide window.
ENERGY_WINDOW = (0.3, 3.0)
FAST_S = 2.0  # "quickly": a rejected or aborted run must come back within this wall time


@pytest.fixture(scope="module")
def osc():
    from hw.spice.cells import RingOscillator

    return RingOscillator()


@pytest.fixture(scope="module")
def tuning(osc):
    from hw.measure import tuning_curve

    return tuning_curve(osc, CONTROL_V)


def test_tuning_curve_is_monotone_over_the_control_range(tuning):
    fit, ms = tuning
    assert fit.monotone, f"f0 not strictly rising: {fit.f0_hz}"
    assert all(m.cycles >= 8 for m in ms)
    # A ring of five 180 nm-class stages with ~11 fF nodes: tens of MHz to about a GHz.
    assert 1e6 < min(fit.f0_hz) and max(fit.f0_hz) < 5e9
    assert fit.tuning_ratio > 5  # the control spans well over an octave


def test_energy_per_cycle_is_the_switched_cv2(tuning, osc):
    _, ms = tuning
    cv2_j = osc.switched_capacitance_f() * osc.process.vdd_v**2
    ratios = np.array([m.energy_per_cycle_j / cv2_j for m in ms])
    lo, hi = ENERGY_WINDOW
    assert np.all((ratios > lo) & (ratios < hi)), ratios
    # C V^2 does not depend on frequency: over a 30x frequency range the energy per cycle
    # stays within a factor 2 (slow edges add short-circuit charge at low V_ctrl).
    assert ratios.max() / ratios.min() < 2.0
    # The bias branch is a static current: its energy per cycle is I_bias VDD / f0, > 0.
    assert all(m.bias_energy_per_cycle_j > 0 for m in ms)


def test_oscillator_settings_are_checked():
    from hw.spice.cells import CellError, RingOscillator

    with pytest.raises(CellError, match=r"^n_stages must be an odd integer >= 3, not 4$"):
        RingOscillator(n_stages=4)
    with pytest.raises(CellError, match=r"^c_load_f must be >= 0, not -1e-15$"):
        RingOscillator(c_load_f=-1e-15)


def test_an_unknown_model_is_a_spice_error_quickly():
    deck = ".title bad\nV1 a 0 1\nM1 a a 0 0 nosuchmodel w=1u l=1u\n.tran 1n 10n\n.end\n"
    t0 = time.monotonic()
    with pytest.raises(run.SpiceError, match=r"(?s)^ngspice rejected the netlist:\n.*modelname"):
        run.transient(deck, stop_s=10e-9, timeout_s=5)
    assert time.monotonic() - t0 < FAST_S


def test_a_non_converging_circuit_is_a_spice_error_quickly():
    # A capacitor discharged by an exponential current: the node runs away and the
    # integrator's timestep collapses ("Timestep too small").
    deck = (".title runaway\nI1 0 n 1m\nC1 n 0 1p\nB1 n 0 I=-1e-3*exp(V(n)*50)\n"
            ".tran 1p 10n\n.end\n")
    t0 = time.monotonic()
    aborted = r"(?s)^ngspice did not finish the transient:.*[Tt]imestep too small"
    with pytest.raises(run.SpiceError, match=aborted):
        run.transient(deck, stop_s=10e-9, timeout_s=5)
    assert time.monotonic() - t0 < FAST_S


def test_a_run_past_its_limit_is_halted_and_ngspice_stays_usable(osc):
    from hw.spice.cells import deck, ring_bench, ring_kick

    long_deck = deck(ring_bench(osc, vctrl_v=1.0), step_s=1e-12, stop_s=1e-3, ic=ring_kick(osc))
    t0 = time.monotonic()
    with pytest.raises(run.SpiceTimeout, match=r"^ngspice ran past its 0.3 s limit and was halted$"):
        run.transient(long_deck, stop_s=1e-3, timeout_s=0.3)
    assert time.monotonic() - t0 < 0.3 + FAST_S
    short = deck(ring_bench(osc, vctrl_v=1.0), step_s=5e-12, stop_s=5e-9, ic=ring_kick(osc))
    assert run.transient(short, stop_s=5e-9).time_s[-1] == pytest.approx(5e-9)


def test_cir_file_round_trips_through_batch_ngspice(osc, tmp_path):
    from hw.measure import measure_ring
    from hw.spice.cells import deck, period_measure_lines, ring_bench, ring_kick, write_cir

    vctrl_v = 1.0
    m = measure_ring(osc, vctrl_v=vctrl_v)
    period_s = 1 / m.f0_hz
    text = deck(ring_bench(osc, vctrl_v=vctrl_v), step_s=period_s / 100, stop_s=8 * period_s,
                ic=ring_kick(osc), extra_lines=period_measure_lines("o0", osc.process.vdd_v / 2))
    path = tmp_path / "ring5.cir"
    write_cir(text, path)
    written = path.read_text()
    assert written == text
    assert f".subckt {osc.subckt_name} " in written and f".ends {osc.subckt_name}" in written
    assert ".model nch_un0 nmos" in written and ".model pch_un0 pmos" in written
    assert [p.name for p in tmp_path.iterdir()] == ["ring5.cir"]  # no temporary left behind

    exe = find_tool("ngspice")
    if exe is None:
        pytest.skip("the ngspice command-line program is not on PATH (only the shared library is)")
    done = subprocess.run([exe, "-b", str(path)], capture_output=True, text=True, timeout=30,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r"^tper_s\s*=\s*([-+0-9.eE]+)", done.stdout, re.MULTILINE)
    assert found, done.stdout[-2000:]
    # One period measured by batch ngspice vs the 8-cycle mean through the shared library.
    assert 1 / float(found.group(1)) == pytest.approx(m.f0_hz, rel=0.02)

