"""The characterisation's worker processes change nothing: the two signs' K chains in two
processes give the fits of one chain after the other (hw.characterization._k_table), to
ngspice's round-off (a fresh worker process's libngspice differs in the last bits: 1e-11
relative on the ptm45 full plan)."""

from __future__ import annotations

import pytest

from hw.spice import run

_REASON = run.unavailable_reason()
pytestmark = [pytest.mark.skipif(_REASON is not None, reason=f"ngspice-shared unavailable: {_REASON}"),
              pytest.mark.slow]


class _Count:
    def __init__(self) -> None:
        self.n = 0

    def update(self, n: int = 1) -> None:
        self.n += n


def test_the_two_signs_chains_in_two_processes_equal_the_serial_table():
    from hw.characterization import _k_table
    from hw.measure import measure_ring
    from hw.spice.cells import CouplerDAC, RingOscillator

    osc, dac = RingOscillator(), CouplerDAC(bits=3)  # codes ±1..±3: short chains
    vnom = osc.vctrl_nominal_v
    f_a = measure_ring(osc, vctrl_v=vnom).f0_hz
    kvco = (measure_ring(osc, vctrl_v=vnom + 0.02).f0_hz - measure_ring(osc, vctrl_v=vnom - 0.02).f0_hz) / 0.04
    serial_bar, pooled_bar = _Count(), _Count()
    serial = _k_table(osc, dac, f_a=f_a, kvco=kvco, both_signs=True, bar=serial_bar, workers=1)
    pooled = _k_table(osc, dac, f_a=f_a, kvco=kvco, both_signs=True, bar=pooled_bar, workers=2)
    assert list(serial) == list(pooled) == [3, 2, 1, -3, -2, -1, 0]
    for code in serial:
        assert pooled[code].fit.k_rad_s == pytest.approx(serial[code].fit.k_rad_s, rel=1e-8, abs=1.0), code
        assert pooled[code].vctrl_b_v == serial[code].vctrl_b_v  # the same detuning chain
    assert serial_bar.n == pooled_bar.n == 7
