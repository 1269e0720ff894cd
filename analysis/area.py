r"""Silicon area per chip: the oscillator array at its cells' node, and the digital decoder.

Every figure has one of three origins, as in `analysis.energy`:

- the compiled `compiler.ArrayIR`: oscillators, coupler slots (every crossbar site that is
  built, used or not), drive and conditioning couplers, code bits, inter-tile wire length,
  the decoder's weights and its largest layer's activations;
- the cells themselves: every transistor's W × L, every capacitor and resistor, read off the
  SPICE subcircuits the calibration's process and coupler kind name (`hw.spice.layout`), so
  the area is of the circuit that was characterised;
- the constants table `analysis/energy_constants.toml` (value, unit, public source; the
  area rows sit with the energy rows and are unit-checked on the same load).

Layout model, per node (F = the process's minimum L):

    device       = (W + 2e)(L + 2e) · overhead     e: a minimum device (2F × F) fills a quarter
                                                   of the library's NAND2 (one quadratic in e)
    capacitor    = C / MIM density
    resistor     = R / R_sheet squares of w × 2w    (the resistor and its spacing, at width w)
    cells        = N · ring (with its bias pair)
    couplers     = slots · one directed slot (half a resistor DAC, which joins a pair both
                   ways, or one gm injector) + the gm tap buffers, one per cell
    conditioning = N_c rings + (drive + conditioning slots) · one slot
    code SRAM    = code bits · bit cell / array efficiency
    readout      = N · readout bits · gates per bit · NAND2
    routing      = inter-tile wire length · pitch / routing layers
    decoder      = MAC units · (multiplier + adder) + (weights + peak activations) · bits ·
                   bit cell(45 nm) / efficiency        (the digital constants are 45 nm ones)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from analysis.energy import PRECISIONS, Constants, EnergyError, _fmt, decoder_traffic, load_constants
from analysis.energy import write_csv as write_csv  # one CSV row per estimate's `row()`, atomically

ARRAY_TERMS = ("cells", "couplers", "conditioning", "code_sram", "readout", "routing", "links")
DECODER_TERMS = ("mac_array", "weight_sram", "activation_sram")
#: the decoder's arithmetic node (the energy table's digital constants are 45 nm figures)
DECODER_NODE = "45nm"
_ARITH = {"int8": ("int8_mult_area", "int32_add_area"), "int4": ("int4_mult_area", "int32_add_area"), "fp16": ("fp16_mult_area", "fp16_add_area"),
          "fp32": ("fp32_mult_area", "fp32_add_area")}


def node_of(l_min_m: float) -> str:
    """The constants' node suffix of a process of minimum length `l_min_m`: "180nm", "45nm"."""
    return f"{round(l_min_m * 1e9)}nm"


def device_margin_m(l_min_m: float, nand2_area_m2: float) -> float:
    """e of the device footprint (W + 2e)(L + 2e): the margin for contacts, diffusion and
    spacing that makes a minimum device (2F × F) a quarter of the node's NAND2."""
    w, l, a = 2 * l_min_m, l_min_m, nand2_area_m2 / 4
    if a <= w * l:
        raise EnergyError(f"a NAND2 of {nand2_area_m2 * 1e12:g} um2 is smaller than four {w * 1e9:g} x {l * 1e9:g} nm "
                          f"gates: not a layout density of a {l * 1e9:g} nm node")
    # (w + x)(l + x) = a with x = 2e
    x = (-(w + l) + math.sqrt((w + l) ** 2 - 4 * (w * l - a))) / 2
    return x / 2


@dataclass(frozen=True)
class Footprint:
    """How one node turns drawn devices into area (see the module docstring)."""

    node: str
    margin_m: float
    overhead: float
    mim_f_per_m2: float
    sheet_ohm: float
    resistor_width_m: float

    def of(self, inv) -> float:
        """m² of a `hw.spice.layout.Inventory` (its copies included)."""
        e = self.margin_m
        devices = sum((w + 2 * e) * (l + 2 * e) for w, l in inv.transistors) * self.overhead
        caps = sum(inv.capacitors_f) / self.mim_f_per_m2
        res = sum(inv.resistors_ohm) / self.sheet_ohm * 2 * self.resistor_width_m ** 2
        return inv.copies * (devices + caps + res)


def footprint_for(layout, constants: Constants) -> Footprint:
    """The `Footprint` of a `hw.spice.layout.CellsLayout`'s node."""
    node = node_of(layout.l_min_m)
    return Footprint(node=node, margin_m=device_margin_m(layout.l_min_m, constants[f"nand2_area_{node}"]),
                     overhead=constants["analog_layout_overhead"], mim_f_per_m2=constants["mim_capacitance_density"],
                     sheet_ohm=layout.resistor_sheet_ohm, resistor_width_m=layout.resistor_width_m)


@dataclass(frozen=True, kw_only=True)
class AreaCounts:
    """What the area counts, taken from an IR (`from_ir`) or given (the scaling tests)."""

    n: int
    n_cond: int
    coupler_slots: int  # main crossbar sites + inter-tile link couplers (directed: i ← j)
    drive_slots: int
    conditioning_slots: int
    code_bits: int
    wire_length_mm: float
    tiles: int = 1
    decoder_weights: int = 0
    decoder_peak_activations: int = 0
    distribution: str = "point-to-point"
    link_receivers: int = 0  # received phases × receiving sites (`compiler.route.link_hardware`)
    phases_sent: int = 0
    link_drivers: int = 0  # serialisers of a time-multiplexed link (one per shared wire)
    word_bits: int = 0

    @classmethod
    def from_ir(cls, ir, traffic: dict | None = None) -> AreaCounts:
        from analysis.energy import _decoder_module

        r = ir.routing
        traffic = traffic if traffic is not None else decoder_traffic(_decoder_module(ir))
        place = ir.doc["passes"]["placement"]
        dist = place.get("distribution", "point-to-point")
        return cls(n=ir.n, n_cond=ir.n_cond, coupler_slots=r.couplers_physical, drive_slots=r.drive_couplers,
                   conditioning_slots=r.conditioning_couplers, code_bits=r.weight_memory_bits,
                   wire_length_mm=r.wire_length_mm, tiles=len(r.tiles), decoder_weights=int(traffic["weights"]),
                   decoder_peak_activations=int(traffic["peak_activations"]), distribution=dist,
                   link_receivers=int(place.get("phase_receivers", {}).get(dist, 0)),
                   phases_sent=int(place.get("phases_sent", 0)),
                   link_drivers=int(place.get("phase_drivers", {}).get(dist, 0)),
                   word_bits=int(ir.doc["options"].get("tdm_word_bits", 0)))


def array_area(counts: AreaCounts, layout, constants: Constants) -> dict[str, float]:
    """m² per `ARRAY_TERMS` term of an array of `counts` built of `layout`'s cells."""
    c, fp = constants, footprint_for(layout, constants)
    ring, slot = fp.of(layout.ring), fp.of(layout.coupler_slot)
    tap = fp.of(layout.tap) if layout.tap is not None else 0.0
    node = fp.node
    return {
        "cells": counts.n * ring,
        "couplers": counts.coupler_slots * slot + counts.n * tap,
        "conditioning": counts.n_cond * (ring + tap) + (counts.drive_slots + counts.conditioning_slots) * slot,
        "code_sram": counts.code_bits * c[f"sram_bitcell_area_{node}"] / c["sram_array_efficiency"],
        "readout": counts.n * c["readout_bits"] * c["readout_gates_per_bit"] * c[f"nand2_area_{node}"],
        "routing": counts.wire_length_mm * 1e-3 * c[f"wire_pitch_{node}"] / c["phase_routing_layers"],
        "links": link_area(counts, ring, c, node),
    }


def link_area(counts: AreaCounts, ring_m2: float, c: Constants, node: str) -> float:
    """m² of the link circuits of the phase distribution (`analysis.energy.link_energy`):
    low-swing — a receiver per received phase; time-multiplexed — per received phase a
    phase regenerator (one ring cell) and its word register, per sent phase a
    phase-to-digital converter (as the readout's, per bit), per shared wire a serialiser
    (a word of flops) and its deserialiser at each end; none for rail-to-rail wires."""
    gate = c[f"nand2_area_{node}"]
    if counts.distribution == "low-swing":
        return counts.link_receivers * c["link_receiver_gates"] * gate
    if counts.distribution == "time-multiplexed":
        word = counts.word_bits * c["flop_gates"] * gate
        return (counts.link_receivers * (ring_m2 + word)
                + counts.phases_sent * counts.word_bits * c["readout_gates_per_bit"] * gate
                + counts.link_drivers * 2 * word)
    return 0.0


#: the array terms that sit inside a tile (the routing channels run between the tiles)
TILE_TERMS = ("cells", "couplers", "code_sram", "readout")


def tile_pitch_mm(array: dict[str, float], tiles: int) -> float:
    """mm between tile centres when each of `tiles` tiles holds its share of `TILE_TERMS`."""
    return math.sqrt(sum(array[t] for t in TILE_TERMS) / max(tiles, 1)) * 1e3


def decoder_area(counts: AreaCounts, constants: Constants, precision: str = "int8") -> dict[str, float]:
    """m² per `DECODER_TERMS` term of the digital decoder at 45 nm, in `precision`."""
    if precision not in PRECISIONS:
        raise EnergyError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    c, bits = constants, PRECISIONS[precision]
    per_bit = c[f"sram_bitcell_area_{DECODER_NODE}"] / c["sram_array_efficiency"]
    if precision == "analog":  # the weights are the crossbars: two PCM cells each
        return {"mac_array": counts.decoder_weights * 2 * c["pcm_cell_area"], "weight_sram": 0.0,
                "activation_sram": counts.decoder_peak_activations * bits * per_bit}
    mult, add = _ARITH[precision]
    return {
        "mac_array": c["decoder_mac_units"] * (c[mult] + c[add]),
        "weight_sram": counts.decoder_weights * bits * per_bit,
        "activation_sram": counts.decoder_peak_activations * bits * per_bit,
    }


@dataclass(frozen=True)
class AreaEstimate:
    """mm² of one compiled model, term by term (values held in m²)."""

    name: str
    n: int
    node: str
    process: str
    coupler: str
    array: dict[str, float]
    decoder: dict[str, float]
    counts: AreaCounts
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def array_mm2(self) -> float:
        return sum(self.array.values()) * 1e6

    @property
    def decoder_mm2(self) -> float:
        return sum(self.decoder.values()) * 1e6

    @property
    def total_mm2(self) -> float:
        return self.array_mm2 + self.decoder_mm2

    @property
    def tile_pitch_mm(self) -> float:
        """The side of one tile's square: its cells, couplers, code SRAM and readout (the
        routing channels between tiles excluded), the main array shared equally by the tiles."""
        return tile_pitch_mm(self.array, self.counts.tiles)

    def dominant(self) -> tuple[str, float]:
        """The largest term and its share of the total."""
        terms = {**{f"array {k}": v for k, v in self.array.items()}, **{f"decoder {k}": v for k, v in self.decoder.items()}}
        name = max(terms, key=terms.get)
        return name, terms[name] * 1e6 / self.total_mm2

    def row(self) -> dict[str, Any]:
        row = {"model": self.name, "N": self.n, "node": self.node, "process": self.process, "coupler": self.coupler,
               "array_mm2": self.array_mm2, "decoder_mm2": self.decoder_mm2, "total_mm2": self.total_mm2}
        row.update({f"array_{k}_mm2": v * 1e6 for k, v in self.array.items()})
        row.update({f"decoder_{k}_mm2": v * 1e6 for k, v in self.decoder.items()})
        return row


def estimate_area(ir, *, calibration=None, constants: Constants | None = None, precision: str = "int8",
                  name: str | None = None, traffic: dict | None = None,
                  cells: tuple[str, str] | None = None) -> AreaEstimate:
    """mm² of the array `ir` (a `compiler.ArrayIR`) on the cells its calibration was measured
    on (default: the one stored in the IR), and of its decoder in `precision`. `cells`
    ((process, coupler kind), e.g. ("ptm45", "gm")) builds the same array of other cells
    instead: area needs only their drawn devices, not a measured calibration."""
    from hw.spice.cells import COUPLERS
    from hw.spice.layout import cells_layout
    from hw.spice.process import PROCESSES, ProcessError, process_key

    c = constants or load_constants()
    if cells is None:
        cal = calibration or ir.calibration
        try:
            key = process_key(cal.process)
        except ProcessError as exc:
            raise EnergyError(f"the calibration's cells: {exc}; the area model reads the project's subcircuits") from None
        kind = cal.coupler
    else:
        key, kind = cells
        if key not in PROCESSES or kind not in COUPLERS:
            raise EnergyError(f"cells must be (process, coupler) of {', '.join(PROCESSES)} and {', '.join(COUPLERS)}, "
                              f"not {cells!r}")
    layout = cells_layout(key, kind)
    counts = AreaCounts.from_ir(ir, traffic)
    return AreaEstimate(name=name or ir.name, n=counts.n, node=node_of(layout.l_min_m), process=key,
                        coupler=kind, array=array_area(counts, layout, c),
                        decoder=decoder_area(counts, c, precision), counts=counts,
                        settings={"precision": precision, "constants": c.origin})


def markdown_table(estimates: list[AreaEstimate]) -> str:
    """mm² per chip: array and decoder totals and each term."""
    terms = [f"array {t}" for t in ARRAY_TERMS] + [f"decoder {t}" for t in DECODER_TERMS]
    lines = ["| model | cells | array mm² | decoder mm² | total mm² | " + " | ".join(terms) + " | largest |",
             "|---|---|---|---|---|" + "---|" * len(terms) + "---|"]
    for e in estimates:
        parts = [_fmt(v * 1e6) for v in e.array.values()] + [_fmt(v * 1e6) for v in e.decoder.values()]
        name, share = e.dominant()
        lines.append(f"| {e.name} | {e.process}/{e.coupler} | {_fmt(e.array_mm2)} | {_fmt(e.decoder_mm2)} | "
                     f"{_fmt(e.total_mm2)} | " + " | ".join(parts) + f" | {name} ({share:.0%}) |")
    return "\n".join(lines) + "\n"
