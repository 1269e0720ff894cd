"""The typed, frozen sections of an `ArrayIR`: what consumers read instead of string keys.

Each section is built from its part of array.json once, when the IR is made or loaded
(`compiler.ir` owns the JSON: schema, canonical text, files); its fields carry the
physics names and units. The calibration the array was compiled with is the
`hw.Calibration` itself, stored whole in the document, so energy, the array check, sweeps
and the demo all read the one the compiler used.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Any, Mapping


def _frozen(d: Mapping[str, float]) -> Mapping[str, float]:
    return MappingProxyType({str(k): float(v) for k, v in d.items()})


_SCALARS = {"int": int, "float": float, "str": str, "bool": bool}


def _scalars(cls, d: Mapping[str, Any]):
    """A section whose fields are all scalars, each read from `d` under its own name."""
    return cls(**{f.name: _SCALARS[f.type](d[f.name]) for f in fields(cls)})


@dataclass(frozen=True)
class Dynamics:
    """The integration the array runs: N main and N_c conditioning cells, classes, and
    `steps` steps of `solver` to model time `T`."""

    n: int
    n_cond: int
    num_classes: int
    steps: int
    T: float
    solver: str

    @classmethod
    def from_doc(cls, d: Mapping[str, Any]) -> Dynamics:
        return _scalars(cls, d)


@dataclass(frozen=True)
class CouplerUse:
    """How the codes sit on the calibrated coupler DAC."""

    calibrated_bits: int
    code_bits: int
    resolution_ok: bool
    k_lsb_needed_rad_s: float
    k_lsb_available_rad_s: float
    linearity_error: float

    @classmethod
    def from_doc(cls, d: Mapping[str, Any]) -> CouplerUse:
        return _scalars(cls, d)


@dataclass(frozen=True)
class Physical:
    """Model time on the cells' time (ARCHITECTURE.md, physical mapping): τ seconds per
    unit of model time, the limit that sets it, latency T·τ, the carrier, and how much of
    each physical range the array uses."""

    tau_s: float
    binding_limit: str
    tau_limits_s: Mapping[str, float]
    latency_s: float
    carrier_cycles_per_inference: float
    f0_hz: float
    used_fraction: Mapping[str, float]
    coupler: CouplerUse

    @classmethod
    def from_doc(cls, d: Mapping[str, Any]) -> Physical:
        return cls(tau_s=float(d["tau_s"]), binding_limit=str(d["binding_limit"]),
                   tau_limits_s=_frozen(d["tau_limits_s"]), latency_s=float(d["latency_s"]),
                   carrier_cycles_per_inference=float(d["carrier_cycles_per_inference"]), f0_hz=float(d["f0_hz"]),
                   used_fraction=_frozen(d["used_fraction"]), coupler=CouplerUse.from_doc(d["coupler"]))


@dataclass(frozen=True)
class Link:
    """Wires between two sites (tile ids; −1 is the conditioning tile)."""

    tiles: tuple[int, int]
    wires: int
    length_mm: float


@dataclass(frozen=True)
class Routing:
    """Tiles, their members and the wires between them, with the resources they cost."""

    target: str
    tile_size: int
    tiles: tuple[tuple[int, ...], ...]
    positions: tuple[tuple[int, int], ...]
    links: tuple[Link, ...]
    crossbars: int
    couplers_physical: int
    couplers_active: int
    inter_tile_links: int
    drive_couplers: int
    drive_code_banks: int
    conditioning_couplers: int
    wire_length_mm: float
    coupling_code_bits: int
    weight_memory_bits: int

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Routing:
        r, o = doc["resources"], doc["options"]
        return cls(
            target=str(o["target"]), tile_size=int(o["tile"]),
            tiles=tuple(tuple(int(i) for i in t["oscillators"]) for t in doc["tiles"]),
            positions=tuple((int(t["position"][0]), int(t["position"][1])) for t in doc["tiles"]),
            links=tuple(Link(tiles=(int(x["tiles"][0]), int(x["tiles"][1])), wires=int(x["wires"]),
                             length_mm=float(x["length_mm"])) for x in doc["links"]),
            crossbars=int(r["crossbars"]), couplers_physical=int(r["couplers_physical"]),
            couplers_active=int(r["couplers_active"]), inter_tile_links=int(r["inter_tile_links"]),
            drive_couplers=int(r["drive_couplers"]), drive_code_banks=int(r["drive_code_banks"]),
            conditioning_couplers=int(r["conditioning_couplers"]), wire_length_mm=float(r["wire_length_mm"]),
            coupling_code_bits=int(r["coupling_code_bits"]), weight_memory_bits=int(r["weight_memory_bits"]),
        )


@dataclass(frozen=True)
class DecoderInfo:
    """The digital decoder the IR carries: its work per image and parameter count."""

    parameters: int
    macs_per_image: int
    elementwise_per_image: int
    precision: str

    @classmethod
    def from_doc(cls, d: Mapping[str, Any]) -> DecoderInfo:
        return _scalars(cls, d)


@dataclass(frozen=True)
class CodeBits:
    """The declared width of every code tensor (sign-magnitude, |code| ≤ 2^(b−1) − 1)."""

    K: int
    omega: int
    drive: int
    C: int
    nu: int

    @classmethod
    def from_doc(cls, quantization: Mapping[str, Any]) -> CodeBits:
        return cls(**{name: int(quantization[name]["bits"]) for name in ("K", "omega", "drive", "C", "nu")})
