"""The one place that states the processes: every card parameter, supply and matching figure.

Two processes, by registry name (`PROCESSES`, `process_named`):

- ``generic180``: a generic ~180 nm CMOS written as ngspice level-1 cards (below);
- ``ptm45``: the Predictive Technology Model's 45 nm high-performance node (metal gate,
  high-k, strained Si) as BSIM4 cards, ngspice level 54 (`PTM_45NM`, further down).

generic180. No vendor PDK is available, so these are textbook-scale numbers for a 1.8 V, 180 nm-class
process. Level 1 (Shichman-Hodges) has no velocity saturation or short-channel effects:
at L = 0.18 um it overestimates the on-current, so KP below is the *effective*
transconductance (mobility already degraded by the vertical field), not mu0*Cox, and the
current-starving devices use a longer channel where square-law is a fair description.
Every figure the characterisation reports is therefore "for this model process": the shape
of the results (tuning monotone, C*V^2 energy, locking regimes) carries over; the absolute
numbers would move by tens of percent on a real PDK.

Sources for the magnitudes: Razavi, "Design of Analog CMOS Integrated Circuits" (2nd ed.),
table 2.1-style 0.18 um figures; Baker, "CMOS Circuit Design, Layout, and Simulation"
(3rd ed.), the 180 nm long-channel parameter set (KPn ~ 120-170 uA/V^2, KPp ~ 30-60 uA/V^2,
VTH ~ 0.4-0.5 V, tox ~ 4 nm).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

EPS_OX_F_PER_M = 3.453e-11  # permittivity of SiO2: 3.9 * 8.854e-12 F/m
NOMINAL_TEMP_C = 27.0  # the trim point's temperature, and every card's TNOM
TEMP_RANGE_C = (-55.0, 150.0)  # what `Process.at` accepts (military to junction maximum)
VDD_SCALE_RANGE = (0.7, 1.3)  # supply factors `Process.at` accepts


@dataclass(frozen=True, kw_only=True)
class MosModel:
    """One level-1 MOSFET card; fields are the ngspice parameter names (SI units)."""

    name: str
    polarity: str  # "nmos" | "pmos"
    vto_v: float  # zero-bias threshold voltage (negative for PMOS)
    kp_a_per_v2: float  # effective mu*Cox
    lambda_per_v: float  # channel-length modulation at the drawn L_MIN
    gamma_sqrt_v: float  # body-effect coefficient
    phi_v: float  # surface potential 2*phi_F
    tox_m: float  # gate-oxide thickness: gives the Meyer gate capacitance Cox*W*L
    cgso_f_per_m: float  # gate-source overlap capacitance per metre of width
    cgdo_f_per_m: float  # gate-drain overlap capacitance per metre of width
    cj_f_per_m2: float  # bottom junction capacitance per area of drain/source
    cjsw_f_per_m: float  # sidewall junction capacitance per perimeter
    mj: float  # bottom junction grading coefficient
    mjsw: float  # sidewall grading coefficient
    pb_v: float  # junction built-in potential

    def __post_init__(self) -> None:
        if self.polarity not in ("nmos", "pmos"):
            raise ValueError(f"polarity must be 'nmos' or 'pmos', not {self.polarity!r}")

    def spice_params(self) -> dict[str, float]:
        """The card's parameters by ngspice name, for `Circuit.model(name, polarity, **params)`."""
        return {
            "level": 1,
            "vto": self.vto_v,
            "kp": self.kp_a_per_v2,
            "lambda": self.lambda_per_v,
            "gamma": self.gamma_sqrt_v,
            "phi": self.phi_v,
            "tox": self.tox_m,
            "cgso": self.cgso_f_per_m,
            "cgdo": self.cgdo_f_per_m,
            "cj": self.cj_f_per_m2,
            "cjsw": self.cjsw_f_per_m,
            "mj": self.mj,
            "mjsw": self.mjsw,
            "pb": self.pb_v,
        }

    @property
    def vth_v(self) -> float:
        """Zero-bias threshold, V (negative for PMOS)."""
        return self.vto_v

    @property
    def dl_m(self) -> float:
        """Effective minus drawn channel length (level 1 here: none)."""
        return 0.0

    def mobility_valid_at(self, temp_c: float, vgs_max_v: float) -> bool:
        """Level 1 scales KP as (T/TNOM)^-1.5, physical at every temperature and drive."""
        return True

    def mismatched(self, *, name: str, dvth_v: float, dbeta_rel: float) -> MosModel:
        """This card with |VTH| raised by `dvth_v` and the current factor scaled by 1 + `dbeta_rel`."""
        vto = self.vto_v + (dvth_v if self.polarity == "nmos" else -dvth_v)
        return replace(self, name=name, vto_v=vto, kp_a_per_v2=self.kp_a_per_v2 * (1 + dbeta_rel))


@dataclass(frozen=True, kw_only=True)
class Bsim4Model:
    """One BSIM4 MOSFET card (ngspice level 54).

    The fields Python reads (threshold, mobility, oxide, the capacitances of the node
    estimate) are named with units; `params` holds the rest of the card by its ngspice
    parameter name (SI units), as the model source states it.
    """

    name: str
    polarity: str  # "nmos" | "pmos"
    vth0_v: float  # long-channel zero-bias threshold (negative for PMOS)
    u0_m2_per_vs: float  # low-field mobility
    toxe_m: float  # electrical gate-oxide thickness (equivalent SiO2): Cox = eps_ox / toxe
    xl_m: float  # drawn-length offset from masking/etch: L_eff = L + XL - 2 LINT
    lint_m: float  # length reduction per side
    cgso_f_per_m: float  # gate-source overlap capacitance per metre of width (bias independent)
    cgdo_f_per_m: float
    cj_f_per_m2: float  # CJS = CJD: bottom junction capacitance per area
    cjsw_f_per_m: float  # CJSWS = CJSWD: sidewall (isolation edge) capacitance per perimeter
    params: tuple[tuple[str, float], ...] = field(default=())
    version: str = "4.8"  # ngspice's BSIM4 release that runs the card (level 54)

    def __post_init__(self) -> None:
        if self.polarity not in ("nmos", "pmos"):
            raise ValueError(f"polarity must be 'nmos' or 'pmos', not {self.polarity!r}")
        named = {"vth0", "u0", "toxe", "xl", "lint", "cgso", "cgdo", "cjs", "cjd", "cjsws", "cjswd", "level",
                 "version"}
        clash = sorted(named & {k for k, _ in self.params})
        if clash:
            raise ValueError(f"params must not repeat a named field, got {clash}")

    @property
    def tox_m(self) -> float:
        """The oxide thickness the node-capacitance estimate uses (electrical, toxe)."""
        return self.toxe_m

    @property
    def vth_v(self) -> float:
        return self.vth0_v

    @property
    def dl_m(self) -> float:
        """Effective minus drawn channel length, XL - 2 LINT."""
        return self.xl_m - 2 * self.lint_m

    def mobility_valid_at(self, temp_c: float, vgs_max_v: float) -> bool:
        """Whether the field still lowers the mobility at `temp_c`, for gate drives up to
        `vgs_max_v`. BSIM4 (MOBMOD 0, TEMPMOD 0) divides u0 by 1 + UA(T) E + UB(T) E^2 with
        E = (Vgsteff + 2 VTH) / TOXE and UA(T) = UA + UA1 (T/TNOM - 1), the same for UB. The
        degradation term is E (UA + UB E), linear in E inside the brackets, so it stays >= 0
        over the drives from threshold (E = 2 VTH/TOXE) to full (E = (VGS + 2 VTH)/TOXE) iff
        it does at both ends. PTM 45 nm keeps BSIM3's UA1 and UB1 for a 1.25 nm oxide: cold
        enough, the term turns negative, the field *raises* the mobility, and f0 there is an
        artefact of the card, not a prediction."""
        p = dict(self.params)
        ratio = (temp_c + 273.15) / (p.get("tnom", NOMINAL_TEMP_C) + 273.15) - 1
        ua = p.get("ua", 0.0) + p.get("ua1", 0.0) * ratio
        ub = p.get("ub", 0.0) + p.get("ub1", 0.0) * ratio
        vth = abs(self.vth0_v)
        return all(ua + ub * e >= 0 for e in (2 * vth / self.toxe_m, (abs(vgs_max_v) + 2 * vth) / self.toxe_m))

    def spice_params(self) -> dict[str, float | str]:
        """The card's parameters by ngspice name, for `Circuit.model(name, polarity, **params)`."""
        return {"level": 54, "version": self.version, "vth0": self.vth0_v, "u0": self.u0_m2_per_vs,
                "toxe": self.toxe_m, "xl": self.xl_m, "lint": self.lint_m, "cgso": self.cgso_f_per_m,
                "cgdo": self.cgdo_f_per_m, "cjs": self.cj_f_per_m2, "cjd": self.cj_f_per_m2,
                "cjsws": self.cjsw_f_per_m, "cjswd": self.cjsw_f_per_m, **dict(self.params)}

    def mismatched(self, *, name: str, dvth_v: float, dbeta_rel: float) -> Bsim4Model:
        """This card with |VTH0| raised by `dvth_v` and the mobility (current factor) scaled by 1 + `dbeta_rel`."""
        vth0 = self.vth0_v + (dvth_v if self.polarity == "nmos" else -dvth_v)
        return replace(self, name=name, vth0_v=vth0, u0_m2_per_vs=self.u0_m2_per_vs * (1 + dbeta_rel))


Card = MosModel | Bsim4Model


class ProcessError(ValueError):
    """A process was asked for by a name the registry does not hold."""


@dataclass(frozen=True, kw_only=True)
class Matching:
    """Pelgrom mismatch coefficients of a process: sigma(dX) = A / sqrt(W L)."""

    a_vt_v_m: float  # threshold, V m
    a_beta_m: float  # current factor, relative, m
    a_r_m: float  # high-resistance poly resistor, relative, m
    r_sheet_ohm: float  # that poly's sheet resistance, ohm per square
    w_res_m: float  # drawn width of the coupler resistors


#: the gate-referred flicker coefficient K of S_vg(f) = K / (Cox W L f), both polarities and
#: both processes: the textbook figure for MOSFETs of these nodes. PMOS devices usually show
#: less (buried channel), so the PMOS value is an upper bound; the Cox W L form is what lets
#: one K stand for both nodes to first order.
FLICKER_K_V2F = 1e-25
FLICKER_K_SOURCE = ("B. Razavi, 'Design of Analog CMOS Integrated Circuits', McGraw-Hill, ch. 7 (Noise): "
                    "gate-referred flicker noise K / (Cox W L f), K ~ 1e-25 V^2 F")


@dataclass(frozen=True, kw_only=True)
class Process:
    """Supply, minimum geometry and the two device cards of the model process."""

    name: str
    vdd_v: float
    l_min_m: float
    # Drain/source diffusion length beyond the gate (for AD = W*L_DIFF, PD = 2*(W+L_DIFF)).
    l_diff_m: float
    nmos: Card
    pmos: Card
    key: str = "generic180"  # the registry name (`PROCESSES`)
    matching: Matching | None = None  # None: the generic 180 nm figures below
    #: the operating point (`at`): die temperature, and the supply relative to nominal
    temp_c: float = NOMINAL_TEMP_C
    vdd_scale: float = 1.0
    #: flicker (1/f) noise of a device, gate-referred: S_vg(f) = K / (Cox W L f), K in V^2 F
    #: (`FLICKER_K_SOURCE`); neither card set carries a KF of its own
    flicker_k_n_v2f: float = FLICKER_K_V2F
    flicker_k_p_v2f: float = FLICKER_K_V2F

    @property
    def cox_f_per_m2(self) -> float:
        """Gate-oxide capacitance per area, eps_ox / tox (NMOS and PMOS share the oxide)."""
        return EPS_OX_F_PER_M / self.nmos.tox_m

    @property
    def temperature_k(self) -> float:
        """The die temperature in kelvin (the `.temp` every bench of this process runs at)."""
        return self.temp_c + 273.15

    @property
    def vdd_nominal_v(self) -> float:
        """The process's nominal supply (`vdd_v` is it times `vdd_scale`)."""
        return self.vdd_v / self.vdd_scale

    @property
    def nominal(self) -> bool:
        """Whether this is the trim point: 27 °C and the nominal supply."""
        return self.temp_c == NOMINAL_TEMP_C and self.vdd_scale == 1.0

    def at(self, *, temp_c: float | None = None, vdd_scale: float | None = None) -> Process:
        """The same process at another operating point (a corner): temperature in °C and
        supply as a factor of nominal (1.1 is +10 %). Every bench built with the result runs
        at that `.temp` (the cards' TNOM stays 27 °C) and that VDD; control voltages are
        the caller's and stay where they were trimmed (a reference-derived Vctrl)."""
        temp = self.temp_c if temp_c is None else temp_c
        scale = self.vdd_scale if vdd_scale is None else vdd_scale
        if isinstance(temp, bool) or not isinstance(temp, (int, float)) or not TEMP_RANGE_C[0] <= temp <= TEMP_RANGE_C[1]:
            raise ProcessError(f"temperature must be a number in [{TEMP_RANGE_C[0]:g}, {TEMP_RANGE_C[1]:g}] °C, "
                               f"not {temp!r}")
        if (isinstance(scale, bool) or not isinstance(scale, (int, float))
                or not VDD_SCALE_RANGE[0] <= scale <= VDD_SCALE_RANGE[1]):
            raise ProcessError(f"supply factor must be a number in [{VDD_SCALE_RANGE[0]:g}, {VDD_SCALE_RANGE[1]:g}], "
                               f"not {scale!r}")
        return replace(self, temp_c=float(temp), vdd_scale=float(scale),
                       vdd_v=self.vdd_nominal_v * float(scale))

    @property
    def cards_valid(self) -> bool:
        """Whether both cards' mobility models stay physical at this operating point
        (`Bsim4Model.mobility_valid_at`, gate drives up to this VDD)."""
        return all(card.mobility_valid_at(self.temp_c, self.vdd_v) for card in (self.nmos, self.pmos))

    @property
    def corner(self) -> str:
        """A short label of the operating point, e.g. '85C/1.10VDD'."""
        return f"{self.temp_c:g}C/{self.vdd_scale:.2f}VDD"



TOX_M = 4.0e-9  # 180 nm-class gate oxide: Cox = 3.45e-11/4e-9 = 8.6 fF/um^2

GENERIC_180NM = Process(
    name="generic-180nm-level1",
    vdd_v=1.8,  # nominal core supply of 180 nm processes
    l_min_m=0.18e-6,
    l_diff_m=0.48e-6,  # ~2.7 L_min of diffusion beyond the gate (contact + spacing)
    nmos=MosModel(
        name="nch_un0",
        polarity="nmos",
        vto_v=0.45,  # typical 180 nm NMOS VTH
        # mu_n,eff ~ 200 cm^2/Vs (field-degraded from ~400) * Cox 8.6e-3 F/m^2 = 1.7e-4 A/V^2
        kp_a_per_v2=170e-6,
        lambda_per_v=0.08,  # ~0.08 /V at short L: r_o = 1/(lambda*I_D)
        gamma_sqrt_v=0.45,  # sqrt(2 q eps_si N_A)/Cox with N_A ~ 3e17 cm^-3
        phi_v=0.84,  # 2*phi_F at N_A ~ 3e17 cm^-3
        tox_m=TOX_M,
        cgso_f_per_m=3.5e-10,  # 0.35 fF/um overlap (LD ~ 40 nm * Cox)
        cgdo_f_per_m=3.5e-10,
        cj_f_per_m2=1.0e-3,  # 1 fF/um^2 bottom junction
        cjsw_f_per_m=2.0e-10,  # 0.2 fF/um sidewall
        mj=0.5,  # abrupt junction
        mjsw=0.33,  # graded sidewall
        pb_v=0.8,
    ),
    pmos=MosModel(
        name="pch_un0",
        polarity="pmos",
        vto_v=-0.45,  # symmetric threshold, typical 180 nm PMOS
        # mu_p,eff ~ 70 cm^2/Vs * Cox: holes ~ 1/2.8 of electrons
        kp_a_per_v2=60e-6,
        lambda_per_v=0.10,
        gamma_sqrt_v=0.40,
        phi_v=0.80,
        tox_m=TOX_M,
        cgso_f_per_m=3.5e-10,
        cgdo_f_per_m=3.5e-10,
        cj_f_per_m2=1.1e-3,
        cjsw_f_per_m=2.4e-10,
        mj=0.5,
        mjsw=0.33,
        pb_v=0.8,
    ),
)


# --- mismatch (Monte Carlo) ---------------------------------------------------------------
# Pelgrom's law: sigma(dVTH) = A_VT / sqrt(W L), sigma(dbeta/beta) = A_BETA / sqrt(W L) for a
# device of gate area W L. 180 nm-class processes report A_VT ~ 3.5-5 mV um and A_beta
# ~ 1 % um (Pelgrom, Duinmaijer, Welbers, IEEE JSSC 24(5) 1989; Kinget, IEEE JSSC 40(6) 2005,
# table I). The upper end is taken: this model process has no measured matching data.
A_VT_V_M = 5e-3 * 1e-6  # 5 mV um
A_BETA_M = 0.01 * 1e-6  # 1 % um
# Resistor matching of high-resistance poly: sigma(dR/R) = A_R / sqrt(W L) with A_R ~ 2 % um
# (same sources; poly resistors match a little worse than transistor beta per area). A
# coupler-DAC resistor of ~W 0.4 um x L 100 um (megohm meander) is then matched to ~0.3 %.
A_R_M = 0.02 * 1e-6  # 2 % um
R_SHEET_HIPOLY_OHM = 1.0e3  # high-resistance poly, ohm per square (typical 180 nm: 1-2 kOhm/sq)
W_RES_M = 0.4e-6  # drawn width of the coupler resistors


GENERIC_180NM_MATCHING = Matching(a_vt_v_m=A_VT_V_M, a_beta_m=A_BETA_M, a_r_m=A_R_M,
                                  r_sheet_ohm=R_SHEET_HIPOLY_OHM, w_res_m=W_RES_M)


def matching_of(process: Process | None) -> Matching:
    """The process's Pelgrom coefficients (the generic 180 nm ones when it states none)."""
    return GENERIC_180NM_MATCHING if process is None or process.matching is None else process.matching


def sigma_vth_v(w_m: float, l_m: float, *, process: Process | None = None) -> float:
    """Pelgrom threshold mismatch of one device, V (standard deviation)."""
    return matching_of(process).a_vt_v_m / (w_m * l_m) ** 0.5


def sigma_beta_rel(w_m: float, l_m: float, *, process: Process | None = None) -> float:
    """Pelgrom current-factor mismatch of one device, relative (standard deviation)."""
    return matching_of(process).a_beta_m / (w_m * l_m) ** 0.5


def sigma_resistor_rel(r_ohm: float, *, process: Process | None = None) -> float:
    """Relative mismatch of a high-poly resistor of value r drawn `w_res_m` wide."""
    m = matching_of(process)
    length_m = r_ohm / m.r_sheet_ohm * m.w_res_m
    return m.a_r_m / (m.w_res_m * length_m) ** 0.5


# --- noise ---------------------------------------------------------------------------------
BOLTZMANN_J_PER_K = 1.380649e-23
GAMMA_CHANNEL = 2.0 / 3.0  # long-channel thermal-noise factor of a saturated MOSFET (van der Ziel)


# --- ptm45: the Predictive Technology Model, 45 nm high performance, as BSIM4 cards -------
# Source: Predictive Technology Model (PTM), Nanoscale Integration and Modeling group, Arizona
# State University (ptm.asu.edu), "PTM-MG" 45 nm high-performance model, file 45nm_HP.pm of
# release v2.1 (2008): metal gate / high-k / strained Si, BSIM4 4.0 cards, nominal VDD 1.0 V.
# The values below are that card's, written out here parameter by parameter (grouped, SI
# units); ngspice 39 runs them with its BSIM4 4.8 code (level 54; `Bsim4Model.version`), which
# reads a 4.0 card. Drawn L = 45 nm; XL = -20 nm and LINT = 3.75 nm give L_eff = 17.5 nm.
# Zhao and Cao, "New generation of Predictive Technology Model for sub-45 nm early design
# exploration", IEEE TED 53(11), 2006, describe how the cards were fitted.
_PTM45_COMMON: dict[str, float] = {
    # model selectors (as the PTM card sets them)
    "binunit": 1, "paramchk": 1, "mobmod": 0, "capmod": 2, "igcmod": 1, "igbmod": 1, "geomod": 1,
    "diomod": 1, "rdsmod": 0, "rbodymod": 1, "rgatemod": 1, "permod": 1, "acnqsmod": 0, "trnqsmod": 0,
    # geometry and oxide
    "tnom": 27, "toxp": 1e-9, "epsrox": 3.9, "wint": 5e-9, "ll": 0, "wl": 0, "lln": 1, "wln": 1,
    "lw": 0, "ww": 0, "lwn": 1, "wwn": 1, "lwl": 0, "wwl": 0, "xpart": 0, "xj": 1.4e-8,
    # threshold and short-channel effects
    "k1": 0.4, "k3": 0, "k3b": 0, "w0": 2.5e-6, "dvt0": 1, "dvt1": 2, "dvt0w": 0, "dvt1w": 0,
    "dvt2w": 0, "dsub": 0.1, "minv": 0.05, "voffl": 0, "lpe0": 0, "lpeb": 0, "ngate": 1e23,
    "nsd": 2e20, "phin": 0, "cdsc": 0, "cdscb": 0, "cdscd": 0, "cit": 0, "eta0": 0.0055, "etab": 0,
    # mobility, saturation, output conductance
    "uc": 0, "a0": 1, "a1": 0, "a2": 1, "b0": 0, "b1": 0, "dwg": 0, "dwb": 0, "pdiblc1": 0.001,
    "pdiblc2": 0.001, "pvag": 1e-20, "delta": 0.01, "pscbe1": 8.14e8, "fprout": 0.2, "pdits": 0.08,
    "pditsd": 0.23, "pditsl": 2.3e6,
    # series resistance
    "rsh": 5, "rdsw": 155, "rdswmin": 0, "rdwmin": 0, "rswmin": 0, "prwg": 0, "prwb": 0, "wr": 1,
    # impact ionisation, GIDL, gate tunnelling
    "alpha0": 0.074, "alpha1": 0.005, "beta0": 30, "agidl": 0.0002, "bgidl": 2.1e9, "cgidl": 0.0002,
    "egidl": 0.8, "aigbacc": 0.012, "bigbacc": 0.0028, "cigbacc": 0.002, "nigbacc": 1,
    "aigbinv": 0.014, "bigbinv": 0.004, "cigbinv": 0.004, "eigbinv": 1.1, "nigbinv": 3, "nigc": 1,
    "poxedge": 1, "pigcd": 1, "ntox": 1, "xrcrg1": 12, "xrcrg2": 5,
    # capacitance (cgso, cgdo are named fields)
    "cgbo": 2.56e-11, "cgdl": 2.653e-10, "cgsl": 2.653e-10, "ckappas": 0.03, "ckappad": 0.03,
    "acde": 1, "moin": 15, "noff": 0.9, "voffcv": 0.02,
    # temperature
    "kt1": -0.11, "kt1l": 0, "kt2": 0.022, "ute": -1.5, "ua1": 4.31e-9, "ub1": 7.61e-18,
    "uc1": -5.6e-11, "prt": 0, "at": 33000,
    # noise model selectors
    "fnoimod": 1, "tnoimod": 0,
    # junction diodes (cjs/cjd, cjsws/cjswd are named fields)
    "jss": 1e-4, "jsws": 1e-11, "jswgs": 1e-10, "njs": 1, "ijthsfwd": 0.01, "ijthsrev": 0.001,
    "bvs": 10, "xjbvs": 1, "jsd": 1e-4, "jswd": 1e-11, "jswgd": 1e-10, "njd": 1, "ijthdfwd": 0.01,
    "ijthdrev": 0.001, "bvd": 10, "xjbvd": 1, "pbs": 1, "mjs": 0.5, "pbsws": 1, "mjsws": 0.33,
    "pbswgs": 1, "cjswgs": 3e-10, "mjswgs": 0.33, "pbd": 1, "mjd": 0.5, "pbswd": 1, "mjswd": 0.33,
    "pbswgd": 1, "cjswgd": 5e-10, "mjswgd": 0.33, "tpb": 0.005, "tcj": 0.001, "tpbsw": 0.005,
    "tcjsw": 0.001, "tpbswg": 0.005, "tcjswg": 0.001, "xtis": 3, "xtid": 3,
    # layout-dependent parasitics, gate and body resistance
    "dmcg": 0, "dmci": 0, "dmdg": 0, "dmcgt": 0, "dwj": 0, "xgw": 0, "xgl": 0, "rshg": 0.4,
    "gbmin": 1e-10, "rbpb": 5, "rbpd": 15, "rbps": 15, "rbdb": 15, "rbsb": 15, "ngcon": 1,
}
_PTM45_NMOS: dict[str, float] = {
    "toxm": 1.25e-9, "toxref": 1.25e-9, "dtox": 2.5e-10, "k2": 0, "dvt2": 0, "dvtp0": 1e-10,
    "dvtp1": 0.1, "ndep": 3.24e18, "voff": -0.13, "nfactor": 2.22, "vfb": -0.55, "ua": 6e-10,
    "ub": 1.2e-18, "vsat": 170000, "ags": 0, "keta": 0.04, "pclm": 0.02, "pdiblcb": -0.005,
    "drout": 0.5, "pscbe2": 1e-7, "rsw": 80, "rdw": 80, "aigc": 0.02, "bigc": 0.0025, "cigc": 0.002,
    "aigsd": 0.02, "bigsd": 0.0025, "cigsd": 0.002,
}
_PTM45_PMOS: dict[str, float] = {
    "toxm": 1.3e-9, "toxref": 1.3e-9, "dtox": 3e-10, "k2": -0.01, "dvt2": -0.032, "dvtp0": 1e-11,
    "dvtp1": 0.05, "ndep": 2.44e18, "voff": -0.126, "nfactor": 2.1, "vfb": 0.55, "ua": 2e-9,
    "ub": 5e-19, "vsat": 150000, "ags": 1e-20, "keta": -0.047, "pclm": 0.12, "pdiblcb": 3.4e-8,
    "drout": 0.56, "pscbe2": 9.58e-7, "rsw": 75, "rdw": 75, "aigc": 0.010687, "bigc": 0.0012607,
    "cigc": 0.0008, "aigsd": 0.010687, "bigsd": 0.0012607, "cigsd": 0.0008,
}

PTM_45NM = Process(
    name="ptm45-hp-bsim4",
    key="ptm45",
    vdd_v=1.0,  # PTM 45 nm HP nominal supply
    l_min_m=45e-9,  # drawn; L_eff = 17.5 nm
    l_diff_m=0.09e-6,  # 2 L_min of diffusion beyond the gate (contact + spacing at 45 nm)
    nmos=Bsim4Model(
        name="nch_ptm45", polarity="nmos", vth0_v=0.46893, u0_m2_per_vs=0.054, toxe_m=1.25e-9,
        xl_m=-20e-9, lint_m=3.75e-9, cgso_f_per_m=1.1e-10, cgdo_f_per_m=1.1e-10, cj_f_per_m2=5e-4,
        cjsw_f_per_m=5e-10, params=tuple(sorted({**_PTM45_COMMON, **_PTM45_NMOS}.items())),
    ),
    pmos=Bsim4Model(
        name="pch_ptm45", polarity="pmos", vth0_v=-0.49158, u0_m2_per_vs=0.02, toxe_m=1.3e-9,
        xl_m=-20e-9, lint_m=3.75e-9, cgso_f_per_m=1.1e-10, cgdo_f_per_m=1.1e-10, cj_f_per_m2=5e-4,
        cjsw_f_per_m=5e-10, params=tuple(sorted({**_PTM45_COMMON, **_PTM45_PMOS}.items())),
    ),
    # PTM states no matching data. 45 nm high-k/metal-gate processes report A_VT ~ 1.5-2.5 mV um
    # (Kuhn, "Managing process variation in Intel's 45nm CMOS technology", Intel Technology
    # Journal 12(2), 2008; Kuhn et al., IEEE TED 58(8), 2011, fig. of A_VT by node); the upper
    # end is taken, A_beta as at 180 nm. Unsilicided poly at 45 nm: ~300-600 ohm/sq; a 0.2 um
    # wide resistor, matching as at 180 nm per area.
    matching=Matching(a_vt_v_m=2.5e-3 * 1e-6, a_beta_m=0.01 * 1e-6, a_r_m=0.02 * 1e-6, r_sheet_ohm=500.0,
                      w_res_m=0.2e-6),
)

#: the processes by registry name: `un0hw cells characterize --process NAME`
PROCESSES: dict[str, Process] = {"generic180": GENERIC_180NM, "ptm45": PTM_45NM}


def process_key(description: str) -> str:
    """The registry name of the process a calibration's `process` text describes (its first
    word is the `Process.name`, as `characterize_all` writes it); ProcessError otherwise."""
    word = str(description).split(" ")[0]
    for key, proc in PROCESSES.items():
        if word in (proc.name, key):
            return key
    raise ProcessError(f"process {word!r} is none of this project's ({', '.join(p.name for p in PROCESSES.values())})")


def process_named(name: str) -> Process:
    """The registered process `name`; ProcessError naming the valid choices otherwise."""
    try:
        return PROCESSES[name]
    except (KeyError, TypeError):
        raise ProcessError(f"process must be one of {', '.join(PROCESSES)}, not {name!r}") from None
