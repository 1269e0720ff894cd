"""Run a deck in ngspice through PySpice's ngspice-shared backend, with a wall-clock limit.

The edge module: everything that touches libngspice is here. ngspice runs in its own
background thread (`bg_run`); the caller waits on its start/end callbacks and halts it
(`bg_halt`) at the limit, so a run never hangs the caller. libngspice keeps one global
circuit state, so runs are serialised by a lock.

Errors are `SpiceError` (or a subclass), carrying the tail of ngspice's own output.

No file path crosses into ngspice here: a deck goes in as text and the transient comes back
through the shared library's memory, so the caller's working folder never matters. The one
path that does, ``$NGSPICE_LIBRARY_PATH``, is checked and made absolute by `hw.tools`.
The `ngspice` command-line program (for plain `.cir` files) is `hw.tools.find_tool("ngspice")`.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hw.tools import ToolUnavailable, library_path


class SpiceError(RuntimeError):
    """ngspice could not run a deck to the end: bad netlist, no convergence, or a crash."""


class SpiceUnavailable(SpiceError, ToolUnavailable):
    """PySpice or libngspice is not installed where this process can load it."""


class SpiceTimeout(SpiceError):
    """A run went past its wall-clock limit and was halted."""


INSTALL_HINT = ("install ngspice's shared library (Debian/Ubuntu: apt-get install libngspice0-dev; "
                "or point NGSPICE_LIBRARY_PATH at libngspice.so) and PySpice "
                "(pip install PySpice==1.5)")

# ngspice messages that mean the analysis did not complete, whatever the return code said.
_FATAL = re.compile(
    r"timestep too small|singular matrix|no convergence|simulation\(s\) aborted|"
    r"unknown (model|subckt|device)|could not find|error",
    re.IGNORECASE,
)
_HALT_GRACE_S = 5.0  # how long to wait for ngspice to acknowledge bg_halt
_POLL_S = 0.005

_LOCK = threading.Lock()
_BG_EVENTS = threading.Condition()  # signalled by the background-thread callback
_INSTANCE: Any = None
_UNAVAILABLE: SpiceUnavailable | None = None


def _ngspice() -> Any:
    """The process-wide NgSpiceShared instance, loaded on first use."""
    global _INSTANCE, _UNAVAILABLE
    if _INSTANCE is not None:
        return _INSTANCE
    if _UNAVAILABLE is not None:  # PySpice cannot retry a failed load (its cffi cdef is global)
        raise _UNAVAILABLE
    try:
        import logging

        from PySpice.Spice.NgSpice.Shared import NgSpiceShared, ffi
    except ImportError as exc:
        _UNAVAILABLE = SpiceUnavailable(f"PySpice is not importable ({exc}); {INSTALL_HINT}")
        raise _UNAVAILABLE from exc

    class _Shared(NgSpiceShared):  # type: ignore[misc, valid-type]
        @staticmethod
        def _background_thread_running(is_running: bool, ngspice_id: int, user_data: Any) -> int:
            # ngspice calls this when its background thread starts and when it ends (ngspice 39
            # passes False, then True: the flag's sense is inverted against its header, so
            # only the count is used). PySpice 1.5's version returns None, which cffi reports.
            self = ffi.from_handle(user_data)
            with _BG_EVENTS:
                self._un0_bg_calls = getattr(self, "_un0_bg_calls", 0) + 1
                _BG_EVENTS.notify_all()
            return 0

    # PySpice logs every ngspice stderr line as an error; we report them ourselves.
    logging.getLogger("PySpice").setLevel(logging.CRITICAL)
    try:  # PySpice read $NGSPICE_LIBRARY_PATH as given; load it checked and absolute
        override = library_path("libngspice", error=SpiceUnavailable)
    except SpiceUnavailable as exc:
        _UNAVAILABLE = exc
        raise
    if override is not None:
        _Shared.LIBRARY_PATH = override.replace("{", "{{").replace("}", "}}")  # PySpice .format()s it
    try:
        _INSTANCE = _Shared.new_instance()
    except OSError as exc:  # dlopen failed
        _UNAVAILABLE = SpiceUnavailable(f"libngspice could not be loaded ({exc}); {INSTALL_HINT}")
        raise _UNAVAILABLE from exc
    # BSIM4 (level 54: the ptm45 cards) evaluates its devices in OpenMP threads (ngspice's
    # num_threads, default 2) and libgomp spin-waits between parallel regions: on a 2-core
    # machine shared with other jobs single transients ran 10-100x slower at random (a 0.3 s
    # ring run once took 81 s). One thread runs a BSIM4 ring in a steady ~0.45 s; the wait
    # policy cannot be set here (the libgomp in use is torch's once torch is imported), the
    # count can. Level-1 cards do not use OpenMP. Global to libngspice in this process.
    _INSTANCE.exec_command("set num_threads=1")
    return _INSTANCE


def unavailable_reason() -> str | None:
    """None when ngspice-shared runs here; otherwise why not (for pytest skips)."""
    try:
        _ngspice()
    except SpiceUnavailable as exc:
        return str(exc)
    return None


def ngspice_version() -> str:
    """The loaded libngspice's version, e.g. '39' (for the calibration record)."""
    with _LOCK:
        ng = _ngspice()
        return str(ng.ngspice_version)


@dataclass(frozen=True)
class Transient:
    """One transient run: time axis, node voltages (V) and voltage-source branch currents (A).

    Branch currents follow SPICE's sign: positive into the source's + terminal, so a supply
    that delivers current reads negative.
    """

    time_s: np.ndarray
    voltages: dict[str, np.ndarray] = field(repr=False)
    currents: dict[str, np.ndarray] = field(repr=False)
    log: str = field(repr=False, default="")

    def v(self, node: str) -> np.ndarray:
        try:
            return self.voltages[node.lower()]
        except KeyError:
            raise KeyError(f"no node {node!r}; nodes are {sorted(self.voltages)}") from None

    def i(self, source: str) -> np.ndarray:
        try:
            return self.currents[source.lower()]
        except KeyError:
            raise KeyError(f"no source {source!r}; sources are {sorted(self.currents)}") from None


def _tail(lines: list[str], n: int = 12) -> str:
    return "\n".join(line.rstrip() for line in lines[-n:])


def _fatal_lines(lines: list[str]) -> list[str]:
    # gmin/source stepping prints "Warning: singular matrix" and may still converge: not fatal.
    return [ln for ln in lines if _FATAL.search(ln) and "warning" not in ln.lower()]


def _halt(lib: Any) -> bool:
    """Ask the background run to stop; True once it has (within the grace time)."""
    lib.ngSpice_Command(b"bg_halt")
    t_halt = time.monotonic()
    while lib.ngSpice_running():
        if time.monotonic() - t_halt > _HALT_GRACE_S:
            return False
        time.sleep(_POLL_S)
    return True


def _drain(ng: Any, timeout_s: float) -> None:
    """Wait (up to `timeout_s`) for the ended run's last background-thread callback. A run
    may be seen to end ("not running") before that callback comes; arriving after the next
    run reset the count, it would read as the next run's start, and that run would stop
    polling before its thread began (seen once in CI as "ngspice produced no transient")."""
    with _BG_EVENTS:
        _BG_EVENTS.wait_for(lambda: ng._un0_bg_calls >= 2, timeout=timeout_s)


def transient(deck_text: str, *, stop_s: float, timeout_s: float = 30.0, seed: int | None = None) -> Transient:
    """Load `deck_text` (from `cells.deck`) into libngspice, run it, return the transient.

    `seed` is handed to ngspice's `setseed` before the deck is loaded. With libngspice 39
    this was measured NOT to make `trnoise` draws repeatable (same seed, different noise),
    so noise runs are repeatable in their statistics only.

    Raises SpiceUnavailable, SpiceError (netlist rejected, analysis aborted, or the run ended
    before `stop_s`), or SpiceTimeout after `timeout_s` seconds of wall time.
    """
    if not timeout_s > 0:
        raise ValueError(f"timeout_s must be > 0, not {timeout_s!r}")
    with _LOCK:
        ng = _ngspice()
        lib = ng._ngspice_shared  # the cffi handle: PySpice's wrappers misread async stderr
        if lib.ngSpice_running() and not _halt(lib):
            raise SpiceError("a previous ngspice run is still running and did not halt")
        lib.ngSpice_Command(b"destroy all")
        lib.ngSpice_Command(b"remcirc")
        ng.clear_output()
        if seed is not None:  # trnoise draws its values when the deck is parsed: seed first
            lib.ngSpice_Command(f"setseed {int(seed)}".encode())
        try:
            ng.load_circuit(deck_text)
        except Exception as exc:  # NgSpiceCircuitError / NameError from PySpice
            raise SpiceError(f"ngspice rejected the netlist:\n{_tail(ng._stdout + ng._stderr)}") from exc
        bad = _fatal_lines(ng._stdout + ng._stderr)
        if bad:
            raise SpiceError("ngspice rejected the netlist:\n" + "\n".join(bad[-8:]))

        t_start = time.monotonic()
        ng._un0_bg_calls = 0
        if lib.ngSpice_Command(b"bg_run") != 0:
            raise SpiceError(f"ngspice refused bg_run:\n{_tail(ng._stdout + ng._stderr)}")
        while True:
            # Done once the thread has both started and ended (two callbacks), or has
            # started and is no longer running. Never poll "running" before it started.
            calls = ng._un0_bg_calls
            if calls >= 2 or (calls >= 1 and not lib.ngSpice_running()):
                break
            if time.monotonic() - t_start > timeout_s:
                if not _halt(lib):
                    raise SpiceTimeout(f"ngspice ran past its {timeout_s:g} s limit and did not halt "
                                       f"within {_HALT_GRACE_S:g} s; libngspice is stuck in this process")
                _drain(ng, 0.5)
                raise SpiceTimeout(f"ngspice ran past its {timeout_s:g} s limit and was halted")
            with _BG_EVENTS:
                _BG_EVENTS.wait(_POLL_S)
        _drain(ng, _HALT_GRACE_S)

        log_lines = ng._stdout + ng._stderr
        bad = _fatal_lines(log_lines)
        if bad:
            raise SpiceError("ngspice did not finish the transient:\n" + "\n".join(bad[-8:]))
        plot_name = ng.last_plot
        if not plot_name.startswith("tran"):
            raise SpiceError(f"ngspice produced no transient (last plot {plot_name!r}):\n{_tail(log_lines)}")
        plot = ng.plot(None, plot_name)
        voltages: dict[str, np.ndarray] = {}
        currents: dict[str, np.ndarray] = {}
        time_s = None
        for name, vec in plot.items():
            data = np.real(vec._data).astype(np.float64)
            key = name.lower()
            if key == "time":
                time_s = data
            elif key.endswith("#branch"):
                currents[key[: -len("#branch")]] = data
            else:
                voltages[key[2:-1] if key.startswith("v(") else key] = data
        if time_s is None or time_s.size < 2:
            raise SpiceError(f"transient has no time axis:\n{_tail(log_lines)}")
        if time_s[-1] < stop_s * (1 - 1e-6):
            raise SpiceError(f"transient stopped at {time_s[-1]:.4g} s before stop {stop_s:.4g} s:\n"
                             f"{_tail(log_lines)}")
        return Transient(time_s=time_s, voltages=voltages, currents=currents, log="\n".join(log_lines))
