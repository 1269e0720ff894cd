"""Pass 1 of the compiler: pruning of the main coupling matrix K.

The result is a rule, not a copy of K: a per-row magnitude threshold (a global threshold
is the same number in every row), so that a 268M-coupling matrix is pruned stripe by
stripe without a second N×N tensor in memory. Block sparsity (whole crossbars) depends
on the tiles, so `prune_blocks` runs after partitioning, in routing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from compiler.options import CompileError, CompileOptions

CHUNK_ELEMENTS = 1 << 22  # ~16 MB of float32 per stripe of rows


def row_chunks(n_rows: int, n_cols: int) -> Iterator[tuple[int, int]]:
    """(start, stop) row ranges of about `CHUNK_ELEMENTS` elements each."""
    step = max(1, CHUNK_ELEMENTS // max(n_cols, 1))
    for start in range(0, n_rows, step):
        yield start, min(start + step, n_rows)


@dataclass(frozen=True)
class PrunedCouplings:
    """The effective couplings K_eff = scale · K with a zero diagonal, and the kept support
    ``|K_eff_ij| >= row_threshold[i]``, K_eff_ij ≠ 0.

    K is held as stored (e.g. the model's raw parameter with its μP `scale` not yet
    applied): every accessor builds the effective values of just the rows or columns it
    returns, so no second N×N tensor is ever made (1 GB at N = 16384).

    Attributes:
        K: (N, N) stored couplings (diagonal and scale not yet applied).
        row_threshold: (N,) magnitude threshold per receiving row (0: keep all).
        method: the pruning that produced the thresholds.
        scale: the factor from stored to effective couplings.
    """

    K: Tensor
    row_threshold: Tensor
    method: str
    scale: float = 1.0

    @property
    def n(self) -> int:
        return self.K.shape[0]

    @property
    def keeps_all(self) -> bool:
        return not bool((self.row_threshold > 0).any())

    def mask(self, values: Tensor, rows: Tensor) -> Tensor:
        """Kept-support mask of effective `values` (len(rows), M) of K's rows `rows`."""
        return (values != 0) & (values.abs() >= self.row_threshold[rows].unsqueeze(1))

    def _effective(self, block: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
        out = block * self.scale  # a new tensor
        out[rows.unsqueeze(1) == cols.unsqueeze(0)] = 0.0
        return out

    def _effective_window(self, block: Tensor, row0: int, col0: int) -> Tensor:
        """`_effective` of the window K[row0:…, col0:…]: the diagonal entries it holds are
        zeroed by index (the same entries, without a len(rows) × len(cols) mask)."""
        out = block * self.scale  # a new tensor
        lo, hi = max(row0, col0), min(row0 + out.shape[0], col0 + out.shape[1])
        if hi > lo:
            i = torch.arange(lo, hi, device=out.device)
            out[i - row0, i - col0] = 0.0
        return out

    def _pruned(self, eff: Tensor, rows: Tensor) -> Tensor:
        return eff if self.keeps_all else torch.where(self.mask(eff, rows), eff, 0.0)

    def rows(self, start: int, stop: int, *, pruned: bool = True) -> Tensor:
        """Effective K[start:stop] (pruned entries zero unless `pruned=False`), a new tensor."""
        eff = self._effective_window(self.K[start:stop], start, 0)
        return self._pruned(eff, torch.arange(start, stop, device=self.K.device)) if pruned else eff

    def columns(self, start: int, stop: int) -> Tensor:
        """The pruned effective K[:, start:stop] (a new tensor; no copy of the rest of K)."""
        return self._pruned(self._effective_window(self.K[:, start:stop], 0, start),
                            torch.arange(self.n, device=self.K.device))

    def gather(self, rows: Tensor, cols: Tensor) -> Tensor:
        """The pruned effective `K[rows][:, cols]` (a new tensor)."""
        return self._pruned(self._effective(self.K[rows][:, cols], rows, cols), rows)

    def values(self, pairs: Tensor) -> Tensor:
        """Effective K_ij at (M, 2) index pairs (i, j), unpruned."""
        i, j = pairs[:, 0], pairs[:, 1]
        return torch.where(i == j, 0.0, self.K[i, j] * self.scale)


@dataclass(frozen=True)
class PruneReport:
    method: str
    kept_fraction: float  # kept nonzero couplings / nonzero couplings of K
    removed_mass: float  # Σ|K| removed / Σ|K|
    kept: int
    total: int

    def to_dict(self) -> dict:
        return {"method": self.method, "kept_fraction": self.kept_fraction, "removed_mass": self.removed_mass,
                "kept": self.kept, "total": self.total}


def kth_largest_abs(chunks: Callable[[], Iterable[Tensor]], k: int, *, bins: int = 1 << 16) -> float:
    """The k-th largest |x| over the nonzero values that `chunks()` yields (1-D tensors),
    exactly, in streamed passes (a histogram, then the one bin that holds it) instead of
    sorting a copy of a 268M-entry matrix. 0 when there are fewer than k nonzeros."""
    amax = max((float(v.abs().max()) for v in chunks() if v.numel()), default=0.0)
    if amax == 0.0 or k < 1:
        return 0.0

    def buckets(v: Tensor) -> Tensor:
        return ((v / amax) * bins).long().clamp_(max=bins - 1)

    counts = torch.zeros(bins, dtype=torch.int64)
    for v in chunks():
        v = v.abs()
        v = v[v > 0]
        counts += torch.bincount(buckets(v), minlength=bins).cpu()
    above = torch.flip(torch.cumsum(torch.flip(counts, [0]), 0), [0])  # nonzeros in bins >= b
    if int(above[0]) < k:
        return 0.0
    b = int(torch.nonzero(above >= k)[-1])
    need = k - (int(above[b + 1]) if b + 1 < bins else 0)
    inside = []
    for v in chunks():
        v = v.abs()
        inside.append(v[(buckets(v) == b) & (v > 0)])
    return float(torch.topk(torch.cat(inside), need).values[-1])


def prune(K: Tensor, options: CompileOptions, *, scale: float = 1.0) -> tuple[PrunedCouplings, PruneReport]:
    """Magnitude (global threshold keeping `options.keep`), per-row top-k, or none, of the
    effective couplings scale · K (zero diagonal). ('block' keeps every coupling here;
    the crossbars are chosen in routing.)"""
    n = K.shape[0]
    method = options.prune
    base = PrunedCouplings(K=K, row_threshold=torch.zeros(n, dtype=K.dtype, device=K.device), method="none",
                           scale=float(scale))
    threshold = base.row_threshold.clone()
    total = 0
    for a, b in row_chunks(n, n):
        total += int(torch.count_nonzero(base.rows(a, b)))
    if method == "magnitude" and options.keep < 1.0:
        k = max(1, math.ceil(options.keep * total))
        threshold.fill_(kth_largest_abs(lambda: (base.rows(a, b).flatten() for a, b in row_chunks(n, n)), k))
    elif method == "topk":
        if options.topk >= n:
            raise CompileError(f"--topk {options.topk} must be below N = {n} (couplings per row)")
        for a, b in row_chunks(n, n):
            threshold[a:b] = torch.topk(base.rows(a, b).abs(), options.topk, dim=1).values[:, -1]
        threshold.clamp_(min=torch.finfo(K.dtype).tiny)
    view = PrunedCouplings(K=K, row_threshold=threshold, method=method, scale=float(scale))
    kept, mass, mass_kept = total, 1.0, 1.0
    if not view.keeps_all:
        kept, mass, mass_kept = 0, 0.0, 0.0
        for a, b in row_chunks(n, n):
            block = base.rows(a, b)
            m = view.mask(block, torch.arange(a, b, device=K.device))
            kept += int(torch.count_nonzero(m))
            mass += float(block.abs().sum(dtype=torch.float64))
            mass_kept += float(torch.where(m, block.abs(), 0.0).sum(dtype=torch.float64))
    report = PruneReport(
        method=method, kept_fraction=kept / total if total else 1.0,
        removed_mass=(mass - mass_kept) / mass if mass else 0.0, kept=kept, total=total,
    )
    return view, report


def prune_blocks(frobenius: Tensor, keep: float) -> Tensor:
    """Block sparsity: the `keep` fraction of non-empty blocks with the largest
    Frobenius norm (T, T) → kept mask (T, T)."""
    nonempty = frobenius > 0
    count = int(nonempty.sum())
    k = max(1, math.ceil(keep * count)) if count else 0
    kept = torch.zeros_like(nonempty)
    if k:
        idx = torch.topk(frobenius.flatten(), k).indices
        kept.view(-1)[idx] = True
    return kept & nonempty
