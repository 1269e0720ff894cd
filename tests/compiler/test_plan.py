"""`compiler.plan`: a compiled array as the numbers its netlist needs (no SPICE here)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

import compiler
import models
from compiler import CompileError, CompileOptions
from compiler.ir import ArrayIR
from compiler.plan import (
    PLAN_FORMAT,
    array_plan,
    cell_trims,
    coupler_codes,
    restrict,
    summary,
)
from hw.calibration import Calibration
from hw.characterization import NOMINAL_VCTRL_V, VCTRL_RANGE_V

CAL = Calibration.default()


@pytest.fixture(scope="module")
def ir():
    """8 main cells in 2 tiles of 4, 2 conditioning cells, 10 classes."""
    config = models.PUBLISHED["digits-n64"].replace(n=8, n_cond=2)
    return compiler.compile(models.Un0.init(config, seed=0), CompileOptions(bits=4, tile=4), calibration=CAL)


@pytest.fixture(scope="module")
def tau_cr(ir):
    return ir.physical.tau_limits_s["coupler_range"]


def test_main_codes_are_the_circuits_codes_of_the_symmetric_part(ir, tau_cr) -> None:
    from compiler.circuit import realise_ir

    p = ir.to_params(dtype=torch.float64)
    ks = ((p.K + p.K.T) / 2).numpy()
    got = {(i, j): c for i, j, c in coupler_codes(ir, tau_s=tau_cr)["main"]}
    assert got, "the coupler-range tau must leave some couplers"
    realised = realise_ir(ir, scale="ir", tau_s=tau_cr).K.codes
    for i in range(ir.n):
        for j in range(i + 1, ir.n):
            assert got.get((i, j), 0) == int(realised[i, j]), (i, j)
            assert got.get((i, j), 0) == 0 or np.sign(got[(i, j)]) == np.sign(ks[i, j])
    assert all(i < j and c != 0 for (i, j), c in got.items())
    # the strongest symmetric coupling at a tau that puts it at its loaded full code: full code
    top = coupler_codes(ir, tau_s=tau_cr / 8)["main"]
    assert max(abs(c) for _, _, c in top) == CAL.max_code


def test_drive_codes_run_from_conditioning_to_main_for_the_label(ir, tau_cr) -> None:
    from compiler.circuit import realise_ir

    realised = realise_ir(ir, scale="ir", tau_s=tau_cr).drive.codes
    p = ir.to_params(dtype=torch.float64)
    for label in (0, 3):
        drive = coupler_codes(ir, label=label, tau_s=tau_cr)["drive"]
        got = {(c, i): code for c, i, code in drive}
        for i in range(ir.n):
            for c in range(ir.n_cond):
                assert got.get((c, i), 0) == int(realised[label, i, c])
                d = float(p.drive[label, i, c])
                assert got.get((c, i), 0) == 0 or np.sign(got[(c, i)]) == np.sign(d)
    with pytest.raises(CompileError, match=r"^label 10: this model has classes 0\.\.9$"):
        coupler_codes(ir, label=10)


def test_the_irs_own_tau_rounds_weak_couplings_to_zero_and_counts_them(ir) -> None:
    codes = coupler_codes(ir)
    p = ir.to_params(dtype=torch.float64)
    ks = torch.triu((p.K + p.K.T) / 2, 1)
    nonzero = int((ks != 0).sum())
    assert len(codes["main"]) + codes["rounded_to_zero"]["main"] == nonzero
    assert codes["clipped"] == {"main": 0, "conditioning": 0, "drive": 0}


def test_a_shorter_tau_clips_at_full_code(ir, tau_cr) -> None:
    codes = coupler_codes(ir, tau_s=tau_cr / 8)
    assert sum(codes["clipped"].values()) > 0
    assert max(abs(c) for _, _, c in codes["main"]) == CAL.max_code
    for bad in (0.0, -1e-9, float("nan"), float("inf"), True, "1e-9"):
        with pytest.raises(CompileError, match=r"^tau_s must be a positive number of seconds"):
            coupler_codes(ir, tau_s=bad)


class _Curve:
    """The default calibration with a given tuning curve (None: a calibration without one)."""

    def __init__(self, vctrl_v, f_hz):
        self.tuning_vctrl_v, self.tuning_f_hz = vctrl_v, f_hz

    def __getattr__(self, name):
        return getattr(CAL, name)


def _with(ir, cal) -> ArrayIR:
    other = ArrayIR(doc=ir.doc, tensors=ir.tensors)
    other.__dict__["calibration"] = cal
    return other


def test_trims_are_against_the_closed_couplers(ir, tau_cr) -> None:
    from compiler.circuit import capacitance_factor, realise_ir

    t = cell_trims(ir, tau_s=tau_cr)
    circuit = realise_ir(ir, scale="ir", tau_s=tau_cr)
    p = ir.to_params(dtype=torch.float64)
    assert t["carrier_hz"] == pytest.approx(CAL.carrier_hz)
    b0 = circuit.K.coef()[..., 0].sum(1) + circuit.drive.coef()[..., 0].sum(2).mean(0)
    np.testing.assert_allclose(t["f_hz"], CAL.carrier_hz + (p.omega.numpy() / tau_cr - b0) / (2 * math.pi),
                               rtol=1e-12)
    assert max(t["closing_shift_hz"]) > 0  # closing the couplers speeds the cells up: trimmed below
    # the control: the lone-cell curve at the loaded cell's unloaded equivalent
    drive = np.abs(circuit.drive.codes).max(axis=0)
    lone = np.asarray(t["f_hz"]) * capacitance_factor(CAL, np.concatenate([circuit.K.codes, drive], axis=1))
    np.testing.assert_allclose(t["vctrl_v"], np.interp(lone, CAL.tuning_f_hz, CAL.tuning_vctrl_v))
    assert "measured tuning curve" in t["tuning"]["source"]
    # a cell with one code-0 coupler at the carrier runs at the nominal control
    assert float(capacitance_factor(CAL, np.array([0, 0]))) == 1.0


def test_without_a_tuning_curve_the_controls_follow_straight_lines(ir) -> None:
    t = cell_trims(_with(ir, _Curve(None, None)), tau_s=1e-6)
    lo, hi = VCTRL_RANGE_V
    assert t["tuning"]["vctrl_v"] == [lo, NOMINAL_VCTRL_V, hi] and "straight lines" in t["tuning"]["source"]
    assert t["tuning"]["f_hz"] == [CAL.f_min_hz, CAL.f0_hz, CAL.f_max_hz]
    # a frequency beyond the curve is clipped to its end, and counted
    t = cell_trims(ir, tau_s=1e-12)
    assert t["vctrl_clipped"] > 0
    assert min(t["vctrl_v"]) >= 0.6 and max(t["vctrl_v"]) <= 1.8


def test_the_plan_is_json_and_holds_every_cell_and_coupler(ir, tau_cr) -> None:
    plan = array_plan(ir, 2, tau_s=tau_cr)
    assert json.loads(json.dumps(plan)) == plan
    assert plan["format"] == PLAN_FORMAT and plan["label"] == 2 and plan["tau_rule"] == "given"
    assert plan["tiles"] == ir.tiles
    assert len(plan["cells"]["vctrl_v"]) == ir.n and len(plan["conditioning"]["vctrl_v"]) == ir.n_cond
    codes = coupler_codes(ir, label=2, tau_s=tau_cr)
    assert plan["couplers"] == {k: [list(t) for t in codes[k]] for k in ("main", "conditioning", "drive")}
    s = summary(plan)
    assert s["cells"] == ir.n and sum(t["cells"] for t in s["tiles"]) == ir.n
    assert s["couplers_inside_tiles"] + s["inter_tile_links"] == len(plan["couplers"]["main"])
    tile_of = {c: t for t, m in enumerate(ir.tiles) for c in m}
    links = sum(tile_of[i] != tile_of[j] for i, j, _ in plan["couplers"]["main"])
    assert s["inter_tile_links"] == links
    assert array_plan(ir)["tau_s"] == ir.tau_s and array_plan(ir)["tau_rule"] == "the IR's tau"


def test_restrict_renumbers_cells_and_keeps_their_couplers(ir, tau_cr) -> None:
    plan = array_plan(ir, 0, tau_s=tau_cr)
    pick = [ir.tiles[1][2], ir.tiles[0][0], ir.tiles[1][0]]
    sub = restrict(plan, pick)
    assert sub["cells"]["ir_index"] == pick
    assert sub["cells"]["vctrl_v"] == [plan["cells"]["vctrl_v"][c] for c in pick]
    assert sorted(c for t in sub["tiles"] for c in t) == [0, 1, 2]
    old = {(min(i, j), max(i, j)): c for i, j, c in plan["couplers"]["main"]}
    for i, j, c in sub["couplers"]["main"]:
        assert i < j and old[(min(pick[i], pick[j]), max(pick[i], pick[j]))] == c
    assert len(sub["couplers"]["main"]) == sum(1 for a in pick for b in pick if a < b and (a, b) in old)
    assert all(pick[i] in pick for _, i, _ in sub["couplers"]["drive"])
    bare = restrict(plan, pick, conditioning=False)
    assert bare["couplers"]["drive"] == bare["couplers"]["conditioning"] == [] and bare["conditioning"]["f_hz"] == []
    with pytest.raises(CompileError, match=r"^cells must be distinct"):
        restrict(plan, [0, 0])


def test_the_compiler_side_loads_no_spice() -> None:
    code = ("import sys, compiler, models\n"
            "from compiler.plan import array_plan\n"
            "config = models.PUBLISHED['digits-n64'].replace(n=8, n_cond=2)\n"
            "ir = compiler.compile(models.Un0.init(config, seed=0), compiler.CompileOptions(bits=4, tile=4))\n"
            "array_plan(ir, 0)\n"
            "print(sorted(m for m in sys.modules if m.startswith(('PySpice', 'hw.spice'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
