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


# --- linked distributions: time-multiplexed and low-swing --------------------------------------
def test_time_multiplexing_shares_each_routes_wires_by_hand():
    from compiler.route import link_hardware

    pos = _grid(1, 4)
    # two groups on the same route (0 → 1, 3) and one on another (2 → 3)
    groups = [PhaseGroup(0, (1, 3), 5, (5, 5)), PhaseGroup(0, (3, 1), 6, (6, 6)), PhaseGroup(2, (3,), 3, (3,))]
    # the route {0, 1, 3} spans 3 pitches and carries 11 phases: ⌈11 / 4⌉ = 3 wires; {2, 3}: 1 pitch, 1 wire
    assert distributed_length(groups, pos, "time-multiplexed", phases_per_wire=4) == 3 * 3 + 1 * 1
    assert distributed_length(groups, pos, "time-multiplexed", phases_per_wire=1) == \
        distributed_length(groups, pos, "broadcast-bus")
    assert distributed_length(groups, pos, "low-swing") == distributed_length(groups, pos, "broadcast-bus")
    hw = link_hardware(groups, CompileOptions(tdm_phases_per_wire=4))
    assert hw["drivers"]["time-multiplexed"] == 3 + 1 and hw["phases_sent"] == 14
    assert hw["receivers"]["time-multiplexed"] == 5 * 2 + 6 * 2 + 3 * 1 == hw["receivers"]["low-swing"]


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 64), st.integers(1, 12), st.floats(0.1, 20.0))
def test_link_timing_is_its_definition(m, bits, rate):
    import math

    from compiler.route import link_dynamics, link_timing

    t = link_timing(CompileOptions(distribution="time-multiplexed", tdm_phases_per_wire=m, tdm_word_bits=bits,
                                   link_bit_rate_gbps=rate))
    assert t["frame_s"] == pytest.approx(m * bits / (rate * 1e9))
    assert t["delay_s"] == pytest.approx(1.5 * t["frame_s"])
    assert t["word_error_rad"] == pytest.approx(2 * math.pi / 2**bits / math.sqrt(12))
    delay, sigma = link_dynamics(t, tau_s=1e-6, f0_hz=1e8, h=0.1)
    assert delay == pytest.approx(t["delay_s"] / 1e-6) and sigma == pytest.approx(t["word_error_rad"])
    ls = link_timing(CompileOptions(distribution="low-swing", link_jitter_ps=3.0))
    # edge jitter 2π f0 σ_t per cycle, averaged over the f0 h τ = 10 cycles of a step
    assert link_dynamics(ls, tau_s=1e-6, f0_hz=1e8, h=0.1)[1] == pytest.approx(2 * math.pi * 1e8 * 3e-12 / math.sqrt(10))
    assert link_timing(CompileOptions(distribution="broadcast-bus")) is None


def test_a_linked_array_runs_its_links_between_tiles_only(model):
    ir = compiler.compile(model, CompileOptions(tile=32, distribution="time-multiplexed", tdm_phases_per_wire=16),
                          source="test")
    place = ir.doc["passes"]["placement"]
    assert ir.routing.wire_length_mm == place["wire_length_by_distribution_mm"]["time-multiplexed"] \
        < place["wire_length_by_distribution_mm"]["broadcast-bus"]
    chip = ir.to_model()
    links = chip.dynamics.links
    assert links is not None and links.drive
    tile_of = {i: t for t, members in enumerate(ir.tiles) for i in members}
    i, j = 3, ir.tiles[1][0]
    assert tile_of[i] != tile_of[j] and bool(links.mask[i, j]) and not bool(links.mask[i, ir.tiles[0][5]])
    assert links.delay == pytest.approx(place["links"]["delay_s"] / ir.tau_s)
    # the delayed dynamics differ from the same array without its links, and are reproducible
    import torch

    labels = torch.arange(8) % model.config.num_classes
    theta0 = model.sample_theta0(8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        heard = chip.final_phases(labels, theta0)
        again = chip.final_phases(labels, theta0)
        chip.dynamics.links = None
        direct = chip.final_phases(labels, theta0)
    assert torch.equal(heard, again) and not torch.allclose(heard, direct)
    for dist in ("point-to-point", "broadcast-bus"):
        assert compiler.compile(model, CompileOptions(tile=32, distribution=dist), source="test").links() is None


@pytest.mark.parametrize("field, value, message", [
    ("tdm_phases_per_wire", 0, "--tdm-phases-per-wire must be an integer in 1..4096"),
    ("tdm_word_bits", 17, "--tdm-word-bits must be an integer in 1..16"),
    ("link_bit_rate_gbps", 0.0, "--link-bit-rate-gbps must be a positive number"),
    ("low_swing_v", -0.1, "--low-swing-v must be a positive number"),
    ("link_jitter_ps", float("nan"), "--link-jitter-ps must be a number >= 0"),
])
def test_link_options_are_checked(field, value, message):
    with pytest.raises(CompileError, match=message):
        CompileOptions(**{field: value})
