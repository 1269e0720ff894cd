"""Regenerate the README's CLI reference from the parser's --help (or --check it)."""

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
README = Path(__file__).resolve().parent.parent / "README.md"


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
    current = README.read_text()
    new = render(current)
    if "--check" in sys.argv:
        sys.exit(0 if new == current else "README's CLI reference is stale: run python scripts/readme_cli.py")
    README.write_text(new)
