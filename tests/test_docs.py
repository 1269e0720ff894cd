"""The documentation: the site builds in strict mode, and no text is there twice."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
MIN_CHARS = 200  # paragraphs at least this long must appear once only


def paragraphs(text: str) -> list[str]:
    """Blank-line separated blocks, whitespace collapsed, the long ones only."""
    blocks = (" ".join(b.split()) for b in re.split(r"\n[ \t]*\n", text))
    return [b for b in blocks if len(b) >= MIN_CHARS]


def test_paragraphs_split_and_collapse() -> None:
    long = "word " * 50
    assert paragraphs(f"{long}\n\n short \n\n{long}\n  \n") == [long.strip()] * 2
    assert paragraphs("a\nb") == []


def test_readme_text_is_not_copied_into_docs() -> None:
    readme = set(paragraphs((ROOT / "README.md").read_text()))
    assert readme, "README has no long paragraph: check MIN_CHARS"
    for page in sorted(DOCS.rglob("*.md")):
        text = " ".join(page.read_text().split())
        copied = [p[:80] for p in readme if p in text]
        assert not copied, f"{page.relative_to(ROOT)} repeats README text: {copied}"


def test_docs_pages_do_not_repeat_each_other() -> None:
    """The hand-written pages (docs/*.md; the data folders' generated reports may quote
    themselves) hold each long paragraph once."""
    seen: dict[str, Path] = {}
    for page in sorted(DOCS.glob("*.md")):
        for p in paragraphs(page.read_text()):
            assert p not in seen, f"{page.name} repeats {seen[p].name}: {p[:80]}"
            seen[p] = page


def test_no_readme_section_copies_left() -> None:
    assert not list(DOCS.rglob("README-section.md"))


def test_docs_pages_do_not_link_outside_docs() -> None:
    for page in sorted(DOCS.rglob("*.md")):
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if "://" in target or target.startswith("#"):
                continue
            resolved = (page.parent / target.split("#")[0]).resolve()
            assert resolved.is_relative_to(DOCS), f"{page.relative_to(ROOT)} links outside docs/: {target}"


@pytest.mark.slow
def test_mkdocs_builds_strict(tmp_path) -> None:
    """`mkdocs build --strict`: a broken link or anchor, a page missing from the nav's
    targets, or a docstring the API reference cannot render fails the build."""
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent)) or shutil.which("mkdocs")
    if mkdocs is None:
        pytest.skip("mkdocs is not installed (bash scripts/setup.sh installs the test extra)")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    run = subprocess.run([mkdocs, "build", "--strict", "-d", str(tmp_path / "site")], cwd=ROOT,
                         capture_output=True, text=True, env=env, timeout=300)
    log = run.stdout + run.stderr
    warnings = [line for line in log.splitlines() if line.startswith(("WARNING", "ERROR"))]
    assert run.returncode == 0 and not warnings, "\n".join(warnings) or log[-4000:]
    for page in ["index.html", "cli/index.html", "api/hw/index.html", "cells/index.html"]:
        assert (tmp_path / "site" / page).is_file(), page
    assert (tmp_path / "site" / "cells" / "run" / "locking.png").is_file()
