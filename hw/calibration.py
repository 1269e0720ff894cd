"""`hw.Calibration`: the measured figures of one oscillator cell and its coupler.

What the compiler and the energy estimator read instead of guesses: the carrier f0 and the
tuning range of a cell, the effective Kuramoto coupling K_eff per coupler code, joules per
carrier cycle of a cell, of the shared bias branch and of an active coupler, the period
jitter of a free-running cell, and the mismatch across cells and couplers. Units are in the
field names. K_eff is in the behavioural model's convention

    dθ_i/dt = ω_i + Σ_j K_ij sin(θ_j − θ_i)

so two cells joined by one coupler obey dψ/dt = Δω − 2 K sin ψ (ψ = θ_b − θ_a).

Format version 2 adds what a coupler really does to each cell it joins, its **coupling
function** (measured as `hw.measure.measure_coupling_function` does: each cell's own phase
velocity on a slipping pair, harmonics k ≤ 3):

    dθ_i/dt = ω_i + Σ_j H_ij(θ_j − θ_i),   H(x) = b0 + Σ_{k≤3} (a_k sin kx + b_k cos kx)

as tables — per signed code at one coupler per cell (`coupling_codes_rad_s`, rows for codes
−max..−1, 1..max, columns `COUPLING_TERMS`), and per sign and fan-out m the factor each term
takes when m couplers hang on the receiving cell (`fanout_receiver`) or on the sending cell
(`fanout_sender`), at the array's carrier (`carrier_hz`, cells trimmed there) — plus the
tuning curve (`tuning_vctrl_v`, `tuning_f_hz`) the trims read. `coupling_coefficients`
realises H for any code and loads. A version-1 file still loads: it has no such tables and
is the **sine-only approximation** H(x) = K_eff(code) sin x (`sine_only`).

This module is pure (numpy/json/jsonschema): `hw.characterization` produces a measured
Calibration from ngspice; `Calibration.default()` is the unmeasured fallback.
The file format is JSON, schema `hw/schemas/calibration.schema.json`, `format_version` 1 or 2.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from importlib import resources
from itertools import pairwise
from pathlib import Path
from typing import Any

import jsonschema

FORMAT = "un0hw-calibration"
FORMAT_VERSION = 2
#: versions this module reads (version 1: no coupling-function tables, the sine-only approximation)
READS_VERSIONS = (1, 2)
#: the fields version 2 adds (all required there, absent in version 1)
FORMAT_2_FIELDS = ("carrier_hz", "coupling_codes_rad_s", "coupling_residual", "fanout_receiver", "fanout_sender",
                   "fanout_residual", "tuning_vctrl_v", "tuning_f_hz", "fanout_ref_code")
#: the coefficient order of a coupling-function row (rad/s): H(x) = b0 + Σ_k a_k sin kx + b_k cos kx
COUPLING_TERMS = ("b0", "a1", "b1", "a2", "b2", "a3", "b3")
SOURCES = ("default", "measured")
#: the coupler circuits a calibration can describe, and whether each is reciprocal: a resistor
#: DAC joins two cells by one conductance, so its coupling is the same both ways (K_ij = K_ji
#: but for the loads); the gm coupler is two one-way current injectors, so K_ij != K_ji is
#: realisable (`hw.spice.cells.GmCouplerDAC`)
COUPLER_RECIPROCAL = {"resistive": True, "gm": False}
COUPLER_KINDS = tuple(COUPLER_RECIPROCAL)
#: the weakest full-code coupling accepted, as a fraction of the carrier's 2π f0: below it a
#: coupler moves a phase by less than a nanoradian per carrier cycle (the time scale τ it
#: would need overflows every physical figure derived from it)
K_MIN_PER_CARRIER = 1e-9


class CalibrationError(ValueError):
    """A calibration file or value is invalid: one line naming the file/field and the fault."""


def _schema() -> dict[str, Any]:
    return json.loads(resources.files("hw").joinpath("schemas", "calibration.schema.json").read_text())


@dataclass(frozen=True, kw_only=True)
class Calibration:
    """Measured (or default) figures of one cell type, its coupler DAC and its bias branch."""

    format_version: int
    source: str  # "default" | "measured"
    process: str  # short description of the process cards
    vdd_v: float
    f0_hz: float  # carrier: cell frequency at the nominal control point
    f_min_hz: float  # frequency at the low control limit
    f_max_hz: float  # frequency at the high control limit
    tuning_nonlinearity: float  # worst |f - straight-line fit| / (f_max - f_min)
    cell_energy_per_cycle_j: float  # one ring, per carrier cycle (bias branch not included)
    bias_energy_per_cycle_j: float  # the shared bias branch, per carrier cycle (one per tile)
    coupler_bits: int  # sign + magnitude bits of the coupler code
    coupler_k_rad_s: tuple[float, ...]  # K_eff per magnitude code 0..2^(bits-1)-1
    coupler_energy_per_cycle_j: float  # one active coupler at full code, per carrier cycle
    coupling_harmonics: tuple[float, ...]  # |a_k| / |a_1|, k = 2, 3, ... of the coupling function
    period_jitter_s: float  # rms period jitter of a free-running cell at f0
    sigma_f0_rel: float  # sigma(f0) / f0 across cells
    sigma_k_rel: float  # sigma(K_eff) / K_eff across couplers
    ngspice_version: str | None
    netlist_sha256: str | None  # hash of the .cir decks that produced the figures
    notes: str
    # Loading by the couplers a cell is wired to (f0 above is a lone cell): each attached
    # coupler lowers the cell's frequency by coupler_load_f_rel at code 0, and by a further
    # coupler_on_f_rel_per_bit for every magnitude bit switched on in it (its switches'
    # channel and far-side capacitance join the node). A compiler can pre-compensate ω.
    coupler_load_f_rel: float = 0.0
    coupler_on_f_rel_per_bit: float = 0.0
    # --- version 2: the coupling function (module docstring); None in a version-1 file ---
    carrier_hz: float | None = None  # the array's operating frequency the tables were measured at
    coupling_codes_rad_s: tuple[tuple[float, ...], ...] | None = None  # codes -max..-1, 1..max × COUPLING_TERMS
    coupling_residual: tuple[float, ...] | None = None  # per row: rms velocity residual / |a1|
    fanout_receiver: tuple[tuple[tuple[float, ...], ...], ...] | None = None  # [sign +, -][m - 1][term]
    fanout_sender: tuple[tuple[tuple[float, ...], ...], ...] | None = None  # [sign +, -][m - 1][term]
    fanout_residual: tuple[tuple[float, ...], ...] | None = None  # [sign][m - 1]: worst residual / |a1|
    tuning_vctrl_v: tuple[float, ...] | None = None  # the lone cell's tuning curve
    tuning_f_hz: tuple[float, ...] | None = None
    fanout_ref_code: int | None = None  # the code of the load runs (and of their extra, open couplers)
    # the coupler circuit (`COUPLER_KINDS`); files written before it was recorded were all
    # measured on the resistor DAC, which is what an absent field reads as
    coupler: str = "resistive"

    def __post_init__(self) -> None:
        # Tuples from lists (JSON) so that frozen instances compare and hash by value.
        object.__setattr__(self, "coupler_k_rad_s", tuple(float(k) for k in self.coupler_k_rad_s))
        object.__setattr__(self, "coupling_harmonics", tuple(float(a) for a in self.coupling_harmonics))
        for name, depth in (("coupling_codes_rad_s", 2), ("coupling_residual", 1), ("fanout_receiver", 3),
                            ("fanout_sender", 3), ("fanout_residual", 2), ("tuning_vctrl_v", 1), ("tuning_f_hz", 1)):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _tuples(value, depth, name))
        if self.format_version not in READS_VERSIONS:
            raise CalibrationError(f"format_version must be one of {READS_VERSIONS}, not {self.format_version!r}")
        if self.source not in SOURCES:
            raise CalibrationError(f"source must be one of {SOURCES}, not {self.source!r}")
        if self.coupler not in COUPLER_KINDS:
            raise CalibrationError(f"coupler must be one of {', '.join(COUPLER_KINDS)}, not {self.coupler!r}")
        for name in ("vdd_v", "f0_hz", "f_min_hz", "f_max_hz", "cell_energy_per_cycle_j"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise CalibrationError(f"{name} must be a finite number > 0, not {value!r}")
        for name in ("tuning_nonlinearity", "bias_energy_per_cycle_j", "coupler_energy_per_cycle_j",
                     "period_jitter_s", "sigma_f0_rel", "sigma_k_rel", "coupler_load_f_rel",
                     "coupler_on_f_rel_per_bit"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise CalibrationError(f"{name} must be a finite number >= 0, not {value!r}")
        if not self.f_min_hz < self.f0_hz < self.f_max_hz:
            raise CalibrationError(f"need f_min_hz < f0_hz < f_max_hz (a cell must tune both ways from its "
                                   f"carrier to hold a frequency offset), got {self.f_min_hz!r}, "
                                   f"{self.f0_hz!r}, {self.f_max_hz!r}")
        if not (isinstance(self.coupler_bits, int) and 2 <= self.coupler_bits <= 16):
            raise CalibrationError(f"coupler_bits must be an integer in 2..16, not {self.coupler_bits!r}")
        n_codes = 2 ** (self.coupler_bits - 1)
        k = self.coupler_k_rad_s
        if len(k) != n_codes:
            raise CalibrationError(f"coupler_k_rad_s must hold {n_codes} values (codes 0..{n_codes - 1} "
                                   f"of {self.coupler_bits} bits), not {len(k)}")
        if not all(math.isfinite(x) and x >= 0 for x in k):
            raise CalibrationError(f"coupler_k_rad_s must be finite and >= 0, got {list(k)}")
        bad = [c for c in range(1, n_codes) if k[c] < k[c - 1]]
        if bad:
            raise CalibrationError(f"coupler_k_rad_s must be non-decreasing in the code; it falls at "
                                   f"code {bad[0]} ({k[bad[0] - 1]:.4g} -> {k[bad[0]]:.4g} rad/s)")
        if not k[-1] >= K_MIN_PER_CARRIER * 2 * math.pi * self.f0_hz:
            raise CalibrationError(f"coupler_k_rad_s must reach at least {K_MIN_PER_CARRIER:g} x 2 pi f0 "
                                   f"({K_MIN_PER_CARRIER * 2 * math.pi * self.f0_hz:.3g} rad/s) at full code, not "
                                   f"{k[-1]!r}: a coupler that weak cannot move a phase within any finite run")
        if not all(math.isfinite(a) and a >= 0 for a in self.coupling_harmonics):
            raise CalibrationError(f"coupling_harmonics must be finite and >= 0, got "
                                   f"{list(self.coupling_harmonics)}")

        self._check_coupling_function()

    def _check_coupling_function(self) -> None:
        v2 = FORMAT_2_FIELDS
        given = [name for name in v2 if getattr(self, name) is not None]
        if self.format_version == 1:
            if given:
                raise CalibrationError(f"format_version 1 has no coupling-function tables; {given[0]} needs version 2")
            return
        missing = [name for name in v2 if getattr(self, name) is None]
        if missing:
            raise CalibrationError(f"format_version 2 needs {missing[0]} (the coupling-function tables)")
        if not (math.isfinite(self.carrier_hz) and self.f_min_hz < self.carrier_hz < self.f_max_hz):
            raise CalibrationError(f"carrier_hz must lie inside the tuning range ({self.f_min_hz:.4g}..{self.f_max_hz:.4g} "
                                   f"Hz), not {self.carrier_hz!r}")
        rows, terms = 2 * self.max_code, len(COUPLING_TERMS)
        codes = self.coupling_codes_rad_s
        if len(codes) != rows or any(len(r) != terms for r in codes):
            raise CalibrationError(f"coupling_codes_rad_s must be {rows} rows (codes -{self.max_code}..-1, "
                                   f"1..{self.max_code}) of {terms} terms {COUPLING_TERMS}")
        if len(self.coupling_residual) != rows:
            raise CalibrationError(f"coupling_residual must hold {rows} values, one per code row")
        for k, row in enumerate(codes):
            code = self.code_of_row(k)
            if not all(math.isfinite(x) for x in row) or not row[1] * code > 0:
                raise CalibrationError(f"coupling_codes_rad_s row of code {code:+d} must be finite with a1 of the "
                                       f"code's sign, got {list(row)}")
        for name in ("fanout_receiver", "fanout_sender"):
            table = getattr(self, name)
            if len(table) != 2 or not table[0] or len(table[0]) != len(table[1]) \
                    or any(len(r) != terms for sign in table for r in sign):
                raise CalibrationError(f"{name} must be [sign +, sign -] x [m = 1..M] x {terms} terms, M >= 1")
            if not all(math.isfinite(x) and x > 0 for sign in table for r in sign for x in r[1:3]):
                raise CalibrationError(f"{name}: the a1 and b1 factors must be finite and > 0")
            if any(abs(x - 1) > 1e-9 for sign in table for x in sign[0]):
                raise CalibrationError(f"{name}: the factors at m = 1 must be 1 (the code table is measured there)")
        if len(self.fanout_receiver[0]) != len(self.fanout_sender[0]) \
                or len(self.fanout_residual) != 2 or len(self.fanout_residual[0]) != len(self.fanout_receiver[0]):
            raise CalibrationError("fanout_receiver, fanout_sender and fanout_residual must cover the same m")
        ref = self.fanout_ref_code
        if isinstance(ref, bool) or not isinstance(ref, int) or not 1 <= ref <= self.max_code:
            raise CalibrationError(f"fanout_ref_code must be an integer in 1..{self.max_code}, not {ref!r}")
        v, f = self.tuning_vctrl_v, self.tuning_f_hz
        if len(v) < 3 or len(v) != len(f) or any(b <= a for a, b in pairwise(v)) \
                or any(b <= a for a, b in pairwise(f)):
            raise CalibrationError("tuning_vctrl_v and tuning_f_hz must be >= 3 points, both increasing")

    # --- derived figures ---------------------------------------------------------------
    @property
    def k_max_rad_s(self) -> float:
        """K_eff at full code (rad/s)."""
        return self.coupler_k_rad_s[-1]

    @property
    def max_code(self) -> int:
        """Largest magnitude code, 2^(bits-1) - 1."""
        return 2 ** (self.coupler_bits - 1) - 1

    @property
    def tuning_half_range_hz(self) -> float:
        """How far a cell can be tuned either way from f0: min(f0 - f_min, f_max - f0)."""
        return min(self.f0_hz - self.f_min_hz, self.f_max_hz - self.f0_hz)

    @property
    def phase_noise_rad_per_sqrt_s(self) -> float:
        """White period jitter as phase diffusion: σ_θ(t) = this · sqrt(t).

        Each period adds an independent phase error 2π f0 σ_T (rad); f0 periods per second
        give a variance (2π f0 σ_T)² f0 per second, so the figure is 2π f0 σ_T sqrt(f0).
        """
        return 2 * math.pi * self.f0_hz * self.period_jitter_s * math.sqrt(self.f0_hz)

    def k_of_code(self, code: int) -> float:
        """K_eff (rad/s) of a signed code: sign(code) · K[|code|]; |code| <= max_code."""
        if isinstance(code, bool) or not isinstance(code, int):
            try:
                import numpy as np

                if isinstance(code, np.integer):
                    code = int(code)
                else:
                    raise TypeError
            except TypeError:
                raise CalibrationError(f"code must be an integer, not {code!r}") from None
        if abs(code) > self.max_code:
            raise CalibrationError(f"code must be in -{self.max_code}..{self.max_code} "
                                   f"({self.coupler_bits}-bit sign-magnitude), not {code}")
        return math.copysign(self.coupler_k_rad_s[abs(code)], code) if code else 0.0

    @property
    def reciprocal(self) -> bool:
        """Whether the coupler is reciprocal (one DAC per pair, K_ij = K_ji; the resistor DAC)
        or two one-way injectors that can set each direction on its own (the gm coupler)."""
        return COUPLER_RECIPROCAL[self.coupler]

    # --- the coupling function ---------------------------------------------------------
    @property
    def sine_only(self) -> bool:
        """True for a version-1 calibration: H(x) = K_eff(code) sin x, the sine-only approximation."""
        return self.coupling_codes_rad_s is None

    def as_sine_only(self) -> Calibration:
        """This calibration as version 1: the same cells, the coupling function dropped
        (H = K_eff(code) sin x) — the approximation oscsim made before it carried H."""
        from dataclasses import replace

        return replace(self, format_version=1, **{name: None for name in FORMAT_2_FIELDS})

    @property
    def fanout_max(self) -> int:
        """The largest fan-out m the tables were measured at (1 when sine-only: no load table)."""
        return 1 if self.fanout_receiver is None else len(self.fanout_receiver[0])

    def code_of_row(self, row: int) -> int:
        """The signed code of row `row` of `coupling_codes_rad_s` (-max..-1, 1..max)."""
        return row - self.max_code if row < self.max_code else row - self.max_code + 1

    def bits_on(self, codes):
        """How many magnitude bits each signed code switches on (float array, codes' shape)."""
        import numpy as np

        popcount = np.array([c.bit_count() for c in range(self.max_code + 1)], dtype=np.float64)
        return popcount[np.abs(np.asarray(codes).astype(np.int64)).clip(0, self.max_code)]

    def coupler_load(self, codes):
        """The load a coupler at signed `codes` puts on each of its cells, in units of the load
        runs' extra couplers (code ±`fanout_ref_code`): (L + b·L_bit) / (L + b_ref·L_bit) with
        b the magnitude bits switched on, L = `coupler_load_f_rel`, L_bit =
        `coupler_on_f_rel_per_bit` (every ring node sees a coupler's switches; the ones switched
        on add their far side). 0 for code 0 (no coupler); 1 for every coupler when sine-only."""
        import numpy as np

        codes = np.asarray(codes)
        present = codes != 0
        if self.sine_only or self.fanout_ref_code is None:
            return present.astype(np.float64)
        bits = self.bits_on(codes)
        ref = self.fanout_ref_code.bit_count()
        L, Lb = self.coupler_load_f_rel, self.coupler_on_f_rel_per_bit
        return np.where(present, (L + bits * Lb) / (L + ref * Lb), 0.0)

    def coupling_coefficients(self, codes, m_recv=1, m_send=1):
        """H's coefficients (…, 7) in rad/s (`COUPLING_TERMS`) of couplers at signed `codes`
        whose receiving cell carries the load of `m_recv` couplers and sending cell `m_send`
        (arrays that broadcast, in load-run units — `coupler_load` — so fractional values are
        fine; code 0: no coupler, all zero).

        Version 2: row(code) × receiver factor(sign, m_recv) × sender factor(sign, m_send),
        term by term, the factors interpolated linearly in m; a load beyond the table's
        `fanout_max` is held at its last row (the caller says so: `fanout_beyond`).
        Version 1 (`sine_only`): (0, K_eff(code), 0, …)."""
        import numpy as np

        codes = np.asarray(codes)
        if codes.dtype.kind not in "iu" or codes.size and int(np.abs(codes).max()) > self.max_code:
            raise CalibrationError(f"codes must be integers in -{self.max_code}..{self.max_code}")
        shape = np.broadcast_shapes(codes.shape, np.shape(m_recv), np.shape(m_send))
        out = np.zeros((*shape, len(COUPLING_TERMS)))
        sign = np.sign(codes)
        mag = np.abs(codes)
        if self.sine_only:
            k = np.asarray(self.coupler_k_rad_s)[mag] * sign
            out[..., 1] = np.broadcast_to(k, shape)
            return out
        table = np.asarray(self.coupling_codes_rad_s)
        row = np.where(codes < 0, codes + self.max_code, codes + self.max_code - 1).clip(0, table.shape[0] - 1)
        s = (codes < 0).astype(int)
        values = table[row] * self._load_factor(self.fanout_receiver, s, m_recv) \
            * self._load_factor(self.fanout_sender, s, m_send)
        out[...] = np.where((codes != 0)[..., None], values, 0.0)
        return out

    def fundamental(self, codes, m_recv=1, m_send=1):
        """|a1| (rad/s) alone of couplers at `codes` and loads: `coupling_coefficients`' a1 term
        without the other six (the code search's inner loop)."""
        import numpy as np

        codes = np.asarray(codes)
        if self.sine_only:
            return np.broadcast_to(np.asarray(self.coupler_k_rad_s)[np.abs(codes)],
                                   np.broadcast_shapes(codes.shape, np.shape(m_recv), np.shape(m_send)))
        rows = np.abs(np.asarray(self.coupling_codes_rad_s)[:, 1])
        row = np.where(codes < 0, codes + self.max_code, codes + self.max_code - 1).clip(0, rows.size - 1)
        s = (codes < 0).astype(int)
        value = rows[row] * self._load_factor(self.fanout_receiver, s, m_recv, term=1) \
            * self._load_factor(self.fanout_sender, s, m_send, term=1)
        return np.where(codes != 0, value, 0.0)

    def _load_factor(self, table, sign_index, m, term=None):
        """(…, 7) — or (…) for one `term` — the load table of each coupler's sign at load m,
        linear between integer m."""
        import numpy as np

        t = np.asarray(table)
        if term is not None:
            t = t[..., term]
        x = np.clip(np.asarray(m, dtype=np.float64), 1.0, float(self.fanout_max)) - 1.0
        lo = np.floor(x).astype(int)
        hi = np.minimum(lo + 1, self.fanout_max - 1)
        w = (x - lo) if term is not None else (x - lo)[..., None]
        return t[sign_index, lo] * (1 - w) + t[sign_index, hi] * w

    def fanout_beyond(self, m) -> int:
        """How many of the loads `m` exceed the measured table (held at its last row)."""
        import numpy as np

        return int((np.asarray(m) > self.fanout_max + 1e-9).sum())

    # --- files -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, the file's content (lists for tuples, `format` tag first)."""
        doc: dict[str, Any] = {"format": FORMAT}
        for key, value in asdict(self).items():
            doc[key] = _lists(value)
        return doc

    def save(self, path: str | Path) -> None:
        """Write the JSON file atomically (temporary file, then rename)."""
        from oscsim import atomic_path

        text = json.dumps(self.to_dict(), indent=2) + "\n"
        with atomic_path(path) as tmp:
            tmp.write_text(text)

    @classmethod
    def from_dict(cls, doc: Any, *, where: str = "calibration") -> Calibration:
        """Validate a dict against the schema and the physical checks; CalibrationError if not."""
        if isinstance(doc, dict) and isinstance(doc.get("format_version"), int) \
                and doc["format_version"] > max(READS_VERSIONS):
            raise CalibrationError(f"{where}: format_version {doc['format_version']} is newer than this "
                                   f"un0hw reads ({FORMAT_VERSION})")
        try:
            jsonschema.validate(doc, _schema())
        except jsonschema.ValidationError as exc:
            at = "/".join(map(str, exc.absolute_path)) or "top level"
            raise CalibrationError(f"{where}: invalid calibration at {at}: {exc.message}") from None
        kwargs = {f.name: doc[f.name] for f in fields(cls) if f.name in doc}
        try:
            return cls(**kwargs)
        except CalibrationError as exc:
            raise CalibrationError(f"{where}: {exc}") from None

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        """Read and validate a calibration JSON file."""
        from oscsim.fileio import PathCheckError, read_json

        path = Path(path)
        if not path.exists():
            raise CalibrationError(f"{path}: no such calibration file")
        try:
            doc = read_json(path)
        except PathCheckError as exc:
            raise CalibrationError(f"{exc} (a calibration file)") from None
        return cls.from_dict(doc, where=str(path))

    @classmethod
    def default(cls) -> Calibration:
        """The unmeasured fallback, each figure with its origin in `notes`.

        Use a measured file (`un0hw cells characterize -o cal.json`) wherever one exists.
        """
        return DEFAULT


def _tuples(value: Any, depth: int, name: str) -> tuple:
    """Nested lists (JSON) as nested tuples of floats, `depth` levels deep."""
    try:
        if depth == 1:
            return tuple(float(x) for x in value)
        return tuple(_tuples(x, depth - 1, name) for x in value)
    except (TypeError, ValueError):
        raise CalibrationError(f"{name} must be nested lists of numbers, {depth} deep") from None


def _lists(value: Any) -> Any:
    return [_lists(x) for x in value] if isinstance(value, tuple) else value


# The default is the full measured run of `un0hw cells characterize` (2026-12-02, ngspice 39,
# docs/cells/calibration.json, format 2 with the coupling-function tables), rounded to 3 significant figures: the unmeasured fallback
# for code that has no calibration file, not a measurement of its own.
DEFAULT = Calibration(
    format_version=FORMAT_VERSION,
    source="default",
    process="generic-180nm-level1 (hw.spice.process: VDD 1.8 V, VTH 0.45 V, tox 4 nm)",
    vdd_v=1.8,
    f0_hz=379e6,
    f_min_hz=27.1e6,
    f_max_hz=818e6,
    tuning_nonlinearity=0.111,
    cell_energy_per_cycle_j=0.200e-12,
    bias_energy_per_cycle_j=0.183e-12,
    coupler_bits=4,
    coupler_k_rad_s=(0.0, 1.76e7, 3.47e7, 4.92e7, 6.66e7, 7.95e7, 9.32e7, 1.00e8),
    coupler_energy_per_cycle_j=2.46e-14,
    coupling_harmonics=(0.047, 0.027),
    period_jitter_s=1.68e-12,
    sigma_f0_rel=0.0202,
    sigma_k_rel=0.0095,
    ngspice_version=None,
    netlist_sha256=None,
    notes=(
        "Default: the figures of this project's full measured run, `un0hw cells characterize -o "
        "docs/cells/calibration.json --plots docs/cells/run` (2026-12-02, ngspice 39, 2-core Xeon), rounded to "
        "3 significant figures; see that file's notes and docs/cells.md for how each was "
        "measured. 5-stage current-starved ring on the project's level-1 180 nm-class cards at Vctrl 1.0 V; "
        "4-bit sign-magnitude resistor coupler DAC (r_lsb 1.4 MOhm), K_eff from Adler fits of drifting "
        "pairs (mean of +code and -code); the coupling function H (b0, a_k, b_k, k <= 3) per code from each cell's own "
        "phase velocity at the 303 MHz array carrier, with load factors for m = 1..8 couplers per cell; jitter from trnoise channel noise; mismatch from Pelgrom Monte "
        "Carlo (A_VT 5 mV um, A_beta 1 % um, A_R 2 % um). Not a foundry PDK: absolute values would move by "
        "tens of percent on a real process. For a calibration of your own cells, run the command above."
    ),
    coupler_load_f_rel=0.202,
    coupler_on_f_rel_per_bit=0.0487,
    carrier_hz=3.03e8,
    coupling_codes_rad_s=((1.08e8, -1.06e8, 6.9e7, -8.64e5, -1.8e6, 3.76e6, -2.38e6), (9.65e7, -9.54e7, 6.2e7, -4.79e6, 2.52e5, 3.06e6, -2.84e6), (8.19e7, -8.06e7, 5.23e7, -7.4e5, 3.52e5, 2.36e6, -2.54e6), (6.81e7, -6.88e7, 4.43e7, 2.69e5, -1.46e6, 2.46e6, -2.29e6), (5.21e7, -4.9e7, 3.28e7, -9.49e5, -1.79e6, 2.07e6, -2.05e6), (3.62e7, -3.49e7, 2.31e7, -5.42e5, -5.26e5, 1.26e6, -1.63e6), (1.87e7, -1.77e7, 1.18e7, 4.89e4, -2.12e5, 4.54e5, -6.08e5), (1.27e7, 1.74e7, -1.22e7, 8e4, -4.65e4, 4.98e5, -5.69e5), (2.5e7, 3.42e7, -2.4e7, 1.18e5, 2.13e5, 1.11e6, -1.21e6), (3.66e7, 4.93e7, -3.51e7, 3.34e5, 1.82e5, 1.35e6, -1.42e6), (4.89e7, 6.71e7, -4.63e7, 3.21e5, 3.6e5, 2.31e6, -2.46e6), (5.96e7, 7.99e7, -5.67e7, 5.87e5, 1.09e5, 2.46e6, -2.43e6), (7.09e7, 9.52e7, -6.77e7, 1.26e6, 5.04e5, 3.28e6, -2.79e6), (8.02e7, 1.05e8, -7.68e7, 1.62e6, -5.83e5, 4.3e6, -2.37e6)),
    coupling_residual=(0.0879, 0.0863, 0.0733, 0.0652, 0.0607, 0.0516, 0.0452, 0.0468, 0.0418, 0.0477, 0.0598, 0.061, 0.0675, 0.0673),
    fanout_receiver=(((1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0), (0.914, 0.885, 0.899, 0.885, 0.885, 0.885, 0.885), (0.807, 0.771, 0.777, 0.771, 0.771, 0.771, 0.771), (0.714, 0.689, 0.679, 0.689, 0.689, 0.689, 0.689), (0.657, 0.617, 0.634, 0.617, 0.617, 0.617, 0.617), (0.609, 0.564, 0.6, 0.564, 0.564, 0.564, 0.564), (0.557, 0.52, 0.573, 0.52, 0.52, 0.52, 0.52), (0.532, 0.479, 0.556, 0.479, 0.479, 0.479, 0.479)), ((1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0), (0.923, 0.835, 0.848, 0.835, 0.835, 0.835, 0.835), (0.813, 0.735, 0.728, 0.735, 0.735, 0.735, 0.735), (0.72, 0.671, 0.624, 0.671, 0.671, 0.671, 0.671), (0.655, 0.613, 0.557, 0.613, 0.613, 0.613, 0.613), (0.6, 0.567, 0.515, 0.567, 0.567, 0.567, 0.567), (0.558, 0.521, 0.515, 0.521, 0.521, 0.521, 0.521), (0.532, 0.488, 0.5, 0.488, 0.488, 0.488, 0.488))),
    fanout_sender=(((1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0), (1.0, 0.908, 1.04, 0.908, 0.908, 0.908, 0.908), (1.0, 0.854, 1.08, 0.854, 0.854, 0.854, 0.854), (1.01, 0.798, 1.09, 0.798, 0.798, 0.798, 0.798), (1.01, 0.768, 1.08, 0.768, 0.768, 0.768, 0.768), (1.01, 0.752, 1.05, 0.752, 0.752, 0.752, 0.752), (1.02, 0.739, 1.01, 0.739, 0.739, 0.739, 0.739), (1.01, 0.735, 0.972, 0.735, 0.735, 0.735, 0.735)), ((1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0), (1.01, 0.86, 0.983, 0.86, 0.86, 0.86, 0.86), (1.02, 0.78, 0.941, 0.78, 0.78, 0.78, 0.78), (1.02, 0.716, 0.907, 0.716, 0.716, 0.716, 0.716), (1.02, 0.676, 0.86, 0.676, 0.676, 0.676, 0.676), (1.03, 0.651, 0.803, 0.651, 0.651, 0.651, 0.651), (1.04, 0.631, 0.74, 0.631, 0.631, 0.631, 0.631), (1.04, 0.621, 0.69, 0.621, 0.621, 0.621, 0.621))),
    fanout_residual=((0.0598, 0.0653, 0.0644, 0.0663, 0.0652, 0.0646, 0.0652, 0.0643), (0.0652, 0.0801, 0.0821, 0.0907, 0.0872, 0.0887, 0.0925, 0.0912)),
    tuning_vctrl_v=(0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8),
    fanout_ref_code=4,
    tuning_f_hz=(2.71e7, 8.45e7, 1.72e8, 2.74e8, 3.79e8, 4.77e8, 5.57e8, 6.22e8, 6.74e8, 7.18e8, 7.56e8, 7.89e8, 8.18e8),
)
