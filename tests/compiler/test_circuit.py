"""compiler.circuit: model couplings onto the measured coupling function of the cells (no SPICE)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import compiler
import models
from compiler import CompileError, CompileOptions
from compiler.plan import array_plan
from compiler.circuit import (
    directed_couplers,
    realise_directed,
    realise_ir,
    realise_one_way,
    realise_symmetric,
    trim_omega,
)
from hw.calibration import Calibration

CAL = Calibration.default()


@pytest.fixture(scope="module")
def ir():
    return compiler.compile(models.Un0.init(models.PUBLISHED["digits-n64"], seed=0), CompileOptions(bits=4, tile=16),
                            calibration=CAL)


def _block(n: int, seed: int, tau: float = 1e-8) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    K = torch.randn(n, n, generator=g, dtype=torch.float64) * 0.5e8 * tau
    K[torch.rand(n, n, generator=g) < 0.3] = 0.0
    return K


def test_codes_are_reciprocal_and_the_loads_a_fixed_point() -> None:
    K = _block(7, 0)
    r = realise_symmetric(K, 1e-8, CAL)
    assert np.array_equal(r.codes, r.codes.T) and not np.diag(r.codes).any()
    assert r.load_recv == pytest.approx(CAL.coupler_load(r.codes).sum(axis=1))
    ks = ((K + K.T) / 2).numpy()
    assert np.array_equal(np.sign(r.codes), np.sign(ks) * (r.codes != 0))
    # each code is the nearest one at the pair's loads (geometric mean of both directions)
    m_r, m_s = r.loads()
    for i, j in zip(*np.nonzero(np.triu(ks, 1))):
        cand = np.arange(CAL.max_code + 1) * int(np.sign(ks[i, j]))
        a1 = np.sqrt(CAL.fundamental(cand, m_r[i, j], m_s[i, j]) * CAL.fundamental(cand, m_s[i, j], m_r[i, j]))
        assert abs(r.codes[i, j]) == int(np.abs(abs(ks[i, j]) / 1e-8 - a1).argmin())


def test_model_units_are_the_calibration_times_tau() -> None:
    r = realise_symmetric(_block(5, 1), 1e-8, CAL)
    k_hat, h = r.model_units(1e-8)
    coef = r.coef() * 1e-8
    assert k_hat.numpy() == pytest.approx(coef[..., 1])
    assert h.b0.numpy() == pytest.approx(coef[..., 0]) and h.order == 3
    # a load asymmetry makes the realised system asymmetric; the codes are not
    assert np.array_equal(r.codes, r.codes.T)
    sine = realise_symmetric(_block(5, 1), 1e-8, CAL.as_sine_only())
    k1, h1 = sine.model_units(1e-8)
    assert h1 is None and torch.equal(k1, k1.T)


def test_trims() -> None:
    r = realise_symmetric(_block(6, 2), 1e-8, CAL)
    _, h = r.model_units(1e-8)
    omega = torch.linspace(-1, 1, 6, dtype=torch.float64)
    assert torch.equal(trim_omega(omega, h, trim="open"), omega)
    assert trim_omega(omega, h, trim="closed").numpy() == pytest.approx((omega - h.b0.sum(1)).numpy())
    with pytest.raises(CompileError, match="trim must be one of open, closed, trajectory"):
        trim_omega(omega, h, trim="none")


def test_directed_drive_codes_per_class() -> None:
    g = torch.Generator().manual_seed(3)
    D = torch.randn(4, 6, 3, generator=g, dtype=torch.float64) * 0.4
    r = realise_directed(D, 1e-8, CAL, np.full(6, 3.0), np.full(3, 6.0))
    assert r.codes.shape == (4, 6, 3) and (r.codes != 0).any()
    assert np.array_equal(np.sign(r.codes), np.sign(D.numpy()) * (r.codes != 0))
    assert r.coef().shape == (4, 6, 3, 7)


def test_the_ir_records_its_circuit(ir, tmp_path) -> None:
    section = ir.doc["circuit"]
    assert set(section) == {"ir", "full_code", "trim"}
    full = section["full_code"]["blocks"]["K"]
    assert full["couplers"] > 0 and full["classes"]
    code, m_r, m_s, _count, *coef = full["classes"][0]
    assert coef == pytest.approx(CAL.coupling_coefficients(np.array(code), m_r, m_s).tolist())
    assert sum(c[3] for c in full["classes"]) == full["couplers"]
    assert len(section["trim"]["omega_open_model"]) == ir.n
    ir.save(tmp_path / "ir")
    assert compiler.ArrayIR.load(tmp_path / "ir").doc["circuit"] == section


def test_to_model_with_the_circuit_coupling(ir) -> None:
    sine, circuit = ir.to_model(), ir.to_model(coupling="circuit")
    assert sine.dynamics.shape is None and circuit.dynamics.shape is not None
    p = circuit.params()
    assert p.K_h is not None and p.drive_h is not None
    K = sine.params().K.detach()
    assert float(((K - K.T) / 2).norm()) > 0.1 * float(K.norm())  # the model's K is far from symmetric
    assert torch.equal(p.K, (K + K.T) / 2)  # the IR's strengths, as one reciprocal DAC per pair holds them
    assert torch.equal(circuit.dynamics.K, sine.dynamics.K)  # the model's own parameter is untouched
    assert not p.K_h.b0.any()  # closed trim: the constant part trimmed out
    assert ir.to_model(coupling="circuit", trim="open").params().K_h.b0.any()
    labels = torch.arange(10)
    theta0 = sine.sample_theta0(10, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert not torch.allclose(sine.generate(labels, theta0), circuit.generate(labels, theta0))
    with pytest.raises(compiler.IRError, match="coupling must be 'sine' or 'circuit'"):
        ir.to_model(coupling="cosine")


def test_training_under_the_shape_reaches_the_couplings(ir) -> None:
    model = ir.to_model(coupling="circuit").train()
    labels = torch.arange(4)
    theta0 = model.sample_theta0(4, generator=torch.Generator().manual_seed(1))
    model(labels, theta0).square().mean().backward()
    assert model.dynamics.K.grad is not None and bool(model.dynamics.K.grad.abs().sum() > 0)


def test_realise_ir_scales(ir) -> None:
    physical = realise_ir(ir, scale="ir")
    resized = realise_ir(ir, scale="full-code")
    assert physical.taus == {"K": ir.tau_s, "C": ir.tau_s, "drive": ir.tau_s}
    assert int(np.abs(resized.K.codes).max()) == CAL.max_code
    assert resized.report()["blocks"]["K"]["couplers"] >= physical.report()["blocks"]["K"]["couplers"]
    with pytest.raises(CompileError, match="scale must be one of ir, full-code"):
        realise_ir(ir, scale="half")


def test_the_trajectory_trim_moves_the_frequencies_by_the_mean_error(ir) -> None:
    from compiler.circuit import trajectory_trim

    closed = ir.to_model(coupling="circuit")
    d_main, d_cond = trajectory_trim(closed, per_class=4)
    assert d_main.shape == (ir.n,) and d_cond.shape == (ir.n_cond,) and bool(d_main.abs().sum() > 0)
    traj = ir.to_model(coupling="circuit", trim="trajectory")
    moved = (closed.dynamics.omega - traj.dynamics.omega).reshape(-1)
    assert bool((moved.abs() > 0).any()) and traj.dynamics.shape is not None
    with pytest.raises(CompileError, match="needs a model with the circuit's coupling"):
        trajectory_trim(ir.to_model())


# --- one-way couplers (the gm cell): the antisymmetric part of K kept ---------------------------
GM = Calibration.load(Path(__file__).resolve().parents[2] / "docs" / "cells" / "generic180-gm" / "calibration.json")


def test_the_coupler_kind_decides_the_mode() -> None:
    assert CAL.reciprocal and not GM.reciprocal and GM.coupler == "gm"
    assert [directed_couplers(m, GM) for m in ("auto", "reciprocal", "directed")] == [True, False, True]
    assert [directed_couplers(m, CAL) for m in ("auto", "reciprocal")] == [False, False]
    with pytest.raises(CompileError, match="--couplers directed needs a one-way coupler; the calibration's 'resistive'"):
        directed_couplers("directed", CAL)
    with pytest.raises(CompileError, match="--couplers must be one of auto, reciprocal, directed"):
        CompileOptions(couplers="both")
    with pytest.raises(CompileError, match="--couplers directed needs a one-way coupler"):
        compiler.compile(models.Un0.init(models.PUBLISHED["digits-n64"], seed=0),
                         CompileOptions(bits=4, tile=16, couplers="directed"), calibration=CAL)


def test_one_way_codes_follow_each_direction() -> None:
    K = _block(9, 4)
    K[0, 1], K[1, 0] = 0.4, -0.05  # opposite signs, different strengths: no reciprocal DAC holds both
    r = realise_one_way(K, 1e-8, GM)
    assert not np.diag(r.codes).any()
    assert np.array_equal(np.sign(r.codes), np.sign(K.numpy()) * (r.codes != 0) * (1 - np.eye(9)))
    assert r.codes[0, 1] > 0 > r.codes[1, 0] and abs(r.codes[0, 1]) > abs(r.codes[1, 0])
    assert r.load_recv == pytest.approx(GM.coupler_load(r.codes).sum(axis=1))  # the loads are a fixed point
    # each code is the nearest one at its own direction's loads (one a half-way coupler can flip
    # with the loads it moves: within one code of it, and most exactly)
    m_r, m_s = r.loads()
    off = []
    for i, j in zip(*np.nonzero(r.codes)):
        mags = np.arange(1, GM.max_code + 1) * np.sign(r.codes[i, j])
        a1 = GM.fundamental(mags, np.full(mags.shape, m_r[i, j]), np.full(mags.shape, m_s[i, j]))
        off.append(abs(int(r.codes[i, j])) - 1 - int(np.argmin(np.abs(abs(float(K[i, j])) / 1e-8 - a1))))
    assert max(map(abs, off)) <= 1 and sum(o != 0 for o in off) <= 0.1 * len(off)


@pytest.fixture(scope="module")
def ir_gm():
    return compiler.compile(models.Un0.init(models.PUBLISHED["digits-n64"], seed=0), CompileOptions(bits=4, tile=16),
                            calibration=GM)


def test_a_gm_array_keeps_the_antisymmetric_part(ir_gm) -> None:
    circuit = realise_ir(ir_gm, scale="full-code")
    assert circuit.directed and not np.array_equal(circuit.K.codes, circuit.K.codes.T)
    assert circuit.report()["couplers"].startswith("directed")
    sine, chip = ir_gm.to_model(), ir_gm.to_model(coupling="circuit")
    assert not chip.dynamics.shape.reciprocal
    assert torch.equal(chip.params().K, sine.params().K)  # every direction's strength the IR's
    forced = realise_ir(ir_gm, scale="full-code", couplers="reciprocal")
    assert not forced.directed and np.array_equal(forced.K.codes, forced.K.codes.T)
    with pytest.raises(CompileError, match="one-way couplers"):
        array_plan(ir_gm)


def test_training_under_a_reciprocal_shape_learns_only_the_symmetric_part(ir) -> None:
    model = ir.to_model(coupling="circuit").train()
    assert model.dynamics.shape.reciprocal
    labels = torch.arange(4)
    theta0 = model.sample_theta0(4, generator=torch.Generator().manual_seed(1))
    model(labels, theta0).square().mean().backward()
    g = model.dynamics.K.grad
    assert bool(g.abs().sum() > 0) and torch.allclose(g, g.T, atol=1e-7 * float(g.abs().max()))
