"""Passes 3–4: which couplings become hardware (crossbars, inter-tile links), where the
tiles sit on the die, and how long and how crowded the wires are.

- 'dense-tiled': every non-empty block K[a, b] (receiving tile a, sending tile b) is an
  S×S crossbar; an off-diagonal crossbar needs the S phases of tile b on a bus to a.
  Block pruning drops the weakest crossbars here (their Frobenius norm ranks them).
- 'sparse-routed': the diagonal blocks are crossbars; between tiles a and b at most
  `links` couplings (both directions together), the strongest by |K|, each on a wire of
  its own; the rest are dropped and reported.

The conditioning oscillators live in one extra tile that broadcasts their N_c phases to
every tile. Placement puts all tiles on a near-square grid minimising Σ wires × Manhattan
distance by simulated annealing over swaps; wires are then routed X-then-Y and every grid
edge's occupancy is the congestion report.

Phase distribution (`CompileOptions.distribution`): `phase_groups` lists who sends how many
phases to which tiles; `distributed_length` prices them point-to-point (a star from the
sender: Σ Manhattan distances, one wire per link coupling when sparse-routed) or as a
broadcast bus (one wire per phase along the rectilinear minimum spanning tree of the sender
and its receivers: within 1.5× of the Steiner minimum, and never longer than the star, which
is one of the spanning trees). Both run on the same placement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from compiler.options import CompileOptions
from compiler.partition import Partition, block_weights
from compiler.prune import PrunedCouplings, prune_blocks


@dataclass(frozen=True)
class Routing:
    """The couplings the hardware keeps, in tile coordinates.

    Attributes:
        blocks: (nb, 2) int64 (receiving tile a, sending tile b) of the crossbars.
        links: (M, 2) int64 (i, j) original oscillator indices of the inter-tile link
            couplings K_ij (sparse-routed only; empty otherwise).
        wires: (T, T) int64 wires between tiles (symmetric, zero diagonal), main tiles only.
        report: counts and dropped coupling mass.
    """

    blocks: Tensor
    links: Tensor
    wires: np.ndarray
    report: dict


def _padded_index(part: Partition, tile: int) -> Tensor:
    """Tile-major column index of length T·S: tile t's members then −1 padding."""
    idx = torch.full((len(part.tiles) * tile,), -1, dtype=torch.int64)
    for t, members in enumerate(part.tiles):
        idx[t * tile : t * tile + len(members)] = torch.tensor(members, dtype=torch.int64)
    return idx


def stripe(view: PrunedCouplings, part: Partition, tile: int, a: int, padded: Tensor) -> Tensor:
    """Pruned K rows of tile a against all tiles: (S, T, S), zero in padding."""
    rows = torch.tensor(part.tiles[a], dtype=torch.int64, device=view.K.device)
    cols = padded.clamp(min=0).to(view.K.device)
    out = view.gather(rows, cols)
    out[:, padded < 0] = 0.0
    if out.shape[0] < tile:
        out = torch.cat((out, out.new_zeros(tile - out.shape[0], out.shape[1])))
    return out.view(tile, len(part.tiles), tile)


def route(view: PrunedCouplings, part: Partition, options: CompileOptions) -> Routing:
    T, S = len(part.tiles), options.tile
    tile_of = part.tile_of
    absW = block_weights(view, tile_of, T)  # Σ|K| per block
    total_mass = float(absW.sum())
    off = ~torch.eye(T, dtype=torch.bool)
    if options.target == "dense-tiled":
        if options.prune == "block":
            kept = prune_blocks(block_weights(view, tile_of, T, power=2).sqrt(), options.keep)
        else:
            kept = absW > 0
        kept |= torch.eye(T, dtype=torch.bool)  # a tile's own crossbar always exists
        blocks = torch.nonzero(kept)
        links = torch.zeros(0, 2, dtype=torch.int64)
        bus = (kept & off).numpy()
        wires = (bus | bus.T).astype(np.int64) * S  # a bus of S phases per direction used
        wires = np.where(bus & bus.T, 2 * S, wires)
        kept_mass = float(absW[kept].sum())
        report = {
            "crossbars": int(kept.sum()),
            "couplers_physical": int(kept.sum()) * S * S,
            "inter_tile_links": 0,
            "dropped_couplings_mass": (total_mass - kept_mass) / total_mass if total_mass else 0.0,
        }
    else:
        blocks = torch.stack((torch.arange(T), torch.arange(T)), dim=1)
        links, wires, dropped = _select_links(view, part, options)
        kept_mass = float(torch.diagonal(absW).sum()) + dropped["kept_mass"]
        report = {
            "crossbars": T,
            "couplers_physical": T * S * S + int(links.shape[0]),
            "inter_tile_links": int(links.shape[0]),
            "dropped_couplings": dropped["dropped"],
            "dropped_couplings_mass": (total_mass - kept_mass) / total_mass if total_mass else 0.0,
        }
    return Routing(blocks=blocks, links=links, wires=wires, report=report)


def _select_links(view: PrunedCouplings, part: Partition, options: CompileOptions):
    """The strongest `links` couplings per unordered tile pair (both directions)."""
    T, S, L = len(part.tiles), options.tile, options.links
    padded = _padded_index(part, S)
    take = min(L, S * S)  # candidates per directed block
    joint = min(L, 2 * take)  # kept per pair, both directions
    cand_val = torch.zeros(T, T, max(take, 1), dtype=view.K.dtype)
    cand_pos = torch.zeros(T, T, max(take, 1), dtype=torch.int64)
    nonzero_off = 0
    for a in range(T):
        st = stripe(view, part, S, a, padded).permute(1, 0, 2).reshape(T, S * S).abs()  # (b, r·S + c)
        st[a] = 0.0
        nonzero_off += int(torch.count_nonzero(st))
        if take:
            v, p = torch.topk(st, take, dim=1)
            cand_val[a, :, :take], cand_pos[a, :, :take] = v.cpu(), p.cpu()
    if take == 0 or T == 1:
        return torch.zeros(0, 2, dtype=torch.int64), np.zeros((T, T), dtype=np.int64), {"dropped": nonzero_off, "kept_mass": 0.0}
    # pair {a, b}: candidates of block (a, b) then of block (b, a)
    v, which = torch.topk(torch.cat((cand_val, cand_val.transpose(0, 1)), dim=2), joint, dim=2)
    upper = torch.triu(torch.ones(T, T, dtype=torch.bool), 1).unsqueeze(2)
    a_idx, b_idx, k_idx = torch.nonzero(upper & (v > 0), as_tuple=True)
    pick = which[a_idx, b_idx, k_idx]
    from_ab = pick < take
    recv = torch.where(from_ab, a_idx, b_idx)
    send = torch.where(from_ab, b_idx, a_idx)
    pos = torch.where(from_ab, cand_pos[a_idx, b_idx, pick.clamp(max=take - 1)],
                      cand_pos[b_idx, a_idx, (pick - take).clamp(min=0)])
    r, c = pos // S, pos % S
    i = padded[recv * S + r]
    j = padded[send * S + c]
    links = torch.stack((i, j), dim=1)
    order = torch.argsort(links[:, 0] * view.n + links[:, 1])
    links = links[order]
    wires = np.zeros((T, T), dtype=np.int64)
    np.add.at(wires, (recv.numpy(), send.numpy()), 1)
    wires = wires + wires.T
    kept_mass = float(view.values(links).abs().sum()) if links.numel() else 0.0
    return links, wires, {"dropped": nonzero_off - int(links.shape[0]), "kept_mass": kept_mass}


# --- phase distribution --------------------------------------------------------------------
@dataclass(frozen=True)
class PhaseGroup:
    """`phases` phases that leave site `sender` for the sites `receivers`; `wires[k]` is how
    many point-to-point wires go to `receivers[k]` (sparse-routed: one per link coupling, so
    several where one phase feeds several cells of one tile)."""

    sender: int
    receivers: tuple[int, ...]
    phases: int
    wires: tuple[int, ...]


def phase_groups(routing: Routing, part: Partition, options: CompileOptions, n_cond: int) -> list[PhaseGroup]:
    """Every inter-site phase flow of a routed array (sites: the main tiles, then the
    conditioning tile, index T). dense-tiled: tile b's S phases to each tile whose crossbar
    (a, b) is kept; sparse-routed: each linked oscillator j's phase to the tiles of its
    receivers; conditioning: N_c phases to every main tile."""
    T, S = len(part.tiles), options.tile
    groups: list[PhaseGroup] = []
    if options.target == "dense-tiled":
        kept = np.zeros((T, T), dtype=bool)  # kept[a, b]: crossbar (a ← b) exists
        blocks = routing.blocks.numpy()
        kept[blocks[:, 0], blocks[:, 1]] = True
        np.fill_diagonal(kept, False)
        for b in np.flatnonzero(kept.any(0)):
            recv = tuple(int(a) for a in np.flatnonzero(kept[:, b]))
            groups.append(PhaseGroup(sender=int(b), receivers=recv, phases=S, wires=(S,) * len(recv)))
    elif routing.links.numel():
        tile_of = np.asarray(part.tile_of)
        i, j = routing.links[:, 0].numpy(), routing.links[:, 1].numpy()
        # (sender oscillator, receiving tile) pairs with their link counts, sorted by sender
        pairs, counts = np.unique(np.stack((j, tile_of[i]), 1), axis=0, return_counts=True)
        starts = np.flatnonzero(np.r_[True, pairs[1:, 0] != pairs[:-1, 0]])
        for lo, hi in zip(starts, np.r_[starts[1:], len(pairs)]):
            groups.append(PhaseGroup(sender=int(tile_of[pairs[lo, 0]]), receivers=tuple(pairs[lo:hi, 1].tolist()),
                                     phases=1, wires=tuple(counts[lo:hi].tolist())))
    if n_cond and T:
        groups.append(PhaseGroup(sender=T, receivers=tuple(range(T)), phases=n_cond, wires=(n_cond,) * T))
    return groups


def _mst_length(points: np.ndarray) -> float:
    """Length (grid pitches) of the rectilinear minimum spanning tree of distinct points."""
    from scipy.sparse.csgraph import minimum_spanning_tree

    if len(points) < 2:
        return 0.0
    d = np.abs(points[:, None, :] - points[None, :, :]).sum(-1).astype(np.float64)
    return float(minimum_spanning_tree(d).sum())


def shared_routes(groups: list[PhaseGroup]) -> dict[tuple[int, ...], int]:
    """Phases per route: the sites a phase visits (sender and receivers, sorted) → how many
    phases take that route (what a time-multiplexed link can share one wire among)."""
    routes: dict[tuple[int, ...], int] = {}
    for g in groups:
        key = tuple(sorted({g.sender, *g.receivers}))
        routes[key] = routes.get(key, 0) + g.phases
    return routes


def distributed_length(groups: list[PhaseGroup], pos: np.ndarray, distribution: str, *,
                       phases_per_wire: int = 1) -> float:
    """Wire length in grid pitches of the phase flows `groups` at placement `pos`:
    point-to-point stars, or per route its spanning tree × the wires on it — one per phase
    ('broadcast-bus', 'low-swing'), or ⌈phases / `phases_per_wire`⌉ ('time-multiplexed')."""
    if distribution == "time-multiplexed":
        return sum(_mst_length(pos[list(key)]) * math.ceil(p / phases_per_wire)
                   for key, p in shared_routes(groups).items())
    if distribution == "low-swing":
        distribution = "broadcast-bus"
    if distribution == "point-to-point":
        total = 0.0
        for g in groups:
            d = np.abs(pos[list(g.receivers)] - pos[g.sender]).sum(-1)
            total += float(d @ np.asarray(g.wires, dtype=np.float64))
        return total
    if distribution == "broadcast-bus":
        cache: dict[tuple[int, ...], float] = {}
        total = 0.0
        for g in groups:
            key = tuple(sorted({g.sender, *g.receivers}))
            if key not in cache:
                cache[key] = _mst_length(pos[list(key)])
            total += cache[key] * g.phases
        return total
    raise ValueError(f"distribution must be one of point-to-point, broadcast-bus, time-multiplexed, low-swing, "
                     f"not {distribution!r}")


def link_hardware(groups: list[PhaseGroup], options: CompileOptions) -> dict[str, int]:
    """Per distribution, the phase drivers (a wire's driver, or a serialiser per shared wire)
    and the receivers (one per received phase and receiving site; point-to-point: per wire)."""
    received = sum(g.phases * len(g.receivers) for g in groups)
    shared = sum(math.ceil(p / options.tdm_phases_per_wire) for p in shared_routes(groups).values())
    phases = sum(g.phases for g in groups)
    p2p = sum(sum(g.wires) for g in groups)
    return {"drivers": {"point-to-point": p2p, "broadcast-bus": phases, "time-multiplexed": shared,
                        "low-swing": phases},
            "receivers": {"point-to-point": p2p, "broadcast-bus": received, "time-multiplexed": received,
                          "low-swing": received},
            "phases_sent": phases}


def link_timing(options: CompileOptions) -> dict[str, float] | None:
    """What a linked distribution's receivers hear, in physical units (None for the wires
    that carry the waveform itself, whose flight time of picoseconds is left out):

    - time-multiplexed: each phase is a `tdm_word_bits` word once per frame of
      M words at the bit rate, frame = M·b / R; the receiver holds the last word, so the
      phase it hears is on average 1.5 frames old (a frame to arrive, half a frame held) —
      the delay — and off by the word's quantisation, 2π/2^b/√12 rad rms;
    - low-swing: the waveform, each edge moved by the receiver's `link_jitter_ps` rms.
    """
    if options.distribution == "time-multiplexed":
        frame = options.tdm_phases_per_wire * options.tdm_word_bits / (options.link_bit_rate_gbps * 1e9)
        return {"frame_s": frame, "delay_s": 1.5 * frame,
                "word_error_rad": 2 * math.pi / 2**options.tdm_word_bits / math.sqrt(12), "edge_jitter_s": 0.0}
    if options.distribution == "low-swing":
        return {"frame_s": 0.0, "delay_s": 0.0, "word_error_rad": 0.0, "edge_jitter_s": options.link_jitter_ps * 1e-12}
    return None


def link_dynamics(timing: dict[str, float], *, tau_s: float, f0_hz: float, h: float) -> tuple[float, float]:
    """(delay in model time, σ of the received phase per Euler step of size h, rad) of a
    `link_timing`: the delay over τ; a word's quantisation error as it is (held for the
    frames of a step, not averaged), an edge's jitter 2π f0 σ_t averaged over the
    f0 · h · τ cycles a coupler integrates in a step."""
    cycles = max(f0_hz * h * tau_s, 1.0)
    edge = 2 * math.pi * f0_hz * timing["edge_jitter_s"] / math.sqrt(cycles)
    return timing["delay_s"] / tau_s, math.hypot(timing["word_error_rad"], edge)


# --- placement ---------------------------------------------------------------------------
def grid_shape(sites: int) -> tuple[int, int]:
    cols = math.ceil(math.sqrt(sites))
    return math.ceil(sites / cols), cols


def place(wires: np.ndarray, *, method: str, seed: int, iterations: int | None = None) -> np.ndarray:
    """Grid positions (sites, 2) as (row, col) for a traffic matrix `wires` (sites, sites)
    minimising Σ_{a<b} wires[a, b]·|pos a − pos b|₁, by simulated annealing over pair
    swaps (including moves into empty sites) from the index layout."""
    sites = wires.shape[0]
    rows, cols = grid_shape(sites)
    slots = np.array([(r, c) for r in range(rows) for c in range(cols)])  # all grid sites
    where = np.arange(sites)  # tile → slot
    if method == "index" or sites <= 2:
        return slots[where]
    W = wires.astype(np.float64)
    rng = np.random.default_rng(seed)
    occupant = np.full(len(slots), -1)
    occupant[where] = np.arange(sites)

    def tile_cost(t: int, slot: int, pos: np.ndarray) -> float:
        return float(W[t] @ np.abs(pos - slots[slot]).sum(1))

    pos = slots[where].astype(np.float64)
    cost = wirelength(W, pos)
    iterations = iterations or min(200_000, 400 * sites * max(1, int(math.log2(sites))))
    temp = max(W.max(), 1.0) * 2.0
    cooling = (1e-3) ** (1.0 / iterations)
    best, best_where = cost, where.copy()
    for _ in range(iterations):
        t = int(rng.integers(sites))
        s_new = int(rng.integers(len(slots)))
        s_old = int(where[t])
        if s_new == s_old:
            continue
        u = int(occupant[s_new])
        # the t–u wire keeps its length in a swap, so it cancels in after − before
        before = tile_cost(t, s_old, pos) + (tile_cost(u, s_new, pos) if u >= 0 else 0.0)
        pos_t, pos[t] = pos[t].copy(), slots[s_new]
        if u >= 0:
            pos[u] = slots[s_old]
        after = tile_cost(t, s_new, pos) + (tile_cost(u, s_old, pos) if u >= 0 else 0.0)
        delta = after - before
        if delta <= 0 or rng.random() < math.exp(-delta / temp):
            where[t], occupant[s_new], occupant[s_old] = s_new, t, u
            if u >= 0:
                where[u] = s_old
            cost += delta
            if cost < best - 1e-9:
                best, best_where = cost, where.copy()
        else:
            pos[t] = pos_t
            if u >= 0:
                pos[u] = slots[s_new]
        temp *= cooling
    return slots[best_where]


def wirelength(wires: np.ndarray, pos: np.ndarray) -> float:
    """Σ_{a<b} wires[a, b] · Manhattan distance (in grid pitches)."""
    d = np.abs(pos[:, None, :] - pos[None, :, :]).sum(-1)
    return float(np.triu(wires * d, 1).sum())


def congestion(wires: np.ndarray, pos: np.ndarray) -> dict:
    """Route every tile pair's wires X then Y on the grid; occupancy of each grid edge."""
    rows, cols = int(pos[:, 0].max()) + 1, int(pos[:, 1].max()) + 1
    h = np.zeros((rows, max(cols - 1, 1)), dtype=np.int64)  # edge (r, c)–(r, c+1)
    v = np.zeros((max(rows - 1, 1), cols), dtype=np.int64)  # edge (r, c)–(r+1, c)
    a_idx, b_idx = np.nonzero(np.triu(wires, 1))
    for a, b in zip(a_idx.tolist(), b_idx.tolist()):  # tile pairs, not oscillators
        w = wires[a, b]
        (r0, c0), (r1, c1) = pos[a], pos[b]
        lo, hi = sorted((c0, c1))
        h[r0, lo:hi] += w
        lo, hi = sorted((r0, r1))
        v[lo:hi, c1] += w
    edges = np.concatenate((h.ravel(), v.ravel()))
    used = edges[edges > 0]
    return {"max_wires_per_channel": int(edges.max()) if edges.size else 0,
            "mean_wires_per_used_channel": float(used.mean()) if used.size else 0.0,
            "channels_used": int(used.size), "channels": int(edges.size)}
