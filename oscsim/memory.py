"""The machine's memory, asked before a large allocation rather than after it fails."""

from __future__ import annotations

import os

from oscsim.errors import OscsimError


class MemoryEstimateError(OscsimError):
    """A request whose estimated memory exceeds what this machine has available."""


def available_memory_bytes() -> int:
    """Memory available to a new allocation: Linux's MemAvailable, else physical memory."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 62  # unknown: do not refuse


def gib(nbytes: float) -> str:
    return f"{nbytes / 2**30:,.3g} GiB"


def require_memory(nbytes: float, what: str, *, available: int | None = None) -> None:
    """Refuse `what` (names the option or sizes that ask for it) if its estimated `nbytes`
    exceed the available memory; the message carries both figures."""
    have = available_memory_bytes() if available is None else available
    if nbytes > have:
        raise MemoryEstimateError(f"{what}: needs an estimated {gib(nbytes)} of memory; this machine has "
                                  f"{gib(have)} available")
