"""`un0hw demo [CKPT]`: the whole story on a checkpoint (default: the shipped digits model), in
one command and one report.

Any checkpoint runs — the release's `.pt` files included, random-init ones too. A digits model
is scored by FID-digits against the shipped digits data; any other by chip fidelity
(`analysis.fidelity`: each hardware variant against the ideal model on the same seeds), which
needs no data set and means the same for a trained and a random-init model: how far the chip
is from the model it implements.

Steps (each timed; a step whose tool is missing says why and the report labels it):

1. cells — SPICE characterisation of the oscillator cell and coupler (quick plan): the
   two-cell locking check and the measured `hw.Calibration` (the built-in default, clearly
   labelled, when ngspice is absent);
2. compile — two operating points with that calibration;
3. quality — FID-digits, precision/recall and class accuracy (chip fidelity for other
   families) of the model as trained, the two compiled arrays, and array A on imperfect
   hardware (`oscsim.NonIdeal` from the calibration's jitter and mismatch at the array's τ);
   sample grids on the same seeds;
4. sweep — a short coupling-bits sweep (FID-digits, or chip fidelity);
   array — a few cells of array A as transistor-level rings in ngspice against `oscsim`;
5. rtl — one tile of array A as the Verilog tile under Icarus/cocotb, bit-exact against
   the golden model;
6. energy — joules per inference of array A against the GPU estimate;
7. report — ``index.html`` and ``index.md`` with every figure and a provenance table.
"""

from __future__ import annotations

import math
import shutil
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from tqdm import tqdm

from oscsim import sha256_file

SEED = 0
#: the array step: cells of array A in ngspice, and how many initial phases
ARRAY_CELLS, ARRAY_STARTS = 4, 3
OPERATING_POINTS = {
    "A": {"bits": 6, "tile": 128, "target": "dense-tiled"},
    "B": {"bits": 4, "tile": 128, "target": "sparse-routed", "links": 2048},
}


@dataclass
class Plan:
    """How much work each step does (`quick` for tests)."""

    per_class: int = 100  # samples per class for every score (1,000 images)
    sweep_bits: tuple[int, ...] = (2, 3, 4, 5, 6, 8)
    sweep_samples: int = 1000
    grid_per_class: int = 8
    rtl_seeds: int = 4
    cells_quick: bool = True

    @classmethod
    def of(cls, quick: bool) -> Plan:
        if quick:
            return cls(per_class=20, sweep_bits=(2, 4, 8), sweep_samples=200, grid_per_class=4, rtl_seeds=2)
        return cls()


@dataclass
class Step:
    name: str
    title: str
    status: str = "pending"  # ok | skipped | failed
    seconds: float = 0.0
    reason: str = ""
    data: dict[str, Any] = field(default_factory=dict)


class Demo:
    def __init__(self, out: Path, *, quick: bool, progress: bool, command: str,
                 checkpoint: str | Path | None = None) -> None:
        self.out = out
        self.checkpoint = checkpoint
        self.command = command
        self.plan = Plan.of(quick)
        self.quick = quick
        self.progress = progress
        self.steps: list[Step] = []
        self.ctx: dict[str, Any] = {}

    # --- running ---------------------------------------------------------------------------
    def step(self, name: str, title: str, fn: Callable[[Step], None], *, skip_on: tuple = ()) -> Step:
        s = Step(name=name, title=title)
        self.steps.append(s)
        t0 = time.perf_counter()
        try:
            fn(s)
            if s.status == "pending":
                s.status = "ok"
        except skip_on as exc:  # a missing tool: the step is skipped, with the reason
            s.status, s.reason = "skipped", str(exc).splitlines()[0]
        except Exception as exc:  # noqa: BLE001 - the report shows what broke, the demo goes on
            s.status, s.reason = "failed", f"{type(exc).__name__}: {exc}".splitlines()[0]
            s.data["traceback"] = traceback.format_exc()
        s.seconds = time.perf_counter() - t0
        return s

    def run(self) -> Path:
        import models
        from models.checkpoint import SHIPPED

        self.out.mkdir(parents=True, exist_ok=True)
        self.ctx["checkpoint"] = Path(self.checkpoint or SHIPPED)
        self.ctx["model"] = models.load(self.ctx["checkpoint"])
        stages = [
            ("cells", "Circuit-level cells (ngspice)", self.cells, self._spice_missing()),
            ("compile", "Two compiled arrays", self.compile, ()),
            ("quality", "Image quality: ideal vs hardware", self.quality, ()),
            ("sweep", "Coupling-bits sweep", self.sweep, ()),
            ("array", "A compiled array in SPICE vs oscsim", self.array, self._spice_missing()),
            ("rtl", "The digital tile (Verilog under Icarus/cocotb)", self.rtl, self._rtl_missing()),
            ("energy", "Energy per inference", self.energy, ()),
        ]
        bar = tqdm(stages, desc="demo", unit="step", disable=not self.progress)
        for name, title, fn, skip_on in bar:
            bar.set_postfix_str(name)
            self.step(name, title, fn, skip_on=skip_on)
        from un0hw.report import write_report

        write_report(self)
        return self.out / "index.html"

    @staticmethod
    def _spice_missing() -> tuple:
        from hw.spice.run import SpiceUnavailable

        return (SpiceUnavailable,)

    @staticmethod
    def _rtl_missing() -> tuple:
        from hw.rtl import RtlUnavailable

        return (RtlUnavailable,)

    # --- 1. cells --------------------------------------------------------------------------------
    def cells(self, s: Step) -> None:
        from hw.calibration import Calibration

        self.ctx["calibration"] = Calibration.default()
        from hw.spice.run import SpiceUnavailable, unavailable_reason

        reason = unavailable_reason()
        if reason:
            raise SpiceUnavailable(f"{reason}; the compiler uses the built-in default calibration (labelled 'default')")
        from hw.characterization import characterize_all

        cal = characterize_all(self.out / "cells", quick=self.plan.cells_quick, progress=self.progress, seed=SEED)
        self.ctx["calibration"] = cal
        s.data["calibration"] = cal.to_dict()
        s.data["plots"] = sorted(p.name for p in (self.out / "cells").glob("*.png"))

    # --- 2. compile ------------------------------------------------------------------------------
    def compile(self, s: Step) -> None:
        import compiler
        from un0hw.cmd_compile import summary

        cal = self.ctx["calibration"]
        self.ctx["ir"] = {}
        for name, opts in OPERATING_POINTS.items():
            ir = compiler.compile(self.ctx["model"], compiler.CompileOptions(**opts, seed=SEED), calibration=cal,
                                  source=str(self.ctx["checkpoint"]), source_sha256=sha256_file(self.ctx["checkpoint"]))
            folder = ir.save(self.out / "arrays" / name)
            self.ctx["ir"][name] = ir
            s.data[name] = {"options": opts, "summary": summary(ir, f"arrays/{name}"), "tau_s": ir.tau_s,
                            "binding": ir.physical.binding_limit, "folder": str(folder.relative_to(self.out))}

    # --- 3. quality ------------------------------------------------------------------------------
    @property
    def digits(self) -> bool:
        """Whether the model makes 1×8×8 digits (FID-digits) rather than another family's images."""
        return tuple(self.ctx["model"].config.image_shape) == (1, 8, 8)

    def quality(self, s: Step) -> None:
        from un0hw.images import save_grid

        if "ir" not in self.ctx:
            raise RuntimeError("the compile step did not run")
        model = self.ctx["model"]
        A, B = self.ctx["ir"]["A"], self.ctx["ir"]["B"]
        from compiler.mapping import array_nonideal

        noisy = array_nonideal(A, chip_seed=SEED, sample_seed=SEED)
        raw = array_nonideal(A, trimmed=False, chip_seed=SEED, sample_seed=SEED)
        s.data["nonideal"] = {"trimmed": noisy.to_dict(), "untrimmed": raw.to_dict()}
        variants = [
            ("ideal", "the model as trained (float32)" if self.digits else "the checkpoint's model, ideal (float32)",
             model, None),
            ("A", "array A: " + _opts(OPERATING_POINTS["A"]), A.to_model(), None),
            ("A+hw", "array A on imperfect hardware: the calibration's phase noise and coupling mismatch, cells "
             "trimmed to the frequency code's resolution", A.to_model(), noisy),
            ("A+untrimmed", "as A+hw with the cells' raw frequency mismatch (σ(f0)·f0, no trim)", A.to_model(), raw),
            ("A+H", "array A with the circuit's measured coupling function on every coupler (its code's and "
             "loads' shape; cells trimmed against their closed couplers), no noise", A.to_model(coupling="circuit"),
             None),
            ("A+H+hw", "as A+H on imperfect hardware (as A+hw)", A.to_model(coupling="circuit"), noisy),
            ("B", "array B: " + _opts(OPERATING_POINTS["B"]), B.to_model(), None),
        ]
        s.data["metric"] = "fid" if self.digits else "fidelity"
        s.data["rows"] = self._fid_rows(variants) if self.digits else self._fidelity_rows(variants, s)
        n = self.plan.grid_per_class
        classes = min(model.config.num_classes, 10)  # a row per class; the first ten of a 1000-class model
        labels = torch.arange(classes).repeat_interleave(n)
        theta0 = model.sample_theta0(len(labels), generator=torch.Generator().manual_seed(SEED))
        for key, _, m, ni in variants:
            images = m.generate(labels, theta0, nonideal=ni) if ni is not None else m.generate(labels, theta0)
            save_grid(images, self.out / f"samples-{key}.png", rows=classes)
        s.data["grid_classes"] = classes
        cal = A.calibration
        if not cal.sine_only:  # the shape the dense array's couplers get: the table's most loaded row
            _, a1, b1 = cal.coupling_coefficients(np.array(cal.fanout_ref_code), cal.fanout_max, cal.fanout_max)[:3]
            s.data["load_table"] = {"fanout_max": cal.fanout_max, "lag_deg": math.degrees(math.atan2(-b1, a1))}

    def _fid_rows(self, variants) -> list[dict[str, Any]]:
        """FID-digits, precision/recall and class accuracy of every variant (digits models)."""
        from analysis.evaluate import digits_extractor, score_model
        from models.data import digits

        ex, reference, floor_set = digits_extractor(), digits("test"), digits("train")
        return [{"key": key, "what": label, **score_model(m, ex, reference, floor_set=floor_set,
                                                          per_class=self.plan.per_class, seed=SEED,
                                                          nonideal=ni).as_dict()}
                for key, label, m, ni in variants]

    def _fidelity_rows(self, variants, s: Step) -> list[dict[str, Any]]:
        """Chip fidelity of every variant against the ideal model on the same seeds (any family,
        no data set): the ideal's samples made once; the sampling floor sets the scale."""
        from analysis.evaluate import bounded_batch
        from analysis.fidelity import IdealReference, chip_fidelity, feature_space, sampling_floor

        model = self.ctx["model"]
        ex = feature_space("auto", model.config.image_shape)
        per_class = max(1, self.plan.per_class * 10 // model.config.num_classes)
        batch = bounded_batch(model.config, 1000)

        def reference(seed: int) -> IdealReference:
            return IdealReference.of_plan(model, ex, per_class=per_class, seed=seed, batch_size=batch)

        ideal = reference(SEED)
        s.data["fidelity"] = {"feature_space": ex.id, "samples": per_class * model.config.num_classes,
                              "sampling_floor": sampling_floor(ideal, reference(SEED + 1))}
        return [{"key": key, "what": label, **chip_fidelity(ideal, m, nonideal=ni).as_dict()}
                for key, label, m, ni in variants]

    # --- 4. sweep --------------------------------------------------------------------------------
    def sweep(self, s: Step) -> None:
        from analysis.sweep import SweepSpec, run_sweep

        from models.checkpoint import SHIPPED

        model = self.ctx["model"]
        what = "FID-digits" if self.digits else "chip fidelity"
        ckpt = self.ctx["checkpoint"]
        folder = self.out / "sweep"
        if folder.is_dir():  # the step's own folder: a rerun (perhaps of another checkpoint) starts afresh
            shutil.rmtree(folder)
        spec = SweepSpec(kind="one-factor", source=str(self.out / "sweep.toml"),
                         title=f"{what} vs coupling bits ({model.config.name})", factor="coupling_bits",
                         checkpoint="shipped" if ckpt.resolve() == Path(SHIPPED).resolve() else str(ckpt.resolve()),
                         values=self.plan.sweep_bits, seeds=1,
                         samples=max(self.plan.sweep_samples, model.config.num_classes), seed=SEED)
        result = run_sweep(spec, folder, progress=self.progress)
        s.data["summary"] = result["summary"]
        s.data["floor"] = result["floor"]
        s.data["metric"] = result["metric"]
        s.data["samples"] = spec.samples

    # --- 4b. array check --------------------------------------------------------------------------
    def array(self, s: Step) -> None:
        from analysis.array_check import run_check

        if "ir" not in self.ctx:
            raise RuntimeError("the compile step did not run")
        if self.ctx["ir"]["A"].calibration.source != "measured":
            from hw.spice.run import SpiceUnavailable

            raise SpiceUnavailable("no measured calibration (the cells step did not run ngspice)")
        import numpy as np

        from analysis.array_check import (
            SUMMARY,
            distribution,
            plot_distribution,
            write_json,
        )

        folder = self.out / "array-check"
        if folder.is_dir():  # the step's own folder: no files of an earlier run (or version) left beside this one's
            shutil.rmtree(folder)
        rng = np.random.default_rng(SEED)
        reports = [run_check(self.ctx["ir"]["A"], self.out / "array-check" / f"start{k}", quick=True,
                             theta0=rng.uniform(-np.pi, np.pi, ARRAY_CELLS)) for k in range(ARRAY_STARTS)]
        summary = {"cells": ARRAY_CELLS, "starts": ARRAY_STARTS, "seed": SEED, **distribution(reports)}
        write_json(self.out / "array-check" / SUMMARY, summary)
        plot_distribution(summary, self.out / "array-check" / "summary.png",
                          title=f"{ARRAY_CELLS} cells of array A, {ARRAY_STARTS} starts, in ngspice against oscsim")
        r = reports[0]
        s.data.update({k: r[k] for k in ("cells", "cycles", "tau_s", "tau_rule", "trim_rule", "coupling_model",
                                         "start_error_rad")})
        s.data["starts"] = ARRAY_STARTS
        s.data.update({k: summary[k] for k in summary if k.startswith(("median_", "worst_"))})
        s.data["plot"] = str(Path(r["plot"]).relative_to(self.out))
        s.data["deck"] = str(Path(r["deck"]).relative_to(self.out))

    # --- 5. rtl ----------------------------------------------------------------------------------
    def rtl(self, s: Step) -> None:
        from compiler.emit import rtl_tile
        from hw.rtl import simulate_tile, unavailable_reason
        from hw.tools import tool_version
        from oscsim.fixedpoint import phase_to_code, run

        reason = unavailable_reason()
        if reason:
            from hw.rtl import RtlUnavailable

            raise RtlUnavailable(reason)
        ir = self.ctx["ir"]["A"]
        label = 3
        info = rtl_tile(ir, 0, self.out / "rtl", label=label)  # the memory image, and its program
        program, fmt, steps = info["program"], info["program"].fmt, ir.dynamics.steps
        g = torch.Generator().manual_seed(SEED)
        theta0 = torch.rand(self.plan.rtl_seeds, fmt.cells, generator=g, dtype=torch.float64) * 2 * torch.pi
        codes0 = phase_to_code(theta0, fmt)
        t0 = time.perf_counter()
        rtl = simulate_tile(program, codes0, steps, cache_dir=self.out / "rtl" / "build")
        rtl_s = time.perf_counter() - t0
        mask = (1 << fmt.phase_bits) - 1
        golden = run(program, codes0, steps, labels=torch.full((len(codes0),), label)) & mask
        mismatches = int((rtl != golden).sum())
        s.data.update({"cells": fmt.cells, "steps": steps, "seeds": self.plan.rtl_seeds,
                       "cycles_per_step": fmt.cycles_per_step, "rtl_seconds": rtl_s, "mismatches": mismatches,
                       "phases_compared": int(golden.numel()), "files": info["files"],
                       "iverilog": tool_version("iverilog")})
        if mismatches:
            raise AssertionError(f"the RTL differs from the golden model in {mismatches} phases")

    # --- 6. energy -------------------------------------------------------------------------------
    def energy(self, s: Step) -> None:
        from analysis import area, energy

        ir = self.ctx["ir"]["A"]
        est = energy.estimate(ir)  # on the cells the array was compiled onto (stored in the IR)
        energy.plot_breakdown([est], self.out / "energy.png")
        s.data["table"] = energy.markdown_table([est])
        chip = area.estimate_area(ir)
        s.data["area_table"] = area.markdown_table([chip])
        s.data["tile_pitch_mm"] = est.settings["tile_pitch_mm"]
        s.data["tile_pitch_from"] = est.settings["tile_pitch_from"]


def _opts(o: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in o.items())


def run_demo(out: str | Path = "report", *, quick: bool = False, progress: bool = True,
             command: str = "un0hw demo", checkpoint: str | Path | None = None) -> tuple[Path, list[Step]]:
    """Run every step into `out` on `checkpoint` (default: the shipped digits model);
    `command` is what the provenance table says ran it."""
    demo = Demo(Path(out), quick=quick, progress=progress, command=command, checkpoint=checkpoint)
    return demo.run(), demo.steps
