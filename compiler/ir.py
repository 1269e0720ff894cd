"""`ArrayIR`: the compiled array as a document (array.json) and its codes
(weights.safetensors), saved and loaded with validation, and rebuilt into the simulator.

The IR is self-contained: `to_params` rebuilds the Kuramoto system the hardware holds
(dequantised codes on the kept support, in the original oscillator order) and `to_model`
a complete `Un0` (that system, the readout and the digital decoder's weights) — nothing
is read from the checkpoint at run time.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from compiler.options import CompileError
from oscsim import KuramotoParams, sha256_file

FORMAT, FORMAT_VERSION = "un0hw-array", 1
DOCUMENT, WEIGHTS = "array.json", "weights.safetensors"
CODE_TENSORS = ("K.blocks", "K.block_tiles", "K.block_scales", "K.links", "K.link_codes", "K.link_scales",
                "omega.codes", "omega.scale", "drive.codes", "drive.scale", "C.codes", "C.scale", "nu.codes", "nu.scale")


class IRError(CompileError):
    """An IR folder that is not a valid ArrayIR (schema, checksum, consistency)."""


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    return json.loads(resources.files("compiler").joinpath("schemas/array.schema.json").read_text())


def dumps(doc: dict[str, Any]) -> str:
    """The canonical text of array.json (sorted keys: save → load → save is byte-identical)."""
    return json.dumps(doc, indent=1, sort_keys=True, allow_nan=False) + "\n"


@dataclass
class ArrayIR:
    """array.json as `doc`, weights.safetensors as `tensors` (codes, scales, decoder)."""

    doc: dict[str, Any]
    tensors: dict[str, Tensor]

    # --- views ---------------------------------------------------------------------------
    @property
    def n(self) -> int:
        return int(self.doc["dynamics"]["n"])

    @property
    def n_cond(self) -> int:
        return int(self.doc["dynamics"]["n_cond"])

    @property
    def tile_size(self) -> int:
        return int(self.doc["options"]["tile"])

    @property
    def tiles(self) -> list[list[int]]:
        return [t["oscillators"] for t in self.doc["tiles"]]

    @property
    def tau_s(self) -> float:
        return float(self.doc["physical"]["tau_s"])

    @property
    def config(self):
        from models import Un0Config

        return Un0Config.from_dict(self.doc["source"]["config"])

    # --- back into the simulator -------------------------------------------------------------
    def coupling_matrix(self, dtype: torch.dtype = torch.float32) -> Tensor:
        """K (N, N) as the hardware holds it: crossbar blocks and links, dequantised, in
        the original oscillator order; zero where no coupler exists."""
        n, S, T = self.n, self.tile_size, len(self.doc["tiles"])
        slot = torch.full((n,), -1, dtype=torch.int64)  # oscillator → tile-major padded position
        for t, members in enumerate(self.tiles):
            slot[torch.tensor(members, dtype=torch.int64)] = t * S + torch.arange(len(members))
        values = self.tensors["K.blocks"].to(dtype) * self.tensors["K.block_scales"].to(dtype)
        padded = torch.zeros(T, S, T, S, dtype=dtype)
        tiles = self.tensors["K.block_tiles"].long()
        padded[tiles[:, 0], :, tiles[:, 1], :] = values
        K = padded.view(T * S, T * S)[slot][:, slot]
        links = self.tensors["K.links"].long()
        if links.numel():
            K[links[:, 0], links[:, 1]] = self.tensors["K.link_codes"].to(dtype) * self.tensors["K.link_scales"].to(dtype)
        return K

    def coupling_abs_stats(self) -> tuple[float, Tensor]:
        """(max |K_ij|, Σ_j |K_ij| per oscillator) of the dequantised couplings, from the
        codes directly (no N×N matrix: the compiler's mapping pass at N = 16384)."""
        t, S, T = self.tensors, self.tile_size, len(self.doc["tiles"])
        blocks, scales, at = t["K.blocks"], t["K.block_scales"], t["K.block_tiles"][:, 0].long()
        kmax = 0.0
        slot_rows = torch.zeros(T, S, dtype=torch.float64)
        for k in range(0, len(blocks), 64):  # 64 crossbars at a time: no N×N float copy
            mags = blocks[k:k + 64].abs().to(torch.float32) * scales[k:k + 64].abs()
            kmax = max(kmax, float(mags.max()))
            slot_rows.index_add_(0, at[k:k + 64], mags.sum(2, dtype=torch.float64))
        rows = torch.zeros(self.n, dtype=torch.float64)
        for a, members in enumerate(self.tiles):
            rows[torch.tensor(members, dtype=torch.int64)] = slot_rows[a, : len(members)]
        links = t["K.links"].long()
        if links.numel():
            v = t["K.link_codes"].abs().to(torch.float64) * t["K.link_scales"].abs().double()
            rows.index_add_(0, links[:, 0], v)
            kmax = max(kmax, float(v.max()))
        return kmax, rows

    def to_params(self, *, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu") -> KuramotoParams:
        """The Kuramoto system this IR describes (exactly the dequantised codes)."""
        t = self.tensors

        def deq(name: str) -> Tensor:
            return t[f"{name}.codes"].to(dtype) * t[f"{name}.scale"].to(dtype)

        n, n_c = self.n, self.n_cond
        return KuramotoParams(
            K=self.coupling_matrix(dtype), omega=deq("omega").reshape(n),
            drive=deq("drive").reshape(-1, n, n_c), C=deq("C").reshape(n_c, n_c), nu=deq("nu").reshape(n_c),
        ).to(device)

    def to_model(self, *, device: str | torch.device = "cpu"):
        """A `models.Un0` running this array: 'standard' parameterisation (no μP scale, so
        its effective couplings are the dequantised codes bit for bit) and the IR's decoder."""
        from models import Un0

        config = self.config.replace(parameterization="standard")
        model = Un0(config)
        p = self.to_params(dtype=torch.float32)
        dyn = model.dynamics
        with torch.no_grad():
            dyn.K.copy_(p.K)
            dyn.omega.copy_(p.omega.reshape(1, -1))
            dyn.K_cond.copy_(p.C)
            dyn.omega_cond.copy_(p.nu.reshape(1, -1))
            dyn.K_drive.copy_(p.drive)
            state = {k[len("decoder."):]: v for k, v in self.tensors.items() if k.startswith("decoder.")}
            model.decoder.load_state_dict(state)
        return model.to(device).eval()

    # --- files -------------------------------------------------------------------------------
    def save(self, out: str | Path) -> Path:
        """Write OUT/array.json + OUT/weights.safetensors into a temporary folder beside OUT,
        then rename it into place (an existing IR folder is replaced; anything else at OUT
        is refused): a crash leaves the old folder or none, never half of one."""
        from safetensors.torch import save_file

        out = Path(out)
        if out.exists() and not (out.is_dir() and (not any(out.iterdir()) or (out / DOCUMENT).exists())):
            raise CompileError(f"{out}: exists and is not an IR folder; refusing to overwrite it")
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            tensors = {k: v.detach().cpu().contiguous() for k, v in self.tensors.items()}
            save_file(tensors, str(tmp / WEIGHTS), metadata={"format": f"{FORMAT}/{FORMAT_VERSION}"})  # one key: safetensors orders metadata arbitrarily
            self.doc["weights"] = {"file": WEIGHTS, "sha256": sha256_file(tmp / WEIGHTS)}
            validate(self.doc)
            (tmp / DOCUMENT).write_text(dumps(self.doc))
            if out.exists():
                old = out.parent / f".{out.name}.old-{os.getpid()}"
                out.rename(old)
                tmp.rename(out)
                shutil.rmtree(old, ignore_errors=True)
            else:
                tmp.rename(out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return out

    @classmethod
    def load(cls, path: str | Path) -> ArrayIR:
        """Read and check an IR folder: schema, weight checksum, tensor shapes, and that
        every oscillator lives in exactly one tile."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        path = Path(path)
        doc_path = path / DOCUMENT
        if not doc_path.is_file():
            raise IRError(f"{path}: not an IR folder (no {DOCUMENT})")
        try:
            doc = json.loads(doc_path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise IRError(f"{doc_path}: not valid JSON ({exc})") from None
        validate(doc, where=str(doc_path))
        weights = path / WEIGHTS
        if not weights.is_file():
            raise IRError(f"{path}: {WEIGHTS} is missing")
        if sha256_file(weights) != doc["weights"]["sha256"]:
            raise IRError(f"{weights}: checksum does not match array.json (the file was changed or damaged)")
        try:
            tensors = load_file(str(weights))
        except (SafetensorError, OSError) as exc:
            raise IRError(f"{weights}: unreadable ({exc})") from None
        ir = cls(doc=doc, tensors=tensors)
        ir.check(where=str(path))
        return ir

    def check(self, *, where: str = "IR") -> None:
        """Consistency beyond the schema."""
        n, n_c, S = self.n, self.n_cond, self.tile_size
        members = [i for t in self.tiles for i in t]
        if sorted(members) != list(range(n)):
            raise IRError(f"{where}: every oscillator 0..{n - 1} must live in exactly one tile")
        if any(len(t) > S for t in self.tiles):
            raise IRError(f"{where}: a tile holds more than the tile size {S}")
        missing = [k for k in CODE_TENSORS if k not in self.tensors]
        if missing:
            raise IRError(f"{where}: weights lack {', '.join(missing)}")
        t, T = self.tensors, len(self.tiles)
        shapes = {
            "K.blocks": (t["K.block_tiles"].shape[0], S, S), "omega.codes": (n,), "nu.codes": (n_c,),
            "C.codes": (n_c, n_c), "drive.codes": (int(self.doc["dynamics"]["num_classes"]), n, n_c),
            "K.link_codes": (t["K.links"].shape[0],),
        }
        for name, shape in shapes.items():
            if tuple(t[name].shape) != shape:
                raise IRError(f"{where}: {name} has shape {tuple(t[name].shape)}, expected {shape}")
        bt = t["K.block_tiles"]
        if bt.numel() and (int(bt.min()) < 0 or int(bt.max()) >= T):
            raise IRError(f"{where}: K.block_tiles names tiles outside 0..{T - 1}")
        links = t["K.links"]
        if links.numel() and (int(links.min()) < 0 or int(links.max()) >= n):
            raise IRError(f"{where}: K.links names oscillators outside 0..{n - 1}")


def validate(doc: dict[str, Any], *, where: str = "array.json") -> None:
    import jsonschema

    try:
        jsonschema.validate(doc, schema())
    except jsonschema.ValidationError as exc:
        at = "/".join(map(str, exc.absolute_path)) or "top level"
        raise IRError(f"{where}: {at}: {exc.message}") from None


def load(path: str | Path) -> ArrayIR:
    return ArrayIR.load(path)
