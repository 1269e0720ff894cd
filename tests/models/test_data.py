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
