"""The area model: scaling laws, the footprint's anchor, the devices read off the SPICE
subcircuits against the cells' own counts, units checked at load."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import compiler
import models
from analysis import area, energy
from analysis.area import AreaCounts, array_area, decoder_area, footprint_for
from analysis.energy import EnergyError, load_constants
from hw.spice.layout import Inventory, cells_layout, inventory

REL = 1e-9
LAYOUTS = [(p, c) for p in ("generic180", "ptm45") for c in ("resistive", "gm")]


@pytest.fixture(scope="module")
def constants():
    return load_constants()


@pytest.fixture(scope="module")
def layouts():
    return {pc: cells_layout(*pc) for pc in LAYOUTS}


def _counts(n: int, **kw) -> AreaCounts:
    base = dict(n=n, n_cond=0, coupler_slots=n * n, drive_slots=0, conditioning_slots=0, code_bits=0,
                wire_length_mm=0.0)
    return AreaCounts(**{**base, **kw})


# --- scaling laws ---------------------------------------------------------------------------------
@pytest.mark.parametrize("pc", LAYOUTS)
def test_cells_linear_in_n_and_dense_couplers_quadratic(pc, layouts, constants):
    a1, a2 = (array_area(_counts(n), layouts[pc], constants) for n in (256, 512))
    assert a2["cells"] == pytest.approx(2 * a1["cells"], rel=REL)
    tap = footprint_for(layouts[pc], constants).of(layouts[pc].tap) if layouts[pc].tap else 0.0
    # n² slots plus one tap buffer per cell (gm): the slots part is quadratic
    assert a2["couplers"] - 512 * tap == pytest.approx(4 * (a1["couplers"] - 256 * tap), rel=REL)
    assert a2["readout"] == pytest.approx(2 * a1["readout"], rel=REL)


def test_compiled_dense_arrays_scale_the_same_way(constants):
    """On compiled IRs: a dense array of 2N has 4× the coupler slots and 2× the cells."""
    irs = [compiler.compile(models.Un0.init(models.PUBLISHED["digits-n64"], seed=0),
                            compiler.CompileOptions(tile=t), source="test") for t in (32, 16)]
    ests = [area.estimate_area(ir, constants=constants) for ir in irs]
    assert all(e.counts.coupler_slots == 64 * 64 for e in ests)  # dense: every site built
    assert ests[0].array["couplers"] == pytest.approx(ests[1].array["couplers"], rel=REL)
    model = models.Un0.init(dataclasses.replace(models.PUBLISHED["digits-n64"], n=128, name="digits-n128"), seed=0)
    big = area.estimate_area(compiler.compile(model, compiler.CompileOptions(tile=32), source="test"),
                             constants=constants)
    assert big.counts.coupler_slots == 128 * 128
    assert big.array["cells"] == pytest.approx(2 * ests[0].array["cells"], rel=REL)
    assert big.array["couplers"] == pytest.approx(4 * ests[0].array["couplers"], rel=REL)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 5000), st.integers(0, 64), st.integers(0, 10**6), st.integers(0, 10**5), st.integers(0, 10**4),
       st.integers(0, 10**8), st.floats(0, 1e5))
def test_array_area_is_additive_in_its_counts(n, n_c, slots, drive, cond, bits, wire):
    """Every term is a count times a per-unit area: the area of two arrays side by side is
    the sum of theirs (so no term hides a constant or a non-linearity)."""
    c, lay = load_constants(), cells_layout("generic180", "gm")
    a = AreaCounts(n=n, n_cond=n_c, coupler_slots=slots, drive_slots=drive, conditioning_slots=cond, code_bits=bits,
                   wire_length_mm=wire)
    b = AreaCounts(n=7, n_cond=1, coupler_slots=49, drive_slots=7, conditioning_slots=0, code_bits=392,
                   wire_length_mm=3.5)
    ab = AreaCounts(**{f.name: getattr(a, f.name) + getattr(b, f.name) for f in dataclasses.fields(AreaCounts)})
    sa, sb, sab = (array_area(x, lay, c) for x in (a, b, ab))
    for k in area.ARRAY_TERMS:
        assert sab[k] == pytest.approx(sa[k] + sb[k], rel=1e-9, abs=1e-30)
        assert sa[k] >= 0


# --- the footprint and the devices ----------------------------------------------------------------
@pytest.mark.parametrize("process", ["generic180", "ptm45"])
def test_a_minimum_device_fills_a_quarter_of_the_nand2(process, layouts, constants):
    lay = layouts[(process, "resistive")]
    fp = footprint_for(lay, constants)
    f = lay.l_min_m
    one = Inventory(transistors=((2 * f, f),))
    assert fp.of(one) / fp.overhead == pytest.approx(constants[f"nand2_area_{fp.node}"] / 4, rel=1e-12)
    # a capacitor and a resistor by hand
    assert fp.of(Inventory((), capacitors_f=(3e-15,))) == pytest.approx(3e-15 / constants["mim_capacitance_density"])
    r = 10 * lay.resistor_sheet_ohm
    assert fp.of(Inventory((), resistors_ohm=(r,))) == pytest.approx(10 * 2 * lay.resistor_width_m ** 2)
    assert fp.of(one.scaled(0.5)) == pytest.approx(fp.of(one) / 2)


def test_a_density_below_four_gates_is_refused(constants):
    with pytest.raises(EnergyError, match="not a layout density of a 45 nm node"):
        area.device_margin_m(45e-9, 4 * 2 * 45e-9 * 45e-9)


@pytest.mark.parametrize("pc", LAYOUTS)
def test_inventory_agrees_with_the_couplers_own_device_count(pc, layouts):
    """The subcircuit parse and the coupler's hand count (`device_count`) are two readings
    of one circuit: transistors and drawn gate area agree (a resistor DAC is two slots)."""
    from hw.spice import cells

    process, kind = pc
    osc = cells.ring_for(process)
    dac = cells.coupler_for(process, kind, n_stages=osc.n_stages)
    own = dac.device_count()
    per_coupler = 2.0  # a resistor DAC serves both directions; the gm count is of both injectors
    slot = layouts[pc].coupler_slot
    assert slot.transistor_count * per_coupler == own["transistors"]
    assert slot.gate_area_m2 * per_coupler == pytest.approx(own["gate_area_m2"], rel=1e-9)
    ring = layouts[pc].ring
    assert ring.transistor_count == 4 * osc.n_stages + 2  # per stage 2 inverter + 2 starving; the bias pair
    assert ring.capacitance_f == pytest.approx(osc.n_stages * osc.c_load_f)
    assert (layouts[pc].tap is not None) == (kind == "gm")


def test_inventory_reads_spice_numbers_and_refuses_what_it_cannot():
    inv = inventory("M1 d g s b nch w=2u l=180n\nC1 a 0 5f\nR1 a b 1.5meg\nI1 a 0 1u\nX1 a b sub\n* a comment\n")
    (w, l), = inv.transistors
    assert w == pytest.approx(2e-6) and l == pytest.approx(180e-9)
    assert inv.capacitors_f == pytest.approx((5e-15,)) and inv.resistors_ohm == pytest.approx((1.5e6,))
    from hw.spice.layout import LayoutError

    with pytest.raises(LayoutError, match="without W and L"):
        inventory("M1 d g s b nch l=1u")
    with pytest.raises(LayoutError, match="unknown element 'Q'"):
        inventory("Q1 c b e npn")


# --- the terms ------------------------------------------------------------------------------------
def test_memory_readout_routing_and_decoder_follow_their_formulas(layouts, constants):
    c, lay = constants, layouts[("ptm45", "resistive")]
    counts = _counts(100, code_bits=12345, wire_length_mm=7.0, decoder_weights=1000, decoder_peak_activations=300)
    a = array_area(counts, lay, c)
    assert a["code_sram"] == pytest.approx(12345 * c["sram_bitcell_area_45nm"] / c["sram_array_efficiency"], rel=REL)
    assert a["readout"] == pytest.approx(100 * c["readout_bits"] * c["readout_gates_per_bit"] * c["nand2_area_45nm"],
                                         rel=REL)
    assert a["routing"] == pytest.approx(7e-3 * c["wire_pitch_45nm"] / c["phase_routing_layers"], rel=REL)
    d8, d32 = decoder_area(counts, c, "int8"), decoder_area(counts, c, "fp32")
    assert d8["mac_array"] == pytest.approx(c["decoder_mac_units"] * (c["int8_mult_area"] + c["int32_add_area"]))
    assert d8["weight_sram"] == pytest.approx(1000 * 8 * c["sram_bitcell_area_45nm"] / c["sram_array_efficiency"])
    assert d32["weight_sram"] == pytest.approx(4 * d8["weight_sram"]) and d32["mac_array"] > d8["mac_array"]
    with pytest.raises(EnergyError, match="precision must be one of"):
        decoder_area(counts, c, "int3")


def test_estimate_reads_the_calibrations_cells_and_refuses_foreign_ones(constants):
    ir = compiler.compile(models.Un0.init(models.PUBLISHED["digits-n64"], seed=0), compiler.CompileOptions(tile=32),
                          source="test")
    e180 = area.estimate_area(ir, constants=constants)
    assert (e180.process, e180.coupler, e180.node) == ("generic180", "resistive", "180nm")
    gm = dataclasses.replace(ir.calibration, coupler="gm")
    egm = area.estimate_area(ir, calibration=gm, constants=constants)
    assert egm.coupler == "gm" and egm.array["couplers"] != e180.array["couplers"]
    assert egm.decoder == e180.decoder  # the decoder does not depend on the cells
    foreign = dataclasses.replace(ir.calibration, process="tsmc28-hpc (somebody else's cards)")
    with pytest.raises(EnergyError, match="the calibration's cells: process 'tsmc28-hpc' is none of this project's"):
        area.estimate_area(ir, calibration=foreign, constants=constants)
    md = area.markdown_table([e180, egm])
    assert f"| {ir.name} | generic180/resistive |" in md and "generic180/gm" in md
    assert e180.total_mm2 == pytest.approx(e180.array_mm2 + e180.decoder_mm2)


def test_area_units_are_checked_at_load(tmp_path):
    from tests.analysis.test_energy import _table_text

    path = tmp_path / "t.toml"
    path.write_text(_table_text(nand2_area_45nm={"unit": "um"}))
    with pytest.raises(EnergyError, match=r"'nand2_area_45nm' is a area but was given in 'um'"):
        load_constants(path)
    path.write_text(_table_text(analog_layout_overhead={"value": 0.5}))
    with pytest.raises(EnergyError, match=r"'analog_layout_overhead' is a factor and must be >= 1"):
        load_constants(path)
    path.write_text(_table_text(nand2_area_45nm={"value": 798000, "unit": "nm2"}))
    assert load_constants(path)["nand2_area_45nm"] == pytest.approx(load_constants()["nand2_area_45nm"], rel=REL)
    assert isinstance(energy.load_constants()["mim_capacitance_density"], float)


def test_the_docs_list_every_constant_of_the_table():
    """docs/energy.md carries the shipped table as `Constants.markdown` writes it: a constant
    added, changed or re-sourced without the page following fails here."""
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "energy.md").read_text()
    for line in load_constants().markdown().splitlines()[2:]:
        assert line in page, f"docs/energy.md lacks: {line[:80]}"
