"""The release's .pt checkpoints load directly and give the release's images."""

from __future__ import annotations

import torch

import models
from models.release_reference import release_forward
from tests.models.release_files import release_state, write

# float32 through 10–25 steps of coupling GEMMs and a conv decoder: both paths compute the
# same math in a different order; images agree to a few ulps of tanh's range.
ATOL = 2e-5


def _seeds(n: int, n_cond: int, batch: int, classes: int, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    theta0 = torch.rand(batch, n + n_cond, generator=g) * 2 * torch.pi - torch.pi
    labels = torch.randint(0, classes, (batch,), generator=g)
    return theta0, labels


CIFAR_ARCH = {
    "n_oscillators": 64, "n_conditional_oscillators": 8, "num_steps": 10, "solver": "euler",
    "relativization": "mean_relative", "parameterization": "standard", "encoding": "sin_cos",
    "seed": 42, "lr": 1.4e-3, "batch_size": 2048, "dataset": "uoft-cs/cifar10",
}


def test_cifar10_family_file_matches_release_semantics(tmp_path) -> None:
    state = release_state(n=64, n_cond=8, classes=10, blocks=3)
    write(tmp_path / "cifar10_n64.pt", state, CIFAR_ARCH)
    model = models.load(tmp_path / "cifar10_n64.pt")
    c = model.config
    assert (c.n, c.n_cond, c.num_classes, c.image_size, c.dataset) == (64, 8, 10, 32, "cifar10")
    assert (c.relativization, c.parameterization, c.solver, c.num_steps) == ("mean_relative", "standard", "euler", 10)
    theta0, labels = _seeds(64, 8, 6, 10)
    got = model.generate(labels, theta0)
    want = release_forward(state, labels, theta0, parameterization="standard", relativization="mean_relative", num_steps=10)
    assert got.shape == (6, 3, 32, 32)
    torch.testing.assert_close(got, want, atol=ATOL, rtol=0)


def test_cifar10_builder_defaults_fill_missing_keys(tmp_path) -> None:
    """A file whose config lacks solver/steps/relativization gets the release builder's
    defaults: RK4, 25 steps, ref_oscillator."""
    state = release_state(n=32, n_cond=8, classes=10, blocks=3, seed=3)
    write(tmp_path / "old.pt", state, {"n_oscillators": 32, "n_conditional_oscillators": 8})
    model = models.load(tmp_path / "old.pt")
    assert (model.config.solver, model.config.num_steps, model.config.relativization) == ("rk4", 25, "ref_oscillator")
    theta0, labels = _seeds(32, 8, 4, 10)
    want = release_forward(state, labels, theta0, parameterization="standard", relativization="ref_oscillator",
                           num_steps=25, solver="rk4")
    torch.testing.assert_close(model.generate(labels, theta0), want, atol=ATOL, rtol=0)


def test_imagenet64_family_reads_architecture_from_shapes(tmp_path) -> None:
    """ImageNet-64 files carry training arguments only: μP, ref_oscillator, Euler 10."""
    state = release_state(n=48, n_cond=1, classes=1000, blocks=4, mup=True, seed=5)
    write(tmp_path / "imagenet64_n48.pt", state, {"seed": 0, "lr": 3e-4, "precision": "bf16", "batch_size": 1024})
    model = models.load(tmp_path / "imagenet64_n48.pt")
    c = model.config
    assert (c.n, c.n_cond, c.num_classes, c.image_size, c.dataset) == (48, 1, 1000, 64, "imagenet64")
    assert (c.parameterization, c.relativization, c.solver, c.num_steps) == ("mup", "ref_oscillator", "euler", 10)
    theta0, labels = _seeds(48, 1, 3, 1000)
    want = release_forward(state, labels, theta0, parameterization="mup", relativization="ref_oscillator", num_steps=10)
    torch.testing.assert_close(model.generate(labels, theta0), want, atol=ATOL, rtol=0)


def test_pairwise_relativization(tmp_path) -> None:
    state = release_state(n=16, n_cond=2, classes=3, blocks=3, pairwise=True, seed=7)
    cfg = {**CIFAR_ARCH, "n_oscillators": 16, "n_conditional_oscillators": 2, "relativization": "pairwise"}
    write(tmp_path / "pw.pt", state, cfg)
    model = models.load(tmp_path / "pw.pt")
    assert model.config.latent_channels == 2 * 16 * 16 // 16
    theta0, labels = _seeds(16, 2, 4, 3)
    want = release_forward(state, labels, theta0, parameterization="standard", relativization="pairwise", num_steps=10)
    torch.testing.assert_close(model.generate(labels, theta0), want, atol=ATOL, rtol=0)


def test_release_round_trip_through_save_release(tmp_path) -> None:
    model = models.Un0.init(models.PUBLISHED["digits-n64"], seed=4)
    models.save_release(model, tmp_path / "digits.pt")
    raw = torch.load(tmp_path / "digits.pt", weights_only=True)
    assert all("._orig_mod." in k for k in raw["model"])
    again = models.load(tmp_path / "digits.pt")
    assert again.config.replace(name=model.config.name) == model.config
    for k, v in model.state_dict().items():
        assert torch.equal(v, again.state_dict()[k])


def test_diagonal_of_K_is_ignored(tmp_path) -> None:
    state = release_state(n=32, n_cond=8, classes=10, blocks=3, seed=9)
    write(tmp_path / "a.pt", state, {**CIFAR_ARCH, "n_oscillators": 32})
    poked = dict(state)
    poked["dynamics._orig_mod.K"] = state["dynamics._orig_mod.K"] + torch.eye(32) * 5.0
    poked["dynamics._orig_mod.K_cond"] = state["dynamics._orig_mod.K_cond"] + torch.eye(8) * 5.0
    write(tmp_path / "b.pt", poked, {**CIFAR_ARCH, "n_oscillators": 32})
    theta0, labels = _seeds(32, 8, 4, 10)
    a = models.load(tmp_path / "a.pt").generate(labels, theta0)
    b = models.load(tmp_path / "b.pt").generate(labels, theta0)
    torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


def test_key_map_imports_other_names(tmp_path) -> None:
    state = release_state(n=32, n_cond=8, classes=10, blocks=3, seed=2)
    renamed = {}
    for k, v in state.items():
        k = k.replace("dynamics._orig_mod.", "net.osc.").replace("decoder._orig_mod.", "net.dec.")
        renamed["module." + k] = v
    torch.save(renamed, tmp_path / "other.pt")
    names = {k.replace("net.osc.", "dynamics.").replace("net.dec.", "decoder."): k
             for k in (n.removeprefix("module.") for n in renamed)}
    key_map = {"format": "un0hw-keymap", "version": 1, "strip_prefixes": ["module."], "tensors": names,
               "config": {"relativization": "mean_relative", "solver": "euler", "num_steps": 10}}
    (tmp_path / "map.json").write_text(__import__("json").dumps(key_map))
    model = models.load(tmp_path / "other.pt", key_map=tmp_path / "map.json")
    theta0, labels = _seeds(32, 8, 3, 10)
    want = release_forward(state, labels, theta0, parameterization="standard", relativization="mean_relative", num_steps=10)
    torch.testing.assert_close(model.generate(labels, theta0), want, atol=ATOL, rtol=0)
