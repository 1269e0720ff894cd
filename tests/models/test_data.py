"""Data sets: the embedded digits split and the CIFAR-10 reader on a file the test writes."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from models.data import DataError, cifar10, digits


def test_digits_split_is_fixed_stratified_and_disjoint() -> None:
    train, test, full = digits("train"), digits("test"), digits("all")
    assert len(train) + len(test) == len(full) == 1797
    assert train.images.shape[1:] == (1, 8, 8) and float(train.images.min()) == -1.0 and float(train.images.max()) == 1.0
    counts = test.labels.bincount(minlength=10).float() / full.labels.bincount(minlength=10).float()
    assert torch.allclose(counts, torch.full((10,), 0.25), atol=0.01)
    assert torch.equal(digits("test").images, test.images)  # same seed, same split
    flat = {tuple(x.flatten().tolist()) for x in test.images}
    # digits has a few duplicate images; nearly all test images are absent from train
    overlap = sum(tuple(x.flatten().tolist()) in flat for x in train.images)
    assert overlap < 10
    assert not torch.equal(digits("test", seed=1).labels, test.labels) or not torch.equal(digits("test", seed=1).images, test.images)


def _write_batch(path, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    batch = {b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8), b"labels": rng.integers(0, 10, n).tolist(),
             b"batch_label": b"test"}
    with open(path, "wb") as fh:
        pickle.dump(batch, fh)


def test_cifar10_reader_on_a_tiny_file(tmp_path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for i in range(1, 6):
        _write_batch(folder / f"data_batch_{i}", 4, i)
    _write_batch(folder / "test_batch", 3, 9)
    train, test = cifar10(tmp_path, train=True), cifar10(tmp_path, train=False)
    assert train.images.shape == (20, 3, 32, 32) and test.images.shape == (3, 3, 32, 32)
    raw = pickle.load(open(folder / "data_batch_1", "rb"))[b"data"]  # noqa: SIM115 - test's own file
    expected = torch.from_numpy(raw.reshape(-1, 3, 32, 32)).float() / 127.5 - 1
    torch.testing.assert_close(train.images[:4], expected)


def test_cifar10_missing_folder_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(DataError, match=r"^--data-root .*: no CIFAR-10 batches \['test_batch'\] in .*; put the extracted"):
        cifar10(tmp_path, train=False)


class Sneaky:
    def __reduce__(self):
        return (print, ("code ran",))


def test_cifar10_reader_refuses_other_objects(tmp_path) -> None:
    with open(tmp_path / "test_batch", "wb") as fh:
        pickle.dump({b"data": Sneaky(), b"labels": []}, fh)
    with pytest.raises(DataError, match=r"test_batch: not a CIFAR-10 python batch \(refusing to load builtins\.print\)$"):
        cifar10(tmp_path, train=False)


# --- ImageNet-64 (the downsampled-ImageNet .npz layout) --------------------------------------
def _write_imagenet64(path, n: int = 3, **override) -> dict:
    rng = np.random.default_rng(5)
    arrays = {"data": rng.integers(0, 256, size=(n, 12288), dtype=np.uint8), "labels": rng.integers(1, 1001, n)}
    arrays.update(override)
    np.savez(path, **arrays)
    return arrays


def test_imagenet64_reader_on_a_tiny_file(tmp_path) -> None:
    from models.data import imagenet64

    raw = _write_imagenet64(tmp_path / "Imagenet64_val.npz", labels=np.array([1, 1000, 7]))
    s = imagenet64(tmp_path / "Imagenet64_val.npz")
    assert s.images.shape == (3, 3, 64, 64) and s.images.dtype == torch.float32 and s.num_classes == 1000
    assert s.labels.tolist() == [0, 999, 6]  # 1..1000 on disk, 0..999 here
    # CHW rows: 1,024 red values (row-major 64 × 64), then green, then blue
    i, c, y, x = 2, 1, 5, 9
    assert float(s.images[i, c, y, x]) == pytest.approx(raw["data"][i, c * 4096 + y * 64 + x] / 127.5 - 1)
    torch.testing.assert_close(s.images, torch.from_numpy(raw["data"].reshape(3, 3, 64, 64)).float() / 127.5 - 1)
    assert s.name == "imagenet64-Imagenet64_val"


@pytest.mark.parametrize("override, message", [
    ({"labels": None}, r"an ImageNet-64 \.npz holds data and labels; missing \['labels'\] \(has \['data'\]\)$"),
    ({"data": np.zeros((3, 3072), np.uint8)}, r"data must be \(M, 12288\) uint8 \(64×64 RGB, CHW order\); got \(3, 3072\) uint8$"),
    ({"data": np.zeros((3, 12288), np.float32)}, r"data must be \(M, 12288\) uint8 .*got \(3, 12288\) float32$"),
    ({"labels": np.array([1, 2])}, r"labels must be \(3,\) to match data; got \(2,\)$"),
    ({"labels": np.array([0, 5, 9])}, r"labels must lie in 1\.\.1000; got 0\.\.9$"),
    ({"labels": np.array([1.0, 2.0, 3.0])}, r"labels must be integers 1\.\.1000; got dtype float64$"),
    ({"data": np.zeros((0, 12288), np.uint8), "labels": np.zeros(0, np.int64)}, r"holds no images$"),
])
def test_imagenet64_reader_names_what_is_wrong(tmp_path, override, message) -> None:
    from models.data import imagenet64

    path = tmp_path / "val.npz"
    arrays = {k: v for k, v in {"data": np.zeros((3, 12288), np.uint8), "labels": np.array([1, 2, 3]), **override}.items()
              if v is not None}
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=r"^--data-root .*val\.npz: " + message):
        imagenet64(path)


def test_imagenet64_reader_refuses_what_is_not_an_npz_of_arrays(tmp_path) -> None:
    from models.data import imagenet64

    with pytest.raises(DataError, match=r"^--data-root .*nowhere\.npz: no such ImageNet-64 file .*never downloads data\)$"):
        imagenet64(tmp_path / "nowhere.npz")
    with pytest.raises(DataError, match=r"^--data-root .*: is a folder; ImageNet-64 is read from one \.npz file"):
        imagenet64(tmp_path)
    (tmp_path / "junk.npz").write_bytes(b"not a zip archive at all")
    with pytest.raises(DataError, match=r"junk\.npz: not a readable \.npz file \(.*\)$"):
        imagenet64(tmp_path / "junk.npz")
    np.save(tmp_path / "one.npy", np.zeros((2, 12288), np.uint8))
    with pytest.raises(DataError, match=r"one\.npy: one \.npy array, not an \.npz archive holding data and labels$"):
        imagenet64(tmp_path / "one.npy")
    # an object array is a pickle inside the archive: refused, never unpickled
    np.savez(tmp_path / "objects.npz", data=np.array([Sneaky()], dtype=object), labels=np.array([1]))
    with pytest.raises(DataError, match=r"objects\.npz: not a readable \.npz file \(.*allow_pickle=False.*\)$"):
        imagenet64(tmp_path / "objects.npz")
    with pytest.raises(DataError, match=r"^--flag .*one\.npy"):
        imagenet64(tmp_path / "one.npy", flag="--flag")
