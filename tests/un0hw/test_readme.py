"""The README and the docs' generated sections match the code."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _readme_cli():
    spec = importlib.util.spec_from_file_location("readme_cli", ROOT / "scripts" / "readme_cli.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_cli_reference_is_current() -> None:
    mod = _readme_cli()
    assert mod.PAGE == ROOT / "docs" / "cli.md"
    text = mod.PAGE.read_text()
    assert mod.BEGIN in text and mod.END in text
    assert mod.render(text) == text, "docs/cli.md is stale: run .venv/bin/python scripts/readme_cli.py"


def test_cli_reference_render_replaces_only_the_block() -> None:
    mod = _readme_cli()
    stale = f"# head\n\nkept\n\n{mod.BEGIN}\nold text\n{mod.END}\n\ntail kept\n"
    new = mod.render(stale)
    assert new != stale and "old text" not in new
    assert new.startswith("# head\n\nkept\n\n") and new.endswith(f"{mod.END}\n\ntail kept\n")
    assert "`un0hw --help`" in new and mod.render(new) == new


def test_ci_runs_the_readme_test_command() -> None:
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.lstrip().startswith("#")]
    assert "bash scripts/test.sh" in ci
    assert "bash scripts/test.sh" in (ROOT / "README.md").read_text()
