"""The Inception extractor's plumbing: local weights only, safely loaded, 2048-d features."""

from __future__ import annotations

import pytest
import torch

from analysis.inception import ENV, InceptionWeightsError, inception_extractor
from tests.analysis.inception_files import random_inception


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    """A weights file with the network's own names and shapes (random values: the real
    file cannot be fetched here; correctness of the port is torch-fidelity's)."""
    net = random_inception()
    path = tmp_path_factory.mktemp("w") / "weights-inception.pth"
    torch.save(net.state_dict(), path)
    return path


def test_missing_weights_say_where_to_put_them(monkeypatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    with pytest.raises(InceptionWeightsError, match=r"^the FID Inception network needs its weights file .*--inception-weights PATH or set UN0HW_INCEPTION_WEIGHTS; un0hw never downloads$"):
        inception_extractor()
    with pytest.raises(InceptionWeightsError, match=r"nowhere\.pth: no such Inception weights file"):
        inception_extractor("nowhere.pth")


class Payload:
    def __reduce__(self):
        return (print, ("ran",))


def test_a_pickle_with_objects_is_refused(tmp_path) -> None:
    torch.save({"w": torch.zeros(1), "x": Payload()}, tmp_path / "evil.pth")
    with pytest.raises(InceptionWeightsError, match=r"evil\.pth: not a tensors-only torch file"):
        inception_extractor(tmp_path / "evil.pth")


def test_wrong_network_is_refused(tmp_path) -> None:
    torch.save({"conv.weight": torch.zeros(3, 3)}, tmp_path / "other.pth")
    with pytest.raises(InceptionWeightsError, match=r"other\.pth: does not fit the FID Inception network"):
        inception_extractor(tmp_path / "other.pth")


@pytest.mark.slow
def test_features_from_a_weights_file(random_weights, monkeypatch) -> None:
    monkeypatch.setenv(ENV, str(random_weights))
    features, eid = inception_extractor()
    assert eid.startswith("inception-v3-compat:")
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    f = features(x)
    assert f.shape == (2, 2048) and torch.isfinite(f).all()
    torch.testing.assert_close(features(x), f)  # deterministic
    grey = features(x[:, :1])  # one-channel images are repeated to RGB
    assert grey.shape == (2, 2048)
