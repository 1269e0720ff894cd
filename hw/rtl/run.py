"""Build and run `kuramoto_tile` under Icarus Verilog through cocotb: the edge module.

Everything that touches iverilog or cocotb is here, imported when used, so `import hw`
works where neither is installed. A tile is built once per `TileFormat` into a folder
named by its parameters (under ``$UN0HW_CACHE/rtl`` or ``~/.cache/un0hw/rtl`` unless a
build folder is given) and then runs any number of jobs (`hw.rtl.cocotb_driver`).

Paths cross into subprocesses here: cocotb runs iverilog in the build folder and the
simulator in a run folder, so every path handed to them (build folder, job, result, log
and results files) is made absolute first, whatever the caller's working folder. The
programs are found by `hw.tools` (``$UN0HW_IVERILOG``/``$UN0HW_VVP`` override ``PATH``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from hw.tools import ToolUnavailable, override_path, require_tool
from oscsim.fixedpoint import TileFormat, TileProgram, bus_transactions

RTL_DIR = Path(__file__).resolve().parent
SOURCES = (RTL_DIR / "kuramoto_tile.v",)
TOPLEVEL = "kuramoto_tile"
DRIVER_MODULE = "cocotb_driver"  # imported from RTL_DIR: the simulator need not load torch
TIMESCALE = ("1ns", "1ps")
INSTALL_HINT = "install cocotb (pip install 'cocotb>=2.0')"


class RtlError(RuntimeError):
    """The RTL simulation could not be built or run to the end, or its input was invalid."""


class RtlUnavailable(RtlError, ToolUnavailable):
    """Icarus Verilog or cocotb is not installed where this process can use them."""


def unavailable_reason() -> str | None:
    """Why the RTL cannot be simulated here, or None if it can."""
    try:
        for tool in ("iverilog", "vvp"):
            require_tool(tool, error=RtlUnavailable)
    except RtlUnavailable as exc:
        return str(exc)
    try:
        import cocotb  # noqa: F401
        import cocotb_tools.runner  # noqa: F401
    except ImportError as exc:
        return f"cocotb is not importable ({exc}); {INSTALL_HINT}"
    return None


def _require() -> None:
    reason = unavailable_reason()
    if reason is not None:
        raise RtlUnavailable(reason)


def default_cache() -> Path:
    root = os.environ.get("UN0HW_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "un0hw") / "rtl"


def _build_key(fmt: TileFormat) -> str:
    text = json.dumps(fmt.rtl_parameters(), sort_keys=True) + "".join(p.read_text() for p in SOURCES)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class TileBuild:
    """A compiled tile: its format and the folder holding Icarus's output."""

    fmt: TileFormat
    build_dir: Path


def build(fmt: TileFormat, *, cache_dir: str | os.PathLike | None = None) -> TileBuild:
    """Compile the tile for `fmt` (once: an existing build of the same parameters and
    sources is reused)."""
    if not isinstance(fmt, TileFormat):
        raise RtlError(f"fmt must be a TileFormat, not {type(fmt).__name__}")
    _require()
    from cocotb_tools.runner import get_runner

    root = Path(cache_dir) if cache_dir is not None else default_cache()
    build_dir = root.expanduser().resolve() / f"tile-{_build_key(fmt)}"
    marker = build_dir / "built.json"
    if not marker.exists():
        with override_path("iverilog", "vvp", error=RtlUnavailable):  # cocotb calls them by name
            runner = get_runner("icarus")
            log = build_dir / "build.log"
            build_dir.mkdir(parents=True, exist_ok=True)
            try:
                runner.build(
                    sources=list(SOURCES),
                    hdl_toplevel=TOPLEVEL,
                    parameters=fmt.rtl_parameters(),
                    build_dir=build_dir,
                    timescale=TIMESCALE,
                    always=True,
                    log_file=log,
                )
            except (RuntimeError, SystemExit) as exc:
                raise RtlError(f"iverilog failed for {fmt.rtl_parameters()}: {exc}; {_tail(log)}") from None
        marker.write_text(json.dumps(fmt.rtl_parameters()))
    return TileBuild(fmt=fmt, build_dir=build_dir)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def run_job(tile: TileBuild, ops: list[dict], *, coverage: bool = True) -> dict:
    """Run one simulation of the tile playing `ops` (see `hw.rtl.cocotb_driver`).

    Returns the driver's result: ``records`` (one per op), ``coverage`` (counts of FSM
    transitions and interface events), ``op_wall_s``, plus ``wall_s`` of the whole run.
    """
    _require()
    from cocotb_tools.runner import get_runner

    fmt = tile.fmt
    job = {
        "cells": fmt.cells,
        "phase_bits": fmt.phase_bits,
        "cycles_per_step": fmt.cycles_per_step,
        "bases": {
            "omega": fmt.omega_base, "shift": fmt.shift_base, "lut": fmt.lut_base,
            "phase": fmt.phase_base, "end": fmt.address_words,
        },
        "coverage": coverage,
        "ops": ops,
    }
    build_dir = Path(tile.build_dir).expanduser().resolve()  # the simulator runs in run_dir
    run_dir = build_dir / "runs" / uuid.uuid4().hex[:12]
    run_dir.mkdir(parents=True)
    job_path, result_path, log = run_dir / "job.json", run_dir / "result.json", run_dir / "sim.log"
    job_path.write_text(json.dumps(job))
    failure = None
    with override_path("iverilog", "vvp", error=RtlUnavailable):  # cocotb calls vvp by name
        runner = get_runner("icarus")
        t0 = time.perf_counter()
        # the runner hands this process's sys.path to the simulator as PYTHONPATH: put RTL_DIR
        # on it for the call, so the driver is imported as a top-level module (no torch there)
        sys.path.insert(0, str(RTL_DIR))
        try:
            xml = runner.test(
                test_module=DRIVER_MODULE,
                hdl_toplevel=TOPLEVEL,
                hdl_toplevel_lang="verilog",
                build_dir=build_dir,
                test_dir=run_dir,
                results_xml=str(run_dir / "results.xml"),
                extra_env={
                    "UN0HW_RTL_JOB": str(job_path),
                    "UN0HW_RTL_RESULT": str(result_path),
                },
                log_file=log,
                timescale=TIMESCALE,
            )
            from cocotb_tools.check_results import get_results

            _, failed = get_results(Path(xml))
            if failed:
                failure = "the cocotb driver failed"
        except (RuntimeError, SystemExit) as exc:
            failure = f"the simulation failed ({exc})"
        finally:
            sys.path.remove(str(RTL_DIR))
    wall = time.perf_counter() - t0
    if failure is not None or not result_path.exists():
        raise RtlError(f"{failure or 'no result written'}; log {log}: {_tail(log)}")
    result = json.loads(result_path.read_text())
    result["wall_s"] = wall
    shutil.rmtree(run_dir, ignore_errors=True)
    return result


def program_ops(program: TileProgram, theta0_codes: Tensor | None = None) -> list[dict]:
    """The bus writes of `program` (and initial phases) as one job operation."""
    return [{"op": "write", "pairs": bus_transactions(program, theta0_codes=theta0_codes)}]


def phase_ops(fmt: TileFormat, theta0_codes: Tensor) -> list[dict]:
    """Bus writes of one seed's (M,) initial phase codes."""
    mask = (1 << fmt.phase_bits) - 1
    pairs = [(fmt.phase_base + i, int(v) & mask) for i, v in enumerate(theta0_codes.tolist())]
    return [{"op": "write", "pairs": pairs}]


def simulate_tile(
    program: TileProgram,
    theta0_codes: Tensor,
    steps: int,
    *,
    cache_dir: str | os.PathLike | None = None,
) -> Tensor:
    """Run the RTL tile: program it, then for each seed load its phases and run `steps` steps.

    Args:
        program: the tile's program (its label picks the drive).
        theta0_codes: (M,) or (B, M) integer initial phase codes (reduced mod 2^P).
        steps: Euler steps per seed (≥ 1, < 2^16).
    Returns:
        (steps + 1, B, M) int64 phase codes after every step as the RTL holds them (mod
        2^P), the first being theta0; compare with ``oscsim.fixedpoint.run(...) & (2^P − 1)``.
    Raises:
        RtlUnavailable: iverilog or cocotb missing (the message says how to install them).
        RtlError: bad input, or the simulation failed.
    """
    if not isinstance(program, TileProgram):
        raise RtlError(f"program must be a TileProgram, not {type(program).__name__}")
    fmt = program.fmt
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps < 1 << 16:
        raise RtlError(f"steps must be an int in 1..65535, not {steps!r}")
    if not isinstance(theta0_codes, Tensor) or theta0_codes.is_floating_point() or theta0_codes.dtype == torch.bool:
        raise RtlError("theta0_codes must be an integer tensor of phase codes")
    theta = theta0_codes.unsqueeze(0) if theta0_codes.ndim == 1 else theta0_codes
    if theta.ndim != 2 or theta.shape[1] != fmt.cells:
        raise RtlError(f"theta0_codes must be (M,) or (B, M) with M={fmt.cells}, not {tuple(theta0_codes.shape)}")
    mask = (1 << fmt.phase_bits) - 1
    theta = theta.to(torch.int64) & mask
    tile = build(fmt, cache_dir=cache_dir)
    ops = program_ops(program)
    for seed in theta:
        ops += phase_ops(fmt, seed)
        ops.append({"op": "run", "chain": [steps]})
    result = run_job(tile, ops, coverage=False)
    runs = [r for r in result["records"] if "phases" in r]
    traj = torch.tensor([r["phases"] for r in runs], dtype=torch.int64)  # (B, steps, M)
    return torch.cat((theta.unsqueeze(0), traj.permute(1, 0, 2)), dim=0)
