"""The release's FID protocol (analysis/cleanfid.py, `un0hw fid --protocol clean-fid`).

The independent reference is clean-fid itself: its package imports torchvision at the
top, which cannot be installed beside this torch, so the tests register a stand-in
``torchvision`` (a ``transforms.ToTensor`` that does what torchvision's does, and bare
base classes for clean-fid's unused pytorch-fid port) and call clean-fid's own
``get_folder_features`` (PNG folders → its "clean" resize → a model) and
``frechet_distance``. The network is a random-weight FID Inception (its batch norms
set from one batch, so features are of order one), wrapped the same way on both sides.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
import re
import sys
import types

import numpy as np
import pytest
import torch
from PIL import Image

import models
from analysis.cleanfid import (
    CleanFidError, RELEASE_SAMPLES, class_balanced_labels, clean_extractor, clean_resizer, reference_path,
    Reference, reference_statistics, resize_clean, score_clean, to_uint8,
)
from analysis.evaluate import Extractor
from analysis.fid import FeatureStats, frechet_distance
from analysis.inception import inception_extractor, load_inception, pool_features
from models.data import cifar10
from models.un0 import Un0
from un0hw.cli import main
from tests.analysis.inception_files import random_inception


# --- fixtures ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A weights file of the FID Inception's names and shapes: random convolutions, batch
    norms set from the statistics of one batch of random images (so activations keep
    their scale through the 94 layers instead of fading to 1e-8)."""
    net = random_inception()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average: after one batch, that batch's statistics
    net.train()
    with torch.no_grad():
        net(torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1)))
    path = tmp_path_factory.mktemp("w") / "weights-inception.pth"
    torch.save(net.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def net(weights):
    return load_inception(weights)[0]


def _stand_in_torchvision() -> dict[str, types.ModuleType]:
    tv = types.ModuleType("torchvision")
    tv.__version__ = "0.0+stand-in"
    transforms = types.ModuleType("torchvision.transforms")

    class ToTensor:
        """torchvision's ToTensor on numpy: HWC → CHW; divided by 255 only for uint8."""

        def __call__(self, pic):
            a = np.asarray(pic)
            if a.ndim == 2:
                a = a[:, :, None]
            img = torch.from_numpy(a.transpose((2, 0, 1))).contiguous()
            return img.to(torch.get_default_dtype()).div(255) if img.dtype == torch.uint8 else img

    transforms.ToTensor = ToTensor
    tv_models = types.ModuleType("torchvision.models")
    inception = types.ModuleType("torchvision.models.inception")
    for name in ("InceptionA", "InceptionC", "InceptionE"):  # base classes of clean-fid's unused pytorch-fid port
        setattr(inception, name, type(name, (torch.nn.Module,), {}))
    tv.transforms, tv.models, tv_models.inception = transforms, tv_models, inception
    return {"torchvision": tv, "torchvision.transforms": transforms, "torchvision.models": tv_models,
            "torchvision.models.inception": inception}


@pytest.fixture(scope="module")
def cleanfid():
    """clean-fid's own `cleanfid.fid`, imported with the stand-in torchvision (removed again
    afterwards, with every clean-fid module imported through it)."""
    before = set(sys.modules)
    stand_in = _stand_in_torchvision()
    if "torchvision" in sys.modules:
        pytest.skip("a real torchvision is imported; this test uses a stand-in")
    sys.modules.update(stand_in)
    try:
        import cleanfid.fid

        yield cleanfid.fid
    finally:
        for name in set(sys.modules) - before:
            if name.startswith(("torchvision", "cleanfid.")) and name != "cleanfid.resize":
                del sys.modules[name]


def _trunk(net):
    """clean-fid's `model` argument: a batch of resized float 0..255 images → features."""
    return lambda x: pool_features(net, x)


def _save_png(image: torch.Tensor, path) -> None:
    """The release's file: torchvision's save_image of ((x + 1)/2).clamp(0, 1) — its
    make_grid turns one grey channel into RGB, then mul(255).add_(0.5).clamp_(0, 255) to uint8."""
    v = ((image + 1) / 2).clamp(0, 1)
    if v.shape[0] == 1:
        v = torch.cat([v, v, v])
    arr = v.mul(255).add_(0.5).clamp_(0, 255).permute(1, 2, 0).to(torch.uint8).numpy()
    Image.fromarray(arr).save(path)


def _folder(tmp_path, name: str, images: torch.Tensor):
    folder = tmp_path / name
    folder.mkdir()
    for i, x in enumerate(images):
        _save_png(x, folder / f"{i:03d}.png")
    return str(folder)


def _images(n: int, size: int, seed: int, channels: int = 3) -> torch.Tensor:
    """Smooth random images a little beyond [−1, 1] (the clamp is part of the protocol)."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, channels, 8, 8, generator=g) * 2.4 - 1.2
    return torch.nn.functional.interpolate(low, size=(size, size), mode="bilinear", align_corners=False) \
        + 0.1 * torch.randn(n, channels, size, size, generator=g)


def _clean_fid_features(cleanfid, folder: str, net) -> np.ndarray:
    return cleanfid.get_folder_features(folder, model=_trunk(net), num_workers=0, batch_size=4,
                                        device=torch.device("cpu"), mode="clean", verbose=False)


# --- the pipeline against clean-fid's own ---------------------------------------------------
@pytest.mark.slow
def test_features_and_fid_equal_clean_fids_on_the_releases_png_files(tmp_path, cleanfid, weights, net) -> None:
    ex = clean_extractor(weights)
    a, b = _images(5, 32, seed=1), _images(5, 32, seed=2)
    ref_a = _clean_fid_features(cleanfid, _folder(tmp_path, "a", a), net)
    ref_b = _clean_fid_features(cleanfid, _folder(tmp_path, "b", b), net)
    ours_a, ours_b = ex.features(a), ex.features(b)
    assert ours_a.shape == (5, 2048) and ref_a.shape == (5, 2048)
    scale = float(np.abs(ref_a).max())
    assert 1e-2 < scale < 1e3  # features of order one: the tolerances below mean something
    torch.testing.assert_close(ours_a, torch.from_numpy(ref_a), rtol=1e-5, atol=1e-6 * scale)
    torch.testing.assert_close(ours_b, torch.from_numpy(ref_b), rtol=1e-5, atol=1e-6 * scale)

    # the Fréchet distance against clean-fid's (scipy's sqrtm) on the first 256 feature
    # dimensions: at all 2048, its sqrtm alone takes 20-100 s on 2 shared cores
    d = 256
    ra, rb = ref_a[:, :d], ref_b[:, :d]
    theirs = cleanfid.frechet_distance(ra.mean(0), np.cov(ra, rowvar=False), rb.mean(0), np.cov(rb, rowvar=False))
    ours = frechet_distance(FeatureStats.of(ours_a[:, :d], extractor=ex.id),
                            FeatureStats.of(ours_b[:, :d], extractor=ex.id))
    assert ours > 0 and ours == pytest.approx(float(np.real(theirs)), rel=1e-6)

    # the test can fail: torch-fidelity's own resize (the un0hw protocol) gives other features
    tf_features, _ = inception_extractor(weights)
    assert float((tf_features(a[:2]) - torch.from_numpy(ref_a[:2])).abs().max()) > 1e3 * 1e-6 * scale


@pytest.mark.slow
def test_grey_and_64px_images_equal_clean_fids(tmp_path, cleanfid, weights, net) -> None:
    ex = clean_extractor(weights)
    grey, big = _images(2, 32, seed=3, channels=1), _images(2, 64, seed=4)
    folder = tmp_path / "mixed"
    folder.mkdir()
    for i, x in enumerate(grey):  # a grey PNG (mode L): clean-fid converts it to RGB
        Image.fromarray(to_uint8(x[None])[0, 0].numpy(), mode="L").save(folder / f"0{i}.png")
    for i, x in enumerate(big):
        _save_png(x, folder / f"1{i}.png")
    ref = _clean_fid_features(cleanfid, str(folder), net)
    scale = float(np.abs(ref).max())
    torch.testing.assert_close(ex.features(grey), torch.from_numpy(ref[:2]), rtol=1e-5, atol=1e-6 * scale)
    torch.testing.assert_close(ex.features(big), torch.from_numpy(ref[2:]), rtol=1e-5, atol=1e-6 * scale)


@pytest.mark.slow
def test_pool_features_is_torch_fidelitys_forward_without_its_resize(net) -> None:
    """At 299×299 torch-fidelity's TF1 bilinear resize is the identity: the layer sequence
    of `pool_features` must then give exactly the module's own forward."""
    x = torch.randint(0, 256, (2, 3, 299, 299), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        (expected,) = net(x)
        got = pool_features(net, x.float())
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"takes \(B, 3, 299, 299\) images, not \(1, 3, 32, 32\)"):
        pool_features(net, torch.zeros(1, 3, 32, 32))


# --- the pieces -------------------------------------------------------------------------------
def test_uint8_is_what_the_releases_pngs_hold() -> None:
    levels = torch.arange(256, dtype=torch.uint8)
    # the 256 levels a uint8 image holds survive [−1, 1] and back (CIFAR/ImageNet references)
    as_float = (levels.float() / 127.5 - 1).reshape(1, 1, 16, 16)
    assert torch.equal(to_uint8(as_float)[0, 0], levels.reshape(16, 16))
    # a dense sweep against floor(255 v + 0.5) in float64 (away from exact ties), clamped
    x = torch.linspace(-1.3, 1.3, 100_003, dtype=torch.float32).reshape(1, 1, 1, -1)
    v = np.clip((x[0, 0].double().numpy() + 1) / 2, 0, 1) * 255 + 0.5
    expected = np.floor(v)
    tie = np.abs(v - np.round(v)) < 1e-4
    got = to_uint8(x)[0, 0].numpy().astype(np.float64)
    assert got.shape == (1, 100_003) and np.array_equal(got[~tie], expected[~tie]) and tie.mean() < 0.01
    assert int(to_uint8(torch.tensor([[[[-5.0, 5.0]]]]))[0, 0, 0, 0]) == 0
    grey = to_uint8(torch.rand(2, 1, 4, 4) * 2 - 1)
    assert grey.shape == (2, 3, 4, 4) and torch.equal(grey[:, 0], grey[:, 2])  # repeated to RGB
    with pytest.raises(ValueError, match=r"images must be \(B, 1 or 3, H, W\), not \(2, 4, 4\)"):
        to_uint8(torch.zeros(2, 4, 4))


def test_resize_is_clean_fids_own() -> None:
    from cleanfid.resize import build_resizer

    u8 = to_uint8(_images(3, 32, seed=5))
    got = resize_clean(u8)
    assert got.shape == (3, 3, 299, 299) and got.dtype == torch.float32
    fn = build_resizer("clean")
    expected = np.stack([fn(x.permute(1, 2, 0).numpy()).transpose(2, 0, 1) for x in u8])
    assert np.array_equal(got.numpy(), expected)
    assert 0 <= float(got.min()) and float(got.max()) <= 255
    # not a torch resize: bicubic in torch (other kernel, no clipping) gives other values
    torch_bicubic = torch.nn.functional.interpolate(u8.float(), size=(299, 299), mode="bicubic", align_corners=False)
    assert float((torch_bicubic - got).abs().max()) > 1.0
    with pytest.raises(ValueError, match=r"takes \(B, 3, H, W\) uint8 images"):
        resize_clean(u8.float())


def test_missing_clean_fid_says_how_to_install_it(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "cleanfid.resize", None)  # import fails as if not installed
    with pytest.raises(CleanFidError, match=r"^the clean-fid protocol resizes with clean-fid's own code: "
                                            r"pip install --no-deps clean-fid==0\.1\.35 \("):
        clean_resizer()


def test_class_balanced_labels_follow_the_release_rule() -> None:
    labels = class_balanced_labels(RELEASE_SAMPLES, 10, seed=0)
    assert labels.shape == (50_000,) and labels.bincount(minlength=10).tolist() == [5000] * 10
    assert class_balanced_labels(50_000, 1000, seed=3).bincount(minlength=1000).eq(50).all()
    assert not torch.equal(labels[:100], labels[:100].sort().values)  # shuffled
    odd = class_balanced_labels(1003, 10, seed=1)
    counts = odd.bincount(minlength=10)
    assert counts.sum() == 1003 and counts.min() >= 100 and (counts - 100).sum() == 3  # the remainder: 3 at random
    assert torch.equal(class_balanced_labels(1003, 10, seed=1), odd)  # deterministic from the seed
    assert not torch.equal(class_balanced_labels(1003, 10, seed=2), odd)
    few = class_balanced_labels(7, 10, seed=0)  # fewer samples than classes: all drawn at random
    assert few.shape == (7,) and int(few.min()) >= 0 and int(few.max()) <= 9
    with pytest.raises(ValueError, match=r"n >= 1 and classes >= 1"):
        class_balanced_labels(0, 10, seed=0)


# --- reference statistics ---------------------------------------------------------------------
def _write_cifar(root, per_batch: int = 2) -> None:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i, name in enumerate([f"data_batch_{j}" for j in range(1, 6)] + ["test_batch"]):
        rng = np.random.default_rng(i)
        low = rng.integers(0, 256, size=(per_batch, 3, 8, 8)).astype(np.uint8)
        data = low.repeat(4, axis=2).repeat(4, axis=3).reshape(per_batch, 3072)  # 32×32 blocks of 4×4
        with open(folder / name, "wb") as fh:
            pickle.dump({b"data": data, b"labels": rng.integers(0, 10, per_batch).tolist()}, fh)


def _counting(ex: Extractor) -> tuple[Extractor, list[int]]:
    seen: list[int] = []

    def features(images):
        seen.append(len(images))
        return ex.features(images)

    return dataclasses.replace(ex, features=features), seen


@pytest.mark.slow
def test_reference_statistics_are_computed_once_then_read_from_the_cache(tmp_path, monkeypatch, cleanfid, weights,
                                                                         net) -> None:
    monkeypatch.setenv("UN0HW_CACHE", str(tmp_path / "cache"))
    _write_cifar(tmp_path / "data")
    train = cifar10(tmp_path / "data", train=True)
    ex, seen = _counting(clean_extractor(weights))
    first = reference_statistics(train, ex)
    assert not first.cached and first.path.is_file() and sum(seen) == len(train) == 10
    assert first.path.parent == tmp_path / "cache" and first.path.name.startswith("cifar10-train-")
    assert "clean-fid-inception-v3-compat_" in first.path.name and first.stats.count == 10
    again = reference_statistics(train, ex)
    assert again.cached and sum(seen) == 10  # no features computed on a hit
    assert np.array_equal(again.stats.mean, first.stats.mean) and np.array_equal(again.stats.cov, first.stats.cov)

    # the reference is what clean-fid computes from the real images saved as PNG files
    folder = tmp_path / "png"
    folder.mkdir()
    for i, x in enumerate(train.images):
        Image.fromarray(to_uint8(x[None])[0].permute(1, 2, 0).numpy()).save(folder / f"{i:03d}.png")
    ref = _clean_fid_features(cleanfid, str(folder), net)
    np.testing.assert_allclose(first.stats.mean, ref.mean(0), rtol=1e-5, atol=1e-6 * np.abs(ref).max())

    # other data, other extractors: other files; a foreign file under the name is refused
    other = dataclasses.replace(train, images=train.images[:4])
    assert reference_path(other, ex) != first.path
    assert reference_path(train, Extractor(features=ex.features, id=load_inception(weights)[1])) != first.path
    FeatureStats.of(torch.randn(3, 2048), extractor=ex.id).save(first.path)
    with pytest.raises(CleanFidError, match=r"cached statistics of 3 images .* expected 10 .*; delete the file to recompute$"):
        reference_statistics(train, ex)


# --- the command line -------------------------------------------------------------------------
def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def _tiny_model(tmp_path, dataset: str):
    size, classes, cond = (64, 1000, 1) if dataset == "imagenet64" else (32, 10, 2)
    config = models.Un0Config(name=f"tiny-{dataset}", dataset=dataset, n=16, n_cond=cond, num_classes=classes,
                              image_size=size, num_steps=2, decoder_min_width=4)
    path = tmp_path / f"{dataset}.safetensors"
    models.save(Un0.init(config, seed=0), path)
    return path


def test_clean_fid_refuses_a_digits_model(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("UN0HW_CACHE", str(tmp_path / "cache"))
    assert main(["fid", "--protocol", "clean-fid"]) == 2  # the shipped digits model
    line = _error_line(capsys)
    assert "--protocol clean-fid is the release's CIFAR-10/ImageNet-64 protocol" in line and "1×8×8 digits" in line
    assert not (tmp_path / "cache").exists()


def test_clean_fid_checks_its_options_before_computing(tmp_path, capsys, monkeypatch, weights) -> None:
    monkeypatch.setenv("UN0HW_CACHE", str(tmp_path / "cache"))
    cifar, imagenet = _tiny_model(tmp_path, "cifar10"), _tiny_model(tmp_path, "imagenet64")
    _write_cifar(tmp_path / "data")
    npz = tmp_path / "Imagenet64_val.npz"
    np.savez(npz, data=np.zeros((2, 12288), np.uint8), labels=np.array([1, 2]))
    base = ["fid", "--protocol", "clean-fid", "--inception-weights", str(weights)]
    cases = [
        ([str(cifar), "--data-root", str(npz)], f"--data-root {npz}: a CIFAR-10 model needs a folder"),
        ([str(imagenet), "--data-root", str(tmp_path / "data")], f"--data-root {tmp_path / 'data'}: is a folder; a 3×64×64 model needs an ImageNet-64 .npz"),
        ([str(imagenet), "--data-root", str(tmp_path / "nope.npz")], "nope.npz: no such ImageNet-64 .npz file"),
        ([str(imagenet)], "a 3×64×64 (ImageNet-64) model is scored against --data-root FILE.npz"),
        ([str(cifar)], "a CIFAR-10 model needs --data-root"),
        ([str(cifar), "--data-root", str(tmp_path / "data"), "--num-samples", "1"], "--num-samples must be >= 2"),
        ([str(cifar), "--data-root", str(tmp_path / "data"), "--num-samples", "0"], "--num-samples must be >= 1, not 0"),
        ([str(cifar), "--num-samples", "4", "--per-class", "1"], "give --num-samples or --per-class, not both"),
        ([str(cifar), "--extractor", "digits"], "--protocol clean-fid uses the FID Inception network"),
        ([str(cifar), "--data-root", str(tmp_path / "data"), "--inception-weights", str(tmp_path)], "--inception-weights"),
    ]
    for extra, expected in cases:
        argv = base + extra
        assert main(argv) == 2, argv
        assert expected in _error_line(capsys), argv
    assert not (tmp_path / "cache").exists()  # nothing written


def _clean_fid_argv(tmp_path, weights) -> list[str]:
    ckpt = _tiny_model(tmp_path, "cifar10")
    _write_cifar(tmp_path / "data", per_batch=1)  # 5 train images: 5 network passes for the reference
    return ["fid", str(ckpt), "--protocol", "clean-fid", "--data-root", str(tmp_path / "data"),
            "--inception-weights", str(weights), "--num-samples", "4", "--seed", "3"]


@pytest.mark.slow
def test_clean_fid_command_computes_and_caches_the_reference(tmp_path, capsys, monkeypatch, weights) -> None:
    monkeypatch.setenv("UN0HW_CACHE", str(tmp_path / "cache"))
    assert main(_clean_fid_argv(tmp_path, weights)) == 0
    out = capsys.readouterr().out
    ex = clean_extractor(weights)
    expected = reference_path(cifar10(tmp_path / "data", train=True), ex)
    assert f"reference statistics of cifar10-train (computed from 5 images and cached): {expected}\n" in out
    assert "4 class-balanced samples against cifar10-train, clean-fid protocol, feature space clean-fid-" in out
    assert re.search(r"\n  FID              \d+\.\d{3}\n", out)
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [expected.name]
    assert reference_statistics(cifar10(tmp_path / "data", train=True), ex).cached  # what a rerun reads


@pytest.mark.slow
def test_clean_fid_command_reads_a_cached_reference(tmp_path, capsys, monkeypatch, weights) -> None:
    """Statistics built once through the library are what the command reads."""
    monkeypatch.setenv("UN0HW_CACHE", str(tmp_path / "cache"))
    argv = _clean_fid_argv(tmp_path, weights)
    ex = clean_extractor(weights)
    reference = reference_statistics(cifar10(tmp_path / "data", train=True), ex)
    assert main(argv + ["--json"]) == 0
    score = json.loads(capsys.readouterr().out)
    assert score["reference_cached"] and score["reference_stats"] == str(reference.path)
    assert score["protocol"] == "clean-fid" and score["samples"] == 4 and score["reference"] == "cifar10-train"
    assert score["extractor"] == ex.id and score["fid"] > 0 and score["seconds"] > 0


def test_score_clean_scores_class_balanced_seeded_samples(tmp_path) -> None:
    """The generation of `score_clean` (labels, seed phases batch by batch from one
    generator) in a cheap 8-d feature space: the same as drawing it by hand."""
    model = Un0.init(models.Un0Config(name="t", dataset="cifar10", n=16, n_cond=2, num_classes=10, image_size=32,
                                      num_steps=2, decoder_min_width=4), seed=0)
    ex = Extractor(features=lambda x: torch.nn.functional.adaptive_avg_pool2d(x, 2).flatten(1)[:, :8].double(), id="toy")
    real = FeatureStats.of(torch.randn(50, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0)),
                           extractor="toy")
    reference = Reference(stats=real, path=tmp_path / "none", cached=True, name="toy-set")
    score = score_clean(model, ex, reference, num_samples=23, seed=5, batch_size=10)
    labels = class_balanced_labels(23, 10, seed=5)
    theta0 = model.sample_theta0(23, generator=torch.Generator().manual_seed(5))  # 10 + 10 + 3 drawn in turn
    by_hand = FeatureStats.of(ex.features(model.generate(labels, theta0)), extractor="toy")
    assert score.samples == 23 and score.reference == "toy-set" and score.reference_cached
    assert score.fid == pytest.approx(frechet_distance(by_hand, real), rel=1e-9)
    assert score_clean(model, ex, reference, num_samples=23, seed=6, batch_size=10).fid != pytest.approx(score.fid)


def test_un0hw_protocol_takes_num_samples(capsys, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("UN0HW_CACHE", str(tmp_path / "cache"))
    assert main(["fid", "--num-samples", "23", "--json"]) == 0  # the shipped digits model, FID-digits
    score = json.loads(capsys.readouterr().out)
    assert score["samples"] == 23 and score["protocol"] == "un0hw" and score["fid"] > 0 and score["floor"] > 0
