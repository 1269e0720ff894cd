"""`compile`: an Un-0 → an `ArrayIR`, pass by pass (each pass its own module)."""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from compiler.ir import FORMAT, FORMAT_VERSION, ArrayIR, coupling_abs_stats
from compiler.mapping import physical_mapping
from compiler.options import DISTRIBUTIONS, CompileOptions
from compiler.partition import partition
from compiler.prune import prune
from compiler.quantize import quantize_couplings, quantize_vectors
from compiler.route import congestion, distributed_length, link_hardware, link_timing, phase_groups, place, route


def _peak_rss_bytes() -> int:
    """The process's peak resident memory: Linux's VmHWM (which a benchmark may reset
    through /proc/self/clear_refs), else getrusage's maximum."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _system(model):
    """(K as stored, its scale, everything else): the model's main coupling is left as it is
    stored and scaled stripe by stripe in the passes (`PrunedCouplings`), so compiling never
    holds a second N×N copy; the rest is `Un0.params()`'s effective system, with a
    zero-stride placeholder where K would be."""
    from oscsim import KuramotoParams

    dyn = model.dynamics
    k_scale, c_scale, d_scale = dyn.scales
    f32 = {"device": "cpu", "dtype": torch.float32}
    n = dyn.K.shape[0]
    C = dyn.K_cond.detach().to(**f32) * c_scale
    C.diagonal().zero_()
    params = KuramotoParams(
        K=torch.zeros((), **f32).expand(n, n), omega=dyn.omega.detach().to(**f32).reshape(-1),
        drive=dyn.K_drive.detach().to(**f32) * d_scale, C=C, nu=dyn.omega_cond.detach().to(**f32).reshape(-1),
    )
    return dyn.K.detach().to(**f32), float(k_scale), params


def memory_estimate_bytes(n: int, n_cond: int, num_classes: int, options: CompileOptions) -> int:
    """A lower bound on what compiling N oscillators into `options`' tiles allocates: every
    crossbar a dense target can need (T² of them for T = ⌈N/S⌉ tiles; T for sparse-routed)
    holds S×S codes and its float staging, besides the drive and conditioning arrays."""
    S = options.tile
    T = -(-n // S)
    crossbars = T * T if options.target == "dense-tiled" else T
    code = 1 if options.k_bits <= 8 else 2
    return crossbars * S * S * (code + 4) + (num_classes * n * n_cond + n_cond * n_cond) * (4 + code)


def compile(
    model,
    options: CompileOptions | None = None,
    *,
    calibration=None,
    source: str | None = None,
    source_sha256: str | None = None,
    progress: bool = False,
    timings: dict[str, dict[str, float]] | None = None,
) -> ArrayIR:
    """Compile `model` (a `models.Un0`) for the array `options` describe.

    Passes: prune → partition → route (crossbars, links) → quantise → place → physical
    mapping (τ from `calibration`, a `hw.Calibration`; its default when None).
    `timings`, if given, receives seconds and peak RSS per pass.
    """
    from hw.calibration import Calibration
    from models.decoder import decoder_macs
    from oscsim.memory import require_memory

    options = options or CompileOptions()
    calibration = calibration or Calibration.default()
    from compiler.circuit import directed_couplers

    directed_couplers(options.couplers, calibration)  # refuses 'directed' on a reciprocal coupler
    cfg = model.config
    require_memory(memory_estimate_bytes(cfg.n, cfg.n_cond, cfg.num_classes, options),
                   f"compiling {cfg.name} (N = {cfg.n}) into tiles of --tile {options.tile}")
    record = timings if timings is not None else {}
    bar = tqdm(total=6, desc="compile", unit="pass", disable=not progress)

    def run(name: str, fn: Callable[[], Any]) -> Any:
        bar.set_postfix_str(name)
        t0 = time.perf_counter()
        out = fn()
        record[name] = {"seconds": time.perf_counter() - t0, "peak_rss_gb": _peak_rss_bytes() / 1e9}
        bar.update()
        return out

    with torch.no_grad(), bar:  # the bar closes (ends its line) on errors too
        K, k_scale, params = _system(model)
        generator = torch.Generator().manual_seed(options.seed)

        view, prune_report = run("prune", lambda: prune(K, options, scale=k_scale))
        useful = options.target == "sparse-routed" or options.prune != "none"
        part = run("partition", lambda: partition(view, options.tile, options.partition, seed=options.seed, useful=useful))
        routing = run("route", lambda: route(view, part, options))
        k_tensors, k_report = run("quantize", lambda: quantize_couplings(view, part, routing, options, generator))
        v_tensors, v_report = quantize_vectors(params, options, generator)

        T_tiles = len(part.tiles)
        # traffic between sites: main tiles, then the conditioning tile (N_c phases to each)
        traffic = np.zeros((T_tiles + 1, T_tiles + 1), dtype=np.int64)
        traffic[:T_tiles, :T_tiles] = routing.wires
        if params.n_cond:
            traffic[T_tiles, :T_tiles] = traffic[:T_tiles, T_tiles] = params.n_cond
        pos = run("place", lambda: place(traffic, method=options.place, seed=options.seed))
        pitch = options.tile_pitch_mm
        index_pos = place(traffic, method="index", seed=options.seed)
        groups = phase_groups(routing, part, options, params.n_cond)
        per_wire = options.tdm_phases_per_wire
        lengths = {d: distributed_length(groups, pos, d, phases_per_wire=per_wire) * pitch for d in DISTRIBUTIONS}
        hardware = link_hardware(groups, options)
        placement = {
            "method": options.place, "grid": [int(pos[:, 0].max()) + 1, int(pos[:, 1].max()) + 1],
            "tile_pitch_mm": pitch,
            "distribution": options.distribution,
            "wire_length_mm": lengths[options.distribution],
            "wire_length_by_distribution_mm": lengths,
            "phase_drivers": hardware["drivers"],
            "phase_receivers": hardware["receivers"],
            "phases_sent": hardware["phases_sent"],
            "links": link_timing(options),
            "index_layout_wire_length_mm": distributed_length(groups, index_pos, options.distribution,
                                                              phases_per_wire=per_wire) * pitch,
            "congestion": congestion(traffic, pos),
        }

        def mapping() -> dict:
            k_max, rows = coupling_abs_stats(k_tensors, [list(t) for t in part.tiles], options.tile, params.n)

            def deq(name: str) -> torch.Tensor:
                return v_tensors[f"{name}.codes"].float() * v_tensors[f"{name}.scale"]

            drive, C = deq("drive").reshape(params.drive.shape), deq("C").reshape(params.C.shape)
            if drive.numel():
                rows = rows + drive.abs().sum(2).amax(0).double()
                k_max = max(k_max, float(drive.abs().max()))
            row_max = float(rows.max())
            if C.numel():
                row_max = max(row_max, float(C.abs().sum(1).max()))
                k_max = max(k_max, float(C.abs().max()))
            omega_max = max(float(deq("omega").abs().max()), float(deq("nu").abs().max()) if params.n_cond else 0.0)
            return physical_mapping(K_max=k_max, row_sum_max=row_max, omega_max=omega_max,
                                    T=cfg.integration_time, bits=options.k_bits, calibration=calibration,
                                    options=options)

        physical = run("map", mapping)

        blocks = k_tensors["K.blocks"]
        active = int(torch.count_nonzero(blocks)) + int(torch.count_nonzero(k_tensors["K.link_codes"]))
        links = []
        for a, b in zip(*np.nonzero(np.triu(traffic, 1))):
            a, b = int(a), int(b)
            links.append({"tiles": [a if a < T_tiles else -1, b if b < T_tiles else -1],
                          "wires": int(traffic[a, b]),
                          "length_mm": float(np.abs(pos[a] - pos[b]).sum() * pitch)})
        decoder_counts = decoder_macs(model.decoder)
        decoder_state = {f"decoder.{k}": v.detach().float().cpu().contiguous() for k, v in model.decoder.state_dict().items()}
        drive_couplers = params.n * params.n_cond
        doc = {
            "format": FORMAT, "format_version": FORMAT_VERSION,
            "source": {"checkpoint": source, "sha256": source_sha256, "config": cfg.to_dict()},
            "options": options.to_dict(),
            "dynamics": {"n": params.n, "n_cond": params.n_cond, "num_classes": params.num_classes,
                         "steps": cfg.num_steps, "T": float(cfg.integration_time), "solver": cfg.solver},
            "tiles": [{"id": t, "position": [int(x) for x in pos[t]], "oscillators": list(members)}
                      for t, members in enumerate(part.tiles)],
            "conditioning_tile": {"position": [int(x) for x in pos[T_tiles]], "oscillators": params.n_cond},
            "links": links,
            "passes": {
                "prune": prune_report.to_dict(), "partition": part.to_dict(), "routing": routing.report,
                "placement": placement,
                "quantization": {"K": {"bits": options.k_bits, "granularity": options.granularity,
                                       "scale_method": options.scale_method, "rounding": options.rounding, **k_report},
                                 **v_report},
            },
            "physical": physical,
            "calibration": calibration.to_dict(),
            "readout": {"relativization": cfg.relativization, "encoding": cfg.encoding,
                        "latent_shape": [cfg.latent_channels, cfg.latent_hw, cfg.latent_hw]},
            "decoder": {"tensors": {k: list(v.shape) for k, v in decoder_state.items()},
                        "parameters": sum(v.numel() for v in decoder_state.values()),
                        "macs_per_image": decoder_counts["macs"],
                        "elementwise_per_image": decoder_counts["elementwise"], "precision": "float32 (as trained)"},
            "resources": {
                "tiles": T_tiles, "cells": params.n, "conditioning_cells": params.n_cond,
                "crossbars": routing.report["crossbars"],
                "couplers_physical": routing.report["couplers_physical"],
                "couplers_active": active,
                "inter_tile_links": routing.report["inter_tile_links"],
                "drive_couplers": drive_couplers, "drive_code_banks": params.num_classes,
                "conditioning_couplers": params.n_cond * max(params.n_cond - 1, 0),
                "wire_length_mm": placement["wire_length_mm"],
                "coupling_code_bits": options.k_bits,
                "weight_memory_bits": int(blocks.numel()) * options.k_bits
                + int(k_tensors["K.link_codes"].numel()) * options.k_bits
                + drive_couplers * params.num_classes * options.d_bits,
            },
            "weights": {"file": "weights.safetensors", "sha256": "0" * 64},
        }
    ir = ArrayIR(doc=doc, tensors={**k_tensors, **v_tensors, **decoder_state})
    ir.doc["circuit"] = circuit_section(ir)
    return ir


#: arrays up to this many main oscillators get the circuit pass at compile time (it holds a
#: dense N×N coupling and its codes; larger arrays: `compiler.circuit.realise_ir` on demand)
CIRCUIT_PASS_MAX_N = 4096


def circuit_section(ir: ArrayIR) -> dict:
    """The IR's "circuit" section (`compiler.circuit`): the closed-coupler trims and the coupler
    classes with their realised coupling function, at the IR's τ and with resized DACs."""
    from compiler.circuit import realise_ir

    if ir.n > CIRCUIT_PASS_MAX_N:
        return {"skipped": f"N = {ir.n} > {CIRCUIT_PASS_MAX_N}: the circuit pass holds a dense N x N; run "
                           f"compiler.circuit.realise_ir on a machine with room for it"}
    physical = realise_ir(ir, scale="ir")
    resized = realise_ir(ir, scale="full-code")
    p = ir.to_params(dtype=torch.float64)
    section = {"ir": physical.report(), "full_code": resized.report()}
    shift = physical.K.coef()[..., 0].sum(axis=-1) * ir.tau_s if physical.K.codes.size else np.zeros(ir.n)
    section["trim"] = {
        "rule": "closed: each cell's open-coupler frequency is omega - sum_j b0_ij of its closed couplers "
                "(IR scale), so the constant part of H brings it back to omega",
        "omega_open_model": (p.omega.numpy() - shift).tolist(),
        "max_shift_model": float(np.abs(shift).max()) if shift.size else 0.0,
    }
    return section

