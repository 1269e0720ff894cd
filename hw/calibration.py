"""`hw.Calibration`: the measured figures of one oscillator cell and its coupler.

What the compiler and the energy estimator read instead of guesses: the carrier f0 and the
tuning range of a cell, the effective Kuramoto coupling K_eff per coupler code, joules per
carrier cycle of a cell, of the shared bias branch and of an active coupler, the period
jitter of a free-running cell, and the mismatch across cells and couplers. Units are in the
field names. K_eff is in the behavioural model's convention

    dθ_i/dt = ω_i + Σ_j K_ij sin(θ_j − θ_i)

so two cells joined by one coupler obey dψ/dt = Δω − 2 K sin ψ (ψ = θ_b − θ_a).

This module is pure (numpy/json/jsonschema): `hw.characterization` produces a measured
Calibration from ngspice; `Calibration.default()` is the unmeasured fallback.
The file format is JSON, schema `hw/schemas/calibration.schema.json`, `format_version` 1.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

FORMAT = "un0hw-calibration"
FORMAT_VERSION = 1
SOURCES = ("default", "measured")
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

    def __post_init__(self) -> None:
        # Tuples from lists (JSON) so that frozen instances compare and hash by value.
        object.__setattr__(self, "coupler_k_rad_s", tuple(float(k) for k in self.coupler_k_rad_s))
        object.__setattr__(self, "coupling_harmonics", tuple(float(a) for a in self.coupling_harmonics))
        if self.format_version != FORMAT_VERSION:
            raise CalibrationError(f"format_version must be {FORMAT_VERSION}, not {self.format_version!r}")
        if self.source not in SOURCES:
            raise CalibrationError(f"source must be one of {SOURCES}, not {self.source!r}")
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

    # --- files -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, the file's content (lists for tuples, `format` tag first)."""
        doc: dict[str, Any] = {"format": FORMAT}
        for key, value in asdict(self).items():
            doc[key] = list(value) if isinstance(value, tuple) else value
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
                and doc["format_version"] > FORMAT_VERSION:
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


# The default is the full measured run of `un0hw cells characterize` (2026-11-25, ngspice 39,
# docs/cells/calibration.json), rounded to 3 significant figures: the unmeasured fallback
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
    period_jitter_s=1.69e-12,
    sigma_f0_rel=0.0202,
    sigma_k_rel=0.0095,
    ngspice_version=None,
    netlist_sha256=None,
    notes=(
        "Default: the figures of this project's full measured run, `un0hw cells characterize -o "
        "docs/cells/calibration.json --plots docs/cells/run` (2026-11-25, ngspice 39, 2-core Xeon), rounded to "
        "3 significant figures; see that file's notes and docs/cells.md for how each was "
        "measured. 5-stage current-starved ring on the project's level-1 180 nm-class cards at Vctrl 1.0 V; "
        "4-bit sign-magnitude resistor coupler DAC (r_lsb 1.4 MOhm), K_eff from Adler fits of drifting "
        "pairs (mean of +code and -code); jitter from trnoise channel noise; mismatch from Pelgrom Monte "
        "Carlo (A_VT 5 mV um, A_beta 1 % um, A_R 2 % um). Not a foundry PDK: absolute values would move by "
        "tens of percent on a real process. For a calibration of your own cells, run the command above."
    ),
    coupler_load_f_rel=0.202,
    coupler_on_f_rel_per_bit=0.0487,
)
