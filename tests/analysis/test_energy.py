"""The energy estimate: units and constants at load, scaling laws, exact FLOP counts."""

from __future__ import annotations

import math
import re
from dataclasses import replace

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import compiler
import models
import oscsim
from analysis import energy
from analysis.energy import EnergyError, estimate, euler_step_flops, load_constants
from hw.calibration import Calibration

REL = 1e-9  # the estimate is closed-form arithmetic: only float rounding separates the two sides


@pytest.fixture(scope="module")
def small_ir():
    model = models.Un0.init(models.PUBLISHED["digits-n64"], seed=0)
    return compiler.compile(model, compiler.CompileOptions(tile=32), source="test")


def _with_physical(ir, **changes):
    return type(ir)(doc={**ir.doc, "physical": {**ir.doc["physical"], **changes}}, tensors=ir.tensors)


def _with_resources(ir, **changes):
    return type(ir)(doc={**ir.doc, "resources": {**ir.doc["resources"], **changes}}, tensors=ir.tensors)


def _table_text(**override) -> str:
    """The shipped table as TOML text with some entries replaced (None: dropped)."""
    import tomllib

    doc = tomllib.loads((energy.resources.files("analysis") / energy.DEFAULT_CONSTANTS).read_text())
    for k, v in override.items():
        if v is None:
            doc.pop(k)
        else:
            doc[k] = {**doc[k], **v}
    out = []
    for k, entry in doc.items():
        out.append(f"[{k}]\nvalue = {entry['value']!r}\nunit = {entry['unit']!r}\nsource = {entry['source']!r}\n")
    return "\n".join(out)


# --- the constants table ----------------------------------------------------------------------
def test_shipped_table_loads_with_every_constant_in_si():
    c = load_constants()
    assert set(c.rows) == set(energy.REQUIRED)
    assert c["int8_mult_energy"] == pytest.approx(0.2e-12, rel=REL)  # pJ → J
    assert c["gpu_h100_peak_bf16"] == pytest.approx(989.5e12, rel=REL)  # TFLOP/s → FLOP/s
    assert c["gpu_utilisation"] == pytest.approx(0.52, rel=REL)  # % → fraction
    assert c["sram_leakage_per_bit"] == pytest.approx(790e-12, rel=REL)  # pW/bit → W/bit
    assert all(row.source.strip() for row in c.rows.values())


def test_wrong_unit_is_caught_at_load_naming_the_constant(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text(_table_text(int8_mult_energy={"unit": "W"}))  # an energy given in W
    with pytest.raises(EnergyError, match=r"'int8_mult_energy' is a energy but was given in 'W'"):
        load_constants(path)
    path.write_text(_table_text(gpu_h100_tdp={"unit": "pJ"}))  # a power given in pJ
    with pytest.raises(EnergyError, match=r"'gpu_h100_tdp' is a power but was given in 'pJ'"):
        load_constants(path)
    path.write_text(_table_text(dram_energy_per_bit={"unit": "pJ/furlong"}))
    with pytest.raises(EnergyError, match=r"'dram_energy_per_bit' has unknown unit 'pJ/furlong'"):
        load_constants(path)


def test_units_convert_at_load(tmp_path):
    """The same energy in pJ and in J gives the same SI value (a pJ figure passed as J
    would be 1e12 too large: the unit is what carries the scale)."""
    path = tmp_path / "t.toml"
    path.write_text(_table_text(int8_mult_energy={"value": 0.2e-12, "unit": "J"}))
    assert load_constants(path)["int8_mult_energy"] == pytest.approx(load_constants()["int8_mult_energy"], rel=REL)


def test_missing_constant_is_an_error_never_zero(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text(_table_text(wire_capacitance_per_mm=None))
    with pytest.raises(EnergyError, match=r"constant 'wire_capacitance_per_mm' is missing"):
        load_constants(path)
    path.write_text(_table_text(readout_bits={"value": 0}))
    with pytest.raises(EnergyError, match=r"'readout_bits' must have a finite value > 0"):
        load_constants(path)
    with pytest.raises(EnergyError, match=r"'nope' is missing"):
        load_constants()["nope"]


def test_unknown_constant_and_fraction_over_one(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text(_table_text() + '\n[gpu_h10_tdp]\nvalue = 1\nunit = "W"\nsource = "typo"\n')
    with pytest.raises(EnergyError, match=r"unknown constant 'gpu_h10_tdp'"):
        load_constants(path)
    path.write_text(_table_text(gpu_utilisation={"value": 120}))
    with pytest.raises(EnergyError, match=r"'gpu_utilisation' is a fraction and must be <= 1"):
        load_constants(path)


def test_markdown_table_lists_every_constant_with_its_source():
    md = load_constants().markdown()
    for name, row in load_constants().rows.items():
        assert f"| `{name}` | {row.value:g} | {row.unit} | {row.source} |" in md


# --- scaling laws -------------------------------------------------------------------------------
def test_dynamics_energy_is_linear_in_n_and_latency(small_ir):
    cal = Calibration.default()
    base = estimate(small_ir, calibration=cal)
    p = small_ir.doc["physical"]
    longer = estimate(_with_physical(small_ir, tau_s=3 * p["tau_s"], latency_s=3 * p["latency_s"]), calibration=cal)
    assert longer.array["dynamics"] == pytest.approx(3 * base.array["dynamics"], rel=REL)
    n, tiles = small_ir.doc["dynamics"]["n"], small_ir.doc["resources"]["tiles"]
    expect = (n * cal.cell_energy_per_cycle_j + tiles * cal.bias_energy_per_cycle_j) * cal.f0_hz * p["latency_s"]
    assert base.array["dynamics"] == pytest.approx(expect, rel=REL)
    # the cells' part alone is linear in N: double the cells (bias fixed by the tile count)
    doc = {**small_ir.doc, "dynamics": {**small_ir.doc["dynamics"], "n": 2 * n}}
    doubled = estimate(type(small_ir)(doc=doc, tensors=small_ir.tensors), calibration=cal)
    cells = n * cal.cell_energy_per_cycle_j * cal.f0_hz * p["latency_s"]
    assert doubled.array["dynamics"] - base.array["dynamics"] == pytest.approx(cells, rel=1e-6)


def test_coupler_energy_linear_in_active_couplers(small_ir):
    cal = Calibration.default()
    a = estimate(small_ir, calibration=cal, coupler_model="full-code")
    active = small_ir.doc["resources"]["couplers_active"]
    per = cal.coupler_energy_per_cycle_j * cal.f0_hz * small_ir.doc["physical"]["latency_s"]
    assert a.array["couplers"] == pytest.approx(active * per, rel=REL)
    b = estimate(_with_resources(small_ir, couplers_active=2 * active), calibration=cal, coupler_model="full-code")
    assert b.array["couplers"] == pytest.approx(2 * a.array["couplers"], rel=REL)


def test_conductance_model_follows_the_realised_coupling(small_ir):
    """Conductance model: E = E_full · n_cyc · Σ|K_ij|/τ / K_eff(full); doubling every code
    doubles it, and it never exceeds the full-code bound."""
    cal = Calibration.default()
    a = estimate(small_ir, calibration=cal)
    t = dict(small_ir.tensors)
    t["K.block_scales"] = 2 * t["K.block_scales"]
    b = estimate(type(small_ir)(doc=small_ir.doc, tensors=t), calibration=cal)
    assert b.array["couplers"] == pytest.approx(2 * a.array["couplers"], rel=1e-6)
    assert a.array["couplers"] <= estimate(small_ir, calibration=cal, coupler_model="full-code").array["couplers"]
    K = small_ir.to_params(dtype=torch.float64).K
    tau, lat = small_ir.doc["physical"]["tau_s"], small_ir.doc["physical"]["latency_s"]
    expect = cal.coupler_energy_per_cycle_j * cal.f0_hz * lat * float(K.abs().sum()) / tau / cal.k_max_rad_s
    assert a.array["couplers"] == pytest.approx(expect, rel=1e-6)


def test_wires_and_leakage_and_programming_follow_their_formulas(small_ir):
    cal, c = Calibration.default(), load_constants()
    e = estimate(small_ir, calibration=cal, tile_pitch="compiled")
    res, lat = small_ir.doc["resources"], small_ir.doc["physical"]["latency_s"]
    wire = res["wire_length_mm"] * 0.5 * c["wire_capacitance_per_mm"] * cal.vdd_v ** 2 * 2 * cal.f0_hz * lat
    assert e.array["wires"] == pytest.approx(wire, rel=REL)
    assert e.settings["tile_pitch_from"] == "compiled" and e.settings["tile_pitch_mm"] == 0.5
    assert e.array["leakage"] == pytest.approx(res["weight_memory_bits"] * c["sram_leakage_per_bit"] * lat, rel=REL)
    prog = estimate(small_ir, calibration=cal, constants=c.scaled("programming_amortisation", 10))
    assert prog.array["programming"] == pytest.approx(e.array["programming"] / 10, rel=REL)
    assert e.array["readout"] == pytest.approx(small_ir.doc["dynamics"]["n"] * c["adc_walden_fom"] * 256, rel=REL)


def test_wires_at_the_area_pitch_scale_the_placed_length_by_the_tile_side(small_ir):
    """'auto'/'area': the wires run between tiles as large as their cells make them. The
    placed length is at the compile option's pitch and linear in it, so the area pitch scales
    it by side(tile area) / compiled pitch; the side is √(tile's cells + couplers + SRAM + readout)."""
    from analysis.area import TILE_TERMS, estimate_area

    cal = Calibration.default()
    placed = estimate(small_ir, calibration=cal, tile_pitch="compiled")
    auto = estimate(small_ir, calibration=cal)
    a = estimate_area(small_ir, calibration=cal)
    side = math.sqrt(sum(a.array[t] for t in TILE_TERMS) / len(small_ir.routing.tiles)) * 1e3
    assert auto.settings["tile_pitch_from"] == "area" and auto.settings["tile_pitch_mm"] == pytest.approx(side)
    assert auto.array["wires"] == pytest.approx(placed.array["wires"] * side / 0.5, rel=REL)
    assert {k: v for k, v in auto.array.items() if k != "wires"} == \
        {k: v for k, v in placed.array.items() if k != "wires"}
    # cells the area model does not know: 'auto' prices at the compiled pitch and says why, 'area' refuses
    foreign = replace(cal, process="tsmc28-hpc (somebody else's cards)")
    fb = estimate(small_ir, calibration=foreign)
    assert fb.settings["tile_pitch_mm"] == 0.5 and "none of this project's" in fb.settings["tile_pitch_from"]
    with pytest.raises(EnergyError, match="none of this project's"):
        estimate(small_ir, calibration=foreign, tile_pitch="area")
    with pytest.raises(EnergyError, match="tile_pitch must be one of auto, area, compiled"):
        estimate(small_ir, tile_pitch="wide")


def test_gpu_flops_are_4BN2_per_step_plus_decoder(small_ir):
    e = estimate(small_ir)
    n, n_c, steps = (small_ir.doc["dynamics"][k] for k in ("n", "n_cond", "steps"))
    assert e.gpu_flops["dynamics"] == steps * (4 * n * n + 4 * n * n_c + 4 * n_c * n_c)
    assert e.gpu_flops["total"] == e.gpu_flops["dynamics"] + 2 * small_ir.doc["decoder"]["macs_per_image"]
    assert euler_step_flops(batch=8, n=1000, n_cond=0) == 4 * 8 * 1000 ** 2
    c = load_constants()
    assert e.gpu_estimated["h100"] == pytest.approx(
        e.gpu_flops["total"] * 700 / (989.5e12 * 0.52), rel=REL) and c["gpu_h100_tdp"] == 700


def test_decoder_precision_orders_the_decoder_energy(small_ir):
    j = {p: estimate(small_ir, precision=p).decoder_j for p in energy.PRECISIONS}
    assert j["int4"] < j["int8"] < j["fp16"] < j["fp32"]
    c = load_constants()
    macs, elementwise = small_ir.decoder.macs_per_image, small_ir.decoder.elementwise_per_image
    analog = estimate(small_ir, precision="analog")
    assert analog.decoder["arithmetic"] == pytest.approx(macs * c["analog_mac_energy"]
                                                         + elementwise * c["int32_add_energy"], rel=REL)
    assert analog.decoder["sram"] < estimate(small_ir, precision="int8").decoder["sram"]  # no weight traffic
    with pytest.raises(EnergyError, match=r"precision must be one of int8, int4, fp16, fp32, analog, not 'int3'"):
        estimate(small_ir, precision="int3")


def test_calibration_must_match_the_ir(small_ir):
    cal = replace(Calibration.default(), f0_hz=2 * Calibration.default().f0_hz,
                  f_max_hz=3 * Calibration.default().f0_hz)
    with pytest.raises(EnergyError, match=r"compiled for f0 = .* but the calibration has"):
        estimate(small_ir, calibration=cal)


# --- FLOPs against torch's profiler ---------------------------------------------------------------
@pytest.mark.parametrize("grad,labelled", [(True, True), (False, False)], ids=["autograd path", "no-grad path"])
def test_one_euler_step_flops_equal_flopcountermode(grad, labelled):
    """One Euler step of `oscsim.simulate` under torch's FlopCounterMode. The autograd path
    with class labels (one dropped: its gathered drive is zero but still multiplied) runs
    every product as out-of-place mm/bmm, all counted. The no-grad path adds the class
    drive with an in-place `addmm_`, which FlopCounterMode does not register, so it is
    compared without labels (main and conditioning GEMMs only)."""
    model = models.Un0.init(models.PUBLISHED["digits-n64"], seed=0)
    params = model.params()
    B = 6
    theta0 = model.sample_theta0(B, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1, 1, 2, -1, 3]) if labelled else None
    with FlopCounterMode(display=False) as counter, torch.set_grad_enabled(grad):
        oscsim.simulate(params, theta0.requires_grad_(grad), labels, steps=1, T=1.0)
    got = counter.get_total_flops()
    expect = euler_step_flops(batch=B, n=params.n, n_cond=params.n_cond, labelled=B if labelled else 0)
    assert got == expect
    assert got > 0 and params.n_cond > 0  # every term of the count is exercised


def test_decoder_flops_equal_flopcountermode_and_the_ir(small_ir):
    model = models.Un0.init(models.PUBLISHED["digits-n64"], seed=0)
    traffic = energy.decoder_traffic(model.decoder)
    from models.decoder import run_layers

    zeros = torch.zeros(1, math.prod(model.decoder.latent_shape))
    with FlopCounterMode(display=False) as counter:
        run_layers(model.decoder, zeros)
    assert counter.get_total_flops() == 2 * traffic["macs"] == 2 * small_ir.doc["decoder"]["macs_per_image"]
    # inference folds each upsample + conv into a stride-2 transposed conv: fewer FLOPs, same images
    with FlopCounterMode(display=False) as folded, torch.no_grad():
        model.decoder(zeros)
    assert folded.get_total_flops() < counter.get_total_flops()


# --- sensitivity and the GPU measurement --------------------------------------------------------
def test_sensitivity_moves_the_ratio_as_the_formula_says(small_ir):
    rows = {r["name"]: r for r in energy.sensitivity(small_ir)}
    base = rows["gpu_h100_tdp"]["base"]
    assert rows["gpu_h100_tdp"]["high"] == pytest.approx(2 * base, rel=1e-9)  # GPU J ∝ TDP
    assert rows["gpu_utilisation"]["low"] == pytest.approx(2 * base, rel=1e-9)  # ∝ 1/utilisation
    assert rows["gpu_b200_tdp"]["swing"] == 0  # the ratio is H100's
    assert rows["cell_energy_per_cycle_j"]["high"] < base < rows["cell_energy_per_cycle_j"]["low"]


def test_measure_gpu_without_a_gpu_says_why():
    reason = energy.gpu_unavailable_reason()
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: the skip path is not reachable here")
    assert reason and "CUDA" in reason
    with pytest.raises(EnergyError, match=re.escape(f"cannot measure GPU energy: {reason}")):
        energy.measure_gpu(models.Un0.init(models.PUBLISHED["digits-n64"], seed=0))


@pytest.mark.cuda
def test_measure_gpu_on_a_gpu():
    if energy.gpu_unavailable_reason() is not None:
        pytest.skip(energy.gpu_unavailable_reason())
    m = energy.measure_gpu(models.Un0.init(models.PUBLISHED["digits-n512"], seed=0), batch=256, repeats=3)
    assert m["images"] == 768 and m["j_per_image"] > 0 and m["mean_power_w"] > 10


@pytest.mark.slow
def test_published_n1024_estimate_is_finite_and_positive():
    model = models.Un0.init(models.PUBLISHED["n1024"], seed=0)
    e = estimate(compiler.compile(model, compiler.CompileOptions()), name="Un-0.n1024")
    terms = {k: v for k, v in e.array.items() if k != "links"}
    assert all(v > 0 and math.isfinite(v) for v in (*terms.values(), *e.decoder.values()))
    assert e.array["links"] == 0.0  # rail-to-rail point-to-point wires have no link circuits
    assert e.ratio("h100", decoder=True) > 0


@pytest.mark.parametrize("tile", [16, 32])
def test_link_energy_and_area_of_each_distribution_follow_their_formulas(tile):
    """The same array with each phase distribution: low-swing is the bus's wires at V_s VDD
    instead of VDD² plus a receiver per received phase per edge; time-multiplexed is its shared
    wires toggling at the bit rate × activity, plus one conversion per sent phase per frame
    and a regenerator cell per received phase."""
    from analysis.area import estimate_area

    model = models.Un0.init(models.PUBLISHED["digits-n64"], seed=0)
    cal, c = Calibration.default(), load_constants()
    by = {}
    for dist in compiler.options.DISTRIBUTIONS:
        ir = compiler.compile(model, compiler.CompileOptions(tile=tile, distribution=dist), source="test")
        by[dist] = (ir, estimate(ir, calibration=cal, tile_pitch="compiled"), estimate_area(ir, calibration=cal))
    ir, bus, bus_area = by["broadcast-bus"]
    lat = ir.doc["physical"]["latency_s"]
    place = ir.doc["passes"]["placement"]
    _, ls, ls_area = by["low-swing"]
    assert ls.array["wires"] == pytest.approx(bus.array["wires"] * 0.2 / cal.vdd_v, rel=REL)
    edges = 2 * cal.f0_hz * lat
    assert ls.array["links"] == pytest.approx(place["phase_receivers"]["low-swing"] * c["link_receiver_energy"] * edges,
                                              rel=REL)
    assert bus.array["links"] == 0 == bus_area.array["links"]
    assert ls_area.array["routing"] == bus_area.array["routing"] and ls_area.array["links"] > 0
    tdm_ir, tdm, tdm_area = by["time-multiplexed"]
    tp = tdm_ir.doc["passes"]["placement"]
    wire_mm = tp["wire_length_mm"]
    bits = 1e9 * lat * c["link_activity"]
    assert tdm.array["wires"] == pytest.approx(0.5 * c["wire_capacitance_per_mm"] * wire_mm * cal.vdd_v ** 2 * bits,
                                               rel=REL)
    frames = lat / tp["links"]["frame_s"]
    links = (tp["phases_sent"] * frames * c["adc_walden_fom"] * 2 ** 6
             + tp["phase_receivers"]["time-multiplexed"] * cal.cell_energy_per_cycle_j * cal.f0_hz * lat)
    assert tdm.array["links"] == pytest.approx(links, rel=REL)
    assert tdm_area.array["routing"] < bus_area.array["routing"]
    # the rest of the array is the same hardware
    for term in ("dynamics", "couplers", "conditioning", "readout"):
        assert tdm.array[term] == pytest.approx(bus.array[term], rel=REL) == ls.array[term]
