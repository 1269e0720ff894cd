"""What the cells are drawn of: every transistor's W and L, every capacitor and resistor, read
off the same subcircuits the characterisation simulates (`hw.spice.cells`), so the area
estimate (`analysis.area`) and the SPICE decks cannot describe two different cells.

`inventory(subcircuit)` parses a subcircuit's element lines (M: W and L; C: farads; R:
ohms; current sources are bias references and carry no area). `cells_layout(process,
coupler)` gives the three pieces an array is built of:

- ``ring``: one oscillator cell with its bias pair (`RingOscillator.subcircuit`);
- ``coupler_slot``: what one *directed* coupler slot (i ← j) costs: half a resistor DAC
  (one DAC joins a pair both ways) or one gm injector (one per direction);
- ``tap``: the gm coupler's per-cell tap buffer, shared by the cell's whole fan-out (none
  for the resistor DAC).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from hw.spice.process import Process, process_named

_VALUE = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")
_SUFFIX = {"f": 1e-15, "p": 1e-12, "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "meg": 1e6, "g": 1e9}


class LayoutError(ValueError):
    """A subcircuit line the inventory cannot read."""


def _number(token: str) -> float:
    t = token.lower()
    if _VALUE.match(t):
        return float(t)
    for suffix in sorted(_SUFFIX, key=len, reverse=True):
        if t.endswith(suffix) and _VALUE.match(t[: -len(suffix)]):
            return float(t[: -len(suffix)]) * _SUFFIX[suffix]
    raise LayoutError(f"not a SPICE number: {token!r}")


@dataclass(frozen=True)
class Inventory:
    """The drawn devices of one piece: transistors as (W, L) in metres, capacitors in
    farads, resistors in ohms. `scaled(f)` is f copies (f may be ½: half a shared DAC)."""

    transistors: tuple[tuple[float, float], ...]
    capacitors_f: tuple[float, ...] = ()
    resistors_ohm: tuple[float, ...] = ()
    copies: float = 1.0

    @property
    def transistor_count(self) -> float:
        return self.copies * len(self.transistors)

    @property
    def gate_area_m2(self) -> float:
        return self.copies * sum(w * l for w, l in self.transistors)

    @property
    def capacitance_f(self) -> float:
        return self.copies * sum(self.capacitors_f)

    @property
    def resistance_ohm(self) -> float:
        return self.copies * sum(self.resistors_ohm)

    def scaled(self, factor: float) -> Inventory:
        return Inventory(self.transistors, self.capacitors_f, self.resistors_ohm, self.copies * factor)


def inventory(subcircuit) -> Inventory:
    """The devices of a subcircuit (a PySpice SubCircuit or its netlist text)."""
    transistors, caps, res = [], [], []
    for raw in str(subcircuit).splitlines():
        line = raw.strip()
        if not line or line[0] in "*." or line.startswith("+"):
            continue
        kind = line[0].upper()
        tokens = line.split()
        if kind == "M":
            params = dict(t.lower().split("=", 1) for t in tokens[1:] if "=" in t)
            if "w" not in params or "l" not in params:
                raise LayoutError(f"transistor without W and L: {line!r}")
            transistors.append((_number(params["w"]), _number(params["l"])))
        elif kind in "CR":
            if len(tokens) < 4:
                raise LayoutError(f"{'capacitor' if kind == 'C' else 'resistor'} without a value: {line!r}")
            (caps if kind == "C" else res).append(_number(tokens[3]))
        elif kind in "IVX":
            continue  # bias references, probes, instances of other subcircuits
        else:
            raise LayoutError(f"unknown element {kind!r} in {line!r}")
    return Inventory(tuple(transistors), tuple(caps), tuple(res))


@dataclass(frozen=True)
class CellsLayout:
    """The pieces an array of one process and coupler kind is built of (module docstring),
    with the process geometry the area model needs."""

    process: str  # registry key
    coupler: str
    l_min_m: float
    resistor_width_m: float
    resistor_sheet_ohm: float
    ring: Inventory
    coupler_slot: Inventory
    tap: Inventory | None


@functools.lru_cache(maxsize=16)
def cells_layout(process: Process | str = "generic180", coupler: str = "resistive") -> CellsLayout:
    """The project's cells of `process` with `coupler` couplers, as `inventory` reads them
    (cached: the cells are fixed designs)."""
    from hw.spice import cells
    from hw.spice.process import matching_of

    proc = process_named(process) if isinstance(process, str) else process
    osc = cells.ring_for(proc)
    dac = cells.coupler_for(proc, coupler, n_stages=osc.n_stages)
    # a resistor DAC joins i and j both ways: half of one per directed slot; a gm injector is one way
    slot = inventory(dac.subcircuit()).scaled(0.5 if coupler == "resistive" else 1.0)
    tap = inventory(dac.tap_subcircuit()) if hasattr(dac, "tap_subcircuit") else None
    m = matching_of(proc)
    return CellsLayout(process=proc.key, coupler=coupler, l_min_m=proc.l_min_m, resistor_width_m=m.w_res_m,
                       resistor_sheet_ohm=m.r_sheet_ohm, ring=inventory(osc.subcircuit()), coupler_slot=slot, tap=tap)
