"""Each compiler pass on its own: pruning, partitioning, routing, placement, mapping."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler import CompileError, CompileOptions
from compiler.mapping import physical_mapping
from compiler.partition import partition, tile_sizes
from compiler.prune import kth_largest_abs, prune
from compiler.route import congestion, place, route, wirelength
from hw.calibration import Calibration


def random_K(n: int, seed: int, *, groups: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    K = torch.randn(n, n, generator=g) * 0.1
    if groups:
        label = torch.randperm(n, generator=g) % groups
        K += (label[:, None] == label[None, :]).float() * torch.randn(n, n, generator=g)
    K.fill_diagonal_(0.0)
    return K


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4000), st.integers(0, 10_000))
def test_kth_largest_is_exact(k: int, seed: int) -> None:
    x = torch.randn(50, 60, generator=torch.Generator().manual_seed(seed))
    x[x.abs() < 0.3] = 0.0
    got = kth_largest_abs(lambda: (x[a:a + 7].flatten() for a in range(0, 50, 7)), k)
    nz = x.abs().flatten()
    nz = torch.sort(nz[nz > 0], descending=True).values
    assert got == (float(nz[k - 1]) if k <= nz.numel() else 0.0)


def test_magnitude_topk_and_none() -> None:
    K = random_K(200, 0)
    view, rep = prune(K, CompileOptions(prune="magnitude", keep=0.25))
    assert rep.kept == math.ceil(0.25 * rep.total) and rep.total == 200 * 199
    kept = view.rows(0, 200)
    assert float(kept.abs()[kept != 0].min()) >= float(K.abs()[(kept == 0) & (K != 0)].max())
    assert rep.removed_mass == pytest.approx(1 - float(kept.abs().sum() / K.abs().sum()), rel=1e-5)
    view, rep = prune(K, CompileOptions(prune="topk", topk=7))
    assert bool(((view.rows(0, 200) != 0).sum(1) == 7).all())
    view, rep = prune(K, CompileOptions())
    assert torch.equal(view.rows(0, 200), K) and rep.kept_fraction == 1.0 and rep.removed_mass == 0.0


@settings(max_examples=25, deadline=None)
@given(st.integers(5, 90), st.integers(2, 40), st.sampled_from(["index", "metis", "spectral", "kl"]),
       st.integers(0, 1000))
def test_partition_puts_every_oscillator_in_exactly_one_tile(n: int, tile: int, method: str, seed: int) -> None:
    view, _ = prune(random_K(n, seed, groups=3), CompileOptions())
    part = partition(view, tile, method, seed=seed)
    members = sorted(i for t in part.tiles for i in t)
    assert members == list(range(n))
    assert [len(t) for t in part.tiles] == tile_sizes(n, tile)
    assert 0.0 <= part.intra_fraction <= 1.0 + 1e-9


@pytest.mark.parametrize("method", ["metis", "spectral", "kl"])
def test_partitioners_find_planted_groups(method: str) -> None:
    # 8 groups of 64 strongly coupled oscillators, scattered in index order
    view, _ = prune(random_K(512, 3, groups=8), CompileOptions(prune="topk", topk=24))
    part = partition(view, 64, method, seed=0)
    assert part.index_intra_fraction < 0.2
    assert part.intra_fraction > 0.9


def _routed(n: int, tile: int, links: int, seed: int, target: str = "sparse-routed"):
    K = random_K(n, seed)
    opts = CompileOptions(tile=tile, links=links, target=target)
    view, _ = prune(K, opts)
    part = partition(view, tile, "index")
    return K, part, route(view, part, opts)


@settings(max_examples=25, deadline=None)
@given(st.integers(4, 60), st.integers(2, 16), st.integers(0, 30), st.integers(0, 1000))
def test_sparse_routing_keeps_the_strongest_within_budget(n: int, tile: int, links: int, seed: int) -> None:
    K, part, r = _routed(n, tile, links, seed)
    tile_of = part.tile_of
    L = r.links.numpy()
    assert all(tile_of[i] != tile_of[j] for i, j in L)  # links only between tiles
    pairs: dict = {}
    for i, j in L:
        key = tuple(sorted((tile_of[i], tile_of[j])))
        pairs.setdefault(key, []).append(abs(float(K[i, j])))
    assert all(len(v) <= links for v in pairs.values())
    kept = {(int(i), int(j)) for i, j in L}
    candidates: dict = {}
    for i in range(n):
        for j in range(n):
            if tile_of[i] != tile_of[j] and K[i, j] != 0:
                candidates.setdefault(tuple(sorted((tile_of[i], tile_of[j]))), []).append((i, j))
    for key, cands in candidates.items():
        v = pairs.get(key, [])
        assert len(v) == min(links, len(cands))  # the budget is used whenever there is demand
        dropped = [abs(float(K[i, j])) for i, j in cands if (i, j) not in kept]
        if dropped and v:  # every dropped coupling is weaker than every kept one of its pair
            assert max(dropped) <= min(v) + 1e-7


def test_dense_tiled_counts_crossbars_and_block_pruning() -> None:
    K, part, r = _routed(100, 25, 0, 0, target="dense-tiled")
    assert r.report["crossbars"] == 16 and r.report["couplers_physical"] == 16 * 625
    opts = CompileOptions(tile=25, target="dense-tiled", prune="block", keep=0.5)
    view, _ = prune(K, opts)
    r = route(view, part, opts)
    ranked = {(a, b) for a, b in r.blocks.tolist()}
    # half of the 16 blocks by Frobenius norm, plus the diagonal ones that always exist
    assert 8 <= r.report["crossbars"] <= 12 and all((t, t) in ranked for t in range(4))
    assert 0 < r.report["dropped_couplings_mass"] < 0.6


def test_placement_finds_the_ring_layout() -> None:
    rng = np.random.default_rng(0)
    T = 16
    W = np.zeros((T, T), dtype=np.int64)
    order = rng.permutation(T)
    for k in range(T):
        a, b = order[k], order[(k + 1) % T]
        W[a, b] = W[b, a] = 10
    pos = place(W, method="anneal", seed=0)
    assert len({tuple(p) for p in pos}) == T  # one tile per site
    assert wirelength(W, pos) == 160  # 16 wires of length 1: the optimum on a 4×4 grid
    assert wirelength(W, place(W, method="index", seed=0)) > 160
    c = congestion(W, pos)
    assert c["max_wires_per_channel"] == 10 and c["channels_used"] == 16


def test_mapping_names_the_binding_limit_and_scales_with_K() -> None:
    cal = Calibration.default()
    opts = CompileOptions()
    base = dict(K_max=1.0, row_sum_max=50.0, omega_max=1.0, T=1.0, bits=4, calibration=cal, options=opts)
    m = physical_mapping(**base)
    assert m["binding_limit"] == "weak_coupling"
    assert m["tau_s"] == pytest.approx(50.0 / (0.02 * 2 * math.pi * cal.f0_hz))
    assert physical_mapping(**{**base, "row_sum_max": 100.0})["tau_s"] == pytest.approx(2 * m["tau_s"])
    m = physical_mapping(**{**base, "omega_max": 1e4})
    assert m["binding_limit"] == "tuning_range"
    assert m["used_fraction"]["tuning_range"] == pytest.approx(1.0)
    with pytest.raises(CompileError, match="--tau .* too short.*weak_coupling"):
        physical_mapping(**{**base, "options": CompileOptions(tau_s=1e-12)})
