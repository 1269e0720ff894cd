"""`compiler.emit.spice_array`: a few cells of an IR as numbers a SPICE array realises (no SPICE here)."""

from __future__ import annotations

import math

import pytest
import torch

import compiler
import models
from compiler import CompileError, CompileOptions
from compiler.emit import choose_cells, spice_array
from hw.calibration import Calibration

CAL = Calibration.default()


@pytest.fixture(scope="module")
def ir():
    return compiler.compile(models.Un0.init(models.PUBLISHED["digits-n64"], seed=0), CompileOptions(bits=4, tile=8),
                            calibration=CAL)


@pytest.fixture(scope="module")
def doc(ir):
    return spice_array(ir, choose_cells(ir, 6), calibration=CAL)


def _loads(doc):
    codes = torch.zeros(len(doc["cells"]), len(doc["cells"]), dtype=torch.int64)
    for i, j, c in doc["couplings"]:
        codes[i, j] = codes[j, i] = c
    return codes.numpy()


def test_codes_are_monotone_in_the_coupling_at_equal_loads(doc) -> None:
    ks = torch.tensor(doc["K_sym_model"], dtype=torch.float64).abs()
    codes = _loads(doc)
    for i, j, c in doc["couplings"]:
        assert c == 0 or math.copysign(1, c) == math.copysign(1, doc["K_sym_model"][i][j])
    # a pair's code is the one whose loaded fundamental is nearest its coupling: compare
    # pairs through the coupling divided by that loaded fundamental's scale
    import numpy as np

    w = CAL.coupler_load(codes)
    load = w.sum(axis=1)
    m_r, m_s = 1 + load[:, None] - w, 1 + load[None, :] - w
    full = np.where(codes != 0, np.sign(codes), 1) * CAL.max_code
    scale = np.sqrt(CAL.fundamental(full, m_r, m_s) * CAL.fundamental(full, m_s, m_r))
    iu = np.triu_indices(len(ks), 1)
    want = (ks.numpy() / scale)[iu]
    mag = np.abs(codes)[iu]
    order = np.argsort(want)
    assert (np.diff(mag[order]) >= -1).all(), "a much stronger coupling got a smaller code"


def test_realised_system_is_the_measured_coupling_function_in_model_units(doc) -> None:
    import numpy as np

    codes = _loads(doc)
    w = CAL.coupler_load(codes)
    load = w.sum(axis=1)
    assert load == pytest.approx(doc["physical"]["load_per_cell"])
    coef = CAL.coupling_coefficients(codes, 1 + load[:, None] - w, 1 + load[None, :] - w) * doc["tau_s"]
    k_hat = np.array(doc["K_realised_model"])
    assert k_hat == pytest.approx(coef[..., 1], rel=1e-12)
    h = doc["harmonics_model"]
    assert np.array(h["b0"]) == pytest.approx(coef[..., 0], rel=1e-12)
    assert np.array(h["b"]) == pytest.approx(np.stack([coef[..., 2], coef[..., 4], coef[..., 6]]), rel=1e-12)
    assert np.array(h["a"]) == pytest.approx(np.stack([coef[..., 3], coef[..., 5]]), rel=1e-12)
    # the closed-coupler trim: each open target is ω − Σ_j b0_ij
    trimmed = np.array(doc["omega"]) - coef[..., 0].sum(axis=1)
    assert np.array(doc["omega_trimmed"]) == pytest.approx(trimmed, rel=1e-12)
    for f, w_ in zip(doc["target_f_hz"], trimmed, strict=True):
        assert f == pytest.approx(doc["carrier_hz"] + w_ / (2 * math.pi * doc["tau_s"]))
    # a coupler's H differs between its two cells only through their loads
    assert doc["physical"]["closing_shift_hz"] == pytest.approx((coef[..., 0].sum(axis=1) / (2 * math.pi * doc["tau_s"])).tolist())


def test_the_open_trim_and_a_sine_only_calibration(ir) -> None:
    cells = choose_cells(ir, 5)
    d = spice_array(ir, cells, calibration=CAL, trim="open")
    assert d["omega_trimmed"] == d["omega"] and d["harmonics_model"] is not None
    v1 = CAL.as_sine_only()
    sine = spice_array(ir, cells, calibration=v1)
    assert sine["harmonics_model"] is None and sine["omega_trimmed"] == sine["omega"]
    k_hat = torch.tensor(sine["K_realised_model"], dtype=torch.float64)
    assert torch.equal(k_hat, k_hat.T)  # sine-only: no load table, one K_eff per code
    for i, j, c in sine["couplings"]:
        assert float(k_hat[i, j]) == pytest.approx(v1.k_of_code(c) * sine["tau_s"], rel=1e-12)


def test_tau_rule_puts_the_strongest_pair_at_full_code(ir, doc) -> None:
    assert doc["tau_s"] < ir.tau_s / 10  # the IR's τ is far too long for a handful of cells
    assert max(abs(c) for _, _, c in doc["couplings"]) == CAL.max_code
    assert doc["cycles"] >= 60 * (1 - 1e-9)
    assert doc["T_check"] * doc["tau_s"] * doc["carrier_hz"] == pytest.approx(doc["cycles"])


def test_a_given_tau_is_kept_and_clips(ir) -> None:
    cells = choose_cells(ir, 4)
    free = spice_array(ir, cells, calibration=CAL)
    short = spice_array(ir, cells, calibration=CAL, tau_s=free["tau_s"] / 2)
    assert short["tau_s"] == free["tau_s"] / 2 and short["tau_rule"] == "given"
    assert short["dropped"]["clipped_pairs"] >= 1
    long = spice_array(ir, cells, calibration=CAL, tau_s=free["tau_s"] * 100)
    assert long["dropped"]["pairs_rounded_to_zero"] >= 1


def test_dropped_parts_are_reported(ir, doc) -> None:
    d = doc["dropped"]
    K = torch.tensor(doc["K_model"], dtype=torch.float64)
    assert d["antisymmetric_rel"] == pytest.approx(float(((K - K.T) / 2).norm() / K.norm()))
    assert d["outside_coupling_abs_sum"] > 0 and d["drive_abs_sum"] == 0
    assert spice_array(ir, doc["cells"], calibration=CAL, label=3)["dropped"]["drive_abs_sum"] > 0


def test_choose_cells_keeps_frequencies_close(ir) -> None:
    p = ir.to_params(dtype=torch.float64)
    for n in (4, 6, 8):
        cells = choose_cells(ir, n)
        assert len(set(cells)) == n
        w = p.omega[cells]
        assert float(w.max() - w.min()) <= 0.5 + 1e-6  # one frequency step of this IR (4-bit ω codes)


def test_errors(ir) -> None:
    with pytest.raises(CompileError, match=r"^cells must list 4\.\.8 main oscillators, not 3$"):
        spice_array(ir, [0, 1, 2], calibration=CAL)
    with pytest.raises(CompileError, match=r"distinct main-oscillator indices in 0\.\.63"):
        spice_array(ir, [0, 1, 2, 2], calibration=CAL)
    with pytest.raises(CompileError, match=r"classes 0\.\.9"):
        spice_array(ir, [0, 1, 2, 3], calibration=CAL, label=10)
    with pytest.raises(CompileError, match=r"tau_s must be a positive number"):
        spice_array(ir, [0, 1, 2, 3], calibration=CAL, tau_s=-1.0)
    with pytest.raises(CompileError, match=r"^n must be an integer in 4\.\.8"):
        choose_cells(ir, 9)
