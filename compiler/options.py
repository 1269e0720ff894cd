"""`CompileOptions`: every choice the compiler makes, validated, stored in the IR."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from oscsim.quant import ROUNDINGS, SCALE_METHODS


class CompileError(ValueError):
    """A compile option, checkpoint, calibration or IR that cannot be used (one line)."""


TARGETS = ("dense-tiled", "sparse-routed")
GRANULARITIES = ("tile", "row", "tensor")
PRUNINGS = ("none", "magnitude", "topk", "block")
PARTITIONERS = ("auto", "index", "metis", "spectral", "kl")
PLACERS = ("anneal", "index")
#: how the main and conditioning couplings are realised: 'reciprocal' — one DAC per pair, the
#: symmetric part (K + Kᵀ)/2 (all a resistor DAC can do); 'directed' — one one-way coupler
#: per direction, K_ij and K_ji each (needs a calibration whose coupler is one-way, the gm
#: coupler); 'auto' — directed where the calibration's coupler can, reciprocal otherwise
COUPLER_MODES = ("auto", "reciprocal", "directed")
#: how phases travel between tiles (`compiler.route.phase_groups`): 'point-to-point' — a wire
#: from the sending tile to each receiving tile (sparse-routed: one per link coupling);
#: 'broadcast-bus' — one wire per phase that visits every tile needing it, along the
#: rectilinear minimum spanning tree of those tiles (never longer: a star is a spanning tree);
#: 'time-multiplexed' — the bus's trees, `tdm_phases_per_wire` phases sharing one wire as
#: `tdm_word_bits`-bit words at `link_bit_rate_gbps`, each receiver holding the last word (the
#: dynamics hear a delayed, quantised phase: `compiler.route.link_timing`); 'low-swing' — the
#: bus's wires at a `low_swing_v` swing, each receiver adding `link_jitter_ps` of timing jitter
DISTRIBUTIONS = ("point-to-point", "broadcast-bus", "time-multiplexed", "low-swing")


@dataclass(frozen=True, kw_only=True)
class CompileOptions:
    """What to build and how.

    Quantisation (`oscsim.quant`): `bits` for the main couplings K, `omega_bits` for the
    frequency codes and `drive_bits` for the conditioning array (both default to `bits`);
    scales per `granularity` ('tile': one per crossbar/link group, 'row': one per
    receiving oscillator, 'tensor'), chosen by `scale_method` ('max', 'percentile' at
    `percentile`, 'mse'), rounding 'nearest' or 'stochastic' (drawn from `seed`).

    Pruning of K before partitioning: 'magnitude' keeps the `keep` fraction of largest
    |K| (one global threshold), 'topk' keeps the `topk` largest per row, 'block' keeps the
    `keep` fraction of tile blocks (crossbars) by Frobenius norm.

    Tiles of `tile` cells; `target` 'dense-tiled' (every non-empty block K[a, b] is an
    S×S crossbar) or 'sparse-routed' (blocks inside tiles are crossbars; between two
    tiles at most `links` couplings, the strongest, travel over dedicated wires).
    `partition` assigns oscillators to tiles ('auto': METIS when pymetis is installed,
    spectral bisection otherwise; plain index order when the target cannot gain from it).
    `place` puts tiles on a 2-D grid of pitch `tile_pitch_mm` minimising wire length.

    Couplers (`couplers`, `COUPLER_MODES`): a reciprocal coupler realises only the symmetric
    part of K and C (the antisymmetric part is dropped, and reported); a one-way coupler
    keeps both directions. 'auto' takes what the calibration's coupler allows.

    Physical mapping: the time scale τ is the smallest that keeps every frequency offset
    inside the cell's tuning range, every coupling inside the coupler's range and the
    total coupling into any cell below `weak_coupling` × 2π f0; `tau_s` forces a value
    (then out-of-range parameters are an error).
    """

    bits: int = 8
    omega_bits: int | None = None
    drive_bits: int | None = None
    granularity: str = "tile"
    scale_method: str = "max"
    percentile: float = 99.9
    rounding: str = "nearest"
    prune: str = "none"
    keep: float = 1.0
    topk: int = 0
    tile: int = 256
    target: str = "dense-tiled"
    links: int = 64
    partition: str = "auto"
    place: str = "anneal"
    tile_pitch_mm: float = 0.5
    weak_coupling: float = 0.02
    tau_s: float | None = None
    couplers: str = "auto"
    distribution: str = "point-to-point"
    tdm_phases_per_wire: int = 8
    tdm_word_bits: int = 6
    link_bit_rate_gbps: float = 1.0
    low_swing_v: float = 0.2
    link_jitter_ps: float = 2.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("bits", "omega_bits", "drive_bits"):
            v = getattr(self, name)
            if v is None and name != "bits":
                continue
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 16:
                raise CompileError(f"--{name.replace('_', '-')} must be an integer in 1..16, not {v!r}")
        choices = {
            "granularity": GRANULARITIES, "scale_method": SCALE_METHODS, "rounding": ROUNDINGS,
            "prune": PRUNINGS, "target": TARGETS, "partition": PARTITIONERS, "place": PLACERS,
            "couplers": COUPLER_MODES, "distribution": DISTRIBUTIONS,
        }
        for name, valid in choices.items():
            if getattr(self, name) not in valid:
                raise CompileError(f"--{name.replace('_', '-')} must be one of {', '.join(valid)}; got {getattr(self, name)!r}")
        if isinstance(self.tile, bool) or not isinstance(self.tile, int) or self.tile < 2:
            raise CompileError(f"--tile must be an integer >= 2 (cells per tile), not {self.tile!r}")
        if isinstance(self.links, bool) or not isinstance(self.links, int) or self.links < 0:
            raise CompileError(f"--links must be an integer >= 0 (couplings per tile pair), not {self.links!r}")
        if not (isinstance(self.keep, (int, float)) and 0.0 < self.keep <= 1.0):
            raise CompileError(f"--keep must be a fraction in (0, 1], not {self.keep!r}")
        if isinstance(self.topk, bool) or not isinstance(self.topk, int) or self.topk < 0:
            raise CompileError(f"--topk must be an integer >= 0, not {self.topk!r}")
        if self.prune == "topk" and self.topk < 1:
            raise CompileError("--prune topk needs --topk >= 1 (couplings kept per row)")
        if not 0.0 < self.percentile <= 100.0:
            raise CompileError(f"--percentile must be in (0, 100], not {self.percentile!r}")
        for name in ("tile_pitch_mm", "weak_coupling"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise CompileError(f"--{name.replace('_', '-')} must be a positive number, not {v!r}")
        if self.weak_coupling >= 1:
            raise CompileError(f"--weak-coupling must be < 1 (a fraction of 2π f0), not {self.weak_coupling!r}")
        for name in ("tdm_phases_per_wire", "tdm_word_bits"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= (16 if name == "tdm_word_bits" else 4096):
                raise CompileError(f"--{name.replace('_', '-')} must be an integer in 1..{16 if name == 'tdm_word_bits' else 4096}, "
                                   f"not {v!r}")
        for name in ("link_bit_rate_gbps", "low_swing_v"):
            v = getattr(self, name)
            if isinstance(v, bool) or not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise CompileError(f"--{name.replace('_', '-')} must be a positive number, not {v!r}")
        v = self.link_jitter_ps
        if isinstance(v, bool) or not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
            raise CompileError(f"--link-jitter-ps must be a number >= 0, not {v!r}")
        if self.tau_s is not None and not (isinstance(self.tau_s, (int, float)) and math.isfinite(self.tau_s) and self.tau_s > 0):
            raise CompileError(f"--tau must be a positive number of seconds, not {self.tau_s!r}")

    @property
    def k_bits(self) -> int:
        return self.bits

    @property
    def w_bits(self) -> int:
        return self.bits if self.omega_bits is None else self.omega_bits

    @property
    def d_bits(self) -> int:
        return self.bits if self.drive_bits is None else self.drive_bits

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CompileOptions:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise CompileError(f"unknown compile options: {', '.join(unknown)}")
        return cls(**data)
