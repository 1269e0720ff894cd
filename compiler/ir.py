"""`ArrayIR`: the compiled array as a document (array.json) and its codes
(weights.safetensors), saved and loaded with validation, and rebuilt into the simulator.

The IR is self-contained: `to_params` rebuilds the Kuramoto system the hardware holds
(dequantised codes on the kept support, in the original oscillator order) and `to_model`
a complete `Un0` (that system, the readout and the digital decoder's weights) — nothing
is read from the checkpoint at run time. It also stores the `hw.Calibration` it was
compiled with, so everything downstream reads the same cells.

This module owns the JSON (schema, canonical text, the folder's files); consumers read
the typed sections (`dynamics`, `physical`, `calibration`, `routing`, `decoder`,
`code_bits`, `config`) rather than keys of `doc`.

Format history: version 2 added the stored calibration (version 1 files are refused with
a hint to recompile).
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import dataclass
from functools import cached_property, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from compiler.options import CompileError
from compiler.sections import CodeBits, DecoderInfo, Dynamics, Physical, Routing
from oscsim import KuramotoParams, sha256_file
from oscsim.errors import brief
from oscsim.fileio import PathCheckError, read_json, readable_dir
from oscsim.quant import qmax

FORMAT, FORMAT_VERSION = "un0hw-array", 2
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

    # --- typed sections (built once from doc) ----------------------------------------------
    @cached_property
    def dynamics(self) -> Dynamics:
        return Dynamics.from_doc(self.doc["dynamics"])

    @cached_property
    def physical(self) -> Physical:
        return Physical.from_doc(self.doc["physical"])

    @cached_property
    def routing(self) -> Routing:
        return Routing.from_doc(self.doc)

    @cached_property
    def decoder(self) -> DecoderInfo:
        return DecoderInfo.from_doc(self.doc["decoder"])

    @cached_property
    def code_bits(self) -> CodeBits:
        return CodeBits.from_doc(self.doc["passes"]["quantization"])

    @cached_property
    def calibration(self):
        """The `hw.Calibration` the array was compiled with."""
        from hw.calibration import Calibration, CalibrationError

        try:
            return Calibration.from_dict(self.doc["calibration"], where="array.json: calibration")
        except CalibrationError as exc:
            raise IRError(str(exc)) from None

    @cached_property
    def config(self):
        """The source model's `models.Un0Config`."""
        from models import ConfigError, Un0Config

        try:
            return Un0Config.from_dict(self.doc["source"]["config"])
        except ConfigError as exc:
            raise IRError(f"array.json: source/config: {exc}") from None

    @property
    def name(self) -> str:
        return str(self.doc["source"]["config"].get("name", "model"))

    @property
    def n(self) -> int:
        return self.dynamics.n

    @property
    def n_cond(self) -> int:
        return self.dynamics.n_cond

    @property
    def tile_size(self) -> int:
        return int(self.doc["options"]["tile"])

    @property
    def couplers(self) -> str:
        """`CompileOptions.couplers` the array was compiled with ('auto' in IRs older than it)."""
        return str(self.doc["options"].get("couplers", "auto"))

    @property
    def tiles(self) -> list[list[int]]:
        return [t["oscillators"] for t in self.doc["tiles"]]

    @property
    def tau_s(self) -> float:
        return self.physical.tau_s

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
        """(max |K_ij|, Σ_j |K_ij| per oscillator) of the dequantised couplings (see
        `coupling_abs_stats`)."""
        return coupling_abs_stats(self.tensors, self.tiles, self.tile_size, self.n)

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

    def to_model(self, *, device: str | torch.device = "cpu", coupling: str = "sine", trim: str = "closed"):
        """A `models.Un0` running this array: 'standard' parameterisation (no μP scale, so
        its effective couplings are the dequantised codes bit for bit) and the IR's decoder.

        `coupling`: 'sine' — every coupler K_ij sin x (the model's own equations); 'circuit' —
        every coupler with the measured coupling function's shape of its code and loads on
        the IR's couplings (`compiler.circuit.realise_ir` at the 'full-code' scale,
        `ArrayCircuit.shape`), the cells trimmed by `trim` ('closed': the constant parts
        trimmed out; 'open': they act; 'trajectory': as 'closed', and ω also less the mean of
        the rest of H along the model's own trajectories, `compiler.circuit.trajectory_trim`)."""
        if coupling not in ("sine", "circuit"):
            raise IRError(f"coupling must be 'sine' or 'circuit', not {coupling!r}")
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
        dyn.links = self.links()
        if coupling == "circuit":
            from compiler.circuit import realise_ir, trajectory_trim

            dyn.shape = realise_ir(self, scale="full-code", trim=trim).shape()
            if trim == "trajectory":
                d_main, d_cond = trajectory_trim(model)
                with torch.no_grad():
                    dyn.omega.sub_(d_main.to(dyn.omega).reshape(1, -1))
                    dyn.omega_cond.sub_(d_cond.to(dyn.omega_cond).reshape(1, -1))
        return model.to(device).eval()

    def links(self):
        """The `oscsim.links.Links` its phase distribution makes (None: the waveform wires of
        point-to-point and broadcast-bus, heard as they are): every coupling between two tiles
        and the conditioning tile's drive, delayed and jittered by `compiler.route.link_dynamics`
        at the array's τ and the model's own Euler step."""
        timing = self.doc["passes"]["placement"].get("links")
        if timing is None:
            return None
        from compiler.route import link_dynamics
        from oscsim.links import Links

        tile_of = torch.empty(self.n, dtype=torch.int64)
        for t, members in enumerate(self.tiles):
            tile_of[torch.as_tensor(members, dtype=torch.int64)] = t
        h = self.config.integration_time / self.config.num_steps
        delay, jitter = link_dynamics(timing, tau_s=self.physical.tau_s, f0_hz=self.physical.f0_hz, h=h)
        return Links.of_tiles(tile_of, delay=delay, jitter_rad=jitter, seed=int(self.doc["options"].get("seed", 0)))

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
        try:
            readable_dir(path)
        except PathCheckError as exc:
            raise IRError(f"{exc} (an IR folder)") from None
        if not doc_path.exists():
            raise IRError(f"{path}: not an IR folder (no {DOCUMENT})")
        try:
            doc = read_json(doc_path)
        except PathCheckError as exc:
            raise IRError(str(exc)) from None
        if isinstance(doc, dict) and doc.get("format") == FORMAT and doc.get("format_version") != FORMAT_VERSION:
            v = doc.get("format_version")
            hint = ("it predates the stored calibration; recompile it with un0hw compile"
                    if isinstance(v, int) and v < FORMAT_VERSION else f"this un0hw reads version {FORMAT_VERSION}")
            raise IRError(f"{doc_path}: format_version {v!r}: {hint}")
        validate(doc, where=str(doc_path))
        weights = path / WEIGHTS
        if not weights.exists():
            raise IRError(f"{path}: {WEIGHTS} is missing")
        try:
            digest = sha256_file(weights)  # refuses a folder, FIFO or device before reading
        except PathCheckError as exc:
            raise IRError(str(exc)) from None
        if digest != doc["weights"]["sha256"]:
            raise IRError(f"{weights}: checksum does not match array.json (the file was changed or damaged)")
        try:
            tensors = load_file(str(weights))
        except (SafetensorError, OSError) as exc:
            raise IRError(f"{weights}: unreadable ({brief(exc)})") from None
        ir = cls(doc=doc, tensors=tensors)
        ir.check(where=str(path))
        return ir

    def check(self, *, where: str = "IR") -> None:
        """Consistency beyond the schema: every section reads, the tensors have the shapes
        the document declares, codes lie inside their declared bit range, scales are finite,
        and the decoder is complete."""
        for section in ("dynamics", "physical", "routing", "decoder", "code_bits", "config", "calibration"):
            self.__dict__.pop(section, None)  # rebuild from the document as it is now
            try:
                getattr(self, section)
            except IRError as exc:
                raise IRError(f"{where}/{exc}") from None
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                raise IRError(f"{where}/{DOCUMENT}: section {section} is malformed ({brief(exc)})") from None
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
        bits = self.code_bits
        width = {"K.blocks": bits.K, "K.link_codes": bits.K, "omega.codes": bits.omega, "drive.codes": bits.drive,
                 "C.codes": bits.C, "nu.codes": bits.nu}
        for name, b in width.items():
            codes = t[name]
            if codes.is_floating_point() or codes.dtype == torch.bool:
                raise IRError(f"{where}: {name} must hold integer codes, not {codes.dtype}")
            top = qmax(b)
            if codes.numel() and int(codes.abs().max()) > top:
                raise IRError(f"{where}: {name} holds codes up to {int(codes.abs().max())}, outside the declared "
                              f"{b}-bit range -{top}..{top}")
        for name in ("K.block_scales", "K.link_scales", "omega.scale", "drive.scale", "C.scale", "nu.scale"):
            if not t[name].is_floating_point():
                raise IRError(f"{where}: {name} must be floating point, not {t[name].dtype}")
            bad = int((~torch.isfinite(t[name])).sum())
            if bad:
                raise IRError(f"{where}: {name} holds {bad} NaN/Inf scale(s)")
        declared = {k: tuple(v) for k, v in self.doc["decoder"].get("tensors", {}).items()}
        from models.decoder import Decoder

        with torch.device("meta"):
            expected = {f"decoder.{k}": tuple(v.shape) for k, v in Decoder(self.config).state_dict().items()}
        missing = sorted(k for k in expected if k not in t)
        if missing:
            raise IRError(f"{where}: weights lack decoder tensor(s) {', '.join(missing[:4])}"
                          f"{' …' if len(missing) > 4 else ''}")
        for k, shape in expected.items():
            if tuple(t[k].shape) != shape or (k in declared and declared[k] != shape):
                raise IRError(f"{where}: {k} has shape {tuple(t[k].shape)}, expected {shape}")
            if not t[k].is_floating_point() or not bool(torch.isfinite(t[k]).all()):
                raise IRError(f"{where}: {k} must be finite floating point")
        extra = sorted(k for k in t if k.startswith("decoder.") and k not in expected)
        if extra:
            raise IRError(f"{where}: unexpected decoder tensor(s) {', '.join(extra[:4])}")
        if not math.isfinite(self.tau_s) or self.tau_s <= 0:
            raise IRError(f"{where}: physical tau_s must be a positive finite number of seconds")


def coupling_abs_stats(tensors: dict[str, Tensor], tiles: list[list[int]], tile_size: int,
                       n: int) -> tuple[float, Tensor]:
    """(max |K_ij|, Σ_j |K_ij| per oscillator) of the dequantised couplings, from the
    codes directly (no N×N matrix: the compiler's mapping pass at N = 16384)."""
    t, S, T = tensors, tile_size, len(tiles)
    blocks, scales, at = t["K.blocks"], t["K.block_scales"], t["K.block_tiles"][:, 0].long()
    kmax = 0.0
    slot_rows = torch.zeros(T, S, dtype=torch.float64)
    for k in range(0, len(blocks), 64):  # 64 crossbars at a time: no N×N float copy
        mags = blocks[k:k + 64].abs().to(torch.float32) * scales[k:k + 64].abs()
        kmax = max(kmax, float(mags.max()))
        slot_rows.index_add_(0, at[k:k + 64], mags.sum(2, dtype=torch.float64))
    rows = torch.zeros(n, dtype=torch.float64)
    for a, members in enumerate(tiles):
        rows[torch.tensor(members, dtype=torch.int64)] = slot_rows[a, : len(members)]
    links = t["K.links"].long()
    if links.numel():
        v = t["K.link_codes"].abs().to(torch.float64) * t["K.link_scales"].abs().double()
        rows.index_add_(0, links[:, 0], v)
        kmax = max(kmax, float(v.max()))
    return kmax, rows


def validate(doc: dict[str, Any], *, where: str = "array.json") -> None:
    import jsonschema

    try:
        jsonschema.validate(doc, schema())
    except jsonschema.ValidationError as exc:
        at = "/".join(map(str, exc.absolute_path)) or "top level"
        raise IRError(f"{where}: {at}: {exc.message}") from None


def load(path: str | Path) -> ArrayIR:
    return ArrayIR.load(path)
