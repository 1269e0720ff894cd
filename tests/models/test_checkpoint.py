"""The project's checkpoint format, and every bad input getting its own clear error."""

from __future__ import annotations

import json
import math
import pickle

import pytest
import torch
from safetensors.torch import load_file, save_file

import models
from models import CheckpointError
from tests.models.release_files import release_state, write

CIFAR = {"n_oscillators": 32, "n_conditional_oscillators": 8, "num_steps": 10, "solver": "euler",
         "relativization": "mean_relative", "parameterization": "standard", "encoding": "sin_cos"}


@pytest.fixture
def saved(tmp_path):
    model = models.Un0.init(models.PUBLISHED["digits-n64"], seed=11)
    models.save(model, tmp_path / "ck", extra={"seed": 11})
    return model, tmp_path / "ck.safetensors", tmp_path / "ck.json"


@pytest.fixture
def release_pt(tmp_path):
    state = release_state(n=32, n_cond=8, classes=10, blocks=3)
    return state, tmp_path / "r.pt"


def test_round_trip_is_bitwise(saved) -> None:
    model, weights, sidecar = saved
    for path in (weights, sidecar, weights.with_suffix("")):
        again = models.load(path)
        assert again.config == model.config
        for k, v in model.state_dict().items():
            assert torch.equal(v, again.state_dict()[k]), k
    doc = json.loads(sidecar.read_text())
    assert (doc["format"], doc["format_version"], doc["extra"]["seed"]) == ("un0hw-checkpoint", models.FORMAT_VERSION, 11)


def test_load_in_float64(saved) -> None:
    model = models.load(saved[1], dtype=torch.float64)
    assert model.dynamics.K.dtype == torch.float64


def test_no_such_file(tmp_path) -> None:
    with pytest.raises(CheckpointError, match=r"^.*nothing\.pt: no such file$"):
        models.load(tmp_path / "nothing.pt")


def test_missing_tensor(release_pt) -> None:
    state, path = release_pt
    del state["decoder._orig_mod.cascade.1.net.3.bias"]
    write(path, state, CIFAR)
    with pytest.raises(CheckpointError, match=r"^.*r\.pt: missing tensor\(s\) \['decoder\.cascade\.1\.net\.3\.bias'\]$"):
        models.load(path)


def test_extra_tensor(release_pt) -> None:
    state, path = release_pt
    state["dynamics._orig_mod.bias"] = torch.zeros(3)
    write(path, state, CIFAR)
    with pytest.raises(CheckpointError, match=r"^.*r\.pt: unexpected tensor\(s\) \['dynamics\.bias'\]; a key-map file"):
        models.load(path)


def test_wrong_shape_names_tensor_and_expected(release_pt) -> None:
    state, path = release_pt
    state["dynamics._orig_mod.omega"] = torch.zeros(1, 31)
    write(path, state, CIFAR)
    with pytest.raises(CheckpointError, match=r"^.*r\.pt: tensor dynamics\.omega has shape \(1, 31\), expected \(1, 32\)"):
        models.load(path)


def test_config_disagrees_with_shapes(release_pt) -> None:
    state, path = release_pt
    write(path, state, {**CIFAR, "n_oscillators": 64})
    with pytest.raises(CheckpointError, match=r"^.*r\.pt: config says n_oscillators=64 but the tensors hold 32$"):
        models.load(path)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_values(release_pt, bad: float) -> None:
    state, path = release_pt
    state["dynamics._orig_mod.K"][3, 4] = bad
    write(path, state, CIFAR)
    with pytest.raises(CheckpointError, match=r"^.*r\.pt: tensor dynamics\.K holds 1 NaN/Inf value\(s\)$"):
        models.load(path)


def test_truncated_torch_file(release_pt) -> None:
    state, path = release_pt
    write(path, state, CIFAR)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"^.*r\.pt: not a readable torch checkpoint, truncated or corrupt"):
        models.load(path)


def test_truncated_safetensors(saved) -> None:
    _, weights, sidecar = saved
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) - 100])
    # the recorded checksum catches it first
    with pytest.raises(CheckpointError, match=r"^.*ck\.safetensors: SHA-256 differs from the one recorded in ck\.json"):
        models.load(weights)


def test_truncated_safetensors_without_sidecar(tmp_path) -> None:
    save_file({"a": torch.zeros(100)}, str(tmp_path / "x.safetensors"))
    data = (tmp_path / "x.safetensors").read_bytes()
    (tmp_path / "x.safetensors").write_bytes(data[:-40])
    (tmp_path / "m.json").write_text(json.dumps({"format": "un0hw-keymap", "version": 1}))
    with pytest.raises(CheckpointError, match=r"^.*x\.safetensors: not a readable safetensors file, truncated or corrupt"):
        models.load(tmp_path / "x.safetensors", key_map=tmp_path / "m.json")


def test_not_a_checkpoint_at_all(tmp_path) -> None:
    (tmp_path / "notes.pt").write_text("these are not weights\n")
    with pytest.raises(CheckpointError, match=r"^.*notes\.pt: neither a torch checkpoint nor a safetensors file"):
        models.load(tmp_path / "notes.pt")


class Payload:  # an arbitrary object: weights_only must refuse it
    def __reduce__(self):
        return (print, ("this would run on load",))


def test_pickle_refused_by_weights_only(tmp_path) -> None:
    torch.save({"config": {}, "model": {"K": torch.zeros(2)}, "evil": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match=r"^.*evil\.pt: refused by torch\.load\(weights_only=True\)"):
        models.load(tmp_path / "evil.pt")
    with open(tmp_path / "legacy.pt", "wb") as fh:  # a plain (non-zip) pickle too
        pickle.dump(Payload(), fh)
    with pytest.raises(CheckpointError, match=r"^.*legacy\.pt: (refused by torch\.load|not a readable torch)"):
        models.load(tmp_path / "legacy.pt")


def test_config_version_newer_than_code(saved) -> None:
    _, weights, sidecar = saved
    doc = json.loads(sidecar.read_text())
    doc["format_version"] = models.FORMAT_VERSION + 1
    sidecar.write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match=r"^.*ck\.json: format_version 2 is newer than this un0hw reads \(1\); upgrade un0hw$"):
        models.load(weights)


def test_sidecar_with_unknown_config_field(saved) -> None:
    _, weights, sidecar = saved
    doc = json.loads(sidecar.read_text())
    doc["config"]["colour"] = "red"
    sidecar.write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match=r"^.*ck\.json: unknown Un0Config field\(s\) \['colour'\]"):
        models.load(weights)


def test_sidecar_schema_violation(saved) -> None:
    _, weights, sidecar = saved
    doc = json.loads(sidecar.read_text())
    del doc["weights"]
    sidecar.write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match=r"^.*ck\.json: invalid checkpoint description at top level: 'weights' is a required property$"):
        models.load(weights)


def test_weights_swapped_under_the_sidecar(saved, tmp_path) -> None:
    _, weights, _ = saved
    state = load_file(str(weights))
    state["dynamics.omega"] = state["dynamics.omega"] + 1.0
    save_file(state, str(weights))
    with pytest.raises(CheckpointError, match=r"SHA-256 differs"):
        models.load(weights)


def test_safetensors_without_description(tmp_path) -> None:
    save_file({"dynamics.K": torch.zeros(4, 4)}, str(tmp_path / "bare.safetensors"))
    with pytest.raises(CheckpointError, match=r"^.*bare\.safetensors: a safetensors file without its bare\.json description"):
        models.load(tmp_path / "bare.safetensors")


def test_invalid_key_map(release_pt, tmp_path) -> None:
    state, path = release_pt
    write(path, state, CIFAR)
    (tmp_path / "m.json").write_text(json.dumps({"format": "un0hw-keymap", "version": 1, "tensors": {"a": 3}}))
    with pytest.raises(CheckpointError, match=r"^.*m\.json: invalid key map at tensors/a: 3 is not of type 'string'$"):
        models.load(path, key_map=tmp_path / "m.json")
    (tmp_path / "m.json").write_text(json.dumps({"format": "un0hw-keymap", "version": 9}))
    with pytest.raises(CheckpointError, match=r"^.*m\.json: key-map version 9 is newer than this un0hw reads \(1\)$"):
        models.load(path, key_map=tmp_path / "m.json")
    (tmp_path / "m.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"^.*m\.json: not valid JSON"):
        models.load(path, key_map=tmp_path / "m.json")


def test_failed_save_leaves_nothing_half_written(tmp_path, monkeypatch) -> None:
    model = models.Un0.init(models.PUBLISHED["digits-n64"], seed=1)
    models.save(model, tmp_path / "ck")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def boom(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("models.checkpoint.save_file", boom)
    with pytest.raises(OSError, match="disk full"):
        models.save(models.Un0.init(models.PUBLISHED["digits-n64"], seed=2), tmp_path / "ck")
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert after == before  # old checkpoint intact, no temporary files left
