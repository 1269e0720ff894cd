"""The Verilog tile under Icarus (cocotb) against the bit-exact golden model `oscsim.fixedpoint`.

One simulation per tile format plays many cases (the build is cached per format for the
session); the checking is done here, on the phases the driver recorded at every
`step_done`. Skipped where iverilog or cocotb is missing (CI installs both).
"""

from __future__ import annotations

import math

import pytest
import torch

from hw.rtl import run as rtl_run
from oscsim import fixedpoint as fp
from oscsim.quant import qmax

_REASON = rtl_run.unavailable_reason()
pytestmark = pytest.mark.skipif(_REASON is not None, reason=f"RTL simulation unavailable: {_REASON}")

# Formats of the random bit-exact cases: (format, cases). Corners: 2-bit weights and
# 3-bit sines with a 3-bit shift; no index rounding (lut_bits = phase_bits); acc wider
# than needed; conditioning cells; 16-bit codes with a 20-bit phase; the widest phase
# (31 bits) and codes (16 bits), where comb_i is 49 bits wide.
RANDOM_FORMATS = [
    (fp.TileFormat(n=3, phase_bits=8, weight_bits=2, sine_bits=3, lut_bits=4, omega_bits=4, shift_bits=3), 30),
    (fp.TileFormat(n=6, n_cond=2, phase_bits=16, weight_bits=8, sine_bits=10, lut_bits=8), 30),
    (fp.TileFormat(n=5, phase_bits=10, weight_bits=4, sine_bits=6, lut_bits=10, omega_bits=10), 25),
    (fp.TileFormat(n=12, n_cond=4, phase_bits=20, weight_bits=12, sine_bits=14, lut_bits=12,
                   acc_bits=fp.minimal_acc_bits(16, 12, 14) + 3), 20),
    (fp.TileFormat(n=2, n_cond=1, phase_bits=31, weight_bits=16, sine_bits=16, lut_bits=10), 10),
]


@pytest.fixture(scope="session")
def rtl_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("rtl-builds")


def _mask(fmt):
    return (1 << fmt.phase_bits) - 1


def _random_program(fmt, g, *, extreme: bool) -> fp.TileProgram:
    """A program from random floats (from_float), or random codes over their full range
    (extremes included) with random shifts: the arithmetic's corners."""
    n, c = fmt.n, fmt.n_cond
    classes = 3
    if not extreme:
        scale = float(torch.empty(()).uniform_(0.2, 4.0, generator=g))
        h = float(torch.empty(()).uniform_(0.02, 0.5, generator=g))
        return fp.TileProgram.from_float(
            torch.randn(n, n, generator=g, dtype=torch.float64) * scale / math.sqrt(n),
            torch.randn(n, generator=g, dtype=torch.float64) * 2,
            torch.randn(classes, n, c, generator=g, dtype=torch.float64) * scale,
            C=torch.randn(c, c, generator=g, dtype=torch.float64) * scale,
            nu=torch.randn(c, generator=g, dtype=torch.float64),
            h=h, fmt=fmt, label=int(torch.randint(0, classes, (), generator=g)),
        )
    qw, qo = qmax(fmt.weight_bits), qmax(fmt.omega_bits)

    def codes(q, *shape):
        x = torch.randint(-q, q + 1, shape, generator=g)
        pick = torch.rand(shape, generator=g)
        x = torch.where(pick < 0.15, torch.full_like(x, q), x)
        return torch.where(pick > 0.85, torch.full_like(x, -q), x)

    label = int(torch.randint(-1, classes, (), generator=g))
    return fp.TileProgram(
        fmt=fmt, K=codes(qw, n, n), omega=codes(qo, n), drive=codes(qw, classes, n, c), C=codes(qw, c, c),
        nu=codes(qo, c), shift=torch.randint(0, fmt.max_shift + 1, (fmt.cells,), generator=g),
        label=None if label < 0 else label,
    )


def _check_run(record, program, theta0, steps, *, what):
    """The phases at every step_done equal the golden model's, step for step."""
    fmt = program.fmt
    gold = fp.run(program, theta0.reshape(1, -1), steps)[:, 0] & _mask(fmt)  # (steps + 1, M)
    got = torch.tensor(record["phases"], dtype=torch.int64).reshape(-1, fmt.cells)
    assert got.shape[0] == steps, f"{what}: {got.shape[0]} step_done pulses for {steps} steps"
    for k in range(steps):
        if not torch.equal(got[k], gold[k + 1]):
            bad = torch.nonzero(got[k] != gold[k + 1]).reshape(-1).tolist()
            raise AssertionError(
                f"{what}: step {k + 1} differs at cells {bad}: rtl {got[k, bad].tolist()} "
                f"golden {gold[k + 1, bad].tolist()}"
            )
    return gold


@pytest.mark.parametrize(("fmt", "cases"), RANDOM_FORMATS, ids=lambda v: f"M{v.cells}-P{v.phase_bits}-W{v.weight_bits}-S{v.sine_bits}-L{v.lut_bits}" if isinstance(v, fp.TileFormat) else str(v))
def test_random_programs_bit_exact_after_every_step(fmt, cases, rtl_cache):
    g = torch.Generator().manual_seed(1000 + fmt.cells * 7 + fmt.phase_bits)
    tile = rtl_run.build(fmt, cache_dir=rtl_cache)
    ops, plan = [], []
    for case in range(cases):
        program = _random_program(fmt, g, extreme=case % 2 == 1)
        theta0 = torch.randint(0, 1 << fmt.phase_bits, (fmt.cells,), generator=g)
        steps = int(torch.randint(1, 7, (), generator=g))
        pairs = fp.bus_transactions(program, theta0_codes=theta0)
        if case:  # the sine table is the format's: rewrite only coupling, ω, shifts, phases
            pairs = [(a, d) for a, d in pairs if not fmt.lut_base <= a < fmt.phase_base]
        ops += [{"op": "write", "pairs": pairs}, {"op": "run", "chain": [steps]}]
        plan.append((program, theta0, steps))
    result = rtl_run.run_job(tile, ops)
    runs = [r for r in result["records"] if "phases" in r]
    assert len(runs) == cases
    cps = fmt.cycles_per_step
    for k, (record, (program, theta0, steps)) in enumerate(zip(runs, plan)):
        _check_run(record, program, theta0, steps, what=f"case {k}")
        assert record["step_cycles"] == [cps * (s + 1) for s in range(steps)], "cycles per step"
        assert record["done_cycles"] == [cps * steps]
        assert record["busy_after"] == 0


def _tile_of_trained_model(cells_main: int):
    import models

    model = models.load(models.checkpoint.SHIPPED)
    with torch.no_grad():
        p = model.params().to(torch.float64)
    return model, fp.subsystem(p, range(cells_main))


def test_trained_model_tile_steps_exactly_as_the_golden_model(rtl_cache, tmp_path):
    """The shipped digits model's first 32 oscillators, its 8 conditioning oscillators and
    their couplings, programmed from a $readmemh image, every class: bit-exact."""
    model, sub = _tile_of_trained_model(32)
    steps = model.config.num_steps
    fmt = fp.TileFormat(n=32, n_cond=sub.n_cond, phase_bits=16, weight_bits=8, sine_bits=12, lut_bits=10)
    program = fp.TileProgram.from_params(sub, h=1.0 / steps, fmt=fmt, label=0)
    assert program.quantization.clipped == {"K": 0, "drive": 0, "C": 0, "omega": 0, "nu": 0}
    tile = rtl_run.build(fmt, cache_dir=rtl_cache)
    hex_path = tmp_path / "tile.hex"
    fp.write_readmemh(program, hex_path)
    theta = model.sample_theta0(sub.num_classes, generator=torch.Generator().manual_seed(3))
    full_n = model.config.n
    theta = torch.cat((theta[:, :32], theta[:, full_n:]), dim=1).to(torch.float64)
    codes = fp.phase_to_code(theta, fmt) & _mask(fmt)
    ops = [{"op": "write_hex", "path": str(hex_path)}]
    for label in range(sub.num_classes):
        labelled = program.with_label(label)
        drive_pairs = [(a, d) for a, d in fp.bus_transactions(labelled) if a < fmt.omega_base and a % fmt.cells >= fmt.n
                       and a // fmt.cells < fmt.n]
        ops += [{"op": "write", "pairs": drive_pairs}]
        ops += rtl_run.phase_ops(fmt, codes[label])
        ops.append({"op": "run", "chain": [steps]})
    result = rtl_run.run_job(tile, ops)
    runs = [r for r in result["records"] if "phases" in r]
    golden_all = fp.run(program, codes, steps, labels=torch.arange(sub.num_classes))
    for label, record in enumerate(runs):
        gold = _check_run(record, program.with_label(label), codes[label], steps, what=f"class {label}")
        assert torch.equal(gold, golden_all[:, label] & _mask(fmt))  # per-sample labels batch the same


@pytest.mark.slow
def test_random_init_digits_n64_model_full_tile(rtl_cache):
    """A whole random-init digits-n64 Un-0 (64 + 8 cells) as one tile, 10 steps, 4 seeds."""
    import models

    config = models.PUBLISHED["digits-n64"]
    model = models.Un0.init(config, seed=0)
    with torch.no_grad():
        params = model.params().to(torch.float64)
    fmt = fp.TileFormat(n=config.n, n_cond=config.n_cond, phase_bits=18, weight_bits=10, sine_bits=12, lut_bits=11)
    program = fp.TileProgram.from_params(params, h=1.0 / config.num_steps, fmt=fmt, label=7)
    theta = model.sample_theta0(4, generator=torch.Generator().manual_seed(5)).to(torch.float64)
    codes = fp.phase_to_code(theta, fmt) & _mask(fmt)
    got = rtl_run.simulate_tile(program, codes, config.num_steps, cache_dir=rtl_cache)
    gold = fp.run(program, codes, config.num_steps) & _mask(fmt)
    assert torch.equal(got, gold)


def _control_format():
    return fp.TileFormat(n=6, n_cond=2, phase_bits=16, weight_bits=8, sine_bits=10, lut_bits=8)


def test_reset_back_to_back_reprogramming_and_ignored_pokes(rtl_cache, capsys):
    fmt = _control_format()
    g = torch.Generator().manual_seed(77)
    a = _random_program(fmt, g, extreme=False)
    b = _random_program(fmt, g, extreme=True)
    ta, tb = (torch.randint(0, 1 << fmt.phase_bits, (fmt.cells,), generator=g) for _ in range(2))
    cps = fmt.cycles_per_step
    k_addr, k_other = 1 * fmt.cells + 0, 0x55
    image_a = fp.memory_image(a)
    ops = [
        {"op": "write", "pairs": fp.bus_transactions(a, theta0_codes=ta)},
        {"op": "read", "addrs": list(range(fmt.address_words))},  # 0: the whole address space
        {"op": "run", "chain": [5], "reset_after_cycles": 2 * cps + 4},  # 2: reset in step 3
        {"op": "read", "addrs": list(range(fmt.phase_base, fmt.address_words))},  # 3
        *rtl_run.phase_ops(fmt, ta),
        {"op": "run", "chain": [5]},  # 5: memories survived the reset
        *rtl_run.phase_ops(fmt, ta),
        {"op": "run", "chain": [2, 3, 0, 1]},  # 7: back to back, a zero-step start inside
        *rtl_run.phase_ops(fmt, ta),
        {"op": "run", "chain": [3], "write_while_busy": [4, k_addr, k_other], "start_while_busy_after": 9},  # 9
        {"op": "read", "addrs": [k_addr]},  # 10: the write while busy was ignored
        {"op": "write", "pairs": fp.bus_transactions(b, theta0_codes=tb)},  # reprogram
        {"op": "run", "chain": [4]},  # 12
        {"op": "reset", "cycles": 1},  # idle reset: phases cleared
        {"op": "run", "chain": [0]},  # 14: zero steps
        {"op": "read", "addrs": list(range(fmt.address_words))},  # 15
    ]
    result = rtl_run.run_job(rtl_run.build(fmt, cache_dir=rtl_cache), ops)
    rec = result["records"]
    mask = _mask(fmt)

    # read-back: the image where it was written, then the phases
    assert rec[1]["read"][: fmt.image_words] == image_a
    assert rec[1]["read"][fmt.phase_base:] == (ta & mask).tolist()

    # reset in the third step: two steps seen, then phases cleared and idle
    gold_a = _check_run({"phases": rec[2]["phases"]}, a, ta, 2, what="before reset")
    assert rec[2]["aborted"] and rec[2]["busy_after"] == 0
    assert rec[2]["final"] == [0] * fmt.cells and rec[3]["read"] == [0] * fmt.cells
    assert torch.equal(torch.tensor(rec[2]["phases"][-1]), gold_a[2])

    # after the reset the same program runs as if nothing happened
    _check_run(rec[5], a, ta, 5, what="after reset")

    # back to back: 6 steps as one run; one idle cycle per handshake
    _check_run(rec[7], a, ta, 6, what="back to back")
    assert rec[7]["step_cycles"] == [cps, 2 * cps, 3 * cps + 1, 4 * cps + 1, 5 * cps + 1, 6 * cps + 3]
    assert rec[7]["done_cycles"] == [2 * cps, 5 * cps + 1, 5 * cps + 2, 6 * cps + 3]

    # a bus write and a start while busy change nothing
    _check_run(rec[9], a, ta, 3, what="pokes while busy")
    assert rec[9]["busy_after"] == 0 and len(rec[9]["done_cycles"]) == 1
    assert rec[10]["read"] == [image_a[k_addr]]

    # reprogrammed: the new program's dynamics
    _check_run(rec[12], b, tb, 4, what="reprogrammed")

    # idle reset clears the phases; zero steps: done at once, nothing moves
    assert rec[14]["phases"] == [] and rec[14]["done_cycles"] == [0] and rec[14]["final"] == [0] * fmt.cells
    assert rec[15]["read"][: fmt.image_words] == fp.memory_image(b)

    # functional coverage of the interface, counted by the driver
    cov = result["coverage"]
    wanted = [
        "fsm:IDLE->ISSUE", "fsm:ISSUE->DRAIN", "fsm:DRAIN->COMBINE", "fsm:COMBINE->UPDATE",
        "fsm:UPDATE->ISSUE", "fsm:UPDATE->IDLE", "fsm:ISSUE->IDLE",
        "reset:busy", "reset:idle", "start:idle", "start:back-to-back", "start:zero-steps", "start:busy",
        "write-while-busy", "step_done", "done",
        *(f"write:{r}" for r in ("K", "omega", "shift", "lut", "phase")),
        *(f"read:{r}" for r in ("K", "omega", "shift", "lut", "phase")),
    ]
    with capsys.disabled():
        print("\nkuramoto_tile interface coverage (bin: hits):")
        for name in sorted(cov):
            print(f"  {name}: {cov[name]}")
        print(f"  {sum(1 for w in wanted if cov.get(w))}/{len(wanted)} required bins hit")
    missing = [w for w in wanted if not cov.get(w)]
    assert not missing, f"coverage bins never hit: {missing}"


def test_simulate_tile_returns_every_step(rtl_cache):
    fmt = _control_format()
    g = torch.Generator().manual_seed(5)
    program = _random_program(fmt, g, extreme=False)
    theta = torch.randint(0, 1 << fmt.phase_bits, (3, fmt.cells), generator=g)
    got = rtl_run.simulate_tile(program, theta, 4, cache_dir=rtl_cache)
    assert got.shape == (5, 3, fmt.cells)
    assert torch.equal(got, fp.run(program, theta, 4) & _mask(fmt))


def test_simulate_tile_with_a_relative_cache_dir_from_another_cwd(tmp_path, monkeypatch):
    # `un0hw demo -o report` hands a relative build folder down; cocotb runs the simulator in
    # the run folder, so every path the job names must be absolute by then.
    monkeypatch.chdir(tmp_path)
    fmt = _control_format()
    g = torch.Generator().manual_seed(7)
    program = _random_program(fmt, g, extreme=False)
    theta = torch.randint(0, 1 << fmt.phase_bits, (2, fmt.cells), generator=g)
    got = rtl_run.simulate_tile(program, theta, 3, cache_dir="rel/build")
    assert torch.equal(got, fp.run(program, theta, 3) & _mask(fmt))
    assert [p.name[:5] for p in (tmp_path / "rel" / "build").iterdir()] == ["tile-"]
    tile = rtl_run.build(fmt, cache_dir="rel/build")
    assert tile.build_dir.is_absolute() and tile.build_dir.parent == tmp_path / "rel" / "build"


def test_an_iverilog_override_is_the_one_cocotb_runs(tmp_path, monkeypatch):
    import shlex

    from hw.tools import find_tool

    real, log = find_tool("iverilog"), tmp_path / "called.log"
    wrapper = tmp_path / "icarus" / "iverilog"  # cocotb calls it by this name
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> {shlex.quote(str(log))}\nexec {shlex.quote(real)} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("UN0HW_IVERILOG", str(wrapper))
    fmt = _control_format()
    g = torch.Generator().manual_seed(8)
    program = _random_program(fmt, g, extreme=False)
    theta = torch.randint(0, 1 << fmt.phase_bits, (1, fmt.cells), generator=g)
    got = rtl_run.simulate_tile(program, theta, 2, cache_dir=tmp_path / "build")
    assert torch.equal(got, fp.run(program, theta, 2) & _mask(fmt))
    assert "kuramoto_tile" in log.read_text()  # the build went through the override
