"""What needs no simulator: Verilator lint of the tile, the resource/energy proxy, input checks."""

from __future__ import annotations

import re
import subprocess

import pytest
import torch

from hw import rtl
from hw.rtl import run as rtl_run
from hw.tools import ToolUnavailable, find_tool
from oscsim import fixedpoint as fp

LINT_FORMATS = [
    fp.TileFormat(n=8, n_cond=2),
    fp.TileFormat(n=1),
    fp.TileFormat(n=5, phase_bits=10, weight_bits=4, sine_bits=6, lut_bits=10, omega_bits=10),
    fp.TileFormat(n=3, phase_bits=31, weight_bits=16, sine_bits=16, lut_bits=16, acc_bits=46),
    fp.TileFormat(n=3, phase_bits=8, weight_bits=2, sine_bits=3, lut_bits=4, omega_bits=4, shift_bits=3),
]


@pytest.mark.skipif(find_tool("verilator") is None, reason="verilator not found (apt-get install verilator)")
@pytest.mark.parametrize("fmt", LINT_FORMATS, ids=lambda f: f"M{f.cells}-P{f.phase_bits}-W{f.weight_bits}")
def test_verilator_lint_all_warnings_clean(fmt):
    args = [f"-G{k}={v}" for k, v in fmt.rtl_parameters().items()]
    proc = subprocess.run(
        [find_tool("verilator"), "--lint-only", "-Wall", *args, *map(str, rtl.SOURCES)],
        check=False, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr


@pytest.mark.skipif(find_tool("iverilog") is None, reason="iverilog not found (apt-get install iverilog)")
@pytest.mark.parametrize("fmt", LINT_FORMATS[:3], ids=lambda f: f"M{f.cells}-P{f.phase_bits}-W{f.weight_bits}")
def test_icarus_compiles_it_as_plain_verilog_2005_without_warnings(fmt, tmp_path):
    args = [f"-P{rtl_run.TOPLEVEL}.{k}={v}" for k, v in fmt.rtl_parameters().items()]
    proc = subprocess.run(
        [find_tool("iverilog"), "-g2005", "-Wall", *args, "-o", str(tmp_path / "tile.vvp"), *map(str, rtl.SOURCES)],
        check=False, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0 and not (proc.stdout + proc.stderr).strip(), proc.stdout + proc.stderr


def test_rtl_has_no_delays_or_initial_blocks():
    text = "\n".join(p.read_text() for p in rtl.SOURCES)
    code = "\n".join(line.split("//", 1)[0] for line in text.splitlines())
    assert "initial" not in code and "#" not in code.replace("#(", "")


def test_resource_estimate_counts_the_design():
    fmt = fp.TileFormat(n=56, n_cond=8, phase_bits=16, weight_bits=8, sine_bits=12, lut_bits=10)
    est = rtl.resource_estimate(fmt)
    m = 64
    assert est["cells"] == m and est["cycles_per_step"] == m + 3 == fmt.cycles_per_step
    assert est["memory_bits"]["coupling"] == m * m * 8
    assert est["memory_bits"]["sine_table"] == 1024 * 12
    assert est["memory_bits"]["total"] == m * m * 8 + m * 16 + m * 6 + 1024 * 12
    assert est["multipliers"] == {"mac": (2 * m, 8, 12), "combine": (2 * m, 12, fmt.acc_bits)}
    assert est["macs_per_step"] == 2 * m * m
    regs = est["register_breakdown_bits"]
    assert regs["phase"] == m * 16 and regs["accumulators"] == 2 * m * fmt.acc_bits
    assert est["energy_per_step_j"] == pytest.approx(sum(est["energy_breakdown_j"].values()))
    # the MACs dominate and grow as N²; registers and the table as N
    big = rtl.resource_estimate(fp.TileFormat(n=248, n_cond=8, phase_bits=16, weight_bits=8, sine_bits=12, lut_bits=10))
    assert big["macs_per_step"] == 16 * est["macs_per_step"]
    assert 16 < big["energy_breakdown_j"]["mac"] / est["energy_breakdown_j"]["mac"] < 17  # acc grows 2 bits
    with pytest.raises(rtl.RtlError, match=r"^fmt must be a TileFormat, not dict$"):
        rtl.resource_estimate({})
    per_mac = est["energy_per_step_j"] / est["macs_per_step"]
    assert 0.3e-12 < per_mac < 5e-12  # a 45 nm MAC with its weight read: about a picojoule


def test_simulate_tile_checks_its_input_and_says_how_to_install(monkeypatch, tmp_path):
    fmt = fp.TileFormat(n=2)
    z = torch.zeros
    program = fp.TileProgram(fmt=fmt, K=z(2, 2, dtype=torch.int64), omega=z(2, dtype=torch.int64),
                             drive=z(1, 2, 0, dtype=torch.int64), C=z(0, 0, dtype=torch.int64),
                             nu=z(0, dtype=torch.int64), shift=z(2, dtype=torch.int64))
    with pytest.raises(rtl.RtlError, match=r"^steps must be an int in 1\.\.65535, not 0$"):
        rtl.simulate_tile(program, z(2, dtype=torch.int64), 0)
    with pytest.raises(rtl.RtlError, match=r"^theta0_codes must be \(M,\) or \(B, M\) with M=2, not \(3,\)$"):
        rtl.simulate_tile(program, z(3, dtype=torch.int64), 1)
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no iverilog, no vvp
    monkeypatch.delenv("UN0HW_IVERILOG", raising=False)
    monkeypatch.delenv("UN0HW_VVP", raising=False)
    assert "apt-get install iverilog" in rtl.unavailable_reason()
    hint = ("iverilog is not on PATH; install it (Debian/Ubuntu: apt-get install iverilog) "
            "or set UN0HW_IVERILOG to its path")
    with pytest.raises(rtl.RtlUnavailable, match=f"^{re.escape(hint)}$") as caught:
        rtl.simulate_tile(program, z(2, dtype=torch.int64), 1)
    assert isinstance(caught.value, ToolUnavailable)
