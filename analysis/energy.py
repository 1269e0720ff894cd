r"""Joules per inference: the compiled oscillator array (with its digital decoder) against GPUs.

Every figure has one of three origins, and nothing else enters:

- the compiled `compiler.ArrayIR` (cells, tiles, τ, latency, codes, wire length, decoder
  MACs counted on the module);
- the `hw.Calibration` (cell, bias and coupler energy per carrier cycle, f0, VDD);
- the constants table `analysis/energy_constants.toml` (value, unit, public source), loaded
  by `load_constants`, which converts every unit to SI and refuses a missing constant or a
  unit of the wrong kind.

Per image (batch 1, latency t = T·τ, carrier cycles n_cyc = f0·t):

    dynamics      = (N · E_cell + tiles · E_bias) · n_cyc
    couplers      = E_coupler(full code) · n_cyc · Σ_ij |K_ij/τ| / K_eff(full code)
    conditioning  = (N_c · E_cell + E_bias) · n_cyc + E_coupler(full) · n_cyc · Σ(|C/τ| + mean_c |K̃[c]/τ|) / K_eff(full)
    readout       = N · FoM_Walden · 2^b                      (one phase-to-digital conversion per oscillator)
    wires         = L_wire · ½ C_wire VDD² · 2 f0 · t            (phase signals toggle twice per carrier cycle)
    leakage       = code bits · P_leak/bit · t
    programming   = code bits · (E_DRAM/bit + E_SRAM/bit) / inferences amortised
    decoder       = MACs · E_MAC(precision) + elementwise · E_add + SRAM traffic · E/bit

How code magnitude enters the couplers: a resistive coupler's K_eff and its dissipation
are both proportional to its conductance, so a coupler realising |K_ij|/τ rad/s costs
E_coupler(full) · (|K_ij|/τ) / K_eff(full) per cycle (``coupler_model="conductance"``).
``coupler_model="full-code"`` charges every active coupler its full-code energy (the
bound for a coupler whose dissipation does not fall with its code).

GPU, estimated: FLOPs per image (the GEMMs of every Euler step, counted exactly as
`euler_step_flops` and checked against torch's FlopCounterMode, plus 2 × decoder MACs)
× TDP / (peak dense BF16 throughput × utilisation). GPU, measured: NVML's energy counter
around `Un0.generate` at a batch that fills the GPU (`measure_gpu`).
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import nn

from oscsim.fileio import PathCheckError, readable_file


class EnergyError(ValueError):
    """A constants table, an option or an input of the energy estimate is invalid."""


# --- units ---------------------------------------------------------------------------------
# unit as written → (dimension, factor to SI)
UNITS: dict[str, tuple[str, float]] = {
    **{u: ("energy", f) for u, f in (("J", 1.0), ("mJ", 1e-3), ("uJ", 1e-6), ("µJ", 1e-6), ("nJ", 1e-9),
                                       ("pJ", 1e-12), ("fJ", 1e-15), ("aJ", 1e-18))},
    **{u: ("power", f) for u, f in (("W", 1.0), ("kW", 1e3), ("mW", 1e-3), ("uW", 1e-6), ("µW", 1e-6),
                                      ("nW", 1e-9), ("pW", 1e-12))},
    **{u: ("energy/bit", f) for u, f in (("J/bit", 1.0), ("nJ/bit", 1e-9), ("pJ/bit", 1e-12), ("fJ/bit", 1e-15))},
    **{u: ("power/bit", f) for u, f in (("W/bit", 1.0), ("nW/bit", 1e-9), ("pW/bit", 1e-12), ("fW/bit", 1e-15))},
    **{u: ("energy/length", f) for u, f in (("J/mm", 1.0), ("pJ/mm", 1e-12), ("fJ/mm", 1e-15))},
    **{u: ("capacitance/length", f) for u, f in (("F/mm", 1.0), ("pF/mm", 1e-12), ("fF/mm", 1e-15),
                                                   ("fF/um", 1e-12), ("fF/µm", 1e-12))},
    **{u: ("energy/conversion-step", f) for u, f in (("J/conv-step", 1.0), ("pJ/conv-step", 1e-12),
                                                      ("fJ/conv-step", 1e-15))},
    **{u: ("throughput", f) for u, f in (("FLOP/s", 1.0), ("GFLOP/s", 1e9), ("TFLOP/s", 1e12),
                                          ("PFLOP/s", 1e15))},
    **{u: ("area", f) for u, f in (("m2", 1.0), ("mm2", 1e-6), ("um2", 1e-12), ("µm2", 1e-12), ("nm2", 1e-18))},
    **{u: ("length", f) for u, f in (("m", 1.0), ("mm", 1e-3), ("um", 1e-6), ("µm", 1e-6), ("nm", 1e-9))},
    **{u: ("capacitance/area", f) for u, f in (("F/m2", 1.0), ("fF/um2", 1e-3), ("fF/µm2", 1e-3))},
    "%": ("fraction", 1e-2), "1": ("fraction", 1.0), "x": ("ratio", 1.0),
    "bit": ("bits", 1.0), "inferences": ("count", 1.0), "layers": ("count", 1.0), "gates": ("count", 1.0),
    "units": ("count", 1.0),
}

# every constant the estimate reads, with the dimension its unit must have
REQUIRED: dict[str, str] = {
    "gpu_h100_tdp": "power", "gpu_h100_peak_bf16": "throughput",
    "gpu_b200_tdp": "power", "gpu_b200_peak_bf16": "throughput",
    "gpu_utilisation": "fraction",
    "int8_mult_energy": "energy", "int32_add_energy": "energy",
    "fp16_mult_energy": "energy", "fp16_add_energy": "energy",
    "fp32_mult_energy": "energy", "fp32_add_energy": "energy",
    "sram_small_energy_per_bit": "energy/bit", "sram_large_energy_per_bit": "energy/bit",
    "dram_energy_per_bit": "energy/bit", "sram_leakage_per_bit": "power/bit",
    "adc_walden_fom": "energy/conversion-step", "readout_bits": "bits",
    "wire_capacitance_per_mm": "capacitance/length", "programming_amortisation": "count",
    # area (analysis.area)
    "nand2_area_180nm": "area", "nand2_area_45nm": "area", "analog_layout_overhead": "ratio",
    "mim_capacitance_density": "capacitance/area", "sram_bitcell_area_180nm": "area",
    "sram_bitcell_area_45nm": "area", "sram_array_efficiency": "fraction", "wire_pitch_45nm": "length",
    "wire_pitch_180nm": "length", "phase_routing_layers": "count", "readout_gates_per_bit": "count",
    "int8_mult_area": "area", "int32_add_area": "area", "fp16_mult_area": "area", "fp16_add_area": "area",
    "fp32_mult_area": "area", "fp32_add_area": "area", "decoder_mac_units": "count",
    # inter-tile links (low-swing receivers, time-multiplexed serialisers)
    "link_receiver_energy": "energy", "link_receiver_gates": "count", "link_activity": "fraction",
    "flop_gates": "count",
    # the int4 and analog-crossbar decoders
    "int4_mult_energy": "energy", "int4_mult_area": "area", "analog_mac_energy": "energy", "pcm_cell_area": "area",
}
GPUS = ("h100", "b200")
#: decoder arithmetic → bits per weight/activation held in SRAM: the digital MAC arrays, and
#: 'analog' (PCM crossbars, `models.lowbit.AnalogDecoder`: weights stationary in the devices,
#: activations through 8-bit DACs/ADCs)
PRECISIONS = {"int8": 8, "int4": 4, "fp16": 16, "fp32": 32, "analog": 8}
COUPLER_MODELS = ("conductance", "full-code")
#: which tile pitch prices the inter-tile wires: the compile option's ('compiled'), the side
#: of a tile's area on the calibration's cells ('area', `analysis.area`), or 'auto' (area
#: where the cells are the project's, whose devices the area model reads; compiled otherwise)
TILE_PITCHES = ("auto", "area", "compiled")
DEFAULT_CONSTANTS = "energy_constants.toml"


@dataclass(frozen=True, kw_only=True)
class Constant:
    """One row of the table: `value` as written in `unit`, `si` the value in SI units."""

    name: str
    value: float
    unit: str
    dimension: str
    si: float
    source: str


@dataclass(frozen=True)
class Constants:
    """The loaded table: name → `Constant`; `self[name]` is the SI value."""

    rows: dict[str, Constant]
    origin: str = "analysis/energy_constants.toml"

    def __getitem__(self, name: str) -> float:
        try:
            return self.rows[name].si
        except KeyError:
            raise EnergyError(f"{self.origin}: constant {name!r} is missing") from None

    def scaled(self, name: str, factor: float) -> Constants:
        """A copy with constant `name` multiplied by `factor` (the sensitivity study)."""
        row = self.rows[name] if name in self.rows else None
        if row is None:
            raise EnergyError(f"no constant {name!r}; valid: {', '.join(sorted(self.rows))}")
        rows = dict(self.rows)
        rows[name] = replace(row, value=row.value * factor, si=row.si * factor)
        return Constants(rows, self.origin)

    def markdown(self) -> str:
        """The table as markdown: name, value, unit, source."""
        lines = ["| constant | value | unit | public source |", "|---|---|---|---|"]
        for c in self.rows.values():
            lines.append(f"| `{c.name}` | {c.value:g} | {c.unit} | {c.source} |")
        return "\n".join(lines) + "\n"


def _parse(doc: Any, origin: str) -> Constants:
    if not isinstance(doc, dict):
        raise EnergyError(f"{origin}: expected a table of constants")
    rows: dict[str, Constant] = {}
    for name, entry in doc.items():
        if name not in REQUIRED:
            raise EnergyError(f"{origin}: unknown constant {name!r}; the estimate reads {', '.join(REQUIRED)}")
        if not isinstance(entry, dict) or set(entry) != {"value", "unit", "source"}:
            got = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
            raise EnergyError(f"{origin}: constant {name!r} must have exactly value, unit and source, not {got}")
        value, unit, source = entry["value"], entry["unit"], entry["source"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise EnergyError(f"{origin}: constant {name!r} must have a finite value > 0, not {value!r}")
        if not isinstance(source, str) or not source.strip():
            raise EnergyError(f"{origin}: constant {name!r} needs a public source")
        if unit not in UNITS:
            raise EnergyError(f"{origin}: constant {name!r} has unknown unit {unit!r}; "
                              f"for {REQUIRED[name]} use one of {', '.join(u for u, (d, _) in UNITS.items() if d == REQUIRED[name])}")
        dimension, factor = UNITS[unit]
        if dimension != REQUIRED[name]:
            valid = ", ".join(u for u, (d, _) in UNITS.items() if d == REQUIRED[name])
            raise EnergyError(f"{origin}: constant {name!r} is a {REQUIRED[name]} but was given in {unit!r} "
                              f"({dimension}); use one of {valid}")
        si = float(value) * factor
        if dimension == "ratio" and si < 1:
            raise EnergyError(f"{origin}: constant {name!r} is a factor and must be >= 1, not {value} {unit}")
        if dimension == "fraction" and si > 1:
            raise EnergyError(f"{origin}: constant {name!r} is a fraction and must be <= 1 (100 %), not {value} {unit}")
        rows[name] = Constant(name=name, value=float(value), unit=unit, dimension=dimension, si=si, source=source)
    missing = [n for n in REQUIRED if n not in rows]
    if missing:
        raise EnergyError(f"{origin}: constant {missing[0]!r} is missing" +
                          (f" (and {len(missing) - 1} more: {', '.join(missing[1:])})" if len(missing) > 1 else ""))
    return Constants(rows, origin)


def load_constants(path: str | Path | None = None) -> Constants:
    """Load the constants table (the shipped one when `path` is None), units converted to SI.

    Raises EnergyError naming the constant for a missing or unknown constant, a unit of the
    wrong kind (an energy given in W), an unknown unit, or a non-positive value.
    """
    if path is None:
        text, origin = resources.files("analysis").joinpath(DEFAULT_CONSTANTS).read_text(), "analysis/" + DEFAULT_CONSTANTS
    else:
        origin = str(path)
        try:
            readable_file(path)
            text = Path(path).read_text()
        except PathCheckError as exc:
            raise EnergyError(f"{exc} (the constants table)") from None
        except OSError as exc:
            raise EnergyError(f"{origin}: cannot read the constants table ({exc.strerror or exc})") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise EnergyError(f"{origin}: not valid TOML ({exc})") from None
    return _parse(doc, origin)


# --- counting -------------------------------------------------------------------------------
def euler_step_flops(*, batch: int, n: int, n_cond: int, labelled: int | None = None) -> int:
    """Exact matrix-product FLOPs of one Euler step of `oscsim.simulate` (2 per multiply-add):

    main coupling [sin θ; cos θ] (2B×N) · Kᵀ (N×N): 4·B·N²; class drive K̃[c] (N×N_c) on
    [sin φ, cos φ] for the `labelled` samples (default all B): 4·B·N·N_c; conditioning
    coupling (2B×N_c) · Cᵀ: 4·B·N_c². Element-wise work (sin, cos, the update) is O(B·N)
    and is not counted, as FlopCounterMode does not count it either.
    """
    labelled = batch if labelled is None else labelled
    return 4 * batch * n * n + 4 * labelled * n * n_cond + 4 * batch * n_cond * n_cond


def decoder_traffic(decoder: nn.Module) -> dict[str, int]:
    """Per image, counted on the module with hooks on one forward pass of its layers as
    defined (`models.decoder.run_layers`): weight elements
    (each read once per image), activation elements read and written by the conv layers,
    MACs (output elements × input channels per group × kernel area), and the largest one
    layer's input + output (`peak_activations`: the activation buffer a decoder needs)."""
    counts = {"weights": 0, "activations": 0, "macs": 0, "peak_activations": 0}

    def hook(module: nn.Module, inputs, output) -> None:
        counts["weights"] += module.weight.numel() + (module.bias.numel() if module.bias is not None else 0)
        counts["activations"] += inputs[0][0].numel() + output[0].numel()
        counts["peak_activations"] = max(counts["peak_activations"], inputs[0][0].numel() + output[0].numel())
        k = module.in_channels // module.groups * math.prod(module.kernel_size)
        counts["macs"] += output[0].numel() * k

    from models.decoder import run_layers

    handles = [m.register_forward_hook(hook) for m in decoder.modules() if isinstance(m, nn.Conv2d)]
    try:
        p = next(decoder.parameters())
        run_layers(decoder, torch.zeros(1, math.prod(decoder.latent_shape), dtype=p.dtype, device=p.device))
    finally:
        for h in handles:
            h.remove()
    return counts


# --- the estimate ---------------------------------------------------------------------------
ARRAY_TERMS = ("dynamics", "couplers", "conditioning", "readout", "wires", "links", "leakage", "programming")


@dataclass(frozen=True)
class Estimate:
    """Joules per image of one compiled model, term by term, and the GPU comparison."""

    name: str
    n: int
    n_cond: int
    steps: int
    latency_s: float
    tau_s: float
    array: dict[str, float]  # ARRAY_TERMS → J/image
    decoder: dict[str, float]  # "arithmetic", "sram" → J/image
    gpu_flops: dict[str, int]  # "dynamics", "decoder", "total" per image
    gpu_estimated: dict[str, float]  # GPU name → J/image
    gpu_measured: dict[str, Any] | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def array_dynamics_j(self) -> float:
        return self.array["dynamics"]

    @property
    def array_total_j(self) -> float:
        return sum(self.array.values())

    @property
    def decoder_j(self) -> float:
        return sum(self.decoder.values())

    @property
    def with_decoder_j(self) -> float:
        return self.array_total_j + self.decoder_j

    def ratio(self, gpu: str, *, decoder: bool) -> float:
        """GPU J/image over the array's: with the decoder (both sides run it) or without
        (the GPU's dynamics FLOPs only against the array alone)."""
        if decoder:
            return self.gpu_estimated[gpu] / self.with_decoder_j
        share = self.gpu_flops["dynamics"] / self.gpu_flops["total"]
        return self.gpu_estimated[gpu] * share / self.array_total_j

    def dominant(self) -> tuple[str, float]:
        """The largest term of array + decoder and its share."""
        terms = {**{f"array {k}": v for k, v in self.array.items()}, **{f"decoder {k}": v for k, v in self.decoder.items()}}
        name = max(terms, key=terms.get)
        return name, terms[name] / self.with_decoder_j

    def row(self) -> dict[str, Any]:
        """One CSV/markdown row."""
        row = {"model": self.name, "N": self.n, "N_c": self.n_cond, "tau_s": self.tau_s, "latency_s": self.latency_s,
               "array_dynamics_j": self.array_dynamics_j, "array_total_j": self.array_total_j,
               "decoder_j": self.decoder_j, "array_plus_decoder_j": self.with_decoder_j}
        for g in GPUS:
            row[f"gpu_{g}_estimated_j"] = self.gpu_estimated[g]
        row["gpu_measured_j"] = self.gpu_measured["j_per_image"] if self.gpu_measured else None
        row["gpu_measured_device"] = self.gpu_measured["device"] if self.gpu_measured else None
        for g in GPUS:
            row[f"ratio_{g}_with_decoder"] = self.ratio(g, decoder=True)
            row[f"ratio_{g}_without_decoder"] = self.ratio(g, decoder=False)
        row.update({f"array_{k}_j": v for k, v in self.array.items()})
        row.update({f"decoder_{k}_j": v for k, v in self.decoder.items()})
        row["gpu_flops_per_image"] = self.gpu_flops["total"]
        return row


def _coupling_sums(ir) -> dict[str, float]:
    """Σ|K_ij| over the main couplers, Σ|C_kl|, the class-mean Σ|K̃[c]| (model units,
    dequantised from the codes), and the count of active (non-zero) couplers of each."""
    t = ir.tensors
    _, rows = ir.coupling_abs_stats()
    drive = t["drive.codes"].abs().to(torch.float64) * t["drive.scale"].abs().double()
    C = t["C.codes"].abs().to(torch.float64) * t["C.scale"].abs().double()
    return {
        "main": float(rows.sum()),
        "drive": float(drive.sum()) / max(drive.shape[0], 1),
        "cond": float(C.sum()),
        "main_active": ir.routing.couplers_active,
        "drive_active": int(torch.count_nonzero(t["drive.codes"])) / max(t["drive.codes"].shape[0], 1),
        "cond_active": int(torch.count_nonzero(t["C.codes"])),
    }


def _decoder_module(ir):
    from models.decoder import Decoder

    return Decoder(ir.config)


def tile_pitch_for(ir, *, calibration, constants: Constants, traffic: dict, tile_pitch: str = "auto") -> tuple[float, str]:
    """(tile pitch in mm, where it came from) for pricing the IR's inter-tile wires (`TILE_PITCHES`)."""
    if tile_pitch not in TILE_PITCHES:
        raise EnergyError(f"tile_pitch must be one of {', '.join(TILE_PITCHES)}, not {tile_pitch!r}")
    compiled = float(ir.doc["passes"]["placement"]["tile_pitch_mm"])
    if tile_pitch == "compiled":
        return compiled, "compiled"
    from analysis.area import estimate_area

    try:
        pitch = estimate_area(ir, calibration=calibration, constants=constants, traffic=traffic).tile_pitch_mm
    except EnergyError as exc:
        if tile_pitch == "area":
            raise
        return compiled, f"compiled ({exc})"
    return pitch, "area"


def estimate(ir, *, calibration=None, constants: Constants | None = None, precision: str = "int8",
             coupler_model: str = "conductance", name: str | None = None, traffic: dict | None = None,
             sums: dict | None = None, tile_pitch: str = "auto") -> Estimate:
    """Joules per image of the array `ir` (a `compiler.ArrayIR`) and of the GPUs.

    Args:
        calibration: a `hw.Calibration` of the same cells (default: the one stored in the IR,
            which is the one it was compiled with).
        constants: the table (default: the shipped one).
        precision: the decoder's arithmetic, one of int8 (int8 × int8, int32 accumulate),
            fp16, fp32.
        coupler_model: how a coupler's code enters its energy (see the module docstring).
        traffic, sums: precomputed `decoder_traffic` / coupling sums (the sensitivity study
            re-estimates one IR many times).
        tile_pitch: the pitch the wires are priced at (`TILE_PITCHES`; default 'auto': the
            side of one tile on the calibration's cells, `analysis.area`). The IR's wire
            length is at the compile option's pitch and scales linearly with it.
    """
    if precision not in PRECISIONS:
        raise EnergyError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if coupler_model not in COUPLER_MODELS:
        raise EnergyError(f"coupler_model must be one of {', '.join(COUPLER_MODELS)}, not {coupler_model!r}")
    cal = calibration or ir.calibration
    c = constants or load_constants()
    phys, res, dyn = ir.physical, ir.routing, ir.dynamics
    if abs(phys.f0_hz - cal.f0_hz) > 1e-9 * cal.f0_hz:
        raise EnergyError(f"the IR was compiled for f0 = {phys.f0_hz:.6g} Hz but the calibration has "
                          f"{cal.f0_hz:.6g} Hz; pass the calibration it was compiled with")
    n, n_c, steps = dyn.n, dyn.n_cond, dyn.steps
    tau, latency = phys.tau_s, phys.latency_s
    cycles = cal.f0_hz * latency
    sums = sums if sums is not None else _coupling_sums(ir)

    def coupler_j(abs_sum: float, active: float) -> float:
        if coupler_model == "full-code":
            return active * cal.coupler_energy_per_cycle_j * cycles
        return cal.coupler_energy_per_cycle_j * cycles * (abs_sum / tau) / cal.k_max_rad_s

    code_bits = float(res.weight_memory_bits)
    traffic = traffic if traffic is not None else decoder_traffic(_decoder_module(ir))
    pitch_mm, pitch_from = tile_pitch_for(ir, calibration=cal, constants=c, traffic=traffic, tile_pitch=tile_pitch)
    wire_mm = res.wire_length_mm * pitch_mm / float(ir.doc["passes"]["placement"]["tile_pitch_mm"])
    wires_j, links_j = link_energy(ir, cal, c, wire_mm=wire_mm, latency_s=latency)
    array = {
        "dynamics": (n * cal.cell_energy_per_cycle_j + len(res.tiles) * cal.bias_energy_per_cycle_j) * cycles,
        "couplers": coupler_j(sums["main"], sums["main_active"]),
        "conditioning": ((n_c * cal.cell_energy_per_cycle_j + cal.bias_energy_per_cycle_j) * cycles
                         + coupler_j(sums["drive"] + sums["cond"], sums["drive_active"] + sums["cond_active"]))
        if n_c else 0.0,
        "readout": n * c["adc_walden_fom"] * 2.0 ** c["readout_bits"],
        "wires": wires_j,
        "links": links_j,
        "leakage": code_bits * c["sram_leakage_per_bit"] * latency,
        "programming": code_bits * (c["dram_energy_per_bit"] + c["sram_large_energy_per_bit"])
        / c["programming_amortisation"],
    }

    macs, elementwise = ir.decoder.macs_per_image, ir.decoder.elementwise_per_image
    if traffic["macs"] != macs:
        raise EnergyError(f"the decoder module counts {traffic['macs']} MACs per image, the IR {macs}")
    bits = PRECISIONS[precision]
    if precision == "analog":  # the MACs in the crossbars (periphery included); weights never move
        decoder = {"arithmetic": macs * c["analog_mac_energy"] + elementwise * c["int32_add_energy"],
                   "sram": traffic["activations"] * bits * c["sram_small_energy_per_bit"]}
    else:
        mult, add = {"int8": ("int8_mult_energy", "int32_add_energy"), "int4": ("int4_mult_energy", "int32_add_energy"),
                     "fp16": ("fp16_mult_energy", "fp16_add_energy"),
                     "fp32": ("fp32_mult_energy", "fp32_add_energy")}[precision]
        decoder = {
            "arithmetic": macs * (c[mult] + c[add]) + elementwise * c[add],
            "sram": traffic["weights"] * bits * c["sram_large_energy_per_bit"]
            + traffic["activations"] * bits * c["sram_small_energy_per_bit"],
        }

    dyn_flops = steps * euler_step_flops(batch=1, n=n, n_cond=n_c)
    dec_flops = 2 * macs
    flops = {"dynamics": dyn_flops, "decoder": dec_flops, "total": dyn_flops + dec_flops}
    gpu = {g: flops["total"] * c[f"gpu_{g}_tdp"] / (c[f"gpu_{g}_peak_bf16"] * c["gpu_utilisation"]) for g in GPUS}
    return Estimate(
        name=name or ir.name, n=n, n_cond=n_c, steps=steps,
        latency_s=latency, tau_s=tau, array=array, decoder=decoder, gpu_flops=flops, gpu_estimated=gpu,
        settings={"precision": precision, "coupler_model": coupler_model, "calibration": cal.source,
                  "constants": c.origin, "binding_limit": phys.binding_limit, "tile_pitch_mm": pitch_mm,
                  "tile_pitch_from": pitch_from, "wire_length_mm": wire_mm,
                  "distribution": ir.doc["passes"]["placement"].get("distribution", "point-to-point")},
    )


def link_energy(ir, cal, c: Constants, *, wire_mm: float, latency_s: float) -> tuple[float, float]:
    """(wires, link circuits) J/image of the IR's phase distribution (`CompileOptions.distribution`):

    - point-to-point, broadcast-bus: every wire swings rail to rail twice a cycle,
      ½ C V² per transition; no link circuits;
    - low-swing: the same edges at the swing V_s, ½ C V_s VDD per transition (the charge
      C V_s drawn from VDD); each receiver spends `link_receiver_energy` per edge;
    - time-multiplexed: the shared wires toggle at the bit rate × `link_activity`, ½ C V²
      each; per frame every sent phase is converted once (the phase-to-digital converter,
      `adc_walden_fom` · 2^b) and every receiver's phase regenerator — one ring cell per
      received phase, re-set from the held word — runs as a cell does.
    """
    place = ir.doc["passes"]["placement"]
    dist = place.get("distribution", "point-to-point")
    opts = ir.doc["options"]
    cap = c["wire_capacitance_per_mm"] * wire_mm
    edges = 2 * cal.f0_hz * latency_s  # transitions per wire per image at f0
    if dist in ("point-to-point", "broadcast-bus"):
        return 0.5 * cap * cal.vdd_v ** 2 * edges, 0.0
    receivers = place["phase_receivers"][dist]
    if dist == "low-swing":
        return (0.5 * cap * float(opts["low_swing_v"]) * cal.vdd_v * edges,
                receivers * c["link_receiver_energy"] * edges)
    if dist == "time-multiplexed":
        timing = place["links"]
        bits = float(opts["link_bit_rate_gbps"]) * 1e9 * latency_s * c["link_activity"]
        frames = latency_s / timing["frame_s"]
        convert = place["phases_sent"] * frames * c["adc_walden_fom"] * 2.0 ** int(opts["tdm_word_bits"])
        regenerate = receivers * cal.cell_energy_per_cycle_j * cal.f0_hz * latency_s
        return 0.5 * cap * cal.vdd_v ** 2 * bits, convert + regenerate
    raise EnergyError(f"the IR's phase distribution {dist!r} is not one the estimate knows")


# --- the sensitivity study ------------------------------------------------------------------
CALIBRATION_KNOBS = ("cell_energy_per_cycle_j", "bias_energy_per_cycle_j", "coupler_energy_per_cycle_j")


def sensitivity(ir, *, calibration=None, constants: Constants | None = None, gpu: str = "h100",
                factor: float = 2.0, **kwargs) -> list[dict[str, Any]]:
    """The GPU/array ratio (decoder included) with each constant, each calibration energy
    and τ scaled by 1/factor and by factor, one at a time; sorted by the swing."""
    cal = calibration or ir.calibration
    c = constants or load_constants()
    fixed = {"traffic": decoder_traffic(_decoder_module(ir)), "sums": _coupling_sums(ir), **kwargs}
    base = estimate(ir, calibration=cal, constants=c, **fixed).ratio(gpu, decoder=True)

    def tau_scaled(f: float):
        phys = dict(ir.doc["physical"], tau_s=ir.doc["physical"]["tau_s"] * f,
                    latency_s=ir.doc["physical"]["latency_s"] * f)
        return type(ir)(doc={**ir.doc, "physical": phys}, tensors=ir.tensors)

    rows = []
    variants: list[tuple[str, Any]] = [(k, None) for k in c.rows] + [(k, "cal") for k in CALIBRATION_KNOBS] + [("tau_s", "tau")]
    for name, kind in variants:
        ratios = []
        for f in (1 / factor, factor):
            if kind is None:
                est = estimate(ir, calibration=cal, constants=c.scaled(name, f), **fixed)
            elif kind == "cal":
                est = estimate(ir, calibration=replace(cal, **{name: getattr(cal, name) * f}), constants=c, **fixed)
            else:
                est = estimate(tau_scaled(f), calibration=cal, constants=c, **fixed)
            ratios.append(est.ratio(gpu, decoder=True))
        rows.append({"name": name, "low": ratios[0], "high": ratios[1], "base": base,
                     "swing": abs(math.log(ratios[1] / ratios[0]))})
    rows.sort(key=lambda r: r["swing"], reverse=True)
    return rows


# --- measured GPU energy (NVML) -------------------------------------------------------------
def gpu_unavailable_reason() -> str | None:
    """Why `measure_gpu` cannot run here, or None when it can."""
    if not torch.cuda.is_available():
        return "no CUDA device (torch.cuda.is_available() is False)"
    try:
        import pynvml  # noqa: F401  (package nvidia-ml-py: pip install 'un0hw[gpu]')
    except ImportError:
        return "pynvml is not installed (pip install nvidia-ml-py, or the project's [gpu] extra)"
    return None


def measure_gpu(model, *, batch: int = 4096, repeats: int = 10, device: str = "cuda:0") -> dict[str, Any]:
    """Joules per image of `model.generate` on a GPU, from NVML's total-energy counter
    (millijoules since driver load; Volta and newer) read around `repeats` batches of
    `batch` images after one warm-up batch. Includes the GPU's idle power over that time,
    as a wall socket would. Raises EnergyError with the reason where it cannot run."""
    reason = gpu_unavailable_reason()
    if reason is not None:
        raise EnergyError(f"cannot measure GPU energy: {reason}")
    import time

    import pynvml

    dev = torch.device(device)
    model = model.to(dev).eval()
    gen = torch.Generator(device=dev).manual_seed(0)
    labels = torch.randint(0, model.config.num_classes, (batch,), generator=gen, device=dev)
    pynvml.nvmlInit()
    try:
        handle = pynvml.nvmlDeviceGetHandleByIndex(dev.index or 0)
        gpu_name = pynvml.nvmlDeviceGetName(handle)
        gpu_name = gpu_name.decode() if isinstance(gpu_name, bytes) else gpu_name
        try:
            pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        except pynvml.NVMLError as exc:
            raise EnergyError(f"cannot measure GPU energy: NVML has no energy counter on {gpu_name} ({exc})") from None
        theta0 = model.sample_theta0(batch, generator=gen)
        with torch.inference_mode():
            model.generate(labels, theta0)  # warm-up: kernels, allocator
            torch.cuda.synchronize(dev)
            e0, t0 = pynvml.nvmlDeviceGetTotalEnergyConsumption(handle), time.perf_counter()
            for _ in range(repeats):
                model.generate(labels, theta0)
            torch.cuda.synchronize(dev)
            e1, t1 = pynvml.nvmlDeviceGetTotalEnergyConsumption(handle), time.perf_counter()
    finally:
        pynvml.nvmlShutdown()
    images = batch * repeats
    joules = (e1 - e0) * 1e-3
    return {"device": gpu_name, "batch": batch, "images": images, "seconds": t1 - t0,
            "joules": joules, "j_per_image": joules / images, "mean_power_w": joules / (t1 - t0)}


# --- reports (files at the edge) ------------------------------------------------------------
def _fmt(x: Any) -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        return f"{x:.3g}"
    return str(x)


def markdown_table(estimates: list[Estimate]) -> str:
    """The headline table: J/image per model and the GPU/array ratios."""
    head = ["model", "N", "latency", "array dynamics (J)", "array total (J)", "decoder (J)",
            "H100 est. (J)", "B200 est. (J)", "GPU measured (J)", "H100/array w/ decoder",
            "H100/array w/o decoder", "B200/array w/ decoder", "B200/array w/o decoder", "dominant term"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in estimates:
        meas = f"{e.gpu_measured['j_per_image']:.3g} ({e.gpu_measured['device']})" if e.gpu_measured else "—"
        dom, share = e.dominant()
        cells = [e.name, str(e.n), f"{e.latency_s * 1e6:.3g} µs", _fmt(e.array_dynamics_j), _fmt(e.array_total_j),
                 _fmt(e.decoder_j), _fmt(e.gpu_estimated["h100"]), _fmt(e.gpu_estimated["b200"]), meas,
                 f"{e.ratio('h100', decoder=True):.3g}×", f"{e.ratio('h100', decoder=False):.3g}×",
                 f"{e.ratio('b200', decoder=True):.3g}×", f"{e.ratio('b200', decoder=False):.3g}×",
                 f"{dom} ({share:.0%})"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_csv(estimates: list, path: str | Path) -> None:
    """One CSV row per estimate (its `row()`: an `Estimate` here, an `analysis.area.AreaEstimate`
    there), written atomically."""
    import csv
    import io

    from oscsim import atomic_path

    rows = [e.row() for e in estimates]
    keys = list(rows[0])
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if v is None else v) for k, v in r.items()})
    with atomic_path(path) as tmp:
        tmp.write_text(buf.getvalue())


def plot_breakdown(estimates: list[Estimate], path: str | Path) -> None:
    """Stacked bars: each term's share of array + decoder J/image, total written on top."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from oscsim import atomic_path

    terms = [("array", k) for k in ARRAY_TERMS] + [("decoder", k) for k in ("arithmetic", "sram")]
    fig, ax = plt.subplots(figsize=(10, 5.5))
    x = range(len(estimates))
    bottom = [0.0] * len(estimates)
    colors = plt.get_cmap("tab10").colors
    for i, (part, k) in enumerate(terms):
        share = [getattr(e, part)[k] / e.with_decoder_j * 100 for e in estimates]
        ax.bar(x, share, bottom=bottom, label=f"{part}: {k}", color=colors[i % 10],
               hatch="//" if part == "decoder" else None, edgecolor="white")
        bottom = [b + s for b, s in zip(bottom, share)]
    for i, e in enumerate(estimates):
        ax.text(i, 101, f"{e.with_decoder_j:.2g} J\nH100 {e.ratio('h100', decoder=True):.3g}×",
                ha="center", va="bottom", fontsize=8)
    ax.set_xticks(list(x), [e.name for e in estimates], rotation=20)
    ax.set_ylim(0, 118)
    ax.set_ylabel("share of J/image (array + decoder), %")
    ax.set_title("Energy per image on the oscillator array: breakdown (total and GPU/array ratio on top)")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def plot_tornado(rows: list[dict[str, Any]], path: str | Path, *, title: str, top: int = 16) -> None:
    """Tornado: the GPU/array ratio with each constant at ½× and 2×."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from oscsim import atomic_path

    rows = [r for r in rows if r["swing"] > 1e-9][:top][::-1]
    base = rows[0]["base"] if rows else 1.0
    fig, ax = plt.subplots(figsize=(9, 0.42 * len(rows) + 1.6))
    for i, r in enumerate(rows):
        for value, color, label in ((r["low"], "tab:blue", "constant × ½"), (r["high"], "tab:red", "constant × 2")):
            ax.barh(i, value - base, left=base, color=color, label=label if i == 0 else None)
    ax.axvline(base, color="k", lw=1)
    ax.set_yticks(range(len(rows)), [r["name"] for r in rows], fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel(f"GPU / array energy ratio, decoder included (base {base:.3g}×)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
