"""The demo's report: ``index.md`` from the Jinja2 templates in ``un0hw/templates``, ``index.html``
from that markdown (python-markdown) inside the page template ``report.html.j2``, and
``steps.json``; each file is written atomically (a temporary name, then a rename).

This module only assembles data — a context per section (`SECTIONS`); the prose, the tables'
layout and the number formats live in the templates (``<section id>.md.j2``).
"""

from __future__ import annotations

import functools
import json
import platform
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import markdown
import numpy
import torch
from markupsafe import Markup

import un0hw
from hw.tools import tool_version
from oscsim import atomic_path, sha256_file
from un0hw.demo import OPERATING_POINTS, SEED, Demo, Step, _opts

TITLE = "un0hw demo: Un-0 digits on an oscillator array"


def title(demo: Demo) -> str:
    """The report's title: the shipped digits model's, or the checkpoint's name and family."""
    model = demo.ctx.get("model")
    if model is None or tuple(model.config.image_shape) == (1, 8, 8):
        return TITLE
    cfg = model.config
    return f"un0hw demo: {cfg.name} ({cfg.dataset}, {'×'.join(map(str, cfg.image_shape))}) on an oscillator array"


def _percent(fraction: float | None, spec: str = ".1f") -> str:
    return "—" if fraction is None else f"{100 * fraction:{spec}}%"


@functools.cache
def environment() -> jinja2.Environment:
    """Templates from the installed package; HTML templates autoescape, markdown ones do not."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("un0hw", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), disabled_extensions=("md.j2",),
                                            default=True),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["fmt"] = format  # {{ x|fmt(".2f") }}
    env.filters["percent"] = _percent  # {{ 0.98|percent }} → 98.0%; None → —
    return env


def to_html(md: str) -> Markup:
    """Markdown → HTML (tables, fenced code). Raw HTML in `md` is escaped, not passed through:
    the report's markdown carries values (a step's reason, the command line) as text."""
    converter = markdown.Markdown(extensions=["tables", "fenced_code"], output_format="html")
    converter.preprocessors.deregister("html_block")
    converter.inlinePatterns.deregister("html")
    return Markup(converter.convert(md))


# --- one context per section: (template context, figures) ----------------------------------------
Context = tuple[dict[str, Any], list[str]]


def _quality(demo: Demo, step: Step) -> Context:
    if step.status != "ok":
        return {}, []
    rows = step.data["rows"]
    return ({"rows": rows, "floor": rows[0].get("floor"), "samples": demo.plan.per_class * 10, "seed": SEED,
             "trimmed": step.data["nonideal"]["trimmed"], "untrimmed": step.data["nonideal"]["untrimmed"],
             "load_table": step.data.get("load_table"), "metric": step.data.get("metric", "fid"),
             "fidelity": step.data.get("fidelity"), "grid_classes": step.data.get("grid_classes", 10),
             "meaning": _meaning()},
            [f"samples-{r['key']}.png" for r in rows])


def _meaning() -> dict[str, str]:
    from analysis.fidelity import meaning

    return meaning()


def _arrays(demo: Demo, step: Step) -> Context:
    if step.status != "ok":
        return {}, []
    return {"arrays": [{"name": name, "options": _opts(opts), "summary": step.data[name]["summary"]}
                       for name, opts in OPERATING_POINTS.items()]}, []


def _sweep(demo: Demo, step: Step) -> Context:
    if step.status != "ok":
        return {}, []
    return ({"rows": step.data["summary"], "samples": step.data.get("samples", demo.plan.sweep_samples),
             "metric": step.data.get("metric", "fid"), "floor": step.data.get("floor")}, ["sweep/sweep.png"])


def _cells(demo: Demo, step: Step) -> Context:
    images = [f"cells/{p}" for p in step.data.get("plots", [])] if step.status == "ok" else []
    return {"cal": demo.ctx.get("calibration")}, images


def _array(demo: Demo, step: Step) -> Context:
    return {"d": step.data}, [step.data["plot"]] if step.status == "ok" else []


def _rtl(demo: Demo, step: Step) -> Context:
    return {"d": step.data}, []


def _energy(demo: Demo, step: Step) -> Context:
    if step.status != "ok":
        return {}, []
    d = step.data
    return {"table": d["table"].strip(), "area_table": d.get("area_table", "").strip(),
            "tile_pitch_mm": d.get("tile_pitch_mm"), "tile_pitch_from": d.get("tile_pitch_from")}, ["energy.png"]


def provenance(demo: Demo) -> list[tuple[str, str]]:
    rows = [
        ("command", demo.command),
        ("un0hw", un0hw.__version__),
        ("python", platform.python_version()),
        ("torch", torch.__version__),
        ("numpy", numpy.__version__),
        ("machine", f"{platform.machine()}, {platform.processor() or 'cpu'}, {torch.get_num_threads()} threads"),
        ("checkpoint", f"{demo.ctx['checkpoint'].name} sha256 {sha256_file(demo.ctx['checkpoint'])}"),
        ("seed", str(SEED)),
        ("ngspice", tool_version("ngspice")),
        ("iverilog", tool_version("iverilog")),
    ]
    cal = demo.ctx.get("calibration")
    if cal is not None:
        rows.append(("calibration", f"{cal.source}; netlists sha256 {cal.netlist_sha256}; ngspice {cal.ngspice_version}"))
    for name, ir in demo.ctx.get("ir", {}).items():
        rows.append((f"array {name}", f"arrays/{name}/weights.safetensors sha256 {ir.doc['weights']['sha256']}"))
    for s in demo.steps:
        rows.append((f"step {s.name}", f"{s.status}, {s.seconds:.1f} s" + (f" — {s.reason}" if s.reason else "")))
    return rows


# (section id — its template is <id>.md.j2 —, heading, the step it reports, its context)
SECTIONS: tuple[tuple[str, str, str | None, Callable[[Demo, Step], Context] | None], ...] = (
    ("quality", "Image quality: ideal vs hardware", "quality", _quality),
    ("arrays", "The compiled arrays (ArrayIR summaries)", "compile", _arrays),
    ("sweep", "Coupling-bits sweep", "sweep", _sweep),
    ("cells", "Circuit-level cells (ngspice)", "cells", _cells),
    ("array", "A compiled array in SPICE vs oscsim", "array", _array),
    ("rtl", "The digital tile (Verilog under Icarus/cocotb)", "rtl", _rtl),
    ("energy", "Energy per inference", "energy", _energy),
    ("provenance", "Provenance", None, None),
)


@dataclass
class Section:
    id: str
    title: str
    markdown: str
    images: list[str]

    @property
    def html(self) -> Markup:
        return to_html(self.markdown)


def sections(demo: Demo) -> list[Section]:
    """Every report section, its markdown rendered (the demo has run all its steps)."""
    env, by = environment(), {s.name: s for s in demo.steps}
    out = []
    for sid, title, step_name, context in SECTIONS:
        if step_name is None:
            ctx, images = {"rows": provenance(demo)}, []
        else:
            step = by[step_name]
            ctx, images = context(demo, step)
            ctx["step"] = step
        out.append(Section(sid, title, env.get_template(f"{sid}.md.j2").render(ctx).strip(), images))
    return out


def _write(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_report(demo: Demo) -> None:
    """``index.md``, ``index.html`` and ``steps.json`` into ``demo.out``."""
    env, secs = environment(), sections(demo)
    name, head = demo.ctx.get("checkpoint"), title(demo)
    _write(demo.out / "index.md", env.get_template("report.md.j2").render(
        title=head, sections=secs, checkpoint=str(name) if name else None, shipped=head == TITLE))
    _write(demo.out / "index.html", env.get_template("report.html.j2").render(title=head, sections=secs))
    steps = [{"name": s.name, "status": s.status, "seconds": s.seconds, "reason": s.reason} for s in demo.steps]
    _write(demo.out / "steps.json", json.dumps(steps, indent=1) + "\n")
