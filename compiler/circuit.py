r"""The circuit's coupling: a compiled system's couplers as the calibrated cells realise them.

A coupler of the calibration's cells does not add K sin(θ_j − θ_i) but its measured coupling
function (`hw.calibration`, format 2)

    H_ij(x) = b0 + a1 sin x + b1 cos x + a2 sin 2x + b2 cos 2x + a3 sin 3x + b3 cos 3x,

realised from the coupler's signed code, the number of couplers on the receiving cell (m_i)
and on the sending cell (m_j): `Calibration.coupling_coefficients(code, m_i, m_j)` (rad/s).
This module maps model couplings onto that:

- **Codes.** A resistor DAC is reciprocal: one DAC per pair realises the symmetric part
  K̄ = (K + Kᵀ)/2 of a square block (main K, conditioning C). Its code is the one whose
  fundamental at the pair's loads is nearest |K̄_ij|/τ (the geometric mean of the two
  directions' a1, which differ where the loads do); the sign is K̄_ij's. A one-way coupler
  (the gm cell, `hw.Calibration.reciprocal` False) realises each direction on its own
  (`CompileOptions.couplers`, `directed_couplers`): the code of j → i is the one nearest
  |K_ij|/τ at the cells' loads, so the antisymmetric part of K is kept. A drive coupler
  (conditioning k → main i, reprogrammed per class) takes the code nearest |D[c]_ik|/τ.
  Loads and codes depend on each other (code 0 is no coupler): `realise_symmetric`
  iterates them to a fixed point. Loads beyond the calibration's table are held at its
  last row and counted.
- **H in model units.** Every coefficient times τ (t_model = t/τ): a1·τ is the realised
  K̂_ij, the rest an `oscsim.Harmonics` (`Realised.model_units`).
- **Trims** (`TRIMS`), what each cell's frequency control is set to for model frequency ω_i:
  - 'open': the frequency measured with the couplers open is ω_i (the first array check's
    trim). Closing them then adds Σ_j b0_ij to every cell — with b0 ≈ 0.7…1.0 |a1| per
    coupler, more detuning than the couplings can hold.
  - 'closed' (default): the open frequency is ω_i − Σ_j b0_ij, so the constant part of the
    closed couplers brings each cell back to ω_i.
  - 'trajectory': as 'closed', and also minus the mean, along the ideal model's own
    trajectories, of what the rest of H adds beyond K sin x (`trajectory_trim`): the
    part of the ψ-dependent error a static trim can take out on average.
  What no static trim removes is the ψ-dependent even part b1 cos x (and the harmonics)
  itself — why the simulator carries H.

Loads are counted in the load runs' units (`hw.Calibration.coupler_load`: a coupler with more
magnitude bits switched on loads its cells more). The code search runs row stripe by row
stripe: no temporary larger than a few million numbers. A version-1 (sine-only) calibration
realises H = K_eff(code) sin x: no harmonics. Pure torch/numpy; imports `hw.calibration` only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from compiler.options import CompileError

TRIMS = ("open", "closed", "trajectory")


def _rows_per_stripe(n: int, codes: int) -> int:
    return max(1, 2**22 // max(1, n))


@dataclass(frozen=True)
class Realised:
    """One coupling block as the circuit realises it (rows receive, columns send).

    codes: signed coupler codes (int8, the block's shape); load: the load each cell carries
    in load-run units (`hw.Calibration.coupler_load`: all its couplers, this block's and the
    `extra` ones); cal: the calibration. A coupler's own load is in its code's row, so its
    receiving cell's load for the table is 1 + load_i − w(code) (`loads`).
    """

    codes: np.ndarray
    load_recv: np.ndarray
    load_send: np.ndarray
    cal: object

    def loads(self) -> tuple[np.ndarray, np.ndarray]:
        """Per coupler (block shape): the table loads of its receiving and its sending cell."""
        w = self.cal.coupler_load(self.codes)
        return 1.0 + self.load_recv[:, None] - w, 1.0 + self.load_send[None, :] - w

    def coef(self) -> np.ndarray:
        """(…, 7) each coupler's H in rad/s (zero where there is no coupler)."""
        m_r, m_s = self.loads()
        return self.cal.coupling_coefficients(self.codes.astype(np.int64), m_r, m_s)

    @property
    def couplers_per_cell(self) -> np.ndarray:
        return (self.codes != 0).sum(axis=-1)

    def model_units(self, tau_s: float, *, dtype: torch.dtype = torch.float64) -> tuple[Tensor, object | None]:
        """(K̂ = a1·τ, `oscsim.Harmonics` of the rest — or None when the calibration is sine-only)."""
        from oscsim import Harmonics

        c = torch.as_tensor(self.coef() * tau_s, dtype=dtype)
        k_hat = c[..., 1].contiguous()
        if self.cal.sine_only:
            return k_hat, None
        b = torch.stack([c[..., 2], c[..., 4], c[..., 6]])
        a = torch.stack([c[..., 3], c[..., 5]])
        return k_hat, Harmonics(a=a, b=b, b0=c[..., 0].contiguous())

    def classes(self, *, digits: int = 1) -> list[list]:
        """The coupler classes present: [code, table load of the receiver, of the sender (both
        rounded to `digits` and clamped to the table), count, b0, a1, b1, a2, b2, a3, b3 (rad/s)],
        sorted."""
        m_r, m_s = self.loads()
        top = float(self.cal.fanout_max)
        keep = self.codes != 0
        triples = np.stack([self.codes[keep].astype(np.float64), np.round(np.clip(m_r[keep], 1, top), digits),
                            np.round(np.clip(m_s[keep], 1, top), digits)], axis=1)
        if not triples.size:
            return []
        uniq, counts = np.unique(triples, axis=0, return_counts=True)
        coef = self.cal.coupling_coefficients(uniq[:, 0].astype(np.int64), uniq[:, 1], uniq[:, 2])
        return [[int(c), float(r), float(s), int(n), *map(float, row)] for (c, r, s), n, row in zip(uniq, counts, coef)]


def _search(target: np.ndarray, sign: np.ndarray, cal, m_r: np.ndarray, m_s: np.ndarray,
            pair: bool) -> np.ndarray:
    """Magnitude codes whose |a1| at loads (m_r, m_s) — with `pair`, the geometric mean of both
    directions — is nearest `target` (rad/s), one stripe."""
    best = np.zeros(target.shape, dtype=np.int64)
    err = np.abs(target)
    for mag in range(1, cal.max_code + 1):
        codes = np.where(sign != 0, sign, 1) * mag
        a1 = cal.fundamental(codes, m_r, m_s)
        if pair:
            a1 = np.sqrt(a1 * cal.fundamental(codes, m_s, m_r))
        e = np.abs(target - a1)
        better = e < err
        best = np.where(better, mag, best)
        err = np.where(better, e, err)
    return np.where(sign != 0, best, 0)


def _square_fixed_point(M: Tensor, tau_s: float, cal, extra_load: np.ndarray | None, *, pair: bool,
                        iterations: int, settle_codes: bool) -> Realised:
    """Codes and loads of a square block M (zero diagonal, float64) iterated together, row
    stripe by row stripe: each code nearest |M_ij|/τ at the loads of the previous pass (with
    `pair`, the geometric mean of both directions' a1). Stops when the loads settle (and, with
    `settle_codes`, the codes too) or after `iterations` passes."""
    n = M.shape[0]
    extra = np.zeros(n) if extra_load is None else np.asarray(extra_load, dtype=np.float64)
    codes = np.zeros((n, n), dtype=np.int8)
    previous = codes.copy()
    load = (M != 0).sum(dim=1).numpy().astype(np.float64) + extra  # first guess: one load unit each
    step = _rows_per_stripe(n, cal.max_code)
    for _ in range(iterations):
        for r0 in range(0, n, step):
            rows = slice(r0, min(n, r0 + step))
            ks = M[rows].to(torch.float64).numpy()
            sign = np.sign(ks).astype(np.int64)
            w_guess = np.where(codes[rows] != 0, cal.coupler_load(codes[rows]), 1.0)
            m_r = 1.0 + load[rows][:, None] - w_guess
            m_s = 1.0 + load[None, :] - w_guess
            codes[rows] = sign * _search(np.abs(ks) / tau_s, sign, cal, m_r, m_s, pair=pair)
        np.fill_diagonal(codes, 0)
        new_load = cal.coupler_load(codes).sum(axis=1) + extra
        if not settle_codes:  # the loads settle: keep the ones these codes were chosen at
            if np.allclose(new_load, load):
                break
            load = new_load
            continue
        settled = np.allclose(new_load, load) and np.array_equal(codes, previous)
        load, previous = new_load, codes.copy()
        if settled:
            break
    return Realised(codes=codes, load_recv=load, load_send=load, cal=cal)


def realise_symmetric(K: Tensor, tau_s: float, cal, *, extra_load: np.ndarray | None = None,
                      iterations: int = 6) -> Realised:
    """The couplers of a square block K (model units) at time scale τ: one reciprocal DAC per
    pair at the code nearest |K̄_ij|/τ at the pair's loads (module docstring). Loads and codes
    are iterated to a fixed point, row stripe by row stripe.

    `extra_load`: load on each cell from other blocks' couplers (the drive), in load-run units."""
    K = K.detach().cpu()
    k_sym = (K + K.T) / 2
    k_sym.fill_diagonal_(0)
    return _square_fixed_point(k_sym, tau_s, cal, extra_load, pair=True, iterations=iterations, settle_codes=False)


def realise_directed(M: Tensor, tau_s: float, cal, load_recv: np.ndarray, load_send: np.ndarray) -> Realised:
    """Couplers of a block (…, N_r, N_s) with one coupler per entry in one direction (the
    drive D[c], reprogrammed per class) at given cell loads: the code nearest |M_ij|/τ."""
    x = M.detach().to(torch.float64).cpu().numpy()
    sign = np.sign(x).astype(np.int64)
    w = np.where(sign != 0, 1.0, 0.0)
    m_r = 1.0 + np.asarray(load_recv)[:, None] - w
    m_s = 1.0 + np.asarray(load_send)[None, :] - w
    codes = (sign * _search(np.abs(x) / tau_s, sign, cal, m_r, m_s, pair=False)).astype(np.int8)
    return Realised(codes=codes, load_recv=np.asarray(load_recv, dtype=np.float64),
                    load_send=np.asarray(load_send, dtype=np.float64), cal=cal)


def directed_couplers(mode: str, cal) -> bool:
    """Whether square blocks get one one-way coupler per direction (`CompileOptions.couplers`
    `mode` on `cal`'s coupler): 'auto' where the coupler is one-way; 'directed' on a
    reciprocal coupler is refused (it cannot set K_ij and K_ji apart)."""
    from compiler.options import COUPLER_MODES

    if mode not in COUPLER_MODES:
        raise CompileError(f"--couplers must be one of {', '.join(COUPLER_MODES)}; got {mode!r}")
    if mode == "directed" and cal.reciprocal:
        raise CompileError(f"--couplers directed needs a one-way coupler; the calibration's '{cal.coupler}' coupler "
                           f"is reciprocal (one DAC per pair realises K's symmetric part only)")
    return mode == "directed" or (mode == "auto" and not cal.reciprocal)


def realise_one_way(K: Tensor, tau_s: float, cal, *, extra_load: np.ndarray | None = None,
                    iterations: int = 12) -> Realised:
    """The couplers of a square block K with one one-way coupler per direction: coupler j → i
    at the code nearest |K_ij|/τ at the cells' loads. A cell's load counts the couplers that
    inject into it (plus `extra_load`) — a one-way coupler loads its receiving node; the
    sender drives it from a shared tap — and the same load serves the cell as a sender, as in
    the calibration's runs. Loads and codes are iterated until neither changes, at most
    `iterations` times: at a fixed point every code is the nearest at its final loads; a
    coupler half-way between two codes whose choice moves its cells' loads across that
    half-way point can flip between the two, and is left on one of them."""
    K = K.detach().cpu().to(torch.float64).clone()
    K.fill_diagonal_(0)
    return _square_fixed_point(K, tau_s, cal, extra_load, pair=False, iterations=iterations, settle_codes=True)


def trim_omega(omega: Tensor, harmonics, *, trim: str) -> Tensor:
    """The frequencies (model units) the cells' open-coupler trims are set to for 'open' and
    'closed' (module docstring); 'trajectory' starts from 'closed' (`trajectory_trim`)."""
    if trim not in TRIMS:
        raise CompileError(f"trim must be one of {', '.join(TRIMS)}, not {trim!r}")
    if trim == "open" or harmonics is None:
        return omega.clone()
    return omega - harmonics.row_const().to(omega)


# --- a whole compiled array ----------------------------------------------------------------
@dataclass(frozen=True)
class ArrayCircuit:
    """Every coupler of an IR as the calibration's cells realise them at the IR's τ.

    K, C: the main and conditioning blocks (reciprocal DACs); drive: (classes, N, N_c), one
    DAC per conditioning → main pair, reprogrammed per class; taus: each block's seconds per
    model time unit ('ir' scale: the IR's τ for all three; 'full-code': the block's DAC scale);
    trim: the rule the cells' frequency controls follow (`TRIMS`); directed: whether K and C
    have one one-way coupler per direction (`directed_couplers`), else one reciprocal DAC per
    pair (symmetric codes: the circuit realises K's symmetric part).
    """

    K: Realised
    C: Realised
    drive: Realised
    taus: dict
    trim: str
    cal: object
    scale: str = "ir"
    directed: bool = False

    def shape(self, *, dtype: torch.dtype = torch.float32):
        """The circuit's coupling as an `oscsim.shaped.ShapedCoupling` (each term / a1 per
        coupler), for a model whose couplings are K̂, Ĉ, D̂: what fine-tuning under the
        measured H keeps fixed while the strengths learn. Reciprocal couplers (not
        `directed`) make it `reciprocal`: the model's K and C act through their symmetric
        parts, as one DAC per pair does. None when sine-only."""
        from oscsim.shaped import ShapedCoupling

        if self.cal.sine_only:
            return None

        def ratios(realised: Realised) -> Tensor:
            c = torch.as_tensor(realised.coef(), dtype=torch.float64)
            a1 = c[..., 1]
            safe = torch.where(a1 != 0, a1, torch.ones_like(a1))
            r = torch.where((a1 != 0)[..., None], c / safe[..., None], torch.zeros_like(c))
            return r[..., [0, 2, 3, 4, 5, 6]].movedim(-1, 0).to(dtype).contiguous()

        return ShapedCoupling(K=ratios(self.K), C=ratios(self.C), drive=ratios(self.drive),
                              constant=self.trim == "open", reciprocal=not self.directed)

    def report(self) -> dict:
        """JSON-ready: the coupler classes present per block with their H (rad/s of the
        calibration's DAC), loads, how many couplers sit beyond the measured load table, and
        the closing shift Σ_j b0_ij the trim takes (model units)."""
        out: dict = {"trim": self.trim, "tau_s": self.taus, "scale": self.scale,
                     "couplers": "directed (one one-way coupler per direction)" if self.directed else
                                 "reciprocal (one DAC per pair: the symmetric part of K and C)",
                     "coupling_model": ("sine only (calibration format 1)" if self.cal.sine_only else
                                        "measured coupling function H(code, load of receiver, load of sender), k <= 3"),
                     "fanout_table_max": self.cal.fanout_max, "blocks": {}}
        for name, realised in (("K", self.K), ("C", self.C), ("drive", self.drive)):
            present = realised.codes != 0
            m_r, m_s = realised.loads()
            coef = realised.coef()
            shift = coef[..., 0].sum(axis=-1) * self.taus[name]  # model units
            if shift.ndim == 2:  # drive: per class, then the mean over classes
                shift = shift.mean(axis=0)
            out["blocks"][name] = {
                "couplers": int(present.sum()),
                "max_load": float(realised.load_recv.max()) if realised.load_recv.size else 0.0,
                "couplers_beyond_load_table": self.cal.fanout_beyond(np.maximum(m_r, m_s)[present]),
                "closing_shift_model": {"max": float(np.abs(shift).max()) if shift.size else 0.0,
                                        "mean": float(np.abs(shift).mean()) if shift.size else 0.0},
                "classes": realised.classes(digits=0),
            }
        return out


SCALES = ("ir", "full-code")


def _full_code_tau(M: Tensor, cal, load: np.ndarray | float) -> float:
    """τ at which the block's strongest |coupling| takes the full code at load `load`."""
    top = float(M.abs().max())
    if top <= 0:
        return 1.0
    a1 = abs(float(cal.coupling_coefficients(np.array(cal.max_code), 1 + np.max(load), 1 + np.max(load))[1]))
    return top / a1


def realise_ir(ir, *, calibration=None, trim: str = "closed", scale: str = "ir", tau_s: float | None = None,
               couplers: str | None = None, iterations: int = 3) -> ArrayCircuit:
    """The couplers of `ir` (main K, conditioning C, drive) on `calibration`'s cells (default:
    the IR's). Loads count every coupler on a cell: a main cell's K couplers and its N_c drive
    couplers (at their class-mean load), a conditioning cell's C couplers and the drive
    couplers it sends; loads and codes are iterated together.

    `scale`: 'ir' — every coupler at the IR's τ against the calibration's absolute K_eff per
    code (what these very cells realise; a dense array's couplings at the weak-coupling τ
    fall below the DAC's LSB and round to no coupler, which the report counts); 'full-code'
    — each block's DAC scaled so its strongest coupling takes the full code (a resistor
    ladder resized for the array: the codes span the block's range, the coupling function's
    shape per code kept), the shape `ArrayCircuit.shape` puts on the IR's own couplings.
    `tau_s`: the 'ir' scale's seconds per model time unit instead of the IR's (a shorter τ
    scales every coupling up onto the codes). `couplers`: `CompileOptions.couplers` (default
    the IR's): reciprocal DACs realise K̄ and C̄, one-way couplers each direction."""
    if trim not in TRIMS:
        raise CompileError(f"trim must be one of {', '.join(TRIMS)}, not {trim!r}")
    if scale not in SCALES:
        raise CompileError(f"scale must be one of {', '.join(SCALES)}, not {scale!r}")
    cal = calibration or ir.calibration
    directed = directed_couplers(ir.couplers if couplers is None else couplers, cal)
    square = realise_one_way if directed else realise_symmetric
    p = ir.to_params(dtype=torch.float32)
    tau = ir.tau_s if tau_s is None else float(tau_s)
    n, n_c = p.n, p.n_cond
    drive_to_main = np.full(n, float(n_c))
    drive_from_cond = np.full(n_c, float(n))
    K = C = D = None
    tk = tc = td = tau
    load_k = (p.K != 0).sum(1).numpy() + drive_to_main
    load_c = (p.C != 0).sum(1).numpy() + drive_from_cond
    for _ in range(iterations):
        tk, tc, td = (tau, tau, tau) if scale == "ir" else (
            _full_code_tau(p.K if directed else (p.K + p.K.T) / 2, cal, load_k),
            _full_code_tau(p.C if directed else (p.C + p.C.T) / 2, cal, load_c),
            _full_code_tau(p.drive, cal, np.concatenate([load_k, load_c])))
        K = square(p.K, tk, cal, extra_load=drive_to_main)
        C = square(p.C, tc, cal, extra_load=drive_from_cond) if n_c else \
            Realised(codes=np.zeros((0, 0), dtype=np.int8), load_recv=np.zeros(0), load_send=np.zeros(0), cal=cal)
        D = realise_directed(p.drive, td, cal, K.load_recv, C.load_recv)
        load_k, load_c = K.load_recv, C.load_recv
        w = cal.coupler_load(D.codes).mean(axis=0) if D.codes.size else np.zeros((n, n_c))
        new_main, new_cond = w.sum(axis=1), w.sum(axis=0)
        if np.allclose(new_main, drive_to_main) and np.allclose(new_cond, drive_from_cond):
            break
        drive_to_main, drive_from_cond = new_main, new_cond
    return ArrayCircuit(K=K, C=C, drive=D, taus={"K": tk, "C": tc, "drive": td}, trim=trim, cal=cal, scale=scale,
                        directed=directed)


def trajectory_trim(model, *, per_class: int = 25, seed: int = 0) -> tuple[Tensor, Tensor]:
    """The 'trajectory' trim's offsets (δ_main (N,), δ_cond (N_c,), model units) of a model
    carrying a `ShapedCoupling` (`model.dynamics.shape`): the mean over `per_class` seeds of
    every class and over the steps of the ideal (sine) model's own trajectories of what the
    circuit's coupling adds beyond the sine coupling at those phases — per oscillator. A trim
    of ω − δ takes out the static part of that error on the trajectories the model runs; the
    rest moves with the phases and no static trim can follow it."""
    from oscsim import simulate
    from oscsim.coupling import gather_drive, gather_drive_harmonics, velocity

    dyn = model.dynamics
    shape = dyn.shape
    if shape is None:
        raise CompileError("the trajectory trim needs a model with the circuit's coupling (dynamics.shape)")
    cfg = model.config
    labels = torch.arange(cfg.num_classes).repeat_interleave(per_class)
    theta0 = model.sample_theta0(len(labels), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        dyn.shape = None
        try:
            sine = dyn.params()
        finally:
            dyn.shape = shape
        circuit = dyn.params()
        res = simulate(sine, theta0.to(sine.dtype), labels, steps=cfg.num_steps, T=cfg.integration_time,
                       method="euler", record=True)
        batch = len(labels)
        d_s = gather_drive(sine, labels, batch)
        d_c, d_h = gather_drive(circuit, labels, batch), gather_drive_harmonics(circuit, labels, batch)
        total = torch.zeros(sine.n + sine.n_cond, dtype=sine.dtype)
        frames = res.trajectory[:-1]
        for state in frames:
            total += (velocity(circuit, state, d_c, d_h) - velocity(sine, state, d_s)).mean(0)
    delta = total / len(frames)
    return delta[: sine.n], delta[sine.n:]


def capacitance_factor(cal, codes: np.ndarray) -> np.ndarray:
    """C_node / C_lone of each cell (last axis: its couplers' codes, 0 = none): a coupler at a
    code with b magnitude bits on lowers a lone cell's frequency by L + b·L_bit
    (`hw.Calibration.coupler_load_f_rel`, `coupler_on_f_rel_per_bit`), i.e. adds
    1/(1 − L − b·L_bit) − 1 of the node's capacitance; the loads add."""
    drop = cal.coupler_load_f_rel + cal.bits_on(codes) * cal.coupler_on_f_rel_per_bit
    extra = np.where(codes != 0, 1.0 / (1.0 - np.clip(drop, 0.0, 0.95)) - 1.0, 0.0)
    return 1.0 + extra.sum(axis=-1)
