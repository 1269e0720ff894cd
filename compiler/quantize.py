"""Pass 5: quantisation of the kept couplings, the frequencies and the conditioning
array into integer codes with their scales (`oscsim.quant`, the simulator's quantiser).

K's codes are stored as the crossbars hold them: (nb, S, S) blocks in tile coordinates
(receiving tile a's cells are rows, sending tile b's are columns), plus one code per
inter-tile link. Scales: 'tile' — one per crossbar and one per tile pair's links;
'row' — one per receiving oscillator (shared by its crossbar rows and links);
'tensor' — one for all of K. ω and ν take one scale each (one frequency DAC range);
the class drive K̃ one per class (a class's code bank), or one for all under 'tensor'.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from compiler.options import CompileOptions
from compiler.partition import Partition
from compiler.prune import PrunedCouplings, kth_largest_abs
from compiler.route import Routing, _padded_index, stripe
from oscsim.quant import choose_scale, qmax, quantize


@dataclass(frozen=True)
class ErrorStats:
    """Quantisation error of one tensor on its kept support."""

    rel_fro: float  # ‖Q − X‖_F / ‖X‖_F
    max_abs: float  # max |Q − X|
    clipped_fraction: float  # entries beyond the clip range

    def to_dict(self) -> dict:
        return {"rel_fro": self.rel_fro, "max_abs": self.max_abs, "clipped_fraction": self.clipped_fraction}


class _Acc:
    def __init__(self) -> None:
        self.err2 = self.ref2 = self.max = 0.0
        self.clipped = self.count = 0

    def add(self, x: Tensor, scale: Tensor, bits: int, codes: Tensor) -> None:
        """Accumulate the error of `codes` (x quantised at `scale`) over x's nonzero
        entries (a zero is an absent coupler: its code is 0 and adds no error)."""
        scale = torch.as_tensor(scale, dtype=x.dtype)
        d = codes.to(x.dtype) * scale - x
        self.err2 += float(torch.linalg.vector_norm(d, dtype=torch.float64)) ** 2
        self.ref2 += float(torch.linalg.vector_norm(x, dtype=torch.float64)) ** 2
        self.max = max(self.max, float(d.abs().max()) if d.numel() else 0.0)
        # beyond the clip range (x/s past ±q_max); 1-bit codes have no magnitude range
        if bits > 1:
            self.clipped += int(torch.count_nonzero(x.abs() > (qmax(bits) + 0.5) * scale))
        self.count += int(torch.count_nonzero(x))

    def stats(self) -> ErrorStats:
        return ErrorStats(rel_fro=(self.err2 / self.ref2) ** 0.5 if self.ref2 else 0.0, max_abs=self.max,
                          clipped_fraction=self.clipped / self.count if self.count else 0.0)


def tensor_scale(chunks, bits: int, options: CompileOptions, *, sample: Tensor) -> Tensor:
    """One scale for values streamed as 1-D chunks: max, the exact percentile of the
    nonzero |values| (`kth_largest_abs`), or MSE on `sample` (a subsample)."""
    q = qmax(bits)
    if options.scale_method == "max":
        clip = max((float(v.abs().max()) for v in chunks() if v.numel()), default=0.0)
    elif options.scale_method == "percentile":
        count = sum(int(torch.count_nonzero(v)) for v in chunks())
        clip = kth_largest_abs(chunks, max(1, int(round((1 - options.percentile / 100) * count))))
    else:
        return choose_scale(sample, bits, method="mse").reshape(())
    return torch.tensor(clip / q if clip > 0 else 1.0)


def quantize_couplings(view: PrunedCouplings, part: Partition, routing: Routing, options: CompileOptions,
                       generator: torch.Generator) -> tuple[dict[str, Tensor], dict]:
    """Codes and scales of the crossbars and links; the error report."""
    T, S, bits = len(part.tiles), options.tile, options.k_bits
    padded = _padded_index(part, S)
    blocks = routing.blocks
    by_row = [blocks[blocks[:, 0] == a, 1] for a in range(T)]
    links = routing.links
    link_val = view.values(links) if links.numel() else view.K.new_zeros(0)
    tile_of = torch.as_tensor(part.tile_of)

    def kept_stripe(a: int) -> Tensor:
        """(S, T, S) kept values of tile a's rows: its crossbars (links separate)."""
        st = stripe(view, part, S, a, padded)
        keep = torch.zeros(T, dtype=torch.bool)
        keep[by_row[a]] = True
        st[:, ~keep] = 0.0
        return st

    rng = torch.Generator().manual_seed(options.seed + 1)
    if options.granularity == "tensor":
        def chunks():
            for t in range(T):
                yield kept_stripe(t).flatten()
            yield link_val

        picks = [kept_stripe(int(t)).flatten() for t in torch.randperm(T, generator=rng)[:16]]
        sample = torch.cat([v[torch.randint(0, v.numel(), (8192,), generator=rng)] for v in picks] + [link_val])
        scale = tensor_scale(chunks, bits, options, sample=sample[sample != 0])
        block_scale = scale.reshape(1, 1, 1).expand(len(blocks), 1, 1).clone()
        link_scale = scale.expand(len(link_val)).clone()
    elif options.granularity == "row":
        slot_of = torch.empty(view.n, dtype=torch.int64)  # oscillator → its row in its tile
        for a, members in enumerate(part.tiles):
            slot_of[list(members)] = torch.arange(len(members))
        row_scale = torch.ones(T, S)
        for a in range(T):
            st = kept_stripe(a).reshape(S, -1)
            if links.numel():  # this tile's rows' link values join their rows
                sel = tile_of[links[:, 0]] == a
                extra = torch.zeros(S, int(sel.sum()), dtype=st.dtype)
                extra[slot_of[links[sel, 0]], torch.arange(int(sel.sum()))] = link_val[sel]
                st = torch.cat((st, extra), dim=1)
            row_scale[a] = choose_scale(st, bits, method=options.scale_method, dim=1,
                                        percentile=options.percentile).reshape(-1)
        block_scale = row_scale[blocks[:, 0]].unsqueeze(2)  # (nb, S, 1)
        if links.numel():
            link_scale = row_scale[tile_of[links[:, 0]], slot_of[links[:, 0]]]
        else:
            link_scale = link_val.new_zeros(0)
    else:  # 'tile': one scale per crossbar, one per tile pair's links
        block_scale = torch.ones(len(blocks), 1, 1)
        link_scale = link_val.new_zeros(len(link_val))
        if links.numel():
            ta, tb = tile_of[links[:, 0]], tile_of[links[:, 1]]
            pair = torch.minimum(ta, tb) * T + torch.maximum(ta, tb)
            for p in torch.unique(pair).tolist():  # tile pairs
                sel = pair == p
                link_scale[sel] = choose_scale(link_val[sel], bits, method=options.scale_method,
                                               percentile=options.percentile).reshape(())
    codes = torch.zeros(len(blocks), S, S, dtype=torch.int8 if bits <= 8 else torch.int16)
    acc = _Acc()
    for a in range(T):  # one stripe of crossbars per receiving tile, all its blocks at once
        ks = torch.nonzero(blocks[:, 0] == a).flatten()
        if not ks.numel():
            continue
        x = kept_stripe(a).permute(1, 0, 2)[by_row[a]]  # (blocks of row a, S, S)
        if options.granularity == "tile":
            block_scale[ks] = choose_scale(x, bits, method=options.scale_method, dim=(1, 2),
                                           percentile=options.percentile)
        c = quantize(x, block_scale[ks], bits, rounding=options.rounding, generator=generator)
        codes[ks] = c
        acc.add(x, block_scale[ks], bits, c)
    link_codes = torch.zeros(0, dtype=codes.dtype)
    if links.numel():
        link_codes = quantize(link_val, link_scale, bits, rounding=options.rounding, generator=generator)
        acc.add(link_val, link_scale, bits, link_codes)
    tensors = {
        "K.blocks": codes, "K.block_tiles": blocks.to(torch.int32).contiguous(),
        "K.block_scales": block_scale.float().contiguous(),
        "K.links": links.to(torch.int32).contiguous(), "K.link_codes": link_codes,
        "K.link_scales": link_scale.float().contiguous(),
    }
    return tensors, acc.stats().to_dict()


def quantize_vectors(params, options: CompileOptions, generator: torch.Generator) -> tuple[dict[str, Tensor], dict]:
    """ω, the class drive K̃, and the conditioning array's C and ν."""
    out, report = {}, {}
    groups = {
        "omega": (params.omega, options.w_bits, None),
        "drive": (params.drive, options.d_bits, None if options.granularity == "tensor" else (1, 2)),
        "C": (params.C, options.d_bits, None),
        "nu": (params.nu, options.w_bits, None),
    }
    for name, (x, bits, dim) in groups.items():
        if x.numel() == 0:
            scale = torch.ones([1] * max(x.ndim, 1))
        else:
            scale = choose_scale(x, bits, method=options.scale_method, dim=dim, percentile=options.percentile)
        c = quantize(x, scale, bits, rounding=options.rounding, generator=generator)
        acc = _Acc()
        if x.numel():
            acc.add(x, scale, bits, c)
        out[f"{name}.codes"] = c.contiguous()
        out[f"{name}.scale"] = scale.float().reshape(-1).contiguous() if dim is None else scale.float().contiguous()
        report[name] = {"bits": bits, **acc.stats().to_dict()}
    return out, report
