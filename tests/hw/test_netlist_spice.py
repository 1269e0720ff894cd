"""`hw.spice.netlist`: the whole compiled array as a hierarchical netlist, and ngspice runs it.

The text checks need PySpice only; the runs are skipped, with the reason, only where
PySpice or libngspice (or, for the file pair, the ngspice program) is absent.
"""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

import compiler
import models
from compiler import CompileOptions
from compiler.plan import array_plan, restrict, summary
from hw.calibration import Calibration
from hw.spice import run

pytest.importorskip("PySpice")

from hw.spice import netlist

_REASON = run.unavailable_reason()
needs_ngspice = pytest.mark.skipif(_REASON is not None, reason=f"ngspice-shared unavailable: {_REASON}")
FREQ_TOL_REL = 5e-3  # the bar: the same frequencies within 0.5 %


@pytest.fixture(scope="module")
def ir():
    """8 main cells in 2 tiles of 4, 2 conditioning cells."""
    config = models.PUBLISHED["digits-n64"].replace(n=8, n_cond=2)
    return compiler.compile(models.Un0.init(config, seed=0), CompileOptions(bits=4, tile=4),
                            calibration=Calibration.default())


@pytest.fixture(scope="module")
def plan(ir):
    """At the IR's coupler-range tau, so every kind of coupler has instances."""
    p = array_plan(ir, 0, tau_s=ir.physical.tau_limits_s["coupler_range"])
    s = summary(p)
    assert s["couplers_inside_tiles"] and s["inter_tile_links"] and s["drive_couplers"] and s["conditioning_couplers"]
    return p


def test_the_library_has_one_subcircuit_per_kind_and_per_tile(plan) -> None:
    lib = netlist.library(plan)
    names = re.findall(r"^\.subckt (\S+)", lib, flags=re.M)
    assert names == ["un0_ring5", "un0_cdac4", "un0_cell", "un0_coupler"] + [f"un0_tile{t}" for t in range(2)]
    assert ".subckt un0_cell vdd vddb vss p0 p1 p2 p3 p4 params: vctrl=1.0" in lib
    assert ".subckt un0_coupler a0 a1 b0 b1 vddc vss params: code=0" in lib
    assert lib.count(".model ") == 2
    # each tile holds its cells at their controls and exactly its inside couplers
    tile_of = netlist.tile_of(plan)
    for t, members in enumerate(plan["tiles"]):
        body = lib.split(f".subckt un0_tile{t} ")[1].split(f".ends un0_tile{t}")[0]
        for i in members:
            assert re.search(rf"^Xc{i} vdd vddb vss c{i}_0 .* un0_cell vctrl={plan['cells']['vctrl_v'][i]:.6f}$",
                             body, flags=re.M)
        inside = sorted((i, j, c) for i, j, c in plan["couplers"]["main"] if tile_of[i] == tile_of[j] == t)
        got = sorted((int(a), int(b), int(c)) for a, b, c in re.findall(r"^Xk(\d+)_(\d+) .* code=(-?\d+)$", body, re.M))
        assert got == inside


def test_the_top_level_holds_links_conditioning_and_drive(plan) -> None:
    top = netlist.top(plan)
    assert top.splitlines()[1] == f".include {netlist.LIBRARY}"
    tile_of = netlist.tile_of(plan)
    links = sorted((i, j, c) for i, j, c in plan["couplers"]["main"] if tile_of[i] != tile_of[j])
    assert sorted((int(a), int(b), int(c)) for a, b, c in re.findall(r"^Xl(\d+)_(\d+) .* code=(-?\d+)$", top, re.M)) == links
    drive = sorted(tuple(t) for t in plan["couplers"]["drive"])
    got = sorted((int(a), int(b), int(c)) for a, b, c in re.findall(r"^Xd(\d+)_(\d+) q\1_0 q\1_1 c\2_0 c\2_1 .* code=(-?\d+)$",
                                                                      top, re.M))
    assert got == drive
    assert len(re.findall(r"^Xq\d+ .* un0_cell vctrl=", top, re.M)) == len(plan["conditioning"]["vctrl_v"])
    assert len(re.findall(r"^Xkq\d+_\d+ ", top, re.M)) == len(plan["couplers"]["conditioning"])
    assert len(re.findall(r"^Xt\d+ ", top, re.M)) == len(plan["tiles"])
    assert re.search(r"^\*\.tran \S+ \S+$", top, re.M) and not re.search(r"^\.tran", top, re.M)  # a stub only
    assert not re.search(r"^X.* code=0$", top + netlist.library(plan), re.M)  # code 0: no instance


def test_a_bad_plan_is_refused(plan) -> None:
    with pytest.raises(netlist.NetlistError, match=r"^need a plan from compiler\.plan\.array_plan"):
        netlist.library({"format": "something else"})
    bad = {**plan, "couplers": {**plan["couplers"], "main": [[0, 1, 9]]}}
    with pytest.raises(netlist.NetlistError, match=r"^main coupler \(0, 1\) has code 9, not in ±1\.\.7$"):
        netlist.top(bad)
    bad = {**plan, "couplers": {**plan["couplers"], "drive": [[5, 0, 1]]}}
    with pytest.raises(netlist.NetlistError, match=r"^drive coupler \(5, 0\) joins cells outside the plan$"):
        netlist.top(bad)
    bad = {**plan, "tiles": [plan["tiles"][0]]}
    with pytest.raises(netlist.NetlistError, match=r"^the plan's tiles must hold every cell"):
        netlist.library(bad)
    # a plan of other cells than the netlist builds is refused, not built of the wrong ones
    assert plan["process"] == "generic-180nm-level1" and plan["coupler"]["kind"] == "resistive"
    for other, said in (({**plan, "process": "ptm45-hp-bsim4"}, "ptm45-hp-bsim4 cells with 'resistive'"),
                        ({**plan, "coupler": {**plan["coupler"], "kind": "gm"}}, "generic-180nm-level1 cells with 'gm'")):
        with pytest.raises(netlist.NetlistError, match=rf"^the plan is of {said} couplers"):
            netlist.library(other)
    older = {k: v for k, v in plan.items() if k != "process"}  # plans before they named their cells
    older["coupler"] = {k: v for k, v in plan["coupler"].items() if k != "kind"}
    assert netlist.parts(older)[1].bits == plan["coupler"]["bits"]


def test_the_error_type_imports_without_pyspice() -> None:
    """The command line imports `NetlistError` at start-up; PySpice loads only to build text."""
    code = ("import sys, hw.spice.netlist, un0hw.cmd_emit; "
            "print(sorted(m for m in sys.modules if m.startswith('PySpice')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@needs_ngspice
@pytest.mark.slow
def test_every_cell_of_a_compiled_array_oscillates_in_ngspice(plan) -> None:
    from hw.measure import rising_crossings

    stop = 16 / plan["carrier_hz"]  # loaded cells (up to 7 couplers) run at ~0.4 of the carrier
    nodes = netlist.p0_nodes(plan)
    tr = run.transient(netlist.deck(plan, stop_s=stop, save=nodes), stop_s=stop, timeout_s=120)
    for node in nodes:
        edges = rising_crossings(tr.time_s, tr.v(node), level=plan["vdd_v"] / 2)
        assert edges.size >= 4, f"{node}: {edges.size} rising edges in {stop:.3g} s"


@needs_ngspice
def test_the_written_file_pair_parses_and_runs_in_batch_ngspice(plan, tmp_path) -> None:
    from hw.tools import find_tool

    exe = find_tool("ngspice")
    if exe is None:
        pytest.skip("the ngspice program is not installed")
    files = netlist.write(plan, tmp_path / "net")
    assert [f.name for f in files] == [netlist.LIBRARY, netlist.TOP]
    top = (tmp_path / "net" / netlist.TOP).read_text()
    stub = re.search(r"^\*\.tran (\S+) (\S+)$", top, re.M)
    step = float(stub.group(1))
    runnable = top.replace(stub.group(0), f".tran {step:g} {20 * step:g}\n.print tran v(c0_0)")
    (tmp_path / "net" / "run.cir").write_text(runnable)
    done = subprocess.run([exe, "-b", "run.cir"], cwd=tmp_path / "net", capture_output=True, text=True, timeout=120)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-2000:]
    assert not re.search(r"error|unknown|could not find", log, re.I), log[-2000:]
    assert "v(c0_0)" in done.stdout.lower()  # the transient ran and printed
    # run from elsewhere too: the .include resolves beside array.cir (the library's path)
    elsewhere = subprocess.run([exe, "-b", str(tmp_path / "net" / "run.cir")], cwd="/", capture_output=True,
                               text=True, timeout=120)
    assert elsewhere.returncode == 0 and "error" not in (elsewhere.stdout + elsewhere.stderr).lower()


@needs_ngspice
def test_long_cards_are_continued_and_still_parse(plan) -> None:
    one = {**plan, "tiles": [sorted(c for t in plan["tiles"] for c in t)]}  # one tile of all 8 cells
    lib = netlist.library(one)
    assert re.search(r"^\.subckt un0_tile0 vdd vddb vddc vss c0_0 .*\n\+ ", lib, re.M)
    assert all(len(ln) <= 110 for ln in netlist.top(one).splitlines() if not ln.startswith(("*", ".ic")))
    stop = 0.5 / plan["carrier_hz"]
    tr = run.transient(netlist.deck(one, stop_s=stop, save=["c7_0"]), stop_s=stop, timeout_s=60)
    assert tr.v("c7_0").size > 10


@needs_ngspice
@pytest.mark.parametrize("code", [5, -3])
def test_two_cells_hierarchical_and_flat_give_the_same_waveform(ir, code) -> None:
    """The hierarchical netlist of two cells (the code decoded from the instance parameter,
    the controls from theirs) against `cells.array_bench` with the enables tied directly."""
    from hw.measure import frequency_hz
    from hw.spice import cells

    two = restrict(array_plan(ir, 0), [0, 1], conditioning=False)
    two["tiles"] = [[0, 1]]
    two["cells"]["vctrl_v"] = [1.0, 1.03]
    two["couplers"]["main"] = [[0, 1, code]]
    stop = 40 / two["carrier_hz"]
    step = 1 / (100 * two["carrier_hz"])
    hier = run.transient(netlist.deck(two, stop_s=stop, step_s=step), stop_s=stop, timeout_s=60)
    osc = cells.RingOscillator()
    flat_bench = cells.array_bench(osc, vctrl_v=[1.0, 1.03], couplings={(0, 1): code},
                                   dac=cells.CouplerDAC(n_stages=osc.n_stages, bits=two["coupler"]["bits"]))
    vdd = osc.process.vdd_v
    ic = {"n0_0": 0.0, "n0_1": vdd, "n1_0": 0.0, "n1_1": vdd}
    flat = run.transient(cells.deck(flat_bench, step_s=step, stop_s=stop, ic=ic), stop_s=stop, timeout_s=60)
    grid = np.linspace(0, stop, 4000)
    for i in range(2):
        h, f = hier.v(f"c{i}_0"), flat.v(f"n{i}_0")
        f_h = frequency_hz(hier.time_s, h, level=vdd / 2, skip_cycles=3)
        f_f = frequency_hz(flat.time_s, f, level=vdd / 2, skip_cycles=3)
        assert f_h == pytest.approx(f_f, rel=FREQ_TOL_REL)
        diff = np.interp(grid, hier.time_s, h) - np.interp(grid, flat.time_s, f)
        assert float(np.sqrt(np.mean(diff**2))) < 0.01 * vdd  # the same waveform, not only the same rate
