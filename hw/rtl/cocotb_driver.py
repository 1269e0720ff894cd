"""The cocotb test module that drives `kuramoto_tile` through a job of operations.

Runs inside the simulator (Icarus through `cocotb_tools.runner`, started by `hw.rtl.run`):
it reads a JSON job from ``$UN0HW_RTL_JOB``, plays its operations on the tile and writes
what it saw to ``$UN0HW_RTL_RESULT``; the checking against the golden model is done by
the caller, in the ordinary Python process. Every wait is bounded, so a broken RTL fails
the run instead of hanging it.

Operations (each a dict with "op"):
- ``{"op": "reset", "cycles": n}``: hold rst for n cycles.
- ``{"op": "write", "pairs": [[addr, data], ...]}``: one bus write per cycle.
- ``{"op": "write_hex", "path": p}``: the words of a ``$readmemh`` file at addresses 0, 1, …
- ``{"op": "read", "addrs": [...]}``: bus reads; records ``{"read": [...]}``.
- ``{"op": "run", "chain": [n1, n2, ...], ...}``: start n1 steps; at each `done`, start the
  next count on the very next cycle (back to back). Records every `step_done`'s phases,
  the cycle of every step_done and done relative to the first start. Options:
  ``"reset_after_cycles": c`` (assert rst c cycles after the start: a reset mid-run),
  ``"start_while_busy_after": c``, ``"write_while_busy": [c, addr, data]`` (poke the
  interface mid-run; the tile must ignore both).
Coverage is counted by hand: FSM transitions (a monitor on the state register, woken only
when it changes) and interface events; it goes into the result under "coverage".
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter

import cocotb
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import (
    ClockCycles,
    First,
    ReadOnly,
    RisingEdge,
    Timer,
    with_timeout,
)

CLOCK_PERIOD_NS = 10
STATE_NAMES = {0: "IDLE", 1: "ISSUE", 2: "DRAIN", 3: "COMBINE", 4: "UPDATE"}


class Tile:
    def __init__(self, dut, job: dict) -> None:
        self.dut = dut
        self.cells = int(job["cells"])
        self.phase_bits = int(job["phase_bits"])
        self.base = {k: int(v) for k, v in job["bases"].items()}  # omega, shift, lut, phase, end
        self.cov: Counter = Counter()
        self.max_wait_ns = CLOCK_PERIOD_NS * (int(job["cycles_per_step"]) * 4 + 64)

    def region(self, addr: int) -> str:
        b = self.base
        if addr < b["omega"]:
            return "K"
        if addr < b["shift"]:
            return "omega"
        if addr < b["lut"]:
            return "shift"
        if addr < b["phase"]:
            return "lut"
        if addr < b["end"]:
            return "phase"
        return "unmapped"

    def phases(self) -> list[int]:
        flat = int(self.dut.phases.value)
        mask = (1 << self.phase_bits) - 1
        return [(flat >> (i * self.phase_bits)) & mask for i in range(self.cells)]

    async def monitor_state(self) -> None:
        state = self.dut.state
        prev = int(state.value)
        while True:
            await state.value_change
            now = int(state.value)
            self.cov[f"fsm:{STATE_NAMES.get(prev, prev)}->{STATE_NAMES.get(now, now)}"] += 1
            prev = now

    async def idle_inputs(self) -> None:
        d = self.dut
        d.bus_we.value = 0
        d.start.value = 0
        d.rst.value = 0

    async def reset(self, cycles: int) -> None:
        self.cov["reset:" + ("busy" if int(self.dut.busy.value) else "idle")] += 1
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, cycles)
        self.dut.rst.value = 0

    async def write(self, pairs) -> None:
        d = self.dut
        for addr, data in pairs:
            d.bus_we.value = 1
            d.bus_addr.value = int(addr)
            d.bus_wdata.value = int(data) & 0xFFFFFFFF
            self.cov["write:" + self.region(int(addr))] += 1
            await RisingEdge(d.clk)
        d.bus_we.value = 0

    async def read(self, addrs) -> list[int]:
        d = self.dut
        out = []
        for addr in addrs:
            d.bus_addr.value = int(addr)
            await RisingEdge(d.clk)  # the address is sampled here
            await ReadOnly()
            value = d.bus_rdata.value
            out.append(int(value) if value.is_resolvable else None)  # never-written RAM reads X
            self.cov["read:" + self.region(int(addr))] += 1
            await RisingEdge(d.clk)
        return out

    async def poke_later(self, after_cycles: int, action: str, arg) -> None:
        d = self.dut
        await ClockCycles(d.clk, after_cycles)
        if action == "reset":
            await self.reset(1)
        elif action == "start":
            self.cov["start:busy" if int(d.busy.value) else "start:idle-poke"] += 1
            d.start.value = 1
            d.n_steps.value = int(arg)
            await RisingEdge(d.clk)
            d.start.value = 0
        elif action == "write":
            self.cov["write-while-busy" if int(d.busy.value) else "write-poke-idle"] += 1
            addr, data = arg
            d.bus_we.value = 1
            d.bus_addr.value = int(addr)
            d.bus_wdata.value = int(data) & 0xFFFFFFFF
            await RisingEdge(d.clk)
            d.bus_we.value = 0

    async def run(self, op: dict) -> dict:
        d = self.dut
        chain = [int(n) for n in op["chain"]]
        record = {"phases": [], "step_cycles": [], "done_cycles": [], "aborted": False}
        pokes = []
        if op.get("reset_after_cycles") is not None:
            pokes.append(cocotb.start_soon(self.poke_later(int(op["reset_after_cycles"]), "reset", None)))
        if op.get("start_while_busy_after") is not None:
            pokes.append(cocotb.start_soon(self.poke_later(int(op["start_while_busy_after"]), "start", 1)))
        if op.get("write_while_busy") is not None:
            c, addr, data = op["write_while_busy"]
            pokes.append(cocotb.start_soon(self.poke_later(int(c), "write", (addr, data))))
        t0 = None
        for k, n in enumerate(chain):
            d.start.value = 1
            d.n_steps.value = n
            self.cov["start:" + ("zero-steps" if n == 0 else ("back-to-back" if k else "idle"))] += 1
            await RisingEdge(d.clk)  # start sampled
            if t0 is None:
                t0 = get_sim_time("ns")
            d.start.value = 0
            seen = 0
            while True:
                await ReadOnly()
                if int(d.rst.value):
                    record["aborted"] = True
                    break
                if int(d.step_done.value):
                    record["phases"].append(self.phases())
                    record["step_cycles"].append(round((get_sim_time("ns") - t0) / CLOCK_PERIOD_NS))
                    self.cov["step_done"] += 1
                    seen += 1
                if int(d.done.value):
                    record["done_cycles"].append(round((get_sim_time("ns") - t0) / CLOCK_PERIOD_NS))
                    self.cov["done"] += 1
                    break
                if seen > n:
                    raise AssertionError(f"more step_done pulses than the {n} steps asked for")
                edge = First(RisingEdge(d.step_done), RisingEdge(d.done), RisingEdge(d.rst))
                await with_timeout(edge, self.max_wait_ns, "ns")
            if record["aborted"]:
                break
            # leave the read-only phase mid-cycle: a next start is sampled at the very next edge
            await Timer(1, unit="ns")
        for task in pokes:
            if not task.done():
                await with_timeout(task, self.max_wait_ns * 8, "ns")
        await RisingEdge(d.clk)
        await ReadOnly()
        record["busy_after"] = int(d.busy.value)
        record["final"] = self.phases()
        await RisingEdge(d.clk)
        return record


@cocotb.test()
async def run_job(dut):
    """Play the job's operations; write the records and coverage."""
    job = _load_json(os.environ["UN0HW_RTL_JOB"])
    tile = Tile(dut, job)
    cocotb.start_soon(Clock(dut.clk, CLOCK_PERIOD_NS, unit="ns").start())
    await tile.idle_inputs()
    dut.bus_addr.value = 0
    dut.bus_wdata.value = 0
    dut.n_steps.value = 0
    await Timer(1, unit="ns")
    await tile.reset(2)
    await RisingEdge(dut.clk)
    monitor = cocotb.start_soon(tile.monitor_state()) if job.get("coverage", True) else None
    records = []
    wall = []
    for op in job["ops"]:
        kind = op["op"]
        t = time.perf_counter()
        if kind == "reset":
            await tile.reset(int(op.get("cycles", 1)))
            await RisingEdge(dut.clk)
            records.append({"reset": True})
        elif kind == "write":
            await tile.write(op["pairs"])
            records.append({"written": len(op["pairs"])})
        elif kind == "write_hex":
            words = _read_hex(op["path"])
            await tile.write(enumerate(words))
            records.append({"written": len(words)})
        elif kind == "read":
            records.append({"read": await tile.read(op["addrs"])})
        elif kind == "run":
            records.append(await tile.run(op))
        else:
            raise ValueError(f"unknown op {kind!r}")
        wall.append(time.perf_counter() - t)
    if monitor is not None:
        monitor.cancel()
    result = {"records": records, "coverage": dict(tile.cov), "op_wall_s": wall}
    _write_json(os.environ["UN0HW_RTL_RESULT"], result)


def _load_json(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def _read_hex(path: str) -> list[int]:
    with open(path) as f:
        return [int(tok, 16) for line in f for tok in line.split("//", 1)[0].split()]


def _write_json(path: str, value: dict) -> None:
    with open(path + ".tmp", "w") as f:
        json.dump(value, f)
    os.replace(path + ".tmp", path)
