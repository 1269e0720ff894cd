"""Phase distribution between tiles: point-to-point stars against broadcast buses on the same
placement (the bus never longer), the formulas by hand, the compiled IR's figures."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import compiler
import models
from compiler.options import DISTRIBUTIONS, CompileError, CompileOptions
from compiler.route import PhaseGroup, distributed_length


def _grid(rows: int, cols: int) -> np.ndarray:
    return np.array([(r, c) for r in range(rows) for c in range(cols)])


def test_the_formulas_by_hand():
    pos = _grid(3, 3)  # sites 0..8, site k at (k // 3, k % 3)
    # a phase from the corner to the far corner and its two neighbours of that corner
    g = PhaseGroup(sender=0, receivers=(5, 7, 8), phases=2, wires=(2, 2, 2))
    # stars: |0→5| = 3, |0→7| = 3, |0→8| = 4; two wires each
    assert distributed_length([g], pos, "point-to-point") == 2 * (3 + 3 + 4)
    # the bus: 5 and 7 hang off 8 by one pitch each, and 0 joins the nearest of them (3):
    # MST 1 + 1 + 3 = 5, against the star's 10
    assert distributed_length([g], pos, "broadcast-bus") == 2 * 5
    # a row of k adjacent tiles is k − 1 pitches of bus, however many receivers
    row = _grid(1, 6)
    assert distributed_length([PhaseGroup(0, (1, 2, 3, 4, 5), 1, (1,) * 5)], row, "broadcast-bus") == 5
    with pytest.raises(ValueError, match="distribution must be"):
        distributed_length([g], pos, "smoke-signals")


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 7), st.integers(1, 7), st.data())
def test_a_bus_never_uses_more_wire_than_point_to_point(rows, cols, data):
    """For any placement and any phase flows: the star from the sender is one spanning tree
    of {sender} ∪ receivers, so the minimum spanning tree is never longer; each point-to-point
    wire count is at least the bus's one wire per phase."""
    sites = rows * cols
    pos = _grid(rows, cols)[data.draw(st.permutations(range(sites)))]
    groups = []
    for _ in range(data.draw(st.integers(1, 6))):
        sender = data.draw(st.integers(0, sites - 1))
        others = [s for s in range(sites) if s != sender]
        if not others:
            continue
        recv = tuple(sorted(data.draw(st.sets(st.sampled_from(others), min_size=1, max_size=len(others)))))
        phases = data.draw(st.integers(1, 4))
        wires = tuple(phases * data.draw(st.integers(1, 3)) for _ in recv)
        groups.append(PhaseGroup(sender, recv, phases, wires))
    bus, p2p = (distributed_length(groups, pos, d) for d in ("broadcast-bus", "point-to-point"))
    assert 0 <= bus <= p2p + 1e-9


@pytest.fixture(scope="module")
def model():
    import dataclasses

    cfg = dataclasses.replace(models.PUBLISHED["digits-n64"], n=256, name="digits-n256")
    return models.Un0.init(cfg, seed=0)


@pytest.mark.parametrize("target", ["dense-tiled", "sparse-routed"])
def test_compiled_point_to_point_equals_the_placers_wirelength_and_the_bus_is_shorter(model, target):
    opts = CompileOptions(tile=32, target=target, links=16, distribution="broadcast-bus")
    ir = compiler.compile(model, opts, source="test")
    place = ir.doc["passes"]["placement"]
    by = place["wire_length_by_distribution_mm"]
    assert set(by) == set(DISTRIBUTIONS)
    assert ir.routing.wire_length_mm == place["wire_length_mm"] == by["broadcast-bus"]
    assert 0 < by["broadcast-bus"] < by["point-to-point"]
    # point-to-point is what the placement minimised: Σ wires × Manhattan over the traffic
    # matrix, which the IR's link list holds tile pair by tile pair
    placer = sum(link["wires"] * link["length_mm"] for link in ir.doc["links"])
    assert by["point-to-point"] == pytest.approx(placer, rel=1e-12)
    p2p = compiler.compile(model, CompileOptions(tile=32, target=target, links=16), source="test")
    assert p2p.routing.wire_length_mm == pytest.approx(by["point-to-point"])
    assert place["phase_drivers"]["broadcast-bus"] <= place["phase_drivers"]["point-to-point"]
    # the placement is the same either way: the bus is priced on the star's placement
    assert [t["position"] for t in p2p.doc["tiles"]] == [t["position"] for t in ir.doc["tiles"]]


def test_dense_bus_length_is_the_phases_times_the_tree_over_their_tiles(model):
    """Dense-tiled with every block kept: each tile's S phases span all main tiles, and the
    conditioning phases span every site, so the bus is S·T·tree(main tiles) + N_c·tree(all):
    linear in the phases for a given tile span. Doubling S at the same tile count doubles it."""
    from compiler.route import _mst_length

    lengths = []
    for tile, n in ((32, 256), (64, 512)):
        import dataclasses

        cfg = dataclasses.replace(models.PUBLISHED["digits-n64"], n=n, name=f"digits-n{n}")
        m = model if n == 256 else models.Un0.init(cfg, seed=0)
        ir = compiler.compile(m, CompileOptions(tile=tile, distribution="broadcast-bus", place="index"),
                              source="test")
        T, pitch = ir.doc["resources"]["tiles"], ir.doc["passes"]["placement"]["tile_pitch_mm"]
        assert T == 8
        pos = np.array([t["position"] for t in ir.doc["tiles"]] + [ir.doc["conditioning_tile"]["position"]])
        expect = T * tile * _mst_length(pos[:T]) + ir.n_cond * _mst_length(pos)
        assert ir.routing.wire_length_mm / pitch == pytest.approx(expect)
        lengths.append((ir.routing.wire_length_mm / pitch - ir.n_cond * _mst_length(pos)) / tile)
    assert lengths[0] == pytest.approx(lengths[1])  # per phase of a tile: the same tree


def test_an_unknown_distribution_is_refused():
    with pytest.raises(CompileError, match="--distribution must be one of point-to-point, broadcast-bus"):
        CompileOptions(distribution="bus")
