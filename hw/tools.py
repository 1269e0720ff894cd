"""The external programs un0hw runs, and the shared library PySpice loads: where they are,
or a one-line reason why not.

- `find_tool(name)`: the absolute path of program `name`, or None.
- `require_tool(name)`: the same path, or `ToolUnavailable` (or the subclass given, e.g.
  `hw.spice.run.SpiceUnavailable`, `hw.rtl.RtlUnavailable`) naming the program, the
  environment variable that overrides it and the Debian/Ubuntu package.
- `library_path(name)`: a shared library's override as an absolute path, or None (the
  loader searches its usual places); a bad override is `ToolUnavailable`.
- `tool_version(name)`: the program's own version line (for provenance), or "absent".
- `override_path(*names)`: a context in which the overridden programs' folders come first
  on ``PATH``, for a runner that calls them by name (cocotb calls ``iverilog``/``vvp``).

An override (``$UN0HW_NGSPICE``, ``$UN0HW_IVERILOG``, ``$UN0HW_VVP``, ``$UN0HW_VERILATOR``,
``$UN0HW_CHROMIUM``; ``$NGSPICE_LIBRARY_PATH``, PySpice's own, for libngspice) wins over
``PATH``: a path (relative ones are taken from the current folder and returned absolute)
or a bare name looked up on ``PATH``. One that names no executable file is an error,
never passed over in silence. Pure standard library.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["TOOLS", "Tool", "ToolUnavailable", "find_tool", "library_path", "override_path", "require_tool",
           "tool_version"]


class ToolUnavailable(RuntimeError):
    """An external program or library is not installed where this process can use it."""


@dataclass(frozen=True)
class Tool:
    """One external program (or shared library): its override variable, the names it goes
    by on ``PATH`` (first found wins) and the Debian/Ubuntu package that installs it."""

    name: str
    env: str
    commands: tuple[str, ...]
    package: str
    library: bool = False
    version_flag: str = "--version"

    @property
    def hint(self) -> str:
        return f"Debian/Ubuntu: apt-get install {self.package}"


TOOLS: dict[str, Tool] = {t.name: t for t in (
    Tool("ngspice", "UN0HW_NGSPICE", ("ngspice",), "ngspice", version_flag="-v"),
    Tool("iverilog", "UN0HW_IVERILOG", ("iverilog",), "iverilog", version_flag="-V"),
    Tool("vvp", "UN0HW_VVP", ("vvp",), "iverilog", version_flag="-V"),
    Tool("verilator", "UN0HW_VERILATOR", ("verilator",), "verilator"),
    Tool("chromium", "UN0HW_CHROMIUM", ("chromium", "chromium-browser", "google-chrome"), "chromium"),
    Tool("libngspice", "NGSPICE_LIBRARY_PATH", (), "libngspice0-dev", library=True),
)}


def _tool(name: str, *, library: bool) -> Tool:
    tool = TOOLS.get(name)
    if tool is None or tool.library != library:
        kind = "library" if library else "program"
        known = sorted(t.name for t in TOOLS.values() if t.library == library)
        raise ValueError(f"no external {kind} {name!r}; known: {', '.join(known)}")
    return tool


def _locate(tool: Tool) -> tuple[str | None, str]:
    """(absolute path or None, why not)."""
    value = os.environ.get(tool.env, "")
    if value:
        if os.sep not in value and not tool.library:  # a bare name: look it up on PATH
            found = shutil.which(value)
            if found is None:
                return None, (f"{tool.env}={value!r} is not on PATH; point it at the {tool.name} executable "
                              f"or unset it ({tool.hint})")
            return os.path.abspath(found), ""
        path = os.path.abspath(os.path.expanduser(value))
        if tool.library:
            if not os.path.isfile(path):
                return None, f"{tool.env}={value!r} is not a file; point it at {tool.name}.so or unset it ({tool.hint})"
        elif not (os.path.isfile(path) and os.access(path, os.X_OK)):
            return None, (f"{tool.env}={value!r} is not an executable file; point it at the {tool.name} "
                          f"executable or unset it ({tool.hint})")
        return path, ""
    for command in tool.commands:
        found = shutil.which(command)
        if found is not None:
            return os.path.abspath(found), ""
    return None, f"{tool.name} is not on PATH; install it ({tool.hint}) or set {tool.env} to its path"


def find_tool(name: str) -> str | None:
    """The absolute path of program `name` (see `TOOLS`), or None: `require_tool` says why."""
    return _locate(_tool(name, library=False))[0]


def require_tool(name: str, *, error: type[ToolUnavailable] = ToolUnavailable) -> str:
    """The absolute path of program `name`; raises `error` (a `ToolUnavailable`) with a
    one-line reason naming the program, its override variable and its package."""
    path, why = _locate(_tool(name, library=False))
    if path is None:
        raise error(why)
    return path


def tool_version(name: str) -> str:
    """The first line of program `name`'s version output that names it (e.g. 'ngspice-39 :
    …'), for provenance; "absent" where the program is not found or does not answer."""
    tool = _tool(name, library=False)
    path = _locate(tool)[0]
    if path is None:
        return "absent"
    try:
        out = subprocess.run([path, tool.version_flag], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return "absent"
    text = [line.strip(" *") for line in (out.stdout or out.stderr).splitlines() if line.strip(" *")]
    named = [line for line in text if any(c.lower() in line.lower() for c in (tool.name, *tool.commands))]
    return (named or text or ["present"])[0]


def library_path(name: str, *, error: type[ToolUnavailable] = ToolUnavailable) -> str | None:
    """Shared library `name`'s override as an absolute path, or None when none is set."""
    tool = _tool(name, library=True)
    if not os.environ.get(tool.env):
        return None
    path, why = _locate(tool)
    if path is None:
        raise error(why)
    return path


@contextlib.contextmanager
def override_path(*names: str, error: type[ToolUnavailable] = ToolUnavailable) -> Iterator[None]:
    """Put the folders of the programs among `names` that have an override first on
    ``os.environ["PATH"]`` while the block runs, for runners that call them by their plain
    name: such an override must keep that name (``.../bin/iverilog``, not ``iverilog-12``)."""
    folders = []
    for name in names:
        tool = _tool(name, library=False)
        if os.environ.get(tool.env):
            path = require_tool(name, error=error)
            if os.path.basename(path) not in tool.commands:
                raise error(f"{tool.env}={os.environ[tool.env]!r}: a runner calls it as {tool.commands[0]!r}, "
                            f"so the override must name a file called {tool.commands[0]!r} ({tool.hint})")
            folder = os.path.dirname(path)
            if folder not in folders:
                folders.append(folder)
    if not folders:
        yield
        return
    old = os.environ.get("PATH")
    os.environ["PATH"] = os.pathsep.join(folders + ([old] if old else []))
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("PATH", None)
        else:
            os.environ["PATH"] = old
