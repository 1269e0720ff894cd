"""`Dynamics.params()` without autograd is built once while the weights stay as they are."""

from __future__ import annotations

import torch

import models


def test_no_grad_params_are_reused_until_a_weight_changes() -> None:
    model = models.Un0.init(models.PUBLISHED["digits-n64"].replace(parameterization="mup"), seed=0)
    with torch.no_grad():
        first = model.params()
        assert model.params() is first
        old_k = first.K.clone()
        model.dynamics.K.add_(0.5)  # an in-place change bumps the version counter
        second = model.params()
        assert second is not first and not torch.equal(second.K, old_k)
        assert torch.equal(second.K, model.dynamics._build_params().K)  # what a fresh build gives
        model.load_state_dict(models.Un0.init(models.PUBLISHED["digits-n64"].replace(parameterization="mup"),
                                              seed=1).state_dict())
        third = model.params()
        assert third is not second and not torch.equal(third.K, second.K)
    # with autograd: a fresh graph every call, never the cached tensors
    a, b = model.params(), model.params()
    assert a is not b and a.K.requires_grad and a.K is not third.K
    torch.testing.assert_close(a.K.detach(), third.K)


def test_a_new_shape_is_a_new_system() -> None:
    import compiler

    ir = compiler.compile(models.Un0.init(models.PUBLISHED["digits-n64"], seed=0),
                          compiler.CompileOptions(bits=4, tile=16))
    model = ir.to_model()
    with torch.no_grad():
        sine = model.params()
        model.dynamics.shape = ir.to_model(coupling="circuit").dynamics.shape
        shaped = model.params()
        assert shaped is not sine and shaped.K_h is not None and sine.K_h is None
        model.dynamics.shape = None
        assert model.params().K_h is None
