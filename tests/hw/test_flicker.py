"""Flicker (1/f) current noise from ngspice's transient noise (`cells.noise_lines(...,
flicker_a2=K)`): a source into 1 ohm, its voltage's PSD by Welch, a least-squares line in
log-log over two decades. The slope must be -1 within its own regression uncertainty (plus
a small allowance for the window's leakage), and the level K / f must be the one asked for.
ngspice does not repeat transient-noise seeds, so the bounds are statistical, not exact."""

from __future__ import annotations

import math

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
