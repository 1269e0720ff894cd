"""The standard FID Inception-v3 network (torch-fidelity's port), from a local weights file.

un0hw never downloads: the user names the weights file, torch-fidelity's
``weights-inception-2015-12-05-6726825d.pth`` (the TF FID graph converted to PyTorch),
with ``--inception-weights PATH`` or ``$UN0HW_INCEPTION_WEIGHTS``. The file is opened with
``torch.load(weights_only=True)``; torch-fidelity's constructor then reads a copy that
un0hw wrote from those tensors (its own loader would unpickle anything).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
import types
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from oscsim.errors import brief
from oscsim.fileio import PathCheckError, readable_file

ENV = "UN0HW_INCEPTION_WEIGHTS"
WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"


class InceptionWeightsError(ValueError):
    """The Inception weights are missing or unusable: says where to put them."""


def _inception_class():
    """torch-fidelity's FeatureExtractorInceptionV3.

    The package's ``__init__`` imports every extractor, some through torchvision, whose
    wheels cannot sit beside the CPU torch build; the Inception module itself needs only
    torch. So where the package cannot be imported whole, its folder is registered as a
    bare package and just that module is loaded."""
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except ImportError:
        spec = importlib.util.find_spec("torch_fidelity")
        if spec is None or not spec.submodule_search_locations:
            raise InceptionWeightsError(
                "the FID Inception network needs torch-fidelity: pip install --no-deps torch-fidelity==0.4.0"
            ) from None
        for name in [m for m in sys.modules if m == "torch_fidelity" or m.startswith("torch_fidelity.")]:
            del sys.modules[name]
        package = types.ModuleType("torch_fidelity")
        package.__path__ = list(spec.submodule_search_locations)
        sys.modules["torch_fidelity"] = package
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    return FeatureExtractorInceptionV3


def load_inception(weights: str | Path | None = None) -> tuple[torch.nn.Module, str]:
    """(torch-fidelity's FID Inception module with the weights of a local file, its id
    ``inception-v3-compat:<first 12 hex digits of the file's sha256>``)."""
    where = weights or os.environ.get(ENV)
    if not where:
        raise InceptionWeightsError(
            f"the FID Inception network needs its weights file ({WEIGHTS_FILE}, 95 MB, from "
            f"torch-fidelity's releases): pass --inception-weights PATH or set {ENV}; un0hw never downloads"
        )
    path = Path(where)
    if not path.exists():
        raise InceptionWeightsError(f"{path}: no such Inception weights file (expected {WEIGHTS_FILE})")
    try:
        readable_file(path)
    except PathCheckError as exc:
        raise InceptionWeightsError(f"{exc} (the Inception weights, {WEIGHTS_FILE})") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - pickle refusals, truncation, not a torch file
        raise InceptionWeightsError(f"{path}: not a tensors-only torch file ({brief(exc)})") from None
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise InceptionWeightsError(f"{path}: expected a state dict of tensors")
    cls = _inception_class()
    with tempfile.TemporaryDirectory() as tmp:
        safe_copy = Path(tmp) / "inception.pt"
        torch.save(state, safe_copy)
        try:
            net = cls("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(safe_copy))
        except RuntimeError as exc:
            raise InceptionWeightsError(f"{path}: does not fit the FID Inception network ({brief(exc)})") from None
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return net, f"inception-v3-compat:{digest}"


def pool_features(net: torch.nn.Module, x: Tensor) -> Tensor:
    """(B, 3, 299, 299) float images in 0..255, already resized → (B, 2048) pool features.

    torch-fidelity's ``FeatureExtractorInceptionV3.forward`` from its ``(x − 128)/128``
    normalisation on, without its own (TF1 bilinear) resize: the layer sequence of its
    2048-d output. A 299×299 input makes that resize the identity, so on such an input
    this equals the module's own forward (tests/analysis/test_cleanfid.py checks it)."""
    if x.dim() != 4 or tuple(x.shape[1:]) != (3, 299, 299):
        raise ValueError(f"pool_features takes (B, 3, 299, 299) images, not {tuple(x.shape)}")
    x = (x.to(net.feature_extractor_internal_dtype) - 128) / 128
    for layer in (net.Conv2d_1a_3x3, net.Conv2d_2a_3x3, net.Conv2d_2b_3x3, net.MaxPool_1,
                  net.Conv2d_3b_1x1, net.Conv2d_4a_3x3, net.MaxPool_2,
                  net.Mixed_5b, net.Mixed_5c, net.Mixed_5d, net.Mixed_6a, net.Mixed_6b, net.Mixed_6c, net.Mixed_6d,
                  net.Mixed_6e, net.Mixed_7a, net.Mixed_7b, net.Mixed_7c, net.AvgPool):
        x = layer(x)
    return torch.flatten(x, 1).to(torch.float32)


def inception_extractor(weights: str | Path | None = None) -> tuple[Callable[[Tensor], Tensor], str]:
    """(images in [−1, 1], (B, 1 or 3, H, W) → (B, 2048) pool features, extractor id)."""
    net, eid = load_inception(weights)

    @torch.no_grad()
    def features(images: Tensor) -> Tensor:
        x = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        (out,) = net(x)
        return out.float()

    return features, eid
