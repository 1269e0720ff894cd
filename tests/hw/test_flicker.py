"""Flicker (1/f) current noise from ngspice's transient noise (`cells.noise_lines(...,
flicker_a2=K)`): a source into 1 ohm, its voltage's PSD by Welch, a least-squares line in
log-log over two decades. The slope must be -1 within its own regression uncertainty (plus
a small allowance for the window's leakage), and the level K / f must be the one asked for.
ngspice does not repeat transient-noise seeds, so the bounds are statistical, not exact."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from hw.spice import run

_REASON = run.unavailable_reason()
needs_ngspice = pytest.mark.skipif(_REASON is not None, reason=f"ngspice-shared unavailable: {_REASON}")

STEP_S = 1e-9
POINTS = 2**16
SEGMENT = 2**13


def _psd(lines: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    from scipy.signal import welch

    stop = POINTS * STEP_S
    deck = "\n".join(["flicker bench", *lines, "R1 a 0 1", f".tran {STEP_S:g} {stop:g}", ".end"]) + "\n"
    tr = run.transient(deck, stop_s=stop, timeout_s=120)
    grid = np.arange(POINTS) * STEP_S
    f, p = welch(np.interp(grid, tr.time_s, tr.v("a")), fs=1 / STEP_S, nperseg=SEGMENT)
    band = (f > 2 / (SEGMENT * STEP_S)) & (f < 1 / (50 * STEP_S))  # clear of the window's first bins and of NT
    return f[band], p[band]


def test_noise_lines_states_the_trnoise_parameters():
    from hw.spice.cells import CellError, noise_lines

    (white,) = noise_lines(["a"], psd_a2_per_hz=8e-24, sample_s=1e-12)
    assert white.endswith("trnoise(2e-06 1e-12 0 0)")  # sqrt(8e-24 / 2e-12)
    (both,) = noise_lines(["a"], psd_a2_per_hz=0.0, sample_s=1e-9, flicker_a2=1e-12 / math.pi)
    assert both.endswith("trnoise(0 1e-09 1 1e-06)")
    with pytest.raises(CellError, match="flicker_a2"):
        noise_lines(["a"], psd_a2_per_hz=0.0, sample_s=1e-9, flicker_a2=-1.0)


@needs_ngspice
@pytest.mark.slow
def test_flicker_noise_has_a_minus_one_slope_and_the_requested_level():
    from hw.spice.cells import noise_lines

    k = 1e-13  # A^2: S(f) = K / f, into 1 ohm: V^2/Hz
    f, p = _psd(noise_lines(["a"], psd_a2_per_hz=0.0, sample_s=STEP_S, flicker_a2=k))
    x, y = np.log(f), np.log(p)
    coef, res, *_ = np.polyfit(x, y, 1, full=True)
    slope = coef[0]
    se = math.sqrt(res[0] / (x.size - 2) / np.sum((x - x.mean()) ** 2))
    assert abs(slope + 1) < 4 * se + 0.08, (slope, se)
    level = float(np.exp(np.mean(y + x)))  # geometric mean of f S(f)
    assert level == pytest.approx(k, rel=0.35)


@needs_ngspice
@pytest.mark.slow
def test_white_noise_is_flat_so_the_slope_test_can_fail():
    from hw.spice.cells import noise_lines

    f, p = _psd(noise_lines(["a"], psd_a2_per_hz=1e-13, sample_s=STEP_S))
    slope = np.polyfit(np.log(f), np.log(p), 1)[0]
    assert abs(slope) < 0.1


# --- the ring's flicker as a frequency offset since trim (hw.flicker) -----------------------------
def _one_over_f(rng: np.random.Generator, n: int, dt: float, a: float) -> np.ndarray:
    """A real series with one-sided PSD a / f (f ≥ 1 / (n dt)), by shaping Gaussian spectra."""
    f = np.fft.rfftfreq(n, dt)
    amp = np.zeros(f.size)
    amp[1:] = np.sqrt(a / f[1:] * (f[1] - f[0]))  # per component: a_k, b_k ~ N(0, S Δf)
    spec = (rng.standard_normal(f.size) - 1j * rng.standard_normal(f.size)) * amp * (n / 2)
    return np.fft.irfft(spec, n)


def test_the_structure_function_matches_synthesised_one_over_f_noise():
    from hw.flicker import structure_function

    a, window, per = 3.0, 1.0, 8  # S = a / f; inference T = 1 s sampled at T / 8
    rng = np.random.default_rng(5)
    lags = (4, 32, 256)
    got = {lag: [] for lag in lags}
    for _ in range(12):
        x = _one_over_f(rng, 2**19, window / per, a)
        means = x.reshape(-1, per).mean(axis=1)  # the frequency averaged over each inference
        for lag in lags:
            got[lag].append(np.mean((means[lag:] - means[:-lag]) ** 2))
    for lag in lags:
        want = structure_function(a, lag * window, window)
        assert np.mean(got[lag]) == pytest.approx(want, rel=0.12), (lag, np.mean(got[lag]), want)
    # and it grows with ln t, not with t: no cut-off at low frequency is needed
    assert structure_function(a, 256.0, 1.0) / structure_function(a, 4.0, 1.0) < 2.5


def test_the_window_constant_and_the_asymptote():
    from hw.flicker import ASYMPTOTE_FROM, WINDOW_CONSTANT, FlickerError, structure_function

    for ratio in (30.0, 100.0):
        exact = structure_function(1.0, ratio, 1.0, exact=True)
        assert exact / 2 - math.log(ratio) == pytest.approx(WINDOW_CONSTANT, abs=2e-3)
    beyond = 10 * ASYMPTOTE_FROM
    assert structure_function(2.0, beyond, 1.0) == pytest.approx(4.0 * (math.log(beyond) + WINDOW_CONSTANT))
    assert structure_function(1.0, 3600.0, 2.4e-6) == pytest.approx(2 * (math.log(3600 / 2.4e-6) + 1.5))
    for bad in ((1.0, 0.0, 1.0), (1.0, 1.0, 0.0), (1.0, -3.0, 1.0)):
        with pytest.raises(FlickerError):
            structure_function(*bad)


def test_the_psd_coefficient_sums_each_devices_gain_squared_over_its_area():
    from hw.flicker import Device, RingFlicker

    devs = (Device("bn", "nmos", 1e-6, 1e-6, 1, 2e8), Device("sn0", "nmos", 1e-6, 2e-6, 5, 1e8),
            Device("sp0", "pmos", 2e-6, 1e-6, 5, -1e8))
    m = RingFlicker(process="generic180", f0_hz=3e8, kvco_hz_per_v=7e8, cox_f_per_m2=1e-2, k_n_v2f=1e-25,
                    k_p_v2f=5e-26, n_stages=5, devices=devs, k_source="test")
    want = (2e8**2 * 1e-25 / (1e-2 * 1e-12) + 5 * 1e16 * 1e-25 / (1e-2 * 2e-12) + 5 * 1e16 * 5e-26 / (1e-2 * 2e-12))
    assert m.psd_coefficient_hz2 == pytest.approx(want)
    assert sum(m.device_share().values()) == pytest.approx(1.0)
    assert m.offset_sigma_hz(3600.0, 1e-6) == pytest.approx(math.sqrt(2 * want * (math.log(3.6e9) + 1.5)))


@needs_ngspice
@pytest.mark.slow
def test_the_gate_gains_add_up_to_the_tuning_slope():
    """V_ctrl is the gate of the bias NMOS and of every NMOS starving device: an offset in
    series with all of them is a control step, so s_bn + N s_sn = K_VCO (first order)."""
    from hw.flicker import ring_flicker

    m = ring_flicker("generic180")
    gains = {d.name: d for d in m.devices}
    total = gains["bn"].gain_hz_per_v + m.n_stages * gains["sn0"].gain_hz_per_v
    assert total == pytest.approx(m.kvco_hz_per_v, rel=0.03)
    assert gains["sp0"].gain_hz_per_v < 0 < gains["sn0"].gain_hz_per_v  # a higher PMOS gate starves it
    assert abs(gains["in0"].gain_hz_per_v) < 0.2 * gains["sn0"].gain_hz_per_v  # switches matter little


def test_gate_offsets_name_devices_and_reach_the_netlist():
    from hw.spice.cells import CellError, RingOscillator

    for bad in ((("zz", 0.1),), (("bn", float("nan")),), (("bn",),)):
        with pytest.raises(CellError, match="gate_offsets_v entries must be"):
            RingOscillator(gate_offsets_v=bad)
    text = str(RingOscillator(gate_offsets_v=(("sn2", 0.05),)).subcircuit())
    assert re.search(r"^Vgsn2 g_sn2 vctrl 0\.05", text, re.M) and re.search(r"^Msn2 tn2 g_sn2 ", text, re.M)
    assert "g_" not in str(RingOscillator().subcircuit())
