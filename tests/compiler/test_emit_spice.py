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


def test_codes_are_monotone_in_the_coupling(doc) -> None:
    ks = torch.tensor(doc["K_sym_model"], dtype=torch.float64).abs()
    g = torch.tensor(doc["physical"]["load_k_factor"], dtype=torch.float64)
    want = ks / torch.sqrt(g[:, None] * g[None, :])
    code = torch.zeros_like(ks, dtype=torch.int64)
    for i, j, c in doc["couplings"]:
        code[i, j] = code[j, i] = abs(c)
        assert c == 0 or math.copysign(1, c) == math.copysign(1, doc["K_sym_model"][i][j])
    iu = torch.triu_indices(len(ks), len(ks), 1)
    w, c = want[iu[0], iu[1]], code[iu[0], iu[1]]
    order = torch.argsort(w)
    assert bool((c[order].diff() >= 0).all()), "a stronger coupling got a smaller code"


def test_realised_k_is_the_code_table_times_the_load(doc) -> None:
    k_hat = torch.tensor(doc["K_realised_model"], dtype=torch.float64)
    g = torch.tensor(doc["physical"]["load_k_factor"], dtype=torch.float64)
    # the coupler is reciprocal: divided by the receiving cell's load factor, K̂ is symmetric
    torch.testing.assert_close(k_hat / g[:, None], (k_hat / g[:, None]).T, rtol=0, atol=1e-15)
    for i, j, c in doc["couplings"]:
        assert float(k_hat[i, j]) == pytest.approx(CAL.k_of_code(c) * doc["tau_s"] * float(g[i]), rel=1e-12)
    attached = torch.zeros(len(g), dtype=torch.float64)
    for i, j, _ in doc["couplings"]:
        attached[i] += 1
        attached[j] += 1
    lam = CAL.coupler_load_f_rel / (1 - CAL.coupler_load_f_rel)
    torch.testing.assert_close(g, ((1 + lam) / (1 + attached * lam)).to(g.dtype))


def test_without_the_load_model_k_is_symmetric(ir) -> None:
    d = spice_array(ir, choose_cells(ir, 5), calibration=CAL, load_model=False)
    k_hat = torch.tensor(d["K_realised_model"], dtype=torch.float64)
    assert torch.equal(k_hat, k_hat.T)


def test_tau_rule_puts_the_strongest_pair_at_full_code(ir, doc) -> None:
    assert doc["tau_s"] < ir.tau_s / 10  # the IR's τ is far too long for a handful of cells
    assert max(abs(c) for _, _, c in doc["couplings"]) == CAL.max_code
    ks = torch.tensor(doc["K_sym_model"], dtype=torch.float64).abs()
    g = torch.tensor(doc["physical"]["load_k_factor"], dtype=torch.float64)
    assert doc["tau_s"] == pytest.approx(float((ks / torch.sqrt(g[:, None] * g[None, :])).max()) / CAL.k_max_rad_s)
    assert doc["cycles"] >= 60 * (1 - 1e-9)
    assert doc["T_check"] * doc["tau_s"] * doc["carrier_hz"] == pytest.approx(doc["cycles"])
    # targets: carrier + ω/(2π τ)
    for f, w in zip(doc["target_f_hz"], doc["omega"]):
        assert f == pytest.approx(doc["carrier_hz"] + w / (2 * math.pi * doc["tau_s"]))


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
