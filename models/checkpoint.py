"""Checkpoint I/O: the project's format, the release's `.pt` files, and key-mapped imports.

The project's format is a pair in one folder: ``X.safetensors`` (the state dict) and
``X.json`` (format, format_version, the Un0Config, the weights' SHA-256, provenance),
both written atomically. The release's ``.pt`` files are torch pickles opened only with
``weights_only=True``; their architecture comes from their ``config`` and tensor shapes
with the release builders' defaults (see UN0_SPEC.md). Every problem is a
`CheckpointError` whose message starts with the file.
"""

from __future__ import annotations

import json
import pickle
import re
import struct
import zipfile
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from models.config import Un0Config
from models.errors import CheckpointError, ConfigError
from models.un0 import Un0
from oscsim import atomic_path, sha256_file
from oscsim.errors import brief
from oscsim.fileio import PathCheckError, read_json, readable_file

FORMAT = "un0hw-checkpoint"
#: The trained Un-0 that ships with the project (digits-n512; see models/checkpoints/).
SHIPPED = Path(__file__).resolve().parent / "checkpoints" / "un0-digits.safetensors"
FORMAT_VERSION = 1
KEYMAP_VERSION = 1

# The release's builder defaults per family (un0/model.py: build_cifar10_model,
# build_imagenet64_model), used for every architecture key a file does not carry.
_RELEASE_DEFAULTS: dict[str, dict[str, Any]] = {
    "cifar10": dict(parameterization="standard", relativization="ref_oscillator", encoding="sin_cos",
                    solver="rk4", num_steps=25, class_dropout=0.1, init_output_gain=0.5),
    "imagenet64": dict(parameterization="mup", relativization="ref_oscillator", encoding="sin_cos",
                       solver="euler", num_steps=10, class_dropout=0.1, init_output_gain=1.0),
}
# release config key -> Un0Config field
_RELEASE_KEYS = {
    "parameterization": "parameterization",
    "relativization": "relativization",
    "encoding": "encoding",
    "solver": "solver",
    "num_steps": "num_steps",
    "class_dropout_prob": "class_dropout",
}


def _version() -> str:
    """The installed un0hw version (provenance only), from the package metadata."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("un0hw")
    except PackageNotFoundError:
        return "unknown"


def _readable(path: str | Path, role: str | None = None) -> Path:
    """`path` if it is a readable regular file, else a CheckpointError naming it (and its
    role, where the path alone would not say what it was given as)."""
    try:
        return readable_file(path)
    except PathCheckError as exc:
        raise CheckpointError(f"{exc} (the {role})" if role else str(exc)) from None


def _schema(name: str) -> dict[str, Any]:
    return json.loads(resources.files("models").joinpath("schemas", name).read_text())


def _pair(path: str | Path) -> tuple[Path, Path]:
    """(weights, sidecar) for 'X', 'X.safetensors' or 'X.json'."""
    path = Path(path)
    if path.suffix in (".safetensors", ".json"):
        path = path.with_suffix("")
    return path.with_name(path.name + ".safetensors"), path.with_name(path.name + ".json")


# --- saving ----------------------------------------------------------------------------
def save(model: Un0, path: str | Path, *, extra: dict[str, Any] | None = None) -> Path:
    """Write `model` as X.safetensors + X.json; returns the weights path.

    Both files are written under temporary names first; a reader never sees half a file.
    """
    weights, sidecar = _pair(path)
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}

    with atomic_path(weights) as tmp_w, atomic_path(sidecar) as tmp_j:
        save_file(state, str(tmp_w), metadata={"format": FORMAT, "format_version": str(FORMAT_VERSION)})
        doc = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "config": model.config.to_dict(),
            "weights": {"file": weights.name, "sha256": sha256_file(tmp_w)},
            "created_by": f"un0hw {_version()}",
            "extra": extra or {},
        }
        tmp_j.write_text(json.dumps(doc, indent=2) + "\n")
    return weights


# --- key maps --------------------------------------------------------------------------
def read_key_map(path: str | Path) -> dict[str, Any]:
    """Read and validate a key-mapping JSON file (schema: models/schemas/keymap.schema.json)."""
    try:
        doc = read_json(path)
    except PathCheckError as exc:
        raise CheckpointError(f"{exc} (the key-map file)") from None
    if isinstance(doc, dict) and isinstance(doc.get("version"), int) and doc["version"] > KEYMAP_VERSION:
        raise CheckpointError(
            f"{path}: key-map version {doc['version']} is newer than this un0hw reads ({KEYMAP_VERSION})"
        )
    try:
        jsonschema.validate(doc, _schema("keymap.schema.json"))
    except jsonschema.ValidationError as exc:
        where = "/".join(map(str, exc.absolute_path)) or "top level"
        raise CheckpointError(f"{path}: invalid key map at {where}: {exc.message}") from None
    return doc


def _rename(state: dict[str, Tensor], key_map: dict[str, Any] | None) -> dict[str, Tensor]:
    """Apply prefix stripping, the key map, and drop torch.compile's `_orig_mod.`."""
    prefixes = list((key_map or {}).get("strip_prefixes", [])) + ["module."]
    inverse = {theirs: ours for ours, theirs in (key_map or {}).get("tensors", {}).items()}
    out: dict[str, Tensor] = {}
    for name, tensor in state.items():
        key = name
        for prefix in prefixes:
            if key.startswith(prefix):
                key = key[len(prefix):]
                break
        key = inverse.get(key, key)
        key = re.sub(r"(^|\.)_orig_mod\.", r"\1", key)
        out[key] = tensor
    return out


# --- reading files ---------------------------------------------------------------------
def _sniff(path: Path) -> str:
    """'torch' (zip or legacy pickle), 'safetensors', or 'unknown', from the first bytes."""
    with open(path, "rb") as fh:
        head = fh.read(9)
    if head[:4] == b"PK\x03\x04" or head[:1] == b"\x80":
        return "torch"
    if len(head) == 9 and head[8:9] == b"{":
        return "safetensors"
    return "unknown"


def _read_torch(path: Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's message is a page of advice; its point is the one sentence naming what was refused
        point = re.search(r"WeightsUnpickler error: (.+?\.)(?:\s|$)", str(exc))
        first = point.group(1) if point else brief(exc)
        raise CheckpointError(
            f"{path}: refused by torch.load(weights_only=True); the pickle holds objects other "
            f"than tensors and plain containers, and un0hw never unpickles those ({brief(first)})"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable torch checkpoint, truncated or corrupt ({brief(exc)})") from None
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        state, cfg = obj["model"], obj.get("config") or {}
    elif isinstance(obj, dict) and obj and all(isinstance(v, Tensor) for v in obj.values()):
        state, cfg = obj, {}
    else:
        raise CheckpointError(
            f"{path}: expected the release's {{'config': ..., 'model': state_dict}} or a bare state "
            f"dict, found {type(obj).__name__} with keys {sorted(obj)[:8] if isinstance(obj, dict) else '-'}"
        )
    if not isinstance(cfg, dict):
        raise CheckpointError(f"{path}: 'config' must be a dict of training arguments, not {type(cfg).__name__}")
    bad = [k for k, v in state.items() if not isinstance(v, Tensor)]
    if bad:
        raise CheckpointError(f"{path}: state dict entries that are not tensors: {bad[:5]}")
    return state, cfg


def _read_safetensors(path: Path) -> dict[str, Tensor]:
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, struct.error) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file, truncated or corrupt ({brief(exc)})") from None


def _read_sidecar(sidecar: Path, weights: Path) -> Un0Config:
    try:
        doc = read_json(sidecar)
    except PathCheckError as exc:
        raise CheckpointError(str(exc)) from None
    version = doc.get("format_version") if isinstance(doc, dict) else None
    if isinstance(version, int) and version > FORMAT_VERSION:
        raise CheckpointError(
            f"{sidecar}: format_version {version} is newer than this un0hw reads ({FORMAT_VERSION}); "
            "upgrade un0hw"
        )
    try:
        jsonschema.validate(doc, _schema("checkpoint.schema.json"))
    except jsonschema.ValidationError as exc:
        where = "/".join(map(str, exc.absolute_path)) or "top level"
        raise CheckpointError(f"{sidecar}: invalid checkpoint description at {where}: {exc.message}") from None
    if doc["weights"]["sha256"] != sha256_file(weights):
        raise CheckpointError(
            f"{weights}: SHA-256 differs from the one recorded in {sidecar.name} "
            "(the weights file was changed, truncated or belongs to another checkpoint)"
        )
    try:
        return Un0Config.from_dict(doc["config"])
    except ConfigError as exc:
        raise CheckpointError(f"{sidecar}: {exc}") from None


def _release_config(path: Path, state: dict[str, Tensor], cfg: dict[str, Any], overrides: dict[str, Any]) -> Un0Config:
    """Architecture of a release-layout state dict: shapes + config + family defaults."""
    for name in ("dynamics.K", "dynamics.K_drive", "decoder.to_output.weight"):
        if name not in state:
            raise CheckpointError(f"{path}: missing tensor {name!r}, needed to read the architecture")
    if state["dynamics.K_drive"].ndim != 3 or state["decoder.to_output.weight"].ndim != 4:
        raise CheckpointError(
            f"{path}: dynamics.K_drive must be (classes, n, n_c) and decoder.to_output.weight "
            f"(C, w, 3, 3); got {tuple(state['dynamics.K_drive'].shape)} and "
            f"{tuple(state['decoder.to_output.weight'].shape)}"
        )
    num_classes, n, n_cond = state["dynamics.K_drive"].shape
    blocks = {int(m.group(1)) for k in state if (m := re.match(r"decoder\.cascade\.(\d+)\.", k))}
    family = "cifar10" if "n_oscillators" in cfg or num_classes != 1000 else "imagenet64"
    fields: dict[str, Any] = dict(_RELEASE_DEFAULTS[family])
    for key, field in _RELEASE_KEYS.items():
        if key in cfg:
            fields[field] = cfg[key]
    for key, actual in (("n_oscillators", n), ("n_conditional_oscillators", n_cond)):
        if key in cfg and cfg[key] != actual:
            raise CheckpointError(f"{path}: config says {key}={cfg[key]} but the tensors hold {actual}")
    dataset = cfg.get("dataset") if cfg.get("dataset") in ("cifar10", "imagenet64", "digits") else family
    fields.update(
        name=path.stem, dataset=dataset, n=int(n), n_cond=int(n_cond), num_classes=int(num_classes),
        image_size=4 * 2 ** len(blocks), image_channels=int(state["decoder.to_output.weight"].shape[0]),
        latent_hw=4,
    )
    fields.update(overrides)
    try:
        return Un0Config(**fields)
    except (ConfigError, TypeError) as exc:
        raise CheckpointError(f"{path}: {exc}") from None


def _check_state(path: Path, config: Un0Config, state: dict[str, Tensor]) -> None:
    """Names, shapes and values against the module the config builds."""
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in Un0(config).state_dict().items()}
    missing = [k for k in expected if k not in state]
    extra = [k for k in state if k not in expected]
    if missing:
        raise CheckpointError(f"{path}: missing tensor(s) {missing[:6]}{' …' if len(missing) > 6 else ''}")
    if extra:
        raise CheckpointError(
            f"{path}: unexpected tensor(s) {extra[:6]}{' …' if len(extra) > 6 else ''}; "
            "a key-map file (--key-map) can rename them"
        )
    for name, shape in expected.items():
        got = tuple(state[name].shape)
        if got != shape:
            raise CheckpointError(
                f"{path}: tensor {name} has shape {got}, expected {shape} for {config.name} "
                f"(n={config.n}, n_cond={config.n_cond}, classes={config.num_classes})"
            )
        if not state[name].is_floating_point():
            raise CheckpointError(f"{path}: tensor {name} is {state[name].dtype}, expected floating point")
        finite = torch.isfinite(state[name])
        if not bool(finite.all()):
            bad = int((~finite).sum())
            raise CheckpointError(f"{path}: tensor {name} holds {bad} NaN/Inf value(s)")


def load(
    path: str | Path,
    *,
    key_map: str | Path | dict[str, Any] | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> Un0:
    """Load an Un-0 from any supported file, validated, in eval mode.

    - ``X.safetensors`` / ``X.json`` / ``X``: the project's format.
    - ``*.pt``: the release's checkpoint (``{'config', 'model'}``), or a bare state dict.
    - any torch or safetensors file with other tensor names, given `key_map` (a path to a
      key-map JSON, or its dict): names are renamed, and its ``config`` overrides fields.
    """
    path = Path(path)
    km = read_key_map(key_map) if isinstance(key_map, (str, Path)) else key_map
    weights, sidecar = _pair(path)
    if path.suffix in (".safetensors", ".json", "") and sidecar.exists() and weights.exists() and km is None:
        _readable(weights)  # the description is read by read_json, which checks it the same way
        source, config = weights, _read_sidecar(sidecar, weights)
        state = _read_safetensors(weights)  # written by `save`: un0hw's own names
    else:
        source, kind = _readable(path), _sniff(path)
        if kind == "torch":
            state, cfg = _read_torch(path)
        elif kind == "safetensors":
            state, cfg = _read_safetensors(path), {}
            if km is None:
                raise CheckpointError(
                    f"{path}: a safetensors file without its {sidecar.name} description; give a "
                    "key-map file (--key-map) with at least its 'config'"
                )
        else:
            raise CheckpointError(
                f"{path}: neither a torch checkpoint nor a safetensors file (first bytes do not match)"
            )
        state = _rename(state, km)
        overrides = (km or {}).get("config", {})
        try:
            config = _release_config(path, state, cfg, overrides)
        except CheckpointError as exc:
            if overrides and isinstance(key_map, (str, Path)):  # the key map's config may be the culprit
                raise CheckpointError(f"{exc} (with the config of the key map {key_map}: "
                                      f"{', '.join(f'{k}={v!r}' for k, v in overrides.items())})") from None
            raise
    _check_state(source, config, state)
    model = Un0(config)
    model.load_state_dict(state, strict=True)
    return model.to(device=device, dtype=dtype).eval()


def release_config(config: Un0Config) -> dict[str, Any]:
    """The ``config`` dict a release checkpoint of this architecture carries.

    CIFAR-10-family files carry the training script's architecture arguments; ImageNet-64
    files carry training arguments only (their architecture is read from the shapes).
    """
    if config.dataset == "imagenet64":
        return {"seed": 0, "precision": "bf16"}
    return {
        "n_oscillators": config.n,
        "n_conditional_oscillators": config.n_cond,
        "num_steps": config.num_steps,
        "solver": config.solver,
        "relativization": config.relativization,
        "parameterization": config.parameterization,
        "encoding": config.encoding,
        "class_dropout_prob": config.class_dropout,
        "dataset": config.dataset,
    }


def save_release(model: Un0, path: str | Path) -> Path:
    """Write `model` in the release's `.pt` layout (``_orig_mod.`` names), atomically.

    For interoperability tests and for users who need the release's format; fails for an
    ImageNet-64-family config whose family defaults differ from its fields (the file
    could not say so).
    """
    config = model.config
    path = Path(path)
    state = {
        re.sub(r"^(dynamics|decoder)\.", r"\1._orig_mod.", k): v.detach().to("cpu").clone()
        for k, v in model.state_dict().items()
    }
    if config.dataset == "imagenet64":
        defaults = _RELEASE_DEFAULTS["imagenet64"]
        differ = [k for k, v in defaults.items() if k != "init_output_gain" and getattr(config, k) != v]
        if differ:
            raise CheckpointError(
                f"{path}: an ImageNet-64 release file cannot record {differ}; they differ from the family defaults"
            )
    with atomic_path(path) as tmp:
        torch.save({"config": release_config(config), "model": state}, tmp)
    return path
