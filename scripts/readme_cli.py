"""Regenerate the CLI reference page (docs/cli.md, between its markers) from the parser's
--help, or --check that it is current (tests/un0hw/test_readme.py does)."""

from __future__ import annotations

import argparse
import io
import sys
from contextlib import redirect_stdout
from pathlib import Path

import os

os.environ["COLUMNS"] = "100"  # argparse wraps help to the terminal: fix the width

from un0hw.cli import build_parser  # noqa: E402

BEGIN, END = "<!-- cli-reference:begin -->", "<!-- cli-reference:end -->"
PAGE = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


def reference() -> str:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    parts = []
    for name, p in [("un0hw", parser), *((f"un0hw {n}", s) for n, s in sub.choices.items())]:
        buf = io.StringIO()
        with redirect_stdout(buf):
            p.print_help()
        parts.append(f"`{name} --help`\n\n```text\n{buf.getvalue().rstrip()}\n```\n")
    return "\n".join(parts)


def render(text: str) -> str:
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{reference()}{END}{tail}"


if __name__ == "__main__":
    current = PAGE.read_text()
    new = render(current)
    if "--check" in sys.argv:
        sys.exit(0 if new == current else "docs/cli.md is stale: run .venv/bin/python scripts/readme_cli.py")
    PAGE.write_text(new)
