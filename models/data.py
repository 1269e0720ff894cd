"""Real image data sets: scikit-learn's handwritten digits (embedded), CIFAR-10 and
ImageNet-64 (local files).

Images are float32 (M, C, H, W) in [−1, 1] with int64 labels. Nothing is downloaded.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from oscsim.errors import brief


class DataError(ValueError):
    """A data set cannot be read: names the path or option and what is wrong."""


@dataclass(frozen=True)
class ImageSet:
    """Images (M, C, H, W) in [−1, 1] and their labels (M,)."""

    name: str
    images: Tensor
    labels: Tensor
    num_classes: int

    def __len__(self) -> int:
        return self.images.shape[0]

    def of_class(self, c: int) -> Tensor:
        return self.images[self.labels == c]


def digits(split: str = "train", *, seed: int = 0, test_fraction: float = 0.25) -> ImageSet:
    """scikit-learn's handwritten digits (1,797 real 8×8 images, 16 grey levels, 10 classes;
    UCI "Optical Recognition of Handwritten Digits", shipped inside scikit-learn).

    A stratified train/test split fixed by `seed`: each class's images are shuffled with
    `seed` and its first `test_fraction` go to test. `split`: 'train', 'test' or 'all'.
    """
    from sklearn.datasets import load_digits

    if split not in ("train", "test", "all"):
        raise DataError(f"digits split must be train, test or all; got {split!r}")
    raw = load_digits()
    images = raw.images.astype(np.float32) / 8.0 - 1.0  # 0..16 → [−1, 1]
    labels = raw.target.astype(np.int64)
    if split != "all":
        rng = np.random.default_rng(seed)
        test = np.zeros(len(labels), dtype=bool)
        for c in range(10):
            idx = rng.permutation(np.flatnonzero(labels == c))
            test[idx[: int(round(test_fraction * len(idx)))]] = True
        keep = test if split == "test" else ~test
        images, labels = images[keep], labels[keep]
    return ImageSet(
        name=f"digits-{split}", images=torch.from_numpy(images).unsqueeze(1), labels=torch.from_numpy(labels), num_classes=10
    )


class _ArraysOnly(pickle.Unpickler):
    """Unpickles numpy arrays, lists, dicts, strings and numbers; refuses every other class.

    The CIFAR-10 "python version" batches are pickles of {b'data': uint8 array,
    b'labels': list}; reading them needs nothing more, so nothing more is allowed.
    """

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"), ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def cifar10(root: str | Path, *, train: bool = True) -> ImageSet:
    """CIFAR-10 from a local folder holding ``cifar-10-batches-py/`` (the "python version").

    The layout torchvision's CIFAR10 reads; the batches are read with a restricted
    unpickler (arrays only), never a plain `pickle.load`. No download is attempted.
    """
    root = Path(root)
    folder = root / "cifar-10-batches-py" if (root / "cifar-10-batches-py").is_dir() else root
    names = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise DataError(
            f"--data-root {root}: no CIFAR-10 batches {missing} in {folder}; put the extracted "
            "cifar-10-python.tar.gz there (un0hw never downloads data)"
        )
    data, labels = [], []
    for name in names:
        try:
            with open(folder / name, "rb") as fh:
                batch = _ArraysOnly(fh, encoding="bytes").load()
            data.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels.append(np.asarray(batch[b"labels"], dtype=np.int64))
        except (pickle.UnpicklingError, KeyError, EOFError, ValueError, TypeError) as exc:
            raise DataError(f"{folder / name}: not a CIFAR-10 python batch ({exc})") from None
    images = torch.from_numpy(np.concatenate(data)).float() / 127.5 - 1.0
    return ImageSet(name=f"cifar10-{'train' if train else 'test'}", images=images,
                    labels=torch.from_numpy(np.concatenate(labels)), num_classes=10)


IMAGENET64_PIXELS = 3 * 64 * 64


def imagenet64(path: str | Path, *, flag: str = "--data-root") -> ImageSet:
    """Downsampled ImageNet 64×64 from one local ``.npz`` file in the layout of the
    "Downsampled ImageNet" release (Chrabaszcz et al. 2017), e.g. ``Imagenet64_val.npz``:
    ``data`` (M, 12288) uint8, each row an image in CHW order (1,024 red, then green, then
    blue values of 64 × 64 pixels), and ``labels`` (M,) in 1..1000. Returns labels 0..999.

    Read with ``np.load(allow_pickle=False)``: arrays only. `flag` names the option in
    the messages. No download is attempted.
    """
    import zipfile

    path = Path(path)
    where = f"{flag} {path}"
    if path.is_dir():
        raise DataError(f"{where}: is a folder; ImageNet-64 is read from one .npz file (e.g. Imagenet64_val.npz)")
    if not path.is_file():
        raise DataError(f"{where}: no such ImageNet-64 file (e.g. Imagenet64_val.npz; un0hw never downloads data)")
    try:
        npz = np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise DataError(f"{where}: not a readable .npz file ({brief(exc)})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise DataError(f"{where}: one .npy array, not an .npz archive holding data and labels")
    with npz:
        missing = sorted({"data", "labels"} - set(npz.files))
        if missing:
            raise DataError(f"{where}: an ImageNet-64 .npz holds data and labels; missing {missing} (has {sorted(npz.files)})")
        try:
            data, labels = npz["data"], npz["labels"]
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise DataError(f"{where}: not a readable .npz file ({brief(exc)})") from None
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != IMAGENET64_PIXELS:
        raise DataError(f"{where}: data must be (M, {IMAGENET64_PIXELS}) uint8 (64×64 RGB, CHW order); "
                        f"got {data.shape} {data.dtype}")
    if labels.shape != (len(data),):
        raise DataError(f"{where}: labels must be ({len(data)},) to match data; got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{where}: labels must be integers 1..1000; got dtype {labels.dtype}")
    if len(labels) and (labels.min() < 1 or labels.max() > 1000):
        raise DataError(f"{where}: labels must lie in 1..1000; got {int(labels.min())}..{int(labels.max())}")
    if len(data) == 0:
        raise DataError(f"{where}: holds no images")
    images = torch.from_numpy(data.reshape(-1, 3, 64, 64)).float().div_(127.5).sub_(1.0)  # in place: 4 bytes/pixel
    return ImageSet(name=f"imagenet64-{path.stem}", images=images,
                    labels=torch.from_numpy(labels.astype(np.int64) - 1), num_classes=1000)


def image_data(path: str | Path, image_shape: tuple[int, int, int], *,
               flag: str = "--data-root") -> tuple[ImageSet, ImageSet | None]:
    """The real images for a model of `image_shape` at `path`, by layout: a folder is
    CIFAR-10 (3×32×32; its (train, test) splits), a file an ImageNet-64 ``.npz`` (3×64×64;
    (the file, None)). A layout that does not fit the model's images is one DataError line."""
    path, shape = Path(path), tuple(image_shape)
    if path.is_dir():
        if shape != (3, 32, 32):
            raise DataError(f"{flag} {path}: a CIFAR-10 folder (3×32×32 images); the model makes {shape}")
        return cifar10(path, train=True), cifar10(path, train=False)
    if shape != (3, 64, 64):
        raise DataError(f"{flag} {path}: a file, read as an ImageNet-64 .npz (3×64×64 images); the model makes "
                        f"{shape} (a CIFAR-10 model takes the folder holding cifar-10-batches-py)")
    return imagenet64(path, flag=flag), None
