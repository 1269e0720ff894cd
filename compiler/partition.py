"""Pass 2: assign the N oscillators to tiles of S cells, keeping the coupling weight
inside tiles as large as possible.

The graph has weight |K_ij| + |K_ji| between i and j (after pruning). Small arrays use
it whole; large ones a sparsified copy (each oscillator's strongest `degree` neighbours,
symmetrised) — the coarsening that keeps METIS and spectral bisection practical at
N = 16384. Partitioners: METIS (pymetis) with an exact-size rebalance, recursive spectral
bisection (Fiedler vector, split at the size boundary), networkx Kernighan–Lin (recursive
bisection; small N), and the naive index order every report compares against.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from compiler.options import CompileError
from compiler.prune import PrunedCouplings, row_chunks

DENSE_GRAPH_MAX_N = 2048
KL_MAX_N = 2048


@dataclass(frozen=True)
class Partition:
    """Tiles as lists of oscillator indices (ascending inside a tile).

    Attributes:
        tiles: tile t holds oscillators ``tiles[t]``; all but the last hold S.
        method: the partitioner that ran.
        intra_fraction: Σ|K| inside tiles / Σ|K| for this partition.
        index_intra_fraction: the same for the naive index-order partition.
    """

    tiles: tuple[tuple[int, ...], ...]
    method: str
    intra_fraction: float
    index_intra_fraction: float

    @property
    def tile_of(self) -> np.ndarray:
        out = np.empty(sum(len(t) for t in self.tiles), dtype=np.int64)
        for t, members in enumerate(self.tiles):
            out[list(members)] = t
        return out

    def to_dict(self) -> dict:
        return {"method": self.method, "tiles": len(self.tiles),
                "intra_tile_weight_fraction": self.intra_fraction,
                "index_order_intra_tile_weight_fraction": self.index_intra_fraction}


def tile_sizes(n: int, size: int) -> list[int]:
    count = math.ceil(n / size)
    return [size] * (count - 1) + [n - size * (count - 1)]


def block_weights(view: PrunedCouplings, tile_of: np.ndarray, tiles: int, *, power: int = 1) -> Tensor:
    """W[a, b] = Σ_{i∈a, j∈b} |K_ij|^power of the pruned K, by one-hot GEMMs over stripes."""
    n = view.n
    t = torch.as_tensor(tile_of, device=view.K.device)
    onehot = torch.zeros(n, tiles, dtype=torch.float32, device=view.K.device)
    onehot[torch.arange(n), t] = 1.0
    W = torch.zeros(tiles, tiles, dtype=torch.float64, device=view.K.device)
    for a, b in row_chunks(n, n):  # float32 GEMMs over a stripe, accumulated in float64
        rows = view.rows(a, b).abs_()
        if power != 1:
            rows.pow_(power)
        W += (onehot[a:b].T @ (rows @ onehot)).double()
    return W


def _intra(view: PrunedCouplings, tile_of: np.ndarray, tiles: int) -> float:
    W = block_weights(view, tile_of, tiles)
    total = float(W.sum())
    return float(torch.diagonal(W).sum()) / total if total else 1.0


def graph(view: PrunedCouplings, degree: int = 32) -> sp.csr_matrix:
    """Symmetric weight matrix |K| + |K|ᵀ (float64 CSR, zero diagonal); above
    `DENSE_GRAPH_MAX_N` oscillators, each row's `degree` strongest entries, symmetrised."""
    n = view.n
    if n <= DENSE_GRAPH_MAX_N:
        A = view.rows(0, n).abs().double()
        A = (A + A.T).cpu().numpy()
        np.fill_diagonal(A, 0.0)
        return sp.csr_matrix(A)
    return sparse_graph(view, min(degree, n - 1))


def sparse_graph(view: PrunedCouplings, degree: int) -> sp.csr_matrix:
    """The coarsened graph: each oscillator's `degree` strongest neighbours in |K| + |K|ᵀ
    (float32 sums, as K is held, then float64), symmetrised by the larger direction — an
    edge wherever either end chose the other. Memory: two (N, degree) arrays and one
    stripe of K's rows and columns at a time, never an N×N temporary."""
    cols, vals = sparse_neighbours(view, degree)
    return _symmetrised(cols, vals)


def sparse_neighbours(view: PrunedCouplings, degree: int) -> tuple[np.ndarray, np.ndarray]:
    """Each oscillator's `degree` strongest neighbours in |K| + |K|ᵀ (diagonal excluded):
    (N, degree) int64 columns and float64 weights, in `torch.topk`'s order, built stripe
    by stripe (a row stripe and the matching column stripe of the pruned K).

    Memory: the outputs are allocated once, before the stripes, and each stripe's
    temporaries are made in place. Appending a few small arrays per stripe between the
    stripes' 16 MB buffers fragmented glibc's heap (its mmap threshold grows to the size
    of a freed buffer, so the buffers came from the heap, pinned there by the small
    arrays): 1.3–1.6 GB of resident memory at N = 16384 that was never handed back."""
    n = view.n
    cols = np.empty((n, degree), dtype=np.int64)
    vals = np.empty((n, degree), dtype=np.float64)
    for a, b in row_chunks(n, n):
        block = view.rows(a, b).abs_()
        block += view.columns(a, b).T.abs_()
        block[torch.arange(b - a), torch.arange(a, b)] = 0.0
        v, j = torch.topk(block, degree, dim=1)
        del block
        cols[a:b] = j.cpu().numpy()
        vals[a:b] = v.cpu().numpy()  # float32 → float64, exact
        del v, j
    return cols, vals


def _symmetrised(cols: np.ndarray, vals: np.ndarray) -> sp.csr_matrix:
    """The CSR graph of the edges (i, cols[i, k]) with weights vals[i, k], symmetrised by
    the larger of the two directions, explicit zeros dropped."""
    n, degree = cols.shape
    rows = np.repeat(np.arange(n), degree)
    A = sp.csr_matrix((vals.reshape(-1), (rows, cols.reshape(-1))), shape=(n, n))
    del rows
    A = A.maximum(A.T)
    A.eliminate_zeros()
    return A.tocsr()


def _fiedler_order(A: sp.csr_matrix, seed: int) -> np.ndarray:
    """Nodes ordered by the Fiedler vector of A's Laplacian (connected or not)."""
    n = A.shape[0]
    if n <= 2:
        return np.arange(n)
    L = sp.csgraph.laplacian(A, normed=True)
    if n <= 1500:
        vals, vecs = np.linalg.eigh(L.toarray())
        vec = _split_direction(vals, vecs, seed)
    else:
        from scipy.sparse.linalg import eigsh

        rng = np.random.default_rng(seed)
        # smallest eigenpairs of L are the largest of 2I − L (normed Laplacian: spectrum in [0, 2])
        M = sp.identity(n, format="csr") * 2.0 - L
        _, vecs = eigsh(M, k=2, which="LA", v0=rng.standard_normal(n), tol=1e-4, maxiter=5000)
        vec = vecs[:, 0]  # eigsh returns ascending: [0] is the second largest of M
    return np.argsort(vec, kind="stable")


def _split_direction(vals: np.ndarray, vecs: np.ndarray, seed: int) -> np.ndarray:
    """A score to order nodes by for a bisection. The Fiedler vector, unless its eigenvalue
    is (nearly) degenerate — k equal clusters give k − 1 near-equal small eigenvalues, and
    then the solver's second eigenvector is an arbitrary, BLAS-dependent mix of the cluster
    indicators. Then the eigenvectors of that group (m of them) embed the nodes, k-means
    with m + 1 centres (Lloyd's iterations from a seeded farthest-point start) finds the
    clusters, and the score orders nodes cluster by cluster, so a cut at a tile boundary
    falls between whole clusters where their sizes allow."""
    low = vals[1]
    group = int(np.sum(vals[1:] <= low + max(0.5 * low, 1e-9)))  # eigenvalues within 50 % of λ₁
    if group <= 1:
        return vecs[:, 1]
    X = vecs[:, 1:1 + min(group, 16)]
    k = X.shape[1] + 1
    rng = np.random.default_rng(seed)
    centres = [X[rng.integers(len(X))]]
    for _ in range(k - 1):
        d = np.min([((X - c) ** 2).sum(1) for c in centres], axis=0)
        centres.append(X[np.argmax(d)])
    C = np.array(centres)
    for _ in range(100):
        label = np.argmin(((X[:, None, :] - C[None]) ** 2).sum(2), axis=1)
        new = np.array([X[label == j].mean(0) if np.any(label == j) else C[j] for j in range(k)])
        if np.allclose(new, C):
            break
        C = new
    # clusters in the order of their centres along the Fiedler direction (a 1-D layout)
    rank = np.empty(k)
    rank[np.argsort(C[:, 0], kind="stable")] = np.arange(k)
    return rank[label] + 1e-3 * np.tanh(X[:, 0])


def _spectral(A: sp.csr_matrix, sizes: list[int], seed: int) -> list[np.ndarray]:
    """Recursive bisection: split the nodes at the boundary between the first half of
    the tile sizes and the rest, along the Fiedler vector of the induced subgraph."""
    def split(nodes: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
        if len(sizes) == 1:
            return [np.sort(nodes)]
        half = len(sizes) // 2
        left = sum(sizes[:half])
        order = _fiedler_order(A[nodes][:, nodes], seed)
        return split(nodes[order[:left]], sizes[:half]) + split(nodes[order[left:]], sizes[half:])

    return split(np.arange(A.shape[0]), sizes)


def _kl(A: sp.csr_matrix, sizes: list[int], seed: int) -> list[np.ndarray]:
    import networkx as nx
    from networkx.algorithms.community import kernighan_lin_bisection

    G = nx.from_scipy_sparse_array(A)

    def split(nodes: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
        if len(sizes) == 1:
            return [np.sort(nodes)]
        half = len(sizes) // 2
        left = sum(sizes[:half])
        sub = G.subgraph(nodes.tolist())
        # KL keeps the sizes of its starting halves: start from the spectral split
        order = nodes[_fiedler_order(A[nodes][:, nodes], seed)]
        start = (set(order[:left].tolist()), set(order[left:].tolist()))
        a, b = kernighan_lin_bisection(sub, partition=start, weight="weight", seed=seed)
        a, b = np.array(sorted(a)), np.array(sorted(b))
        if len(a) != left:  # KL swaps pairs, so this holds; guard against library changes
            a, b = order[:left], order[left:]
        return split(a, sizes[:half]) + split(b, sizes[half:])

    return split(np.arange(A.shape[0]), sizes)


def _metis(A: sp.csr_matrix, sizes: list[int], seed: int) -> list[np.ndarray]:
    import pymetis

    n = A.shape[0]
    if len(sizes) == 1:
        return [np.arange(n)]
    A = A.tocsr()
    xadj, adjncy, weights = metis_input(A)
    opts = pymetis.Options(seed=seed)
    tpwgts = [s / n for s in sizes]
    adjacency = pymetis.CSRAdjacency(adj_starts=xadj, adjacent=adjncy)
    _, parts = pymetis.part_graph(len(sizes), adjacency, eweights=weights, tpwgts=tpwgts, options=opts)
    return _rebalance(A, np.asarray(parts), sizes)


def metis_input(A: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """METIS's graph (xadj, adjncy, integer edge weights) of a CSR weight matrix: the
    weights scaled so that the largest is 1000, rounded, at least 1 (METIS takes
    integers; a zero weight would drop the edge)."""
    A = A.tocsr()
    scale = 1000.0 / A.data.max() if A.nnz else 1.0
    weights = np.maximum(1, np.rint(A.data * scale)).astype(np.int64)
    return A.indptr, A.indices, weights


def _rebalance(A: sp.csr_matrix, parts: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    """Make part t hold exactly sizes[t] nodes: overfull parts give away the nodes that
    lose least affinity (Σ weight to their part) to the underfull part they like best."""
    T = len(sizes)
    parts = parts.copy()
    onehot = sp.csr_matrix((np.ones(len(parts)), (np.arange(len(parts)), parts)), shape=(len(parts), T))
    affinity = np.asarray((A @ onehot).todense())  # (N, T)
    target = np.asarray(sizes)
    for _ in range(2 * T):
        counts = np.bincount(parts, minlength=T)
        over = np.nonzero(counts > target)[0]
        if over.size == 0:
            break
        under = counts < target
        for p in over:
            members = np.nonzero(parts == p)[0]
            room = np.where(under, target - np.bincount(parts, minlength=T), 0)
            if room.sum() == 0:
                break
            dest_score = np.where(under[None, :], affinity[members], -np.inf)
            best_dest = dest_score.argmax(1)
            loss = affinity[members, p] - dest_score[np.arange(len(members)), best_dest]
            excess = counts[p] - target[p]
            for i in np.argsort(loss, kind="stable"):
                if excess == 0:
                    break
                d = best_dest[i]
                if room[d] > 0:
                    parts[members[i]] = d
                    room[d] -= 1
                    excess -= 1
            under = np.bincount(parts, minlength=T) < target
    return [np.nonzero(parts == t)[0] for t in range(T)]


def partition(view: PrunedCouplings, tile: int, method: str, *, seed: int = 0, useful: bool = True) -> Partition:
    """Tiles of `tile` oscillators by `method` ('auto', 'index', 'metis', 'spectral', 'kl').

    `useful=False` (the target gains nothing from grouping, e.g. dense tiles over an
    unpruned K, where every block is a crossbar anyway) makes 'auto' choose index order.
    """
    n = view.n
    sizes = tile_sizes(n, tile)
    index_tiles = [np.arange(sum(sizes[:t]), sum(sizes[: t + 1])) for t in range(len(sizes))]
    chosen = method
    if method == "auto":
        if not useful or len(sizes) == 1:
            chosen = "index"
        else:
            try:
                import pymetis  # noqa: F401

                chosen = "metis"
            except ImportError:
                chosen = "spectral"
    if chosen == "kl" and n > KL_MAX_N:
        raise CompileError(f"--partition kl is for N <= {KL_MAX_N} (pure-Python Kernighan–Lin); "
                           f"N = {n}: use metis or spectral")
    if chosen == "index" or len(sizes) == 1:
        groups = index_tiles
    else:
        A = graph(view)
        if chosen == "metis":
            try:
                groups = _metis(A, sizes, seed)
            except ImportError:
                raise CompileError("--partition metis needs pymetis (pip install pymetis); "
                                   "or use --partition spectral") from None
        elif chosen == "spectral":
            groups = _spectral(A, sizes, seed)
        else:
            groups = _kl(A, sizes, seed)
    tiles = tuple(tuple(int(i) for i in np.sort(g)) for g in groups)
    tile_of = np.empty(n, dtype=np.int64)
    for t, g in enumerate(tiles):
        tile_of[list(g)] = t
    index_of = np.repeat(np.arange(len(sizes)), sizes)
    index_intra = _intra(view, index_of, len(sizes))
    intra = index_intra if chosen == "index" else _intra(view, tile_of, len(sizes))
    return Partition(tiles=tiles, method=chosen, intra_fraction=intra, index_intra_fraction=index_intra)
