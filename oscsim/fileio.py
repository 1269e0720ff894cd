"""Files every room writes and checks the same way: atomic writes (temporary name, then
rename) and content hashes."""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from oscsim.errors import OscsimError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it onto `path`.

    On an exception the temporary file is removed and `path` is left as it was.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600; a written file gets the usual mode
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a regular file's bytes, read in 1 MiB chunks (anything else is
    refused: a device or FIFO would be read for ever)."""
    readable_file(path)
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --- the one check of every path a user hands in ---------------------------------------------
class PathCheckError(OscsimError):
    """A path that cannot serve as what it was given for: one line, naming the option
    (or file role) as the user typed it, the path, and what is wrong."""


def _label(what: str, path: str | os.PathLike) -> str:
    return f"{what} {os.fspath(path)}" if what else os.fspath(path)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _mode(p: Path, what: str, path: str | os.PathLike, noun: str) -> int:
    """The file-type bits of an existing `p`, or one PathCheckError (absent, unreachable)."""
    try:
        return p.stat().st_mode
    except FileNotFoundError:
        raise PathCheckError(f"{_label(what, path)}: no such {noun}") from None
    except OSError as exc:
        raise PathCheckError(f"{_label(what, path)}: cannot be read ({exc.strerror})") from None


def readable_file(path: str | os.PathLike, what: str = "") -> Path:
    """`path` as a Path if it is an existing, readable regular file (a folder, FIFO, device
    or socket is refused before anything opens it: hashing /dev/zero would never end)."""
    p = Path(path)
    mode = _mode(p, what, path, "file")
    if not stat.S_ISREG(mode):
        raise PathCheckError(f"{_label(what, path)}: is {_kind(mode)}, not a regular file")
    if not os.access(p, os.R_OK):
        raise PathCheckError(f"{_label(what, path)}: is not readable (permission denied)")
    return p


def readable_dir(path: str | os.PathLike, what: str = "") -> Path:
    """`path` as a Path if it is an existing folder this process can list."""
    p = Path(path)
    mode = _mode(p, what, path, "folder")
    if not stat.S_ISDIR(mode):
        raise PathCheckError(f"{_label(what, path)}: is {'a file' if stat.S_ISREG(mode) else _kind(mode)}, not a folder")
    if not os.access(p, os.R_OK | os.X_OK):
        raise PathCheckError(f"{_label(what, path)}: is not readable (permission denied)")
    return p


def _probe_writable(folder: Path, what: str, path: str | os.PathLike) -> None:
    """Create and remove a file in `folder`: the only test that also holds for root on a
    read-only file system (os.access says yes to root)."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".un0hw-probe-", dir=folder)
    except OSError as exc:
        raise PathCheckError(f"{_label(what, path)}: cannot write in {folder} ({exc.strerror})") from None
    os.close(fd)
    os.unlink(probe)


def _existing_ancestor(p: Path, what: str, path: str | os.PathLike) -> Path:
    """The nearest folder above `p` that exists; a regular file on the way is an error."""
    a = p.absolute().parent
    while True:
        try:
            mode = a.stat().st_mode
        except FileNotFoundError:
            a = a.parent
            continue
        except NotADirectoryError:  # a component above is a file: find it
            a = a.parent
            continue
        except OSError as exc:
            raise PathCheckError(f"{_label(what, path)}: cannot reach {a} ({exc.strerror})") from None
        if not stat.S_ISDIR(mode):
            raise PathCheckError(f"{_label(what, path)}: {a} is a file, not a folder")
        return a


def writable_file(path: str | os.PathLike, what: str = "") -> Path:
    """`path` as a Path if a file can be written there: not a folder or special file, and
    every folder above it is a folder (or can be created) in which this process can write.
    Checked before any computing, so a bad path never costs a run."""
    p = Path(path)
    try:
        mode = p.stat().st_mode
    except FileNotFoundError:
        mode = None
    except NotADirectoryError:
        mode = None  # a component above is a file: reported below
    except OSError as exc:
        raise PathCheckError(f"{_label(what, path)}: cannot be written ({exc.strerror})") from None
    if mode is not None and not stat.S_ISREG(mode):
        raise PathCheckError(f"{_label(what, path)}: is {_kind(mode)}; give a file path")
    _probe_writable(_existing_ancestor(p, what, path), what, path)
    return p


def writable_dir(path: str | os.PathLike, what: str = "") -> Path:
    """`path` as a Path if it is a folder (or can be made one) in which this process can
    write: an existing file there, a file above it or a read-only place is refused."""
    p = Path(path)
    try:
        mode = p.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        mode = None
    except OSError as exc:
        raise PathCheckError(f"{_label(what, path)}: cannot be written ({exc.strerror})") from None
    if mode is not None:
        if not stat.S_ISDIR(mode):
            raise PathCheckError(f"{_label(what, path)}: exists and is {'a file' if stat.S_ISREG(mode) else _kind(mode)}, "
                                 "not a folder")
        _probe_writable(p, what, path)
    else:
        _probe_writable(_existing_ancestor(p, what, path), what, path)
    return p


def read_json(path: str | os.PathLike, what: str = "") -> object:
    """The JSON document in a readable regular file; PathCheckError names the file when it
    is not one, not UTF-8 or not valid JSON (each room wraps it in its own error type)."""
    import json

    p = readable_file(path, what)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PathCheckError(f"{_label(what, path)}: not valid JSON ({exc})") from None
    except OSError as exc:
        raise PathCheckError(f"{_label(what, path)}: cannot be read ({exc.strerror})") from None
