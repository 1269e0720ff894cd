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


def _nearest(x_rad_s: float) -> int:
    k = np.asarray(CAL.coupler_k_rad_s)
    return int(np.argmin(np.abs(k - x_rad_s)))


def test_main_codes_are_the_nearest_code_of_the_symmetric_part(ir, tau_cr) -> None:
    p = ir.to_params(dtype=torch.float64)
    ks = ((p.K + p.K.T) / 2).numpy()
    got = {(i, j): c for i, j, c in coupler_codes(ir, tau_s=tau_cr)["main"]}
    assert got, "the coupler-range tau must leave some couplers"
    for i in range(ir.n):
        for j in range(i + 1, ir.n):
            want = int(np.sign(ks[i, j])) * _nearest(abs(ks[i, j]) / tau_cr)
            assert got.get((i, j), 0) == want, (i, j)
    assert all(i < j and c != 0 for (i, j), c in got.items())
    # at tau = max|K_sym| / K_eff(full) the strongest symmetric coupling sits at full code
    top = coupler_codes(ir, tau_s=float(np.abs(ks).max()) / CAL.k_max_rad_s)["main"]
    assert max(abs(c) for _, _, c in top) == CAL.max_code


def test_drive_codes_run_from_conditioning_to_main_for_the_label(ir, tau_cr) -> None:
    p = ir.to_params(dtype=torch.float64)
    for label in (0, 3):
        drive = coupler_codes(ir, label=label, tau_s=tau_cr)["drive"]
        got = {(c, i): code for c, i, code in drive}
        for i in range(ir.n):
            for c in range(ir.n_cond):
                d = float(p.drive[label, i, c])
                assert got.get((c, i), 0) == int(np.sign(d)) * _nearest(abs(d) / tau_cr)
    with pytest.raises(CompileError, match=r"^label 10: this model has classes 0\.\.9$"):
        coupler_codes(ir, label=10)


def test_the_irs_own_tau_rounds_weak_couplings_to_zero_and_counts_them(ir) -> None:
    codes = coupler_codes(ir)
    p = ir.to_params(dtype=torch.float64)
    ks = torch.triu((p.K + p.K.T) / 2, 1)
    nonzero = int((ks != 0).sum())
    assert len(codes["main"]) + codes["rounded_to_zero"]["main"] == nonzero
    k = np.asarray(CAL.coupler_k_rad_s)
    below = int((ks.abs() / ir.tau_s <= (k[0] + k[1]) / 2).sum()) - int((ks == 0).sum())
    assert codes["rounded_to_zero"]["main"] == below
    assert codes["clipped"] == {"main": 0, "conditioning": 0, "drive": 0}


def test_a_shorter_tau_clips_at_full_code(ir, tau_cr) -> None:
    codes = coupler_codes(ir, tau_s=tau_cr / 4)
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


def test_trims_are_the_carrier_plus_the_offset_on_the_straight_line_curve(ir, tau_cr) -> None:
    t = cell_trims(_with(ir, _Curve(None, None)), tau_s=tau_cr)
    p = ir.to_params(dtype=torch.float64)
    f_c = CAL.f0_hz * (1 - CAL.coupler_load_f_rel)
    assert t["carrier_hz"] == pytest.approx(f_c)
    np.testing.assert_allclose(t["f_hz"], f_c + p.omega.numpy() / (2 * math.pi * tau_cr), rtol=1e-12)
    np.testing.assert_allclose(t["cond_f_hz"], f_c + p.nu.numpy() / (2 * math.pi * tau_cr), rtol=1e-12)
    lo, hi = VCTRL_RANGE_V
    assert t["tuning"]["vctrl_v"] == [lo, NOMINAL_VCTRL_V, hi] and "straight lines" in t["tuning"]["source"]
    assert t["tuning"]["f_hz"] == [CAL.f_min_hz, CAL.f0_hz, CAL.f_max_hz]
    # below f0: on the line through (0.6 V, f_min) and (1.0 V, f0)
    for f, v in zip(t["f_hz"], t["vctrl_v"]):
        assert f < CAL.f0_hz
        assert v == pytest.approx(lo + (NOMINAL_VCTRL_V - lo) * (f - CAL.f_min_hz) / (CAL.f0_hz - CAL.f_min_hz))
    order = np.argsort(t["f_hz"])
    assert np.all(np.diff(np.asarray(t["vctrl_v"])[order]) >= 0)
    assert t["vctrl_clipped"] == 0


def test_a_calibration_with_a_tuning_curve_is_read_backwards(ir) -> None:
    v, f = (0.6, 0.8, 1.0, 1.4, 1.8), (30e6, 200e6, 380e6, 600e6, 800e6)
    other = _with(ir, _Curve(v, f))
    t = cell_trims(other, tau_s=1e-6)
    assert "measured tuning curve" in t["tuning"]["source"]
    assert t["tuning"]["vctrl_v"] == list(v) and t["tuning"]["f_hz"] == list(f)
    np.testing.assert_allclose(t["vctrl_v"], np.interp(t["f_hz"], f, v))
    # a frequency beyond the curve is clipped to its end, and counted
    t = cell_trims(other, tau_s=1e-12)
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
