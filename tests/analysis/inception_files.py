"""A random-weight FID Inception for tests (the real weights file cannot be fetched here)."""

from __future__ import annotations

import pytest
import torch

from analysis.inception import _inception_class


def random_inception(seed: int = 0):
    """torch-fidelity's FeatureExtractorInceptionV3 with the network's own names and shapes
    and random values, built without loading any weights file."""
    cls = _inception_class()
    patch = pytest.MonkeyPatch()
    patch.setattr(cls, "load_state_dict", lambda self, *a, **k: None)  # build without loading
    patch.setattr(torch, "load", lambda *a, **k: {})
    try:
        torch.manual_seed(seed)
        return cls("inception-v3-compat", ["2048"], feature_extractor_weights_path="unused")
    finally:
        patch.undo()
