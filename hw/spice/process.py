"""The one place that states the process: a generic ~180 nm CMOS, written as ngspice level-1 cards.

No vendor PDK is available, so these are textbook-scale numbers for a 1.8 V, 180 nm-class
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

from dataclasses import dataclass

EPS_OX_F_PER_M = 3.453e-11  # permittivity of SiO2: 3.9 * 8.854e-12 F/m


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


@dataclass(frozen=True, kw_only=True)
class Process:
    """Supply, minimum geometry and the two device cards of the model process."""

    name: str
    vdd_v: float
    l_min_m: float
    # Drain/source diffusion length beyond the gate (for AD = W*L_DIFF, PD = 2*(W+L_DIFF)).
    l_diff_m: float
    nmos: MosModel
    pmos: MosModel

    @property
    def cox_f_per_m2(self) -> float:
        """Gate-oxide capacitance per area, eps_ox / tox (NMOS and PMOS share the oxide)."""
        return EPS_OX_F_PER_M / self.nmos.tox_m


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


def sigma_vth_v(w_m: float, l_m: float) -> float:
    """Pelgrom threshold mismatch of one device, V (standard deviation)."""
    return A_VT_V_M / (w_m * l_m) ** 0.5


def sigma_beta_rel(w_m: float, l_m: float) -> float:
    """Pelgrom current-factor mismatch of one device, relative (standard deviation)."""
    return A_BETA_M / (w_m * l_m) ** 0.5


def sigma_resistor_rel(r_ohm: float) -> float:
    """Relative mismatch of a high-poly resistor of value r drawn W_RES_M wide."""
    length_m = r_ohm / R_SHEET_HIPOLY_OHM * W_RES_M
    return A_R_M / (W_RES_M * length_m) ** 0.5


# --- noise ---------------------------------------------------------------------------------
BOLTZMANN_J_PER_K = 1.380649e-23
TEMPERATURE_K = 300.0
GAMMA_CHANNEL = 2.0 / 3.0  # long-channel thermal-noise factor of a saturated MOSFET (van der Ziel)
