"""`un0hw demo --quick` end to end, and its report opened in a real browser."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from hw.tools import find_tool
from un0hw.cli import main

SECTIONS = ("quality", "arrays", "sweep", "cells", "array", "rtl", "energy", "provenance")


def chromium() -> str | None:
    return find_tool("chromium")  # chromium, chromium-browser or google-chrome; $UN0HW_CHROMIUM overrides


@pytest.mark.slow
def test_demo_report_opens_with_every_section_and_image(tmp_path, capsys) -> None:
    out = tmp_path / "report"
    rc = main(["demo", "--quick", "-o", str(out), "--no-progress"])
    text = capsys.readouterr().out
    steps = json.loads((out / "steps.json").read_text())
    assert rc == 0, text
    assert [s["name"] for s in steps] == ["cells", "compile", "quality", "sweep", "array", "rtl", "energy"]
    assert all(s["status"] in ("ok", "skipped") for s in steps), steps
    for s in steps:  # a skipped step must say why
        assert s["status"] == "ok" or s["reason"]
    page = (out / "index.html").read_text()
    for sid in SECTIONS:
        assert f'<section id="{sid}">' in page
    images = re.findall(r'<img src="([^"]+)"', page)
    assert len(images) >= 6 and all((out / p).is_file() for p in images)
    md = (out / "index.md").read_text()
    assert "## Provenance" in md and "sha256" in md and "| A+hw |" in md

    browser = chromium()
    if browser is None:
        pytest.skip("chromium is not installed (scripts/setup.sh installs it): the page was checked as files only")
    base = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    dom = subprocess.run([*base, "--dump-dom", (out / "index.html").as_uri()], capture_output=True, text=True,
                         timeout=120).stdout
    ok = re.search(r'data-images-ok="(\d+)"', dom)
    broken = re.search(r'data-images-broken="(\d+)"', dom)
    assert ok and broken, "the page's load handler did not run"
    assert int(broken.group(1)) == 0 and int(ok.group(1)) == len(images)
    for sid in SECTIONS:
        assert f'id="{sid}"' in dom
    shot = tmp_path / "screenshot.png"
    subprocess.run([*base, f"--screenshot={shot}", "--window-size=1200,2000", (out / "index.html").as_uri()],
                   capture_output=True, timeout=120)
    assert shot.is_file() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_report_escapes_values_and_labels_every_step_that_did_not_run(tmp_path) -> None:
    """The report from a demo whose steps all failed or were skipped (no step is run): every section is
    there with its status line, and a value carrying HTML (a reason, the command) is text in the page."""
    from models.checkpoint import SHIPPED
    from un0hw.demo import Demo, Step
    from un0hw.report import write_report

    demo = Demo(tmp_path, quick=True, progress=False, command="un0hw demo <b>bold</b> & co")
    demo.ctx["checkpoint"] = Path(SHIPPED)
    names = ["cells", "compile", "quality", "sweep", "array", "rtl", "energy"]
    demo.steps = [Step(n, n, status="skipped" if n == "cells" else "failed", reason=f"<script>alert('{n}')</script>")
                  for n in names]
    write_report(demo)
    page, md = (tmp_path / "index.html").read_text(), (tmp_path / "index.md").read_text()
    for sid in SECTIONS:
        assert f'<section id="{sid}">' in page
    assert "<script>alert" not in page and "<b>bold</b>" not in page
    assert "&lt;script&gt;alert('rtl')&lt;/script&gt;" in page
    assert page.count("<strong>FAILED</strong>") == 6 and page.count("<strong>SKIPPED</strong>") == 1
    assert "**FAILED**: <script>alert('rtl')</script>" in md and "`un0hw demo <b>bold</b> & co`" in md
    assert [s["name"] for s in json.loads((tmp_path / "steps.json").read_text())] == names
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic writes left no temporary file
