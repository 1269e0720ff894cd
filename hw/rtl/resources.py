"""Area and energy proxies of `kuramoto_tile` for a `TileFormat`: counted from the RTL.

Counts are exact for the design as written (hw/rtl/kuramoto_tile.v): flip-flops, memory
bits, multipliers with their operand widths, and the operations of one Euler step. The
energy figure is a proxy built from per-operation energies of a 45 nm, 0.9 V process:

- ``MUL_J_PER_BIT_PRODUCT`` = 0.2 pJ / (8·8): an 8-bit integer multiply costs 0.2 pJ and a
  32-bit one 3.1 pJ (3.1/1024 ≈ 0.2/64), so a×b-bit multiply ≈ a·b · 3.1 fJ.
- ``ADD_J_PER_BIT`` = 0.03 pJ / 8: an 8-bit add 0.03 pJ (32-bit: 0.1 pJ).
- ``SRAM_READ_J_PER_BIT`` = 10 pJ / 64: a 64-bit read from an 8 KB SRAM, 10 pJ.
- ``FF_J_PER_BIT`` = 2·ADD_J_PER_BIT per clocked flip-flop bit and cycle: an assumption
  (a flip-flop toggles like about two adder bit-cells), stated here, not measured.

Source of the first three: M. Horowitz, "Computing's energy problem (and what we can do
about it)", ISSCC 2014, Table (45 nm, 0.9 V). Leakage and wires are left out, so the
figure is a floor of what a placed-and-routed tile would spend.
"""

from __future__ import annotations

from oscsim.fixedpoint import TileFormat

MUL_J_PER_BIT_PRODUCT = 0.2e-12 / 64  # J per (a·b) of an a×b-bit multiply; Horowitz ISSCC 2014, 45 nm
ADD_J_PER_BIT = 0.03e-12 / 8  # J per bit of an add; Horowitz ISSCC 2014, 45 nm
SRAM_READ_J_PER_BIT = 10e-12 / 64  # J per bit read from an 8 KB SRAM; Horowitz ISSCC 2014, 45 nm
FF_J_PER_BIT = 2 * ADD_J_PER_BIT  # J per flip-flop bit per clock; assumption (see module docstring)
STEP_BITS = 16  # the RTL's n_steps counter width


def resource_estimate(fmt: TileFormat) -> dict:
    """Registers, memories, multipliers and the energy proxy of one tile and one Euler step.

    Returns a dict with (units in the names):
        cells, cycles_per_step;
        register_bits: flip-flops (phases, accumulators, own sin/cos, comb, pipeline, control);
        memory_bits: {'coupling', 'omega', 'shift', 'sine_table', 'total'} RAM bits;
        multipliers: {'mac': (count, a_bits, b_bits), 'combine': (count, a_bits, b_bits)};
        multiplier_bit_products: Σ count·a·b (an array multiplier's area ∝ a·b);
        adder_bits: Σ adder widths;
        macs_per_step, table_reads_per_step;
        energy_per_step_j, energy_breakdown_j (per Euler step, dynamic only; see module).
    """
    if not isinstance(fmt, TileFormat):
        from hw.rtl.run import RtlError

        raise RtlError(f"fmt must be a TileFormat, not {type(fmt).__name__}")
    m, p, w, s, acc = fmt.cells, fmt.phase_bits, fmt.weight_bits, fmt.sine_bits, fmt.acc_bits
    prod = fmt.prod_bits
    cw = max(1, (m - 1).bit_length())
    regs = {
        "phase": m * p,
        "accumulators": 2 * m * acc,
        "own_sincos": 2 * m * s,
        "comb": m * prod,
        "pipeline": 2 * s + cw + 1,
        "control": 3 + cw + STEP_BITS + 2 + 32,
    }
    mem = {
        "coupling": m * m * w,
        "omega": m * fmt.omega_bits,
        "shift": m * fmt.shift_bits,
        "sine_table": fmt.lut_size * s,
    }
    mem["total"] = sum(mem.values())
    multipliers = {"mac": (2 * m, w, s), "combine": (2 * m, s, acc)}
    bit_products = sum(n * a * b for n, a, b in multipliers.values())
    rw = max(prod + 1, p)
    adders = {
        "mac": 2 * m * acc,
        "combine": m * prod,
        "round": m * rw,
        "phase_update": 2 * m * p,
        "table_index": p + fmt.lut_bits,
    }
    cycles = fmt.cycles_per_step
    macs = 2 * m * m
    e_mac = macs * (w * s * MUL_J_PER_BIT_PRODUCT + acc * ADD_J_PER_BIT)
    e_coupling_read = m * m * w * SRAM_READ_J_PER_BIT
    e_table = 2 * m * s * SRAM_READ_J_PER_BIT
    e_combine = 2 * m * s * acc * MUL_J_PER_BIT_PRODUCT + m * prod * ADD_J_PER_BIT
    e_update = m * (rw + 2 * p) * ADD_J_PER_BIT + m * (fmt.omega_bits + fmt.shift_bits) * SRAM_READ_J_PER_BIT
    e_ff = sum(regs.values()) * cycles * FF_J_PER_BIT
    breakdown = {
        "mac": e_mac,
        "coupling_read": e_coupling_read,
        "sine_table_read": e_table,
        "combine": e_combine,
        "update": e_update,
        "flip_flops": e_ff,
    }
    return {
        "cells": m,
        "cycles_per_step": cycles,
        "register_bits": sum(regs.values()),
        "register_breakdown_bits": regs,
        "memory_bits": mem,
        "multipliers": multipliers,
        "multiplier_bit_products": bit_products,
        "adder_bits": sum(adders.values()),
        "macs_per_step": macs,
        "table_reads_per_step": 2 * m,
        "energy_per_step_j": sum(breakdown.values()),
        "energy_breakdown_j": breakdown,
    }
