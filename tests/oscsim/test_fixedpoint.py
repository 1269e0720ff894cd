"""The tile's fixed-point golden model: its arithmetic against a plain-integer reading of the
documented recipe, quantisation, memory images, and its error against float Euler."""

from __future__ import annotations

import math

import pytest
import torch

import oscsim
from oscsim import OscsimError
from oscsim import fixedpoint as fp
from oscsim.quant import choose_scale, qmax

F64 = torch.float64


def _system(n, c, classes, g, *, k_scale=1.0):
    return oscsim.KuramotoParams.from_raw(
        K=torch.randn(n, n, generator=g, dtype=F64) * k_scale / math.sqrt(n),
        omega=torch.randn(n, generator=g, dtype=F64),
        drive=torch.randn(classes, n, c, generator=g, dtype=F64) * 0.5 * k_scale,
        C=torch.randn(c, c, generator=g, dtype=F64) * k_scale,
        nu=torch.randn(c, generator=g, dtype=F64),
    )


# ------------------------------------------------------------------------------ format


def test_format_fills_minimal_widths_and_checks_every_field():
    fmt = fp.TileFormat(n=10, n_cond=2, phase_bits=12, weight_bits=6, sine_bits=8)
    assert fmt.cells == 12 and fmt.omega_bits == 12
    assert fmt.acc_bits == fp.minimal_acc_bits(12, 6, 8) == (12 * 31 * 127).bit_length() + 1
    assert fmt.cycles_per_step == 15
    assert fmt.rtl_parameters()["N_CELLS"] == 12
    with pytest.raises(OscsimError, match=r"^TileFormat\.lut_bits must be an integer in 2\.\.12, not 13$"):
        fp.TileFormat(n=4, phase_bits=12, lut_bits=13)
    with pytest.raises(OscsimError, match=r"^TileFormat\.weight_bits must be an integer in 2\.\.16, not 1$"):
        fp.TileFormat(n=4, weight_bits=1)
    with pytest.raises(OscsimError, match=r"^TileFormat\.n must be an integer in 1\.\.4096, not True$"):
        fp.TileFormat(n=True)
    least = fp.minimal_acc_bits(4, 8, 12)
    with pytest.raises(OscsimError, match=rf"^TileFormat\.acc_bits must be an integer in {least}\.\.46 .*not {least - 1}$"):
        fp.TileFormat(n=4, acc_bits=least - 1)


def test_minimal_accumulator_holds_the_worst_sum_and_no_less():
    for cells, w, s in [(1, 2, 2), (7, 8, 12), (520, 8, 12), (4096, 16, 16)]:
        bits = fp.minimal_acc_bits(cells, w, s)
        worst = cells * qmax(w) * qmax(s)
        assert -(2 ** (bits - 1)) <= -worst and worst <= 2 ** (bits - 1) - 1
        assert worst > 2 ** (bits - 2) - 1  # one bit less would overflow


def test_sine_table_is_the_rounded_sine():
    fmt = fp.TileFormat(n=2, sine_bits=10, lut_bits=8)
    lut = fp.sine_table(fmt)
    k = torch.arange(256, dtype=F64)
    assert lut.dtype == torch.int64 and lut.shape == (256,)
    assert int(lut[0]) == 0 and int(lut[64]) == 511 and int(lut[192]) == -511
    assert torch.equal(lut[1:], -lut[1:].flip(0))  # odd: sin(2π − x) = −sin x
    assert float((lut - 511 * torch.sin(2 * math.pi * k / 256)).abs().max()) <= 0.5


# ------------------------------------------------------------------------------ arithmetic


def _reference_step(program, theta, label):
    """The module docstring's recipe, cell by cell with Python integers."""
    fmt = program.fmt
    P, Lb, L = fmt.phase_bits, fmt.lut_bits, fmt.lut_size
    lut = fp.sine_table(fmt).tolist()
    k = program.coupling(label).tolist()
    freq = program.frequencies().tolist()
    shift = program.shift.tolist()
    mask = (1 << P) - 1

    def index(t):
        t &= mask
        return ((t + (1 << (P - Lb - 1))) >> (P - Lb)) % L if P > Lb else t % L

    sin = [lut[index(t)] for t in theta]
    cos = [lut[(index(t) + L // 4) % L] for t in theta]
    out = []
    for i in range(fmt.cells):
        s_sum = sum(k[i][j] * sin[j] for j in range(fmt.cells))
        c_sum = sum(k[i][j] * cos[j] for j in range(fmt.cells))
        comb = cos[i] * s_sum - sin[i] * c_sum
        f = shift[i]
        coupled = (comb + (1 << (f - 1) if f else 0)) >> f  # Python >> floors, like >>>
        out.append(theta[i] + freq[i] * (1 << (P - fmt.omega_bits)) + coupled)
    return out


@pytest.mark.parametrize(
    "fmt",
    [
        fp.TileFormat(n=4, n_cond=2, phase_bits=12, weight_bits=6, sine_bits=8, lut_bits=8),
        fp.TileFormat(n=5, phase_bits=10, weight_bits=4, sine_bits=6, lut_bits=10, omega_bits=10),
        fp.TileFormat(n=3, n_cond=3, phase_bits=20, weight_bits=16, sine_bits=16, lut_bits=12, shift_bits=6),
    ],
    ids=["P12", "no-index-rounding", "widest-codes"],
)
def test_batched_step_equals_the_recipe_cell_by_cell(fmt):
    g = torch.Generator().manual_seed(fmt.cells)
    qw, qo = qmax(fmt.weight_bits), qmax(fmt.omega_bits)
    n, c = fmt.n, fmt.n_cond
    program = fp.TileProgram(
        fmt=fmt, K=torch.randint(-qw, qw + 1, (n, n), generator=g), omega=torch.randint(-qo, qo + 1, (n,), generator=g),
        drive=torch.full((2, n, c), qw), C=torch.randint(-qw, qw + 1, (c, c), generator=g),
        nu=torch.full((c,), -qo), shift=torch.randint(0, fmt.max_shift + 1, (fmt.cells,), generator=g),
    )
    theta = torch.randint(-(1 << 40), 1 << 40, (6, fmt.cells), generator=g)  # unwrapped codes of any size
    labels = torch.tensor([-1, 0, 1, 1, 0, -1])
    traj = fp.run(program, theta, 3, labels=labels)
    for b in range(6):
        state = theta[b].tolist()
        for s in range(3):
            state = _reference_step(program, state, int(labels[b]))
            assert traj[s + 1, b].tolist() == state
    # the hardware's view is the same modulo 2^P whatever the unwrapped offset
    shifted = fp.run(program, theta + (5 << fmt.phase_bits), 3, labels=labels)
    mask = (1 << fmt.phase_bits) - 1
    assert torch.equal(shifted & mask, traj & mask)


def test_label_default_is_the_programs_and_minus_one_drops_the_drive():
    fmt = fp.TileFormat(n=4, n_cond=2)
    g = torch.Generator().manual_seed(0)
    program = fp.TileProgram.from_params(_system(4, 2, 3, g), h=0.1, fmt=fmt, label=2)
    theta = torch.randint(0, 1 << 16, (5, fmt.cells), generator=g)
    assert torch.equal(fp.run(program, theta, 2), fp.run(program, theta, 2, labels=torch.full((5,), 2)))
    none = fp.run(program.with_label(None), theta, 2)
    assert torch.equal(none, fp.run(program, theta, 2, labels=torch.full((5,), -1)))
    assert not torch.equal(none, fp.run(program, theta, 2))
    with pytest.raises(OscsimError, match=r"^labels must lie in \[0, 3\) or be −1"):
        fp.run(program, theta, 1, labels=torch.full((5,), 3))


def test_free_oscillator_advances_by_its_frequency_code():
    """K = 0: each step adds exactly ω_code·2^(P−Ω), and that is ω·h to half a code."""
    fmt = fp.TileFormat(n=3, phase_bits=20, omega_bits=12)
    omega = torch.tensor([0.7, -2.9, 12.0], dtype=F64)
    h = 0.05
    program = fp.TileProgram.from_float(torch.zeros(3, 3, dtype=F64), omega, h=h, fmt=fmt)
    traj = fp.run(program, torch.zeros(1, 3, dtype=torch.int64), 4)
    inc = traj.diff(dim=0)[:, 0]
    assert torch.equal(inc, program.omega.expand(4, 3) << (20 - 12))
    scale = program.quantization.omega_scale
    assert scale == pytest.approx(2 * math.pi / (h * 2**12))
    assert bool(((program.omega * scale - omega).abs() <= scale / 2 + 1e-12).all())
    assert program.quantization.clipped["omega"] == 0
    fast = fp.TileProgram.from_float(torch.zeros(3, 3, dtype=F64), omega * 30, h=h, fmt=fmt)
    assert fast.quantization.clipped["omega"] == 2  # |ω|·h above ≈ π per step: 87 and 360 rad/t


def test_row_scales_sit_on_the_power_of_two_grid_just_above_the_chosen_clip():
    fmt = fp.TileFormat(n=8, n_cond=2, phase_bits=16, weight_bits=8, sine_bits=12)
    g = torch.Generator().manual_seed(1)
    p = _system(8, 2, 4, g, k_scale=2.0)
    h = 0.1
    program = fp.TileProgram.from_params(p, h=h, fmt=fmt)
    q = program.quantization
    grid = 2 * math.pi * qmax(12) ** 2 / (h * 2**16)
    assert torch.allclose(q.k_scale, grid * 2.0 ** (-program.shift.to(F64)))
    rows = torch.cat((p.K, p.drive.permute(1, 0, 2).reshape(8, -1)), 1)
    wanted = torch.cat((choose_scale(rows, 8, dim=1).reshape(-1), choose_scale(p.C, 8, dim=1).reshape(-1)))
    assert bool((q.k_scale >= wanted).all()) and bool((q.k_scale < 2 * wanted).all())
    assert q.clipped == {"K": 0, "drive": 0, "C": 0, "omega": 0, "nu": 0} and q.shift_saturated == 0
    # the codes are oscsim.quant's: within half a step of the value
    assert float((program.K * q.k_scale[:8, None] - p.K).abs().max() / q.k_scale.max()) <= 0.5 + 1e-9
    assert torch.equal(torch.diagonal(program.coupling(None)), torch.zeros(10, dtype=torch.int64))
    assert "clipped: K 0" in q.summary()


def test_program_codes_are_checked():
    fmt = fp.TileFormat(n=2, weight_bits=4)
    i64 = torch.int64
    ok = {"fmt": fmt, "K": torch.zeros(2, 2, dtype=i64), "omega": torch.zeros(2, dtype=i64),
          "drive": torch.zeros(1, 2, 0, dtype=i64), "C": torch.zeros(0, 0, dtype=i64),
          "nu": torch.zeros(0, dtype=i64), "shift": torch.zeros(2, dtype=i64)}
    fp.TileProgram(**ok)
    with pytest.raises(OscsimError, match=r"^TileProgram\.K codes must lie in \[-7, 7\]; got \[0, 8\]$"):
        fp.TileProgram(**{**ok, "K": torch.tensor([[0, 8], [0, 0]])})
    with pytest.raises(OscsimError, match=r"^TileProgram\.omega must be an integer tensor, not torch\.float32$"):
        fp.TileProgram(**{**ok, "omega": torch.zeros(2)})
    with pytest.raises(OscsimError, match=r"^TileProgram\.shift must have shape \(2,\), not \(3,\)$"):
        fp.TileProgram(**{**ok, "shift": torch.zeros(3, dtype=torch.int64)})
    with pytest.raises(OscsimError, match=r"^TileProgram\.label must be None or a class in 0\.\.0, not 1$"):
        fp.TileProgram(**ok, label=1)
    with pytest.raises(OscsimError, match=r"^h must be a positive finite number, not 0$"):
        fp.TileProgram.from_float(torch.zeros(2, 2), torch.zeros(2), h=0, fmt=fmt)
    with pytest.raises(OscsimError, match=r"^drive is required for a tile with n_cond=1$"):
        fp.TileProgram.from_float(torch.zeros(2, 2), torch.zeros(2), h=0.1, fmt=fp.TileFormat(n=2, n_cond=1))
    with pytest.raises(OscsimError, match=r"^the error bounds need a program from TileProgram\.from_float"):
        fp.step_error_bound(fp.TileProgram(**ok), h=0.1)


# ------------------------------------------------------------------------------ images


def test_memory_image_layout_and_readmemh_round_trip(tmp_path):
    fmt = fp.TileFormat(n=3, n_cond=1, phase_bits=12, weight_bits=6, sine_bits=8, lut_bits=6)
    g = torch.Generator().manual_seed(2)
    program = fp.TileProgram.from_params(_system(3, 1, 2, g, k_scale=3.0), h=0.1, fmt=fmt, label=1)
    image = fp.memory_image(program)
    m = 4
    assert len(image) == fmt.image_words == m * m + 2 * m + 64
    full = program.coupling(1)
    for i in range(m):
        for j in range(m):
            assert image[i * m + j] == int(full[i, j]) & 0xFFFFFFFF
    assert image[0 * m + 3] == int(program.drive[1, 0, 0]) & 0xFFFFFFFF  # main row, conditioning column
    assert image[3 * m + 0] == 0  # conditioning never hears the main block
    assert image[fmt.omega_base: fmt.omega_base + m] == [int(v) & 0xFFFFFFFF for v in program.frequencies()]
    assert image[fmt.shift_base: fmt.shift_base + m] == program.shift.tolist()
    assert image[fmt.lut_base:] == [int(v) & 0xFFFFFFFF for v in fp.sine_table(fmt)]
    assert any(w > 0x7FFFFFFF for w in image)  # negative codes as two's complement words
    path = tmp_path / "sub" / "tile.hex"
    fp.write_readmemh(program, path)
    assert fp.read_readmemh(path) == image
    lines = path.read_text().splitlines()
    assert lines[0].startswith("// un0hw kuramoto_tile") and all(len(x) == 8 for x in lines[2:])
    assert sorted(p.name for p in path.parent.iterdir()) == ["tile.hex"]  # no temporary left
    theta0 = torch.tensor([-1, 4096 + 5, 7, 0])
    writes = fp.bus_transactions(program, theta0_codes=theta0)
    assert writes[: len(image)] == list(enumerate(image))
    assert writes[len(image):] == [(fmt.phase_base + 0, 4095), (fmt.phase_base + 1, 5),
                                   (fmt.phase_base + 2, 7), (fmt.phase_base + 3, 0)]
    with pytest.raises(OscsimError, match=r"^theta0_codes must be an integer tensor of shape \(4,\)"):
        fp.bus_transactions(program, theta0_codes=torch.zeros(3, dtype=torch.int64))


# ------------------------------------------------------------------------------ against float Euler

WIDTHS = [  # (phase, weight, sine, lut) bits, coarse to fine
    (12, 6, 8, 8),
    (16, 8, 12, 10),
    (20, 12, 14, 12),
    (24, 16, 16, 16),
]


@pytest.mark.parametrize("widths", WIDTHS, ids=lambda w: "P{}-W{}-S{}-L{}".format(*w))
def test_one_step_error_is_within_the_stated_bound(widths):
    """From any representable state, one tile step vs one float64 Euler step: ≤ δ
    (`step_error_bound`), on a strongly coupled system (Σ|K| per row ≈ 8)."""
    P, W, S, Lb = widths
    g = torch.Generator().manual_seed(P)
    n, c, classes = 24, 4, 3
    params = _system(n, c, classes, g, k_scale=3.0)
    fmt = fp.TileFormat(n=n, n_cond=c, phase_bits=P, weight_bits=W, sine_bits=S, lut_bits=Lb)
    h = 0.1
    program = fp.TileProgram.from_params(params, h=h, fmt=fmt)
    codes = torch.randint(0, 1 << P, (512, fmt.cells), generator=g)
    labels = torch.randint(-1, classes, (512,), generator=g)
    tile = fp.code_to_phase(fp.step(program, codes, labels), fmt)
    ref = oscsim.simulate(params, fp.code_to_phase(codes, fmt), labels, steps=1, T=h).theta
    err = float((tile - ref).abs().max())
    bound = fp.step_error_bound(program, h=h)
    assert err <= bound
    assert err > bound / 50  # the bound is not vacuous: within ~10x of what happens


def test_error_after_ten_steps_is_bounded_and_falls_with_the_bits():
    """A weakly coupled system (hΛ ≈ 0.1), 10 steps, T = 1, vs float64 Euler from the same
    seeds: within `phase_error_bound`, and the error falls as the widths grow."""
    g = torch.Generator().manual_seed(11)
    n, c, classes = 32, 4, 3
    params = _system(n, c, classes, g, k_scale=0.1)
    theta0 = oscsim.uniform_phases(128, n + c, generator=g, dtype=F64)
    labels = torch.randint(-1, classes, (128,), generator=g)
    ref = oscsim.simulate(params, theta0, labels, steps=10, T=1.0).theta
    errors = []
    for P, W, S, Lb in WIDTHS:
        fmt = fp.TileFormat(n=n, n_cond=c, phase_bits=P, weight_bits=W, sine_bits=S, lut_bits=Lb)
        out = fp.simulate_fixed(params, theta0, labels, steps=10, T=1.0, fmt=fmt)
        err = float((out.theta - ref).abs().max())
        program = fp.TileProgram.from_params(params, h=0.1, fmt=fmt)
        e0 = float((fp.code_to_phase(fp.phase_to_code(theta0, fmt), fmt) - theta0).abs().max())
        bound = fp.phase_error_bound(program, steps=10, h=0.1, theta0_error=e0)
        assert err <= bound <= 0.5
        errors.append(err)
    assert errors == sorted(errors, reverse=True)
    assert errors[-1] < errors[0] / 20


def test_subsystem_keeps_the_chosen_cells_and_every_conditioning_oscillator():
    g = torch.Generator().manual_seed(8)
    p = _system(6, 2, 3, g)
    sub = fp.subsystem(p, [4, 1])
    assert torch.equal(sub.K, torch.stack((p.K[4, [4, 1]], p.K[1, [4, 1]])))
    assert torch.equal(sub.drive, p.drive[:, [4, 1]]) and torch.equal(sub.C, p.C)
    assert torch.equal(sub.omega, p.omega[[4, 1]])
    with pytest.raises(OscsimError, match=r"^cells must be a non-empty list of main-oscillator indices in 0\.\.5$"):
        fp.subsystem(p, [6])
    with pytest.raises(OscsimError, match=r"^cells must not repeat an oscillator$"):
        fp.subsystem(p, [1, 1])


def test_simulate_fixed_returns_unwrapped_radians_like_simulate():
    g = torch.Generator().manual_seed(4)
    params = _system(6, 2, 2, g, k_scale=0.5)
    fmt = fp.TileFormat(n=6, n_cond=2, phase_bits=20, weight_bits=12, sine_bits=14, lut_bits=12)
    theta0 = oscsim.uniform_phases(8, 8, generator=g, dtype=F64) + 40.0  # far from [0, 2π)
    out = fp.simulate_fixed(params, theta0, None, steps=5, T=0.5, fmt=fmt, record=True)
    ref = oscsim.simulate(params, theta0, None, steps=5, T=0.5, record=True)
    assert out.theta.dtype == F64 and out.trajectory.shape == (6, 8, 8) and out.n == 6
    assert torch.allclose(out.times, ref.times)
    assert float((out.trajectory - ref.trajectory).abs().max()) < 1e-2
    zero = fp.simulate_fixed(params, theta0, None, steps=0, fmt=fmt)
    assert float((zero.theta - theta0).abs().max()) <= math.pi / 2**20 + 1e-12
    with pytest.raises(OscsimError, match=r"^the tile has n=5, n_cond=2; params have n=6, n_cond=2$"):
        fp.simulate_fixed(params, theta0, None, fmt=fp.TileFormat(n=5, n_cond=2))
    with pytest.raises(OscsimError, match=r"^theta0 must be \(B, N \+ N_c\) = \(B, 8\), not \(8, 7\)$"):
        fp.simulate_fixed(params, theta0[:, :7], None, fmt=fmt)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.cuda
def test_cuda_runs_the_same_integers():
    g = torch.Generator().manual_seed(9)
    params = _system(48, 4, 5, g)
    fmt = fp.TileFormat(n=48, n_cond=4)
    theta0 = oscsim.uniform_phases(64, 52, generator=g, dtype=F64)
    labels = torch.randint(-1, 5, (64,), generator=g)
    cpu = fp.simulate_fixed(params, theta0, labels, fmt=fmt, record=True)
    gpu = fp.simulate_fixed(params.to("cuda"), theta0.to("cuda"), labels.to("cuda"), fmt=fmt, record=True)
    assert gpu.theta.device.type == "cuda"
    assert torch.equal(gpu.trajectory.cpu(), cpu.trajectory)
