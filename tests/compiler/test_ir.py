"""The ArrayIR: back into the simulator exactly, files byte-stable, validation on load."""

from __future__ import annotations

import json

import pytest
import torch

import compiler
import models
from compiler import CompileOptions, IRError
from models.checkpoint import SHIPPED
from oscsim import fake_quantize, simulate


@pytest.fixture(scope="module")
def shipped():
    return models.load(SHIPPED)


def test_sixteen_bits_one_tile_reproduces_the_checkpoint(shipped) -> None:
    ir = compiler.compile(shipped, CompileOptions(bits=16, tile=shipped.config.n))
    assert len(ir.tiles) == 1
    labels = torch.arange(10).repeat_interleave(4)
    theta0 = shipped.sample_theta0(40, generator=torch.Generator().manual_seed(0))
    want = shipped.generate(labels, theta0)
    got = ir.to_model().generate(labels, theta0)
    # 16-bit codes move each coupling by at most half a step (~1.5e-5 of the largest);
    # ten Euler steps and the decoder turn that into ~1e-4 of the image range on average
    diff = (got - want).abs()
    assert float(diff.mean()) < 3e-4 and float(diff.max()) < 2e-2, (float(diff.mean()), float(diff.max()))
    with torch.no_grad():
        p, q = ir.to_params(), shipped.params()
    assert float((p.K - q.K).abs().max()) <= float(q.K.abs().max()) / (2**15 - 1) / 2 * 1.01  # float32 rounding


def test_a_model_already_on_the_grid_compiles_to_itself(shipped) -> None:
    # compile ∘ to_model is a fixed point: the codes of an on-grid model are exact
    opts = CompileOptions(bits=16, tile=shipped.config.n)
    on_grid = compiler.compile(shipped, opts).to_model()
    again = compiler.compile(on_grid, opts).to_model()
    labels = torch.arange(10).repeat_interleave(2)
    theta0 = shipped.sample_theta0(20, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(again.generate(labels, theta0), on_grid.generate(labels, theta0), atol=1e-6)


def test_the_simulator_sees_exactly_the_dequantised_codes(shipped) -> None:
    ir = compiler.compile(shipped, CompileOptions(bits=5, tile=100, target="sparse-routed", links=40,
                                                  granularity="row"))
    K = ir.to_params().K
    # rebuild independently from the codes: blocks at their tiles' members, links at (i, j)
    want = torch.zeros_like(K)
    t = ir.tensors
    for (a, b), codes, scale in zip(t["K.block_tiles"].tolist(), t["K.blocks"], t["K.block_scales"]):
        rows, cols = ir.tiles[a], ir.tiles[b]
        block = codes.float() * scale
        want[torch.tensor(rows)[:, None], torch.tensor(cols)[None, :]] = block[: len(rows), : len(cols)]
    for (i, j), c, s in zip(t["K.links"].tolist(), t["K.link_codes"], t["K.link_scales"]):
        want[i, j] = c.float() * s
    assert torch.equal(K, want)
    p = ir.to_params()
    assert torch.equal(p.omega, t["omega.codes"].float() * t["omega.scale"])
    # and the simulator integrates exactly that system
    theta0 = torch.rand(3, shipped.config.n + shipped.config.n_cond)
    a = simulate(p, theta0, torch.tensor([0, 1, 2]), steps=5).theta
    b = ir.to_model().params()
    assert torch.equal(b.K, p.K) and torch.equal(b.drive, p.drive)
    assert torch.equal(simulate(b, theta0, torch.tensor([0, 1, 2]), steps=5).theta, a)


@pytest.mark.parametrize("granularity", ["tile", "row", "tensor"])
def test_kept_couplings_equal_K_on_the_kept_support(shipped, granularity: str) -> None:
    opts = CompileOptions(bits=8, tile=128, prune="magnitude", keep=0.4, granularity=granularity)
    ir = compiler.compile(shipped, opts)
    K, Q = shipped.params().K.detach(), ir.to_params().K
    kept = ir.doc["passes"]["prune"]["kept"]
    thr = torch.sort(K.abs().flatten(), descending=True).values[kept - 1]
    support = K.abs() >= thr
    assert int(support.sum()) == kept
    assert bool((Q[~support] == 0).all())  # pruned: no coupler
    # on the support: K up to half a quantisation step of the entry's own group
    step = float(ir.tensors["K.block_scales"].max())
    assert float((Q - K)[support].abs().max()) <= step / 2 * 1.01
    assert float(((Q - K)[support]).abs().mean()) < step / 4


def test_save_load_save_is_byte_identical(shipped, tmp_path) -> None:
    ir = compiler.compile(shipped, CompileOptions(bits=6, tile=128, target="sparse-routed"))
    ir.save(tmp_path / "a")
    compiler.load(tmp_path / "a").save(tmp_path / "b")
    for name in ("array.json", "weights.safetensors"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    again = compiler.compile(shipped, CompileOptions(bits=6, tile=128, target="sparse-routed"))
    again.save(tmp_path / "c")  # compiling is deterministic too
    assert (tmp_path / "c" / "array.json").read_bytes() == (tmp_path / "a" / "array.json").read_bytes()


def test_load_rejects_edits_and_damage(shipped, tmp_path) -> None:
    ir = compiler.compile(shipped, CompileOptions(bits=4, tile=256))
    out = ir.save(tmp_path / "ir")
    doc = json.loads((out / "array.json").read_text())
    doc["options"].pop("bits")
    (out / "array.json").write_text(json.dumps(doc))
    with pytest.raises(IRError, match="options: 'bits' is a required property"):
        compiler.load(out)
    ir.save(out)
    data = bytearray((out / "weights.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (out / "weights.safetensors").write_bytes(bytes(data))
    with pytest.raises(IRError, match="checksum"):
        compiler.load(out)
    ir.save(out)
    doc = json.loads((out / "array.json").read_text())
    doc["tiles"][0]["oscillators"][0] = doc["tiles"][1]["oscillators"][0]
    (out / "array.json").write_text(json.dumps(doc))
    with pytest.raises(IRError, match="exactly one tile"):
        compiler.load(out)
    with pytest.raises(IRError, match="not an IR folder"):
        compiler.load(tmp_path)


def test_save_refuses_to_overwrite_other_things(shipped, tmp_path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "x.txt").write_text("mine")
    ir = compiler.compile(shipped, CompileOptions(bits=4, tile=256))
    with pytest.raises(compiler.CompileError, match="refusing"):
        ir.save(tmp_path / "notes")
    assert (tmp_path / "notes" / "x.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes"]  # no temporary left behind


def test_quantised_compile_matches_oscsim_quantiser(shipped) -> None:
    # per-tensor max scaling of one tile is exactly oscsim.fake_quantize of K
    ir = compiler.compile(shipped, CompileOptions(bits=6, tile=512, granularity="tensor"))
    K = shipped.params().K.detach()
    scale = K.abs().max() / 31
    assert torch.allclose(ir.to_params().K, fake_quantize(K, scale, 6), atol=1e-7)


def test_coupling_stats_from_codes_match_the_matrix(shipped) -> None:
    ir = compiler.compile(shipped, CompileOptions(bits=7, tile=96, target="sparse-routed", links=30))
    kmax, rows = ir.coupling_abs_stats()
    K = ir.to_params(dtype=torch.float64).K
    assert kmax == pytest.approx(float(K.abs().max()), rel=1e-6)
    assert torch.allclose(rows, K.abs().sum(1), rtol=1e-6)


def test_the_compiler_sees_the_effective_couplings_of_any_stored_K() -> None:
    # μP scale applied and a stored diagonal ignored, as Un0.params() does
    config = models.PUBLISHED["digits-n64"].replace(parameterization="mup")
    model = models.Un0.init(config, seed=3)
    with torch.no_grad():
        model.dynamics.K.diagonal().fill_(5.0)
    ir = compiler.compile(model, CompileOptions(bits=16, tile=64, granularity="tensor"))
    with torch.no_grad():
        want = model.params().K
    got = ir.to_params().K
    assert bool((torch.diagonal(got) == 0).all())
    assert float((got - want).abs().max()) <= float(want.abs().max()) / (2**15 - 1) / 2 * 1.01
