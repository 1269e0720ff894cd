"""The partitioner's coarsened graph, built stripe by stripe without an N×N temporary,
against a plain dense construction: the same METIS input, array for array."""

from __future__ import annotations

from unittest import mock

import numpy as np
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import compiler.prune
from compiler import CompileOptions
from compiler.partition import DENSE_GRAPH_MAX_N, graph, metis_input, sparse_graph
from compiler.prune import prune


def couplings(n: int, seed: int, pruning: str) -> compiler.prune.PrunedCouplings:
    g = torch.Generator().manual_seed(seed)
    K = torch.randn(n, n, generator=g) * 0.1  # diagonal left in: the view must zero it
    opts = {"none": CompileOptions(), "topk": CompileOptions(prune="topk", topk=max(1, n // 4)),
            "magnitude": CompileOptions(prune="magnitude", keep=0.3)}[pruning]
    view, _ = prune(K, opts, scale=0.7)
    return view


def reference_graph(view: compiler.prune.PrunedCouplings, degree: int) -> sp.csr_matrix:
    """The straightforward construction: the whole pruned |K_eff| + |K_eff|ᵀ (float32, as
    K is held), zero diagonal, each row's `degree` largest kept, an edge where either end
    kept it, as a float64 CSR from the dense matrix."""
    n = view.n
    E = view.rows(0, n).abs()
    S = E + E.T
    S.fill_diagonal_(0.0)
    keep = torch.zeros(n, n, dtype=torch.bool)
    keep[torch.arange(n)[:, None], torch.topk(S, degree, dim=1).indices] = True
    keep |= keep.T.clone()
    return sp.csr_matrix(torch.where(keep, S, 0.0).double().numpy())


def assert_same_metis_input(got: sp.csr_matrix, want: sp.csr_matrix) -> None:
    for g, w, name in zip(metis_input(got), metis_input(want), ("xadj", "adjncy", "eweights")):
        assert g.dtype == w.dtype, name
        np.testing.assert_array_equal(g, w, err_msg=name)
    np.testing.assert_array_equal(got.data, want.data)  # and the float weights the rebalance reads


@settings(max_examples=60, deadline=None)
@given(st.integers(3, 70), st.integers(1, 69), st.integers(0, 10_000),
       st.sampled_from(["none", "topk", "magnitude"]), st.sampled_from([1, 37, 200, 1 << 22]))
def test_sparse_graph_is_the_dense_construction(n: int, degree: int, seed: int, pruning: str, chunk: int) -> None:
    degree = min(degree, n - 1)
    view = couplings(n, seed, pruning)
    with mock.patch.object(compiler.prune, "CHUNK_ELEMENTS", chunk):  # one row per stripe … one stripe
        A = sparse_graph(view, degree)
    want = reference_graph(view, degree)
    assert_same_metis_input(A, want)
    # invariants of the graph itself: symmetric, no self-loops, no explicit zeros, and
    # every weight is the coupling pair's |K_ij| + |K_ji|
    assert (A != A.T).nnz == 0 and not A.diagonal().any() and bool((A.data > 0).all())
    E = view.rows(0, n).abs()
    i, j = A.nonzero()
    np.testing.assert_array_equal(A[i, j].A1, (E[i, j] + E[j, i]).double().numpy())
    # every oscillator keeps its strongest coupling partner (when it has one)
    S = (E + E.T).fill_diagonal_(0.0)
    has = S.amax(1) > 0
    best = S.argmax(1)
    assert all(A[r, int(best[r])] > 0 for r in torch.nonzero(has).flatten().tolist())


def test_graph_above_the_dense_limit_is_the_dense_construction() -> None:
    n = DENSE_GRAPH_MAX_N + 37  # the stripe path, two stripes at the default stripe size
    for pruning in ("none", "topk"):
        view = couplings(n, 5, pruning)
        assert_same_metis_input(graph(view), reference_graph(view, 32))


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 50), st.integers(0, 10_000), st.sampled_from(["none", "topk", "magnitude"]), st.data())
def test_row_and_column_windows_are_slices_of_the_effective_couplings(n: int, seed: int, pruning: str,
                                                                      data: st.DataObject) -> None:
    # the windows zero the stored diagonal by index; the dense reference by a full mask
    view = couplings(n, seed, pruning)
    eff = view.K * view.scale
    eff[torch.eye(n, dtype=torch.bool)] = 0.0
    kept = torch.where(view.mask(eff, torch.arange(n)), eff, 0.0)
    a = data.draw(st.integers(0, n - 1))
    b = data.draw(st.integers(a + 1, n))
    assert torch.equal(view.rows(a, b), kept[a:b])
    assert torch.equal(view.rows(a, b, pruned=False), eff[a:b])
    assert torch.equal(view.columns(a, b), kept[:, a:b])
    assert torch.equal(view.gather(torch.arange(a, b), torch.arange(n)), kept[a:b])
