"""The RTL tile's memory image emitted from a compiled IR."""

from __future__ import annotations

import json

import pytest
import torch

import compiler
import models
from compiler import CompileError, CompileOptions
from compiler.emit import rtl_tile
from models.checkpoint import SHIPPED
from oscsim import simulate
from oscsim.fixedpoint import (TileFormat, TileProgram, code_to_phase, memory_image, phase_error_bound,
                               phase_to_code, read_readmemh, run, subsystem)


@pytest.fixture(scope="module")
def ir():
    return compiler.compile(models.load(SHIPPED), CompileOptions(bits=8, tile=64))


def test_emitted_image_is_the_golden_models_program(ir, tmp_path) -> None:
    info = rtl_tile(ir, 2, tmp_path, label=5)
    members = ir.tiles[2]
    assert info["oscillators"] == members and info["rtl_parameters"]["N_CELLS"] == 64 + ir.n_cond
    sub = subsystem(ir.to_params(dtype=torch.float64), members)
    fmt = TileFormat(n=64, n_cond=ir.n_cond, weight_bits=8)
    program = TileProgram.from_params(sub, h=0.1, fmt=fmt, label=5)
    assert read_readmemh(tmp_path / "tile2.memh") == memory_image(program)
    bus = json.loads((tmp_path / "tile2.bus.json").read_text())
    assert len(bus) >= len(memory_image(program))
    # the tile's integer dynamics follow the tile's float system within the stated bound
    theta0 = torch.rand(4, 64 + ir.n_cond, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 6.28
    codes = run(program, phase_to_code(theta0, fmt), 10, labels=torch.full((4,), 5))
    want = simulate(sub, code_to_phase(phase_to_code(theta0, fmt), fmt), torch.full((4,), 5), steps=10).theta
    err = torch.remainder(code_to_phase(codes, fmt) - want + torch.pi, 2 * torch.pi) - torch.pi
    assert float(err.abs().max()) <= phase_error_bound(program, steps=10, h=0.1)


def test_emit_errors(ir, tmp_path) -> None:
    with pytest.raises(CompileError, match="tiles 0..7"):
        rtl_tile(ir, 8, tmp_path)
    with pytest.raises(CompileError, match="classes 0..9"):
        rtl_tile(ir, 0, tmp_path, label=10)
