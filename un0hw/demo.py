"""`un0hw demo`: the whole story on the shipped digits model, in one command and one report.

Steps (each timed; a step whose tool is missing says why and the report labels it):

1. cells — SPICE characterisation of the oscillator cell and coupler (quick plan): the
   two-cell locking check and the measured `hw.Calibration` (the built-in default, clearly
   labelled, when ngspice is absent);
2. compile — two operating points with that calibration;
3. quality — FID-digits, precision/recall and class accuracy of the model as trained, the
   two compiled arrays, and array A on imperfect hardware (`oscsim.NonIdeal` from the
   calibration's jitter and mismatch at the array's τ); sample grids on the same seeds;
4. sweep — a short coupling-bits sweep;
   array — a few cells of array A as transistor-level rings in ngspice against `oscsim`;
5. rtl — one tile of array A as the Verilog tile under Icarus/cocotb, bit-exact against
   the golden model;
6. energy — joules per inference of array A against the GPU estimate;
7. report — ``index.html`` and ``index.md`` with every figure and a provenance table.
"""

from __future__ import annotations

import html
import json
import platform
import shutil
import subprocess
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm import tqdm

from oscsim import sha256_file

SEED = 0
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


def _tool_version(cmd: list[str]) -> str:
    """The first output line of `cmd` that names the tool (e.g. 'ngspice-39 : …')."""
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
        text = [line.strip(" *") for line in (out.stdout or out.stderr).splitlines() if line.strip(" *")]
        named = [line for line in text if Path(cmd[0]).name.lower() in line.lower()]
        return (named or text or ["present"])[0]
    except (OSError, subprocess.TimeoutExpired):
        return "absent"


class Demo:
    def __init__(self, out: Path, *, quick: bool, progress: bool, command: str) -> None:
        self.out = out
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
        self.ctx["checkpoint"] = Path(SHIPPED)
        self.ctx["model"] = models.load(SHIPPED)
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
        from hw.characterize import characterize_all

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
                            "binding": ir.doc["physical"]["binding_limit"], "folder": str(folder.relative_to(self.out))}

    # --- 3. quality ------------------------------------------------------------------------------
    def nonideal_for(self, ir, *, trimmed: bool = True):
        """The hardware's imperfections at array `ir`'s τ, from the calibration: phase noise
        (period jitter), coupling mismatch, and frequency mismatch — raw (`trimmed=False`:
        σ(f0)·f0 of untrimmed cells) or what remains after a per-cell trim to the
        frequency DAC's resolution (the ω code's LSB, uniform: LSB/√12)."""
        from analysis.sweep import nonideal_from_calibration

        overrides = {"coupling_bits": None, "chip_seed": SEED, "sample_seed": SEED}  # the IR's codes are the coupler's
        if trimmed:
            overrides["freq_mismatch_rad_per_t"] = float(ir.tensors["omega.scale"].abs().max()) / 12**0.5
        return nonideal_from_calibration(self.ctx["calibration"], ir.tau_s, **overrides)

    def quality(self, s: Step) -> None:
        from analysis.evaluate import digits_extractor, score_model
        from models.data import digits
        from un0hw.images import save_grid

        if "ir" not in self.ctx:
            raise RuntimeError("the compile step did not run")
        model = self.ctx["model"]
        ex, reference, floor_set = digits_extractor(), digits("test"), digits("train")
        A, B = self.ctx["ir"]["A"], self.ctx["ir"]["B"]
        noisy, raw = self.nonideal_for(A), self.nonideal_for(A, trimmed=False)
        s.data["nonideal"] = {"trimmed": noisy.to_dict(), "untrimmed": raw.to_dict()}
        variants = [
            ("ideal", "the model as trained (float32)", model, None),
            ("A", "array A: " + _opts(OPERATING_POINTS["A"]), A.to_model(), None),
            ("A+hw", "array A on imperfect hardware: the calibration's phase noise and coupling mismatch, cells "
             "trimmed to the frequency code's resolution", A.to_model(), noisy),
            ("A+untrimmed", "as A+hw with the cells' raw frequency mismatch (σ(f0)·f0, no trim)", A.to_model(), raw),
            ("B", "array B: " + _opts(OPERATING_POINTS["B"]), B.to_model(), None),
        ]
        rows = []
        n = self.plan.grid_per_class
        labels = torch.arange(model.config.num_classes).repeat_interleave(n)
        theta0 = model.sample_theta0(len(labels), generator=torch.Generator().manual_seed(SEED))
        for key, label, m, ni in variants:
            score = score_model(m, ex, reference, floor_set=floor_set, per_class=self.plan.per_class, seed=SEED,
                                nonideal=ni)
            rows.append({"key": key, "what": label, **score.as_dict()})
            images = m.generate(labels, theta0, nonideal=ni) if ni is not None else m.generate(labels, theta0)
            save_grid(images, self.out / f"samples-{key}.png", rows=model.config.num_classes)
        s.data["rows"] = rows

    # --- 4. sweep --------------------------------------------------------------------------------
    def sweep(self, s: Step) -> None:
        from analysis.sweep import SweepSpec, run_sweep

        spec = SweepSpec(kind="one-factor", source=str(self.out / "sweep.toml"),
                         title="FID-digits vs coupling bits (shipped digits-n512)", factor="coupling_bits",
                         values=self.plan.sweep_bits, seeds=1, samples=self.plan.sweep_samples, seed=SEED)
        result = run_sweep(spec, self.out / "sweep", progress=self.progress)
        s.data["summary"] = result["summary"]
        s.data["floor"] = result["floor"]

    # --- 4b. array check --------------------------------------------------------------------------
    def array(self, s: Step) -> None:
        from hw.array_check import run_check

        if "ir" not in self.ctx:
            raise RuntimeError("the compile step did not run")
        if self.ctx["calibration"].source != "measured":
            from hw.spice.run import SpiceUnavailable

            raise SpiceUnavailable("no measured calibration (the cells step did not run ngspice)")
        r = run_check(self.ctx["ir"]["A"], self.out / "array-check", quick=True, calibration=self.ctx["calibration"],
                      seed=SEED)
        s.data.update({k: r[k] for k in ("cells", "cycles", "tau_s", "tau_rule", "final_error_rad", "mean_error_rad",
                                         "start_error_rad", "final_error_uncoupled_rad", "mean_error_uncoupled_rad")})
        s.data["plot"] = str(Path(r["plot"]).relative_to(self.out))
        s.data["deck"] = str(Path(r["deck"]).relative_to(self.out))

    # --- 5. rtl ----------------------------------------------------------------------------------
    def rtl(self, s: Step) -> None:
        from compiler.emit import rtl_tile
        from hw.rtl import simulate_tile, unavailable_reason
        from oscsim.fixedpoint import phase_to_code, run

        reason = unavailable_reason()
        if reason:
            from hw.rtl import RtlUnavailable

            raise RtlUnavailable(reason)
        ir = self.ctx["ir"]["A"]
        label = 3
        info = rtl_tile(ir, 0, self.out / "rtl", label=label)  # the memory image, and its program
        program, fmt, dyn = info["program"], info["program"].fmt, ir.doc["dynamics"]
        g = torch.Generator().manual_seed(SEED)
        theta0 = torch.rand(self.plan.rtl_seeds, fmt.cells, generator=g, dtype=torch.float64) * 2 * torch.pi
        codes0 = phase_to_code(theta0, fmt)
        t0 = time.perf_counter()
        rtl = simulate_tile(program, codes0, int(dyn["steps"]), cache_dir=self.out / "rtl" / "build")
        rtl_s = time.perf_counter() - t0
        mask = (1 << fmt.phase_bits) - 1
        golden = run(program, codes0, int(dyn["steps"]), labels=torch.full((len(codes0),), label)) & mask
        mismatches = int((rtl != golden).sum())
        s.data.update({"cells": fmt.cells, "steps": int(dyn["steps"]), "seeds": self.plan.rtl_seeds,
                       "cycles_per_step": fmt.cycles_per_step, "rtl_seconds": rtl_s, "mismatches": mismatches,
                       "phases_compared": int(golden.numel()), "files": info["files"],
                       "iverilog": _tool_version(["iverilog", "-V"])})
        if mismatches:
            raise AssertionError(f"the RTL differs from the golden model in {mismatches} phases")

    # --- 6. energy -------------------------------------------------------------------------------
    def energy(self, s: Step) -> None:
        from analysis import energy

        ir = self.ctx["ir"]["A"]
        est = energy.estimate(ir, calibration=self.ctx["calibration"])
        energy.plot_breakdown([est], self.out / "energy.png")
        s.data["table"] = energy.markdown_table([est])
        s.data["estimate"] = est.as_dict() if hasattr(est, "as_dict") else {}


def _opts(o: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in o.items())


# --- the report ------------------------------------------------------------------------------------
def provenance(demo: Demo) -> list[tuple[str, str]]:
    import numpy

    import un0hw

    rows = [
        ("command", demo.command),
        ("un0hw", un0hw.__version__),
        ("python", platform.python_version()),
        ("torch", torch.__version__),
        ("numpy", numpy.__version__),
        ("machine", f"{platform.machine()}, {platform.processor() or 'cpu'}, {torch.get_num_threads()} threads"),
        ("checkpoint", f"{demo.ctx['checkpoint'].name} sha256 {sha256_file(demo.ctx['checkpoint'])}"),
        ("seed", str(SEED)),
        ("ngspice", _tool_version(["ngspice", "-v"]) if shutil.which("ngspice") else "absent"),
        ("iverilog", _tool_version(["iverilog", "-V"]) if shutil.which("iverilog") else "absent"),
    ]
    cal = demo.ctx.get("calibration")
    if cal is not None:
        rows.append(("calibration", f"{cal.source}; netlists sha256 {cal.netlist_sha256}; ngspice {cal.ngspice_version}"))
    for name, ir in demo.ctx.get("ir", {}).items():
        rows.append((f"array {name}", f"arrays/{name}/weights.safetensors sha256 {ir.doc['weights']['sha256']}"))
    for s in demo.steps:
        rows.append((f"step {s.name}", f"{s.status}, {s.seconds:.1f} s" + (f" — {s.reason}" if s.reason else "")))
    return rows


def _md_table(header: list[str], rows: list[list[Any]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def sections(demo: Demo) -> list[tuple[str, str, list[str], str]]:
    """(id, title, images, markdown body) per report section."""
    by = {s.name: s for s in demo.steps}
    out = []

    def status_line(s: Step) -> str:
        if s.status == "ok":
            return ""
        return f"**{s.status.upper()}**: {s.reason}\n\n"

    q = by.get("quality")
    body, imgs = "", []
    if q is not None:
        body = status_line(q)
        if q.status == "ok":
            rows = [[r["key"], r["what"], f"{r['fid']:.2f}", f"{r['precision']:.3f} / {r['recall']:.3f}",
                     f"{100 * r['class_accuracy']:.1f}%" if r.get("class_accuracy") is not None else "—"]
                    for r in q.data["rows"]]
            floor = q.data["rows"][0].get("floor")
            body += (f"FID-digits of {demo.plan.per_class * 10} samples (seed {SEED}) against the digits test "
                     f"split; the data floor (train vs test) is {floor:.2f}.\n\n" if floor else "")
            body += _md_table(["", "what runs", "FID-digits", "precision / recall", "class accuracy"], rows)
            t, u = q.data["nonideal"]["trimmed"], q.data["nonideal"]["untrimmed"]
            body += (f"\n\nImperfections at array A's τ: phase noise σ = {t['phase_noise_rad_per_sqrt_t']:.3g} rad/√(model time) "
                     f"(the cell's period jitter), coupling mismatch σ(ln gain) = {t['coupling_mismatch_sigma']:.3g}, "
                     f"frequency mismatch σ_ω = {t['freq_mismatch_rad_per_t']:.3g} rad/(model time) after trim vs "
                     f"{u['freq_mismatch_rad_per_t']:.3g} untrimmed — the cells' raw spread is far beyond the model's "
                     "frequencies, so every cell needs a trim DAC.")
            imgs = [f"samples-{r['key']}.png" for r in q.data["rows"]]
            body += ("\n\nSample grids on the same seed phases (a row per class): "
                     + ", ".join(f"`{r['key']}`" for r in q.data["rows"]) + ", in that order.")
    out.append(("quality", "Image quality: ideal vs hardware", imgs, body))

    c = by.get("compile")
    body = status_line(c) if c else ""
    if c is not None and c.status == "ok":
        for name in OPERATING_POINTS:
            body += f"**Array {name}** ({_opts(OPERATING_POINTS[name])}):\n\n```text\n{c.data[name]['summary']}\n```\n\n"
    out.append(("arrays", "The compiled arrays (ArrayIR summaries)", [], body))

    sw = by.get("sweep")
    body, imgs = (status_line(sw) if sw else ""), []
    if sw is not None and sw.status == "ok":
        rows = [[r["value"], f"{r['fid']:.2f}", f"{r['precision']:.3f} / {r['recall']:.3f}",
                 f"{100 * r['class_accuracy']:.1f}%"] for r in sw.data["summary"]]
        body += f"Coupling codes quantised to each width (`oscsim.NonIdeal.coupling_bits`), {demo.plan.sweep_samples} samples per point.\n\n"
        body += _md_table(["coupling bits", "FID-digits", "precision / recall", "class accuracy"], rows)
        imgs = ["sweep/sweep.png"]
    out.append(("sweep", "Coupling-bits sweep", imgs, body))

    cl = by.get("cells")
    body, imgs = (status_line(cl) if cl else ""), []
    cal = demo.ctx.get("calibration")
    if cal is not None:
        body += (f"Calibration used by the compiler: **{cal.source}** ({cal.process}). f0 {cal.f0_hz / 1e6:.1f} MHz, "
                 f"tuning {cal.f_min_hz / 1e6:.1f}–{cal.f_max_hz / 1e6:.0f} MHz, cell {cal.cell_energy_per_cycle_j * 1e12:.3f} pJ "
                 f"per cycle, coupler K_max {cal.k_max_rad_s:.3g} rad/s at {cal.coupler_bits} bits, period jitter "
                 f"{cal.period_jitter_s * 1e12:.2f} ps, σ(f0) {100 * cal.sigma_f0_rel:.2f}%, σ(K) {100 * cal.sigma_k_rel:.2f}%.\n\n")
    if cl is not None and cl.status == "ok":
        imgs = [f"cells/{p}" for p in cl.data.get("plots", [])]
        body += "Two cells lock in phase for positive coupler codes, in anti-phase for negative ones, and drift when detuned (locking.png)."
    out.append(("cells", "Circuit-level cells (ngspice)", imgs, body))

    a = by.get("array")
    body, imgs = (status_line(a) if a else ""), []
    if a is not None and a.status == "ok":
        d = a.data
        body += (f"{len(d['cells'])} cells of array A (oscillators {', '.join(map(str, d['cells']))}) built as "
                 f"transistor-level rings with coupler DACs in ngspice (`{d['deck']}`), started from the same phases "
                 f"as `oscsim` on the circuit's realised system, {d['cycles']:.0f} carrier cycles "
                 f"(τ = {d['tau_s']:.3g} s: {d['tau_rule']}). Mean circular error of the relative phases: "
                 f"**{d['final_error_rad']:.2f} rad at the end** ({d['mean_error_rad']:.2f} over the run); "
                 f"against the uncoupled prediction {d['final_error_uncoupled_rad']:.2f} ({d['mean_error_uncoupled_rad']:.2f}); "
                 f"start error {d['start_error_rad']:.2f}. The circuit's negative couplers shift their cells' "
                 "frequency, which the sine-only model lacks (README, Circuit-level cells).")
        imgs = [d["plot"]]
    out.append(("array", "A compiled array in SPICE vs oscsim", imgs, body))

    r = by.get("rtl")
    body = status_line(r) if r else ""
    if r is not None and r.status == "ok":
        d = r.data
        body += (f"Tile 0 of array A ({d['cells']} cells: its main oscillators and the conditioning ones), "
                 f"{d['seeds']} seeds × {d['steps']} Euler steps under {d['iverilog']}: **{d['mismatches']} of "
                 f"{d['phases_compared']} phases differ** from the golden model (`oscsim.fixedpoint`); "
                 f"{d['cycles_per_step']} clock cycles per Euler step; simulated in {d['rtl_seconds']:.1f} s. "
                 f"Memory image: `rtl/{d['files'][0]}`.")
    out.append(("rtl", "The digital tile (Verilog under Icarus/cocotb)", [], body))

    e = by.get("energy")
    body, imgs = (status_line(e) if e else ""), []
    if e is not None and e.status == "ok":
        body += e.data["table"]
        imgs = ["energy.png"]
    out.append(("energy", "Energy per inference", imgs, body))

    out.append(("provenance", "Provenance", [], _md_table(["", ""], [[k, f"`{v}`"] for k, v in provenance(demo)])))
    return out


def _md_to_html(md: str) -> str:
    """The small markdown subset the report uses: tables, code blocks, bold, code, paragraphs."""
    import re

    def inline(text: str) -> str:
        text = html.escape(text)
        text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
        return re.sub(r"`([^`]+)`", r"<code>\1</code>", text)

    out, lines, i = [], md.splitlines(), 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            out.append("<pre>" + html.escape("\n".join(lines[i + 1:j])) + "</pre>")
            i = j + 1
        elif line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                if not set(lines[i].replace("|", "").strip()) <= {"-", ":"}:
                    rows.append([c.strip() for c in lines[i].strip().strip("|").split("|")])
                i += 1
            head, *body = rows
            out.append("<table><thead><tr>" + "".join(f"<th>{inline(c)}</th>" for c in head) + "</tr></thead><tbody>"
                       + "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in r) + "</tr>" for r in body)
                       + "</tbody></table>")
        elif line.strip():
            para = [line]
            i += 1
            while i < len(lines) and lines[i].strip() and not lines[i].startswith(("|", "```")):
                para.append(lines[i])
                i += 1
            out.append("<p>" + inline(" ".join(para)) + "</p>")
        else:
            i += 1
    return "\n".join(out)


CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;font-size:.92em}
pre{background:#f6f6f6;padding:.6em;overflow-x:auto;font-size:.85em}code{background:#f2f2f2;padding:0 .2em}
.imgs{display:flex;flex-wrap:wrap;gap:1em}.imgs figure{margin:0}.imgs img{max-width:520px;border:1px solid #ddd}
nav a{margin-right:1em}"""

IMAGE_CHECK = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; });
  document.body.setAttribute('data-images-ok', ok.length);
  document.body.setAttribute('data-images-broken', imgs.length - ok.length);
});
</script>"""


def write_report(demo: Demo) -> None:
    from oscsim import atomic_path

    secs = sections(demo)
    title = "un0hw demo: Un-0 digits on an oscillator array"
    md = [f"# {title}", "", "Generated by `un0hw demo` on the shipped trained digits model "
          "(`models/checkpoints/un0-digits.safetensors`).", ""]
    body = [f"<h1>{html.escape(title)}</h1>",
            "<nav>" + "".join(f'<a href="#{sid}">{html.escape(t)}</a>' for sid, t, _, _ in secs) + "</nav>"]
    for sid, t, imgs, text in secs:
        md += [f"## {t}", "", text, ""] + [f"![{p}]({p})" for p in imgs] + [""]
        figs = "".join(f'<figure><img src="{html.escape(p)}" alt="{html.escape(p)}"><figcaption>{html.escape(p)}</figcaption></figure>'
                       for p in imgs)
        body.append(f'<section id="{sid}"><h2>{html.escape(t)}</h2>{_md_to_html(text)}'
                    + (f'<div class="imgs">{figs}</div>' if figs else "") + "</section>")
    page = (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body>{''.join(body)}{IMAGE_CHECK}</body></html>\n")
    with atomic_path(demo.out / "index.html") as tmp:
        Path(tmp).write_text(page)
    with atomic_path(demo.out / "index.md") as tmp:
        Path(tmp).write_text("\n".join(md) + "\n")
    steps = [{"name": s.name, "status": s.status, "seconds": s.seconds, "reason": s.reason} for s in demo.steps]
    with atomic_path(demo.out / "steps.json") as tmp:
        Path(tmp).write_text(json.dumps(steps, indent=1) + "\n")


def run_demo(out: str | Path = "report", *, quick: bool = False, progress: bool = True,
             command: str = "un0hw demo") -> tuple[Path, list[Step]]:
    """Run every step into `out`; `command` is what the provenance table says ran it."""
    demo = Demo(Path(out), quick=quick, progress=progress, command=command)
    return demo.run(), demo.steps
