"""un0hw: the front door — command line and end-to-end runs over the rooms."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("un0hw")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "unknown"
