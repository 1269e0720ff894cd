"""hw.tools: one way to find the external programs, with overrides and the install hint."""

from __future__ import annotations

import os
import re

import pytest

from hw import tools
from hw.rtl import RtlError, RtlUnavailable
from hw.spice.run import SpiceError, SpiceUnavailable
from hw.tools import (
    ToolUnavailable,
    find_tool,
    library_path,
    override_path,
    require_tool,
)


def _program(folder, name: str, *, executable: bool = True):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755 if executable else 0o644)
    return path


@pytest.fixture
def bare(monkeypatch, tmp_path):
    """No override set and a PATH of one empty folder (programs go in `bare / "bin"`)."""
    for tool in tools.TOOLS.values():
        monkeypatch.delenv(tool.env, raising=False)
    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    return tmp_path


def test_every_tool_has_an_override_and_a_package():
    assert {t.name: t.env for t in tools.TOOLS.values()} == {
        "ngspice": "UN0HW_NGSPICE", "iverilog": "UN0HW_IVERILOG", "vvp": "UN0HW_VVP",
        "verilator": "UN0HW_VERILATOR", "chromium": "UN0HW_CHROMIUM", "libngspice": "NGSPICE_LIBRARY_PATH"}
    assert tools.TOOLS["libngspice"].hint == "Debian/Ubuntu: apt-get install libngspice0-dev"


def test_a_missing_tool_names_itself_its_variable_and_its_package(bare):
    assert find_tool("verilator") is None
    with pytest.raises(ToolUnavailable, match=r"^verilator is not on PATH; install it \(Debian/Ubuntu: apt-get "
                                              r"install verilator\) or set UN0HW_VERILATOR to its path$"):
        require_tool("verilator")


def test_path_lookup_gives_an_absolute_path_and_tries_every_name(bare):
    fake = _program(bare / "bin", "chromium-browser")
    assert find_tool("chromium") == str(fake)  # the second of chromium's names
    assert os.path.isabs(require_tool("chromium"))


def test_an_override_wins_over_path_and_is_made_absolute(bare, monkeypatch):
    _program(bare / "bin", "ngspice")
    mine = _program(bare / "opt" / "ngspice-42" / "bin", "ngspice")
    monkeypatch.chdir(bare / "opt")
    monkeypatch.setenv("UN0HW_NGSPICE", "ngspice-42/bin/ngspice")  # relative to the cwd
    assert require_tool("ngspice") == str(mine)
    monkeypatch.chdir(bare)
    monkeypatch.setenv("UN0HW_NGSPICE", "ngspice")  # a bare name: looked up on PATH
    assert require_tool("ngspice") == str(bare / "bin" / "ngspice")


def test_a_bad_override_is_refused_not_passed_over(bare, monkeypatch):
    _program(bare / "bin", "iverilog")  # on PATH, but the override names something else
    plain = _program(bare, "iverilog-plain", executable=False)
    monkeypatch.setenv("UN0HW_IVERILOG", str(plain))
    assert find_tool("iverilog") is None
    with pytest.raises(ToolUnavailable, match=re.escape(f"UN0HW_IVERILOG={str(plain)!r} is not an executable file; "
                                                        "point it at the iverilog executable or unset it "
                                                        "(Debian/Ubuntu: apt-get install iverilog)")):
        require_tool("iverilog")
    monkeypatch.setenv("UN0HW_IVERILOG", str(bare / "nowhere" / "iverilog"))
    assert find_tool("iverilog") is None
    monkeypatch.setenv("UN0HW_IVERILOG", "no-such-iverilog")
    with pytest.raises(ToolUnavailable, match=r"^UN0HW_IVERILOG='no-such-iverilog' is not on PATH"):
        require_tool("iverilog")


def test_callers_get_their_own_error_family(bare):
    with pytest.raises(SpiceUnavailable) as spice:
        require_tool("ngspice", error=SpiceUnavailable)
    assert isinstance(spice.value, SpiceError) and isinstance(spice.value, ToolUnavailable)
    with pytest.raises(RtlUnavailable) as rtl:
        require_tool("vvp", error=RtlUnavailable)
    assert isinstance(rtl.value, RtlError) and "UN0HW_VVP" in str(rtl.value)


def test_unknown_names_are_a_programming_error():
    with pytest.raises(ValueError, match=r"^no external program 'gcc'; known: chromium, iverilog, ngspice, "
                                         r"verilator, vvp$"):
        find_tool("gcc")
    with pytest.raises(ValueError, match=r"^no external library 'ngspice'; known: libngspice$"):
        library_path("ngspice")


def test_a_library_override_is_checked_and_made_absolute(bare, monkeypatch):
    assert library_path("libngspice") is None  # unset: the loader searches its usual places
    lib = bare / "lib" / "libngspice.so"
    lib.parent.mkdir()
    lib.write_bytes(b"\x7fELF")
    monkeypatch.chdir(bare)
    monkeypatch.setenv("NGSPICE_LIBRARY_PATH", "lib/libngspice.so")
    assert library_path("libngspice") == str(lib)
    monkeypatch.setenv("NGSPICE_LIBRARY_PATH", "lib/libngspice.so.9")
    with pytest.raises(SpiceUnavailable, match=re.escape("NGSPICE_LIBRARY_PATH='lib/libngspice.so.9' is not a file; "
                                                         "point it at libngspice.so or unset it (Debian/Ubuntu: "
                                                         "apt-get install libngspice0-dev)")):
        library_path("libngspice", error=SpiceUnavailable)


def test_override_path_puts_overridden_folders_first_for_the_block_only(bare, monkeypatch):
    before = os.environ["PATH"]
    with override_path("iverilog", "vvp"):  # no overrides: PATH untouched
        assert os.environ["PATH"] == before
    mine = _program(bare / "icarus" / "bin", "iverilog")
    monkeypatch.setenv("UN0HW_IVERILOG", str(mine))
    with override_path("iverilog", "vvp"):
        assert os.environ["PATH"] == os.pathsep.join([str(mine.parent), before])
    assert os.environ["PATH"] == before
    renamed = _program(bare / "icarus" / "bin", "iverilog-12")
    monkeypatch.setenv("UN0HW_IVERILOG", str(renamed))
    with (pytest.raises(RtlUnavailable, match=r"a runner calls it as 'iverilog', so the override must name a file"),
          override_path("iverilog", error=RtlUnavailable)):
        pass
    assert os.environ["PATH"] == before


def test_tool_version_runs_the_override_with_the_tools_flag(bare, monkeypatch) -> None:
    fake = bare / "elsewhere" / "iverilog"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\n[ "$1" = "-V" ] && echo "Copyright notice" && echo "iverilog-99.9 : fake"\nexit 0\n')
    fake.chmod(0o755)
    monkeypatch.setenv("UN0HW_IVERILOG", str(fake))
    assert tools.tool_version("iverilog") == "iverilog-99.9 : fake"  # the line that names the tool
    assert tools.tool_version("ngspice") == "absent"
