r"""The one Euler kernel without autograd, over a chip axis: every no-grad run steps here.

A block of B phase vectors x (the main phases θ, or the conditioning phases φ), each
sample on a chip whose system is (K̃, ω̃), takes per step the Euler step of
`oscsim.params.KuramotoParams`'s equations plus a diffusion increment:

    W = [sin x; cos x] K̃ᵀ   (+ D̃[c] [sin φ; cos φ], the drive of the sample's class c)
    x ← x + h·(ω̃ + cos x ⊙ W_sin − sin x ⊙ W_cos) + ΔW_k

(the angle-difference identity of `oscsim.coupling`). The drift's inputs are the chip
systems (`oscsim.realize.ChipSystems`: a leading chip axis of 1 when every chip is the same,
else one per chip, the batch holding each chip's samples as one contiguous group); the
diffusion ΔW_k is an input too (`Diffusion`; `oscsim.sde` builds phase and read noise).
The ideal path is the case of one shared chip and no diffusion.

How, in reused buffers: sin x and cos x go straight into the (B, 2, D) GEMM input, W by one
GEMM (one batched GEMM over the chip axis when the chips differ) into a reused output, the
drive's terms added onto W (they are multiplied by the same cos x and sin x), then
v = ω̃ + cos x · W_sin − sin x · W_cos in place over W_sin, and x += h·v. (Computing the
drive's terms several steps ahead, one GEMM per class, and accumulating the coupling GEMM
onto them was measured: 0.99–1.02× the time at n1024 and n4096, one and two threads; not kept.)

`euler_no_grad` integrates a whole system: the conditioning block first (it never hears the
main block; its sin φ, cos φ at every step are kept as the drive's input), then the main
block. The drive (`Drive`): on a CPU the batch is sorted (stably) so that each chip's
samples of one class are contiguous, and each such run's drive is one small GEMM with
D̃[c]ᵀ onto its rows of W — a gathered per-sample (B, N, N_c) drive would be streamed from
memory every step (~10% of the coupling GEMM at N = 1024). Where the runs are many and
small (small N, few samples per class and chip) that stream is cheaper than their GEMMs'
fixed costs, and on a GPU the batched product is one kernel instead of one per run: there
the drive is gathered per sample. Results come back in the caller's sample order.

The general coupler (`oscsim.harmonics.Harmonics`: H_ij(x) = b0_ij + Σ_{k=1..H} (A_k,ij sin kx
+ B_k,ij cos kx), A_1 = K̃) is the same step per harmonic (`oscsim.coupling`'s identity):

    W_k^A = [sin kx; cos kx] A_kᵀ,  W_k^B = [sin kx; cos kx] B_kᵀ   (+ the drive's, sin kφ, cos kφ)
    x ← x + h·(ω̃ + Σ_j b0_ij + Σ_k [cos kx ⊙ (W_k,sin^A + W_k,cos^B) − sin kx ⊙ (W_k,cos^A − W_k,sin^B)]) + ΔW

two GEMMs of today's shape per harmonic (one batched GEMM each over the chip axis), the
constant part folded into ω̃ once per call (the drive's per sample, by class), and the
drive's harmonic k one `Drive` (runs or per sample, as above) whose row [sin kφ | cos kφ] times
[[A^Dᵀ, −B^Dᵀ], [B^Dᵀ, A^Dᵀ]] adds onto W_k^A what the combine needs of A^D and B^D at once.
A block whose couplers are pure sines (no harmonics) takes the sine-only loop, unchanged.

Opt-in low-precision coupling GEMM (`gemm_dtype=torch.bfloat16`, the main block of the
sine-only loop): K̃ᵀ is cast once per call, sin x and cos x are cast to bfloat16 for the
GEMM only, and its (bfloat16) output W is copied to float32 before the drive is added; the update
and the state stay float32. Only where the device has bf16 units (`bf16_gemm_supported`):
an emulated bf16 GEMM is slower than float32. Accuracy: `oscsim.simulate` states it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from oscsim.harmonics import Harmonics
from oscsim.realize import ChipSystems
from oscsim.results import SimResult

#: the fixed cost of one (chip, class) run's small GEMM, in bytes of gathered drive the
#: per-sample product streams in the same time: ~3 µs per run at ~10 GB/s (measured on a
#: 2-core Xeon, torch 2.13, N = 64 and 1024)
_RUN_COST_BYTES = 32 * 2**10
#: the GEMM dtypes `gemm_dtype` takes (None: the state's own dtype)
GEMM_DTYPES = (torch.bfloat16,)


def bf16_gemm_supported(device: torch.device | str) -> bool:
    """Whether `device` multiplies bfloat16 matrices in hardware: a CUDA device that
    reports bf16 support, or a CPU with AVX512-BF16 or AMX (oneDNN's check)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


class Diffusion(Protocol):
    """The diffusion of one block, as the kernel takes it."""

    def __call__(self, step: int, x: Tensor, sincos: Tensor) -> Tensor | None:
        """The increment ΔW_step (B, D) added to x after the drift of step `step`; `x` and
        `sincos` (B, 2, D: sin x, cos x) are the state before the step, in the kernel's
        sample order (`Layout`). None: nothing this step."""


@dataclass(frozen=True, eq=False)
class Layout:
    """How `euler_no_grad` orders a batch, and the runs of its drive.

    Attributes:
        batch: B, the samples of the call.
        chips: distinct chip systems (1 when every chip is the same); the batch is `chips`
            equal contiguous groups, and stays so in the kernel's order.
        order: position in the kernel's order → the caller's sample (None: the caller's).
        labels: (B,) int64 classes in the kernel's order (−1: dropped), or None: no drive.
        runs: (chip, class, start, stop) of each contiguous run of one chip's samples of one
            class (dropped samples left out), or None: the drive is gathered per sample.
    """

    batch: int
    chips: int
    order: Tensor | None
    labels: Tensor | None
    runs: tuple[tuple[int, int, int, int], ...] | None

    @classmethod
    def of(cls, labels: Tensor | None, *, batch: int, chips: int, classes: int, n_main: int, n_cond: int,
           itemsize: int, device: torch.device) -> Layout:
        """The layout for checked `labels` (or None) of `batch` samples on `chips` systems
        of N = `n_main` and N_c = `n_cond` oscillators, `itemsize` bytes per number.

        Runs on a CPU, unless streaming the gathered per-sample drive costs less than the
        runs' small GEMMs would (many small runs: small N, few samples per class)."""
        if labels is None or n_cond == 0:
            return cls(batch=batch, chips=chips, order=None, labels=None, runs=())
        keys = labels + 1
        if chips > 1:  # chip-major: each chip's group stays contiguous
            chip = torch.arange(batch, device=labels.device) // (batch // chips)
            keys = keys + (classes + 1) * chip
        if device.type != "cpu" or batch * n_main * n_cond * itemsize <= torch.unique(keys).numel() * _RUN_COST_BYTES:
            # one batched product of per-sample drives per step
            return cls(batch=batch, chips=chips, order=None, labels=labels, runs=None)
        sorted_keys, order = torch.sort(keys, stable=True)
        values, counts = torch.unique_consecutive(sorted_keys, return_counts=True)
        runs, start = [], 0
        for key, count in zip(values.tolist(), counts.tolist()):
            chip, label = divmod(key, classes + 1)
            if label > 0:
                runs.append((chip, label - 1, start, start + count))
            start += count
        return cls(batch=batch, chips=chips, order=order, labels=labels[order], runs=tuple(runs))

    def sorted(self, x: Tensor, dim: int = 0, *, out: Tensor | None = None) -> Tensor:
        """x with its sample axis `dim` in the caller's order, put in the kernel's order."""
        if self.order is None:
            return x
        return torch.index_select(x, dim, self.order, out=out) if out is not None else x.index_select(dim, self.order)

    def unsorted(self, x: Tensor, dim: int = 0) -> Tensor:
        """x with its sample axis `dim` in the kernel's order, back in the caller's order."""
        return x if self.order is None else torch.empty_like(x).index_copy_(dim, self.order, x)

    def by_sample(self, x: Tensor) -> Tensor:
        """A per-chip tensor (1 | chips, ...) for every sample: (B, ...), or x[0] if shared."""
        if x.shape[0] == 1:
            return x[0]
        return x.repeat_interleave(self.batch // self.chips, dim=0)

    def by_class(self, x: Tensor) -> Tensor:
        """A per-chip, per-class tensor (1 | chips, classes, ...) for every sample:
        (B, ...), ``x[chip, label]``, zero for a dropped label. Needs labels."""
        labels = self.labels
        kept = labels >= 0
        if x.shape[0] == 1:
            if bool(kept.all()):
                return x[0][labels]
            out = x.new_zeros(self.batch, *x.shape[2:])
            out[kept] = x[0][labels[kept]]
            return out
        chip = torch.arange(self.batch, device=labels.device) // (self.batch // self.chips)
        return torch.where(kept.view(-1, *[1] * (x.ndim - 2)), x[chip, labels.clamp(min=0)], 0.0)


class Drive:
    """The main block's drive, `W += D̃[c] [sin φ; cos φ]` at every step, in a layout's order.

    Args:
        layout: the batch's layout (with labels).
        matrices: (1 | chips, classes, N, N_c) the drive of each chip and class.
        sincos: (steps, B, 2, N_c) sin φ, cos φ of every sample at every step.

    The same product serves the general coupler's harmonics with one row per sample:
    matrices (1 | chips, classes, 2N, 2N_c), sincos (steps, B, 1, 2N_c), bound to a
    (B, 1, 2N) view of W (`_general_drives`).
    """

    def __init__(self, layout: Layout, matrices: Tensor, sincos: Tensor) -> None:
        self.sincos = sincos
        self.runs = [(start, stop, matrices[chip if matrices.shape[0] > 1 else 0, c].T)
                     for chip, c, start, stop in layout.runs or ()]
        self.per_sample = layout.by_class(matrices).transpose(1, 2) if layout.runs is None else None  # (B, N_c, N)

    def bind(self, weighted: Tensor) -> Callable[[int], None]:
        """The step-k update of the (B, 2, N) buffer `weighted` (views made once)."""
        steps, _, _, n_c = self.sincos.shape
        n = weighted.shape[-1]
        if self.per_sample is not None:
            sincos, per_sample = self.sincos, self.per_sample
            return lambda k: weighted.baddbmm_(sincos[k], per_sample)
        # each run's rows of W, its sin/cos φ per step (steps, 2m, N_c), and D̃[c]ᵀ
        terms = [(weighted[start:stop].view(-1, n), self.sincos[:, start:stop].view(steps, -1, n_c), matrix_t)
                 for start, stop, matrix_t in self.runs]

        def add(k: int) -> None:
            for w_c, phi_c, matrix_t in terms:
                w_c.addmm_(phi_c[k], matrix_t)

        return add


def coupling_gemm(rows: Tensor, coupling_t: Tensor, out: Tensor) -> Tensor:
    """out (B, 2, D) = rows (B, 2, D) times the transposed couplings (1 | chips, D, D) of
    each sample's chip: one GEMM when shared, one batched GEMM over the chip axis else."""
    batch, _, d = rows.shape
    chips = coupling_t.shape[0]
    if chips == 1:
        return torch.mm(rows.view(2 * batch, d), coupling_t[0], out=out.view(2 * batch, d))
    per_chip = 2 * batch // chips
    return torch.bmm(rows.view(chips, per_chip, d), coupling_t, out=out.view(chips, per_chip, d))


def coupling_gemm_add(rows: Tensor, coupling_t: Tensor, out: Tensor) -> Tensor:
    """out (B, 2, D) += rows (B, 2, D) times the transposed couplings, as `coupling_gemm`."""
    batch, _, d = rows.shape
    chips = coupling_t.shape[0]
    if chips == 1:
        return out.view(2 * batch, d).addmm_(rows.view(2 * batch, d), coupling_t[0])
    per_chip = 2 * batch // chips
    return out.view(chips, per_chip, d).baddbmm_(rows.view(chips, per_chip, d), coupling_t)


class LinkTerm:
    """The linked couplings of a block (`oscsim.links`): per step, with x̂ the received
    phases, W_k += ([sin k x̂; cos k x̂] − [sin k x; cos k x]) (M_k ⊙ mask)ᵀ for every term
    matrix M_k of harmonic k.

    Args:
        terms: per harmonic the transposed masked matrices (1 | chips, D, D) or None.
        x0: (B, D) the block's initial phases (its constant history).
        delay_steps, jitter_rad, generator: how the phases are received (`oscsim.links.History`).
    """

    def __init__(self, terms: Terms, x0: Tensor, *, delay_steps: float, jitter_rad: float,
                 generator: torch.Generator | None) -> None:
        from oscsim.links import History

        self.terms = terms
        self.history = History(x0, delay_steps=delay_steps, jitter_rad=jitter_rad, generator=generator)
        self.diff = x0.new_empty(x0.shape[0], 2, x0.shape[1])
        self.angle = x0.new_empty(x0.shape) if len(terms) > 1 else None

    @staticmethod
    def masked(terms: Terms, mask: Tensor) -> Terms:
        """(M_k ⊙ mask)ᵀ of transposed term matrices M_kᵀ (mask: receiver i, sender j)."""
        mask_t = mask.T.to(dtype=next(m for pair in terms for m in pair if m is not None).dtype)
        return [tuple(None if m is None else m * mask_t for m in pair) for pair in terms]

    def __call__(self, x: Tensor, rows: list[Tensor], outs: list[tuple[Tensor, Tensor | None]]) -> None:
        self.history.push(x)
        received = self.history.received()
        for k, ((a_t, b_t), (w_a, w_b)) in enumerate(zip(self.terms, outs)):
            if a_t is None and b_t is None:
                continue
            angle = received if k == 0 else torch.mul(received, k + 1, out=self.angle)
            torch.sin(angle, out=self.diff[:, 0])
            torch.cos(angle, out=self.diff[:, 1])
            self.diff.sub_(rows[k])
            if a_t is not None:
                coupling_gemm_add(self.diff, a_t, w_a)
            if b_t is not None:
                coupling_gemm_add(self.diff, b_t, w_b)


def euler_block(x0: Tensor, *, coupling_t: Tensor, omega: Tensor, steps: int, h: float,
                drive: Drive | None = None, diffusion: Diffusion | None = None, sincos: Tensor | None = None,
                frames: list[Tensor] | None = None, links: LinkTerm | None = None) -> Tensor:
    """`steps` Euler steps of size h of one block (module docstring); returns x at the end.

    Args:
        x0: (B, D) phases (not modified).
        coupling_t: (1 | chips, D, D) the couplings of each chip, transposed (K̃ᵀ).
        omega: (D,) shared or (B, D) per sample, the natural frequencies.
        drive: the main block's conditioning input, or None.
        diffusion: ΔW_k, or None (the ideal path).
        sincos: a (steps, B, 2, D) buffer to write sin x, cos x of every step into (the
            drive's input), or None.
        frames: a list to append x after every step to (copies), or None.
        links: the block's linked couplings (`LinkTerm`), or None.

    A `coupling_t` of lower precision than x (bfloat16) is the opt-in low-precision GEMM
    (module docstring): sin x, cos x are cast for it and its output copied into W.
    """
    batch, d = x0.shape
    x = x0.clone(memory_format=torch.contiguous_format)
    low = coupling_t.dtype != x.dtype
    rows_low = x.new_empty(batch, 2, d, dtype=coupling_t.dtype) if low else None
    product = x.new_empty(batch, 2, d, dtype=coupling_t.dtype) if low else None
    own = x.new_empty(batch, 2, d) if sincos is None else None  # rows sin x_b, cos x_b: the GEMM's input
    weighted = x.new_empty(batch, 2, d)  # rows (K̃ sin x_b)ᵀ, (K̃ cos x_b)ᵀ, plus the drive
    w_sin, w_cos = weighted[:, 0], weighted[:, 1]
    add_drive = drive.bind(weighted) if drive is not None else None
    for k in range(steps):
        rows = own if sincos is None else sincos[k]
        sin, cos = rows[:, 0], rows[:, 1]
        torch.sin(x, out=sin)
        torch.cos(x, out=cos)
        if low:
            rows_low.copy_(rows)
            coupling_gemm(rows_low, coupling_t, product)
            weighted.copy_(product)
        else:
            coupling_gemm(rows, coupling_t, weighted)
        if links is not None:
            links(x, [rows], [(weighted, None)])
        if add_drive is not None:
            add_drive(k)
        increment = diffusion(k, x, rows) if diffusion is not None else None
        velocity = torch.addcmul(omega, cos, w_sin, out=w_sin).addcmul_(sin, w_cos, value=-1.0)
        x.add_(velocity, alpha=h)
        if increment is not None:
            x.add_(increment)
        if frames is not None:
            frames.append(x.clone())
    return x


#: per harmonic k = 1..H, the transposed matrices (A_kᵀ, B_kᵀ) of each chip (1 | chips, D, D),
#: or None where a block has no such term
Terms = list[tuple[Tensor | None, Tensor | None]]


def euler_block_general(x0: Tensor, *, terms: Terms, omega: Tensor, steps: int, h: float,
                        drives: list[tuple[int, bool, Drive]] = (), diffusion: Diffusion | None = None,
                        sincos: Tensor | None = None, frames: list[Tensor] | None = None,
                        links: LinkTerm | None = None) -> Tensor:
    """`euler_block` for the general coupler (module docstring); returns x at the end.

    Args:
        x0: (B, D) phases (not modified).
        terms: per harmonic (A_kᵀ, B_kᵀ), each (1 | chips, D, D) or None (A_1 = K̃).
        omega: (D,) shared or (B, D) per sample: ω̃ plus the constant parts Σ_j b0_ij.
        drives: (harmonic k − 1, combined, the `Drive` adding onto W_k^A): viewed (B, 2, D) (the
            sin and cos rows), or if combined (B, 1, 2D) (one row [sin | cos] per sample).
        diffusion, sincos, frames, links: as `euler_block` (sincos: sin x, cos x of the
            fundamental; links: its terms per harmonic, as `terms`).
    """
    batch, d = x0.shape
    order = len(terms)
    x = x0.clone(memory_format=torch.contiguous_format)
    own = [x.new_empty(batch, 2, d) for _ in range(order)]  # rows sin kx_b, cos kx_b per harmonic
    w_a = x.new_empty(order, batch, 2, d)  # rows (A_k sin kx_b)ᵀ, (A_k cos kx_b)ᵀ, plus the drive's
    w_b = x.new_empty(order, batch, 2, d)  # rows (B_k sin kx_b)ᵀ, (B_k cos kx_b)ᵀ, plus the drive's
    kx = x.new_empty(batch, d) if order > 1 else None
    adders = [drive.bind(w_a[k].view(batch, 1, 2 * d) if combined else w_a[k]) for k, combined, drive in drives]
    for step in range(steps):
        rows = own if sincos is None else [sincos[step], *own[1:]]
        for k, (a_t, b_t) in enumerate(terms):
            sin, cos = rows[k][:, 0], rows[k][:, 1]
            angle = x if k == 0 else torch.mul(x, k + 1, out=kx)
            torch.sin(angle, out=sin)
            torch.cos(angle, out=cos)
            for m_t, out in ((a_t, w_a[k]), (b_t, w_b[k])):
                if m_t is None:
                    out.zero_()
                else:
                    coupling_gemm(rows[k], m_t, out)
        if links is not None:
            links(x, rows, [(w_a[k], w_b[k]) for k in range(order)])
        for add in adders:
            add(step)
        increment = diffusion(step, x, rows[0]) if diffusion is not None else None
        velocity = None
        for k in range(order):
            sin, cos = rows[k][:, 0], rows[k][:, 1]
            s_k = w_a[k, :, 0].add_(w_b[k, :, 1])  # A u_k + B v_k
            r_k = w_a[k, :, 1].sub_(w_b[k, :, 0])  # A v_k − B u_k
            if velocity is None:
                velocity = torch.addcmul(omega, cos, s_k, out=s_k)
            else:
                velocity.addcmul_(cos, s_k)
            velocity.addcmul_(sin, r_k, value=-1.0)
        x.add_(velocity, alpha=h)
        if increment is not None:
            x.add_(increment)
        if frames is not None:
            frames.append(x.clone())
    return x


def _terms(M: Tensor, harmonics: Harmonics | None, order: int) -> Terms:
    """(A_kᵀ, B_kᵀ) of chip-axis matrices (1 | chips, D, D) for k = 1..order (views)."""
    pairs = [(M, None)] if harmonics is None else harmonics.terms(M)
    pairs += [(None, None)] * (order - len(pairs))
    return [tuple(None if m is None else m.transpose(-1, -2) for m in pair) for pair in pairs]


def _general_drives(layout: Layout, systems: ChipSystems, phi_sincos: Tensor, phi_steps: list[Tensor] | None
                    ) -> list[tuple[int, bool, Drive]]:
    """The main block's drive terms (harmonic k − 1, whether combined, the `Drive`).

    Without drive harmonics: D̃ [sin φ; cos φ] onto W_1^A, as the sine-only kernel. With them,
    per harmonic one combined `Drive` onto W_k^A viewed per sample as one row [sin | cos]:
    the row [sin kφ | cos kφ] times [[A^Dᵀ, −B^Dᵀ], [B^Dᵀ, A^Dᵀ]] adds A^D u + B^D v to the
    sin half and A^D v − B^D u to the cos half — what the combine then makes of W^A and W^B.
    """
    if layout.labels is None:
        return []
    h = systems.drive_h
    if h is None:
        return [(0, False, Drive(layout, systems.drive, phi_sincos))]
    steps, batch, _, n_c = phi_sincos.shape
    drives = []
    for k, (a, b) in enumerate(h.terms(systems.drive)):
        if k == 0:
            features = phi_sincos
        else:
            angle = torch.stack(phi_steps[:steps]) * (k + 1)  # (steps, B, N_c)
            features = torch.stack((torch.sin(angle), torch.cos(angle)), dim=2)
        lead = max(a.shape[0], b.shape[0])
        a, b = a.expand(lead, *a.shape[1:]), b.expand(lead, *b.shape[1:])
        combined = torch.cat((torch.cat((a, b), dim=-1), torch.cat((-b, a), dim=-1)), dim=-2)  # (·, classes, 2N, 2N_c)
        drives.append((k, True, Drive(layout, combined, features.view(steps, batch, 1, 2 * n_c))))
    return drives


#: builds a call's diffusion of the conditioning and of the main block for its layout
NoiseTerms = Callable[[Layout], tuple[Diffusion | None, Diffusion | None]]


def euler_no_grad(systems: ChipSystems, theta0: Tensor, labels: Tensor | None, *, steps: int, T: float,
                  record: bool, noise: NoiseTerms | None = None, gemm_dtype: torch.dtype | None = None,
                  links=None) -> SimResult:
    """Euler (–Maruyama, with `noise`) without autograd: the whole system, both blocks.

    Args:
        systems: the chips' systems; their chip axis (1 or the call's chips) splits the batch.
        theta0: (B, N + N_c) phases, main then conditioning (not modified).
        labels: (B,) checked int64 classes (−1: dropped), or None for no drive.
        steps, T: steps ≥ 1 of size h = T / steps.
        record: also return the trajectory at the steps + 1 step boundaries.
        noise: given the layout, the diffusion of the conditioning and of the main block
            (`oscsim.sde`); None: the ideal path.
        gemm_dtype: None, or bfloat16: the main block's coupling GEMM in that dtype (module
            docstring; `oscsim.simulate` has checked it is supported here).
        links: `oscsim.links.Links` of the main couplings (and the drive), or None.
    """
    batch, n, n_c = theta0.shape[0], systems.K.shape[-1], systems.C.shape[-1]
    chips = systems.chips
    h = T / steps
    layout = Layout.of(labels, batch=batch, chips=chips, classes=systems.drive.shape[1], n_main=n, n_cond=n_c,
                       itemsize=theta0.element_size(), device=theta0.device)
    theta0 = layout.sorted(theta0)
    phi_noise, theta_noise = noise(layout) if noise is not None else (None, None)
    main_general = systems.K_h is not None or (systems.drive_h is not None and layout.labels is not None)

    links = links if links is not None and links.active else None
    linked_drive = links is not None and links.drive and layout.labels is not None and n_c > 0
    generator = None
    if links is not None:
        from oscsim.links import generator_for

        generator = generator_for(links, theta0.device)
    phi_sincos = theta0.new_empty(steps, batch, 2, n_c)  # [s, b] = (sin φ_b, cos φ_b) at step s
    phi_frames = [theta0[:, n:]] if record or linked_drive or (main_general and systems.drive_h is not None) else None
    phi = theta0[:, n:]
    if n_c and systems.C_h is None:
        phi = euler_block(phi, coupling_t=systems.C.transpose(1, 2), omega=layout.by_sample(systems.nu), steps=steps,
                          h=h, diffusion=phi_noise, sincos=phi_sincos, frames=phi_frames)
    elif n_c:
        phi = euler_block_general(phi, terms=_terms(systems.C, systems.C_h, systems.C_h.order),
                                  omega=layout.by_sample(systems.nu + systems.C_h.row_const()), steps=steps, h=h,
                                  diffusion=phi_noise, sincos=phi_sincos, frames=phi_frames)
    elif phi_frames is not None:  # no conditioning block: (B, 0) at every step
        phi_frames *= steps + 1
    theta_frames = [theta0[:, :n]] if record else None
    drive_sincos, drive_frames = phi_sincos, phi_frames
    if linked_drive:  # the main block hears the conditioning tile's phases as received
        from oscsim.links import received_frames

        drive_frames = received_frames(phi_frames[:steps], links, h=h, generator=generator)
        stacked = torch.stack(drive_frames)
        drive_sincos = torch.stack((torch.sin(stacked), torch.cos(stacked)), dim=2)

    def link_term(terms: Terms) -> LinkTerm | None:
        if links is None or not bool(links.mask.any()):
            return None
        return LinkTerm(LinkTerm.masked(terms, links.mask.to(theta0.device)), theta0[:, :n], delay_steps=links.delay / h,
                        jitter_rad=links.jitter_rad, generator=generator)

    if not main_general:
        drive = Drive(layout, systems.drive, drive_sincos) if layout.labels is not None else None
        coupling_t = systems.K.transpose(1, 2)
        if gemm_dtype is not None and gemm_dtype != theta0.dtype:
            coupling_t = coupling_t.to(gemm_dtype)
        theta = euler_block(theta0[:, :n], coupling_t=coupling_t, omega=layout.by_sample(systems.omega),
                            steps=steps, h=h, drive=drive, diffusion=theta_noise, frames=theta_frames,
                            links=link_term([(systems.K.transpose(1, 2), None)]))
    else:
        driven = layout.labels is not None and systems.drive_h is not None
        order = max(1 if systems.K_h is None else systems.K_h.order, systems.drive_h.order if driven else 1)
        omega = systems.omega if systems.K_h is None else systems.omega + systems.K_h.row_const()
        omega = layout.by_sample(omega)
        if driven:  # + Σ_k b0[c]_ik of the drive of the sample's class
            omega = omega + layout.by_class(systems.drive_h.row_const())
        terms = _terms(systems.K, systems.K_h, order)
        theta = euler_block_general(theta0[:, :n], terms=terms, omega=omega, steps=steps, h=h,
                                    drives=_general_drives(layout, systems, drive_sincos, drive_frames),
                                    diffusion=theta_noise, frames=theta_frames, links=link_term(terms))

    final = layout.unsorted(torch.cat((theta, phi), dim=1))
    if not record:
        return SimResult(theta=final, n=n)
    trajectory = torch.cat((torch.stack(theta_frames), torch.stack(phi_frames)), dim=2)
    return SimResult.of(final, n, T=T, trajectory=layout.unsorted(trajectory, dim=1))
