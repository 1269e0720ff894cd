"""The command line's shared options: the one place where what a user typed is checked.

Every subcommand declares the paths it reads and writes (`paths`); `prepare` checks them
all before the command computes anything — inputs exist and are regular files or folders
as declared, outputs can be written (no file where a folder is wanted, no file above the
path, a writable place) — and `cleanup` removes the outputs a refused or failed command
created, so a corrected rerun finds nothing in its way. Values (devices, counts, class
lists, sizes) have one parser each here; the messages name the option as typed.
"""

from __future__ import annotations

import argparse
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from oscsim.fileio import PathCheckError, readable_dir, readable_file, writable_dir, writable_file


class CliError(ValueError):
    """A bad option value: names the option, what arrived and what is valid."""


# --- paths ---------------------------------------------------------------------------------
KINDS = ("file", "dir", "file-or-dir", "out-file", "out-dir", "out-checkpoint")


@dataclass(frozen=True)
class PathOption:
    """One path a command takes: `dest` in the parsed namespace, its `kind`, and the
    option as the user types it (for messages). `resumable` outputs are kept when the
    command fails (their state is what a rerun resumes)."""

    dest: str
    kind: str
    flag: str
    resumable: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"PathOption kind must be one of {KINDS}, not {self.kind!r}")


def paths(parser: argparse.ArgumentParser, *options: PathOption) -> None:
    """Declare the paths of `parser`'s command (checked by `prepare` before it runs)."""
    parser.set_defaults(path_options=options)


def checkpoint_pair(path: Path) -> tuple[Path, Path]:
    """The two files `models.save` writes for the output name `path`."""
    stem = path.with_suffix("") if path.suffix in (".safetensors", ".json") else path
    return stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")


def _targets(opt: PathOption, path: Path) -> list[Path]:
    return list(checkpoint_pair(path)) if opt.kind == "out-checkpoint" else [path]


def prepare(args: argparse.Namespace) -> list[Path]:
    """Check every declared path of `args`; return the outputs that do not exist yet (the
    ones `cleanup` may remove). Raises `PathCheckError` naming the option."""
    created: list[Path] = []
    for opt in getattr(args, "path_options", ()):
        value = getattr(args, opt.dest, None)
        if value is None:
            continue
        path = Path(value)
        if opt.kind == "file":
            readable_file(path, opt.flag)
        elif opt.kind == "dir":
            readable_dir(path, opt.flag)
        elif opt.kind == "file-or-dir":
            if path.is_dir():
                readable_dir(path, opt.flag)
            elif path.exists() or path.is_symlink():
                readable_file(path, opt.flag)
            # absent: the reader decides (a checkpoint may be named without its suffix)
        else:
            for target in _targets(opt, path):
                (writable_dir if opt.kind == "out-dir" else writable_file)(target, opt.flag)
                if not target.exists() and not opt.resumable:
                    created.append(target)
    return created


def cleanup(created: list[Path]) -> None:
    """Remove the outputs a refused or failed command created (never anything that was
    there before it started)."""
    for path in created:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists() or path.is_symlink():
            path.unlink(missing_ok=True)


# --- values --------------------------------------------------------------------------------
def device(name: str, flag: str = "--device") -> torch.device:
    """--device → a torch.device that exists here (cpu, cuda, cuda:i with i < the count)."""
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError):
        raise CliError(f"{flag} must be cpu or cuda[:i], not {name!r}") from None
    if dev.type == "cpu":
        return dev
    if dev.type != "cuda":
        raise CliError(f"{flag} must be cpu or cuda[:i], not {name!r}")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        raise CliError(f"{flag} {name}: no CUDA device is available here (use {flag} cpu)")
    if dev.index is not None and dev.index >= count:
        raise CliError(f"{flag} {name}: this machine has CUDA devices 0..{count - 1}")
    return dev


def positive(flag: str, value: int) -> int:
    if value < 1:
        raise CliError(f"{flag} must be >= 1, not {value}")
    return value


def classes(text: str | None, num_classes: int, n: int) -> torch.Tensor:
    """--classes '0,3,7' (or 'all') → labels, each class repeated n times."""
    return torch.tensor(chosen_classes(text, num_classes), dtype=torch.int64).repeat_interleave(n)


def chosen_classes(text: str | None, num_classes: int) -> list[int]:
    """--classes '0,3,7' (or 'all') → the classes, checked against the model's."""
    if text is None or text == "all":
        chosen = list(range(num_classes))
    else:
        try:
            chosen = [int(c) for c in text.split(",") if c.strip()]
        except ValueError:
            raise CliError(f"--classes must be comma-separated integers or 'all', not {text!r}") from None
        bad = [c for c in chosen if not 0 <= c < num_classes]
        if bad or not chosen:
            raise CliError(f"--classes {text!r}: this model has classes 0..{num_classes - 1}")
    return chosen


def published(size: str):
    """--size → its Un0Config, or the one-line error listing the sizes."""
    import models

    if size not in models.PUBLISHED:
        raise CliError(f"--size must be one of {', '.join(models.PUBLISHED)}; got {size!r}")
    return models.PUBLISHED[size]


def check_run_memory(config, samples: int, batch: int, *, images: bool) -> None:
    """Refuse a sample/simulate run whose estimated memory exceeds this machine's: all
    initial and final phases (and images) are kept, and one batch's integration buffers and
    decoder activations are live at a time. The message names the options that size it."""
    from oscsim.memory import require_memory

    batch = min(batch, samples)
    width = config.n + config.n_cond
    kept = samples * (width * 4 * 2 + 8)  # phases at 0 and T, the label
    live = batch * width * 4 * 12
    if images:
        c, h, w = config.image_shape
        kept += samples * c * h * w * 4 * 2
        live += batch * max(config.decoder_widths) * h * w * 4 * 3
    require_memory(kept + live, f"-n/--classes ({samples:,} samples) with --batch-size {batch:,} on {config.name}")


# --- the model a command runs --------------------------------------------------------------
def add_checkpoint(p: argparse.ArgumentParser, *, ir: bool = True, device_option: bool = True) -> None:
    """The positional checkpoint (default: the shipped model), --key-map and --device."""
    from models.checkpoint import SHIPPED

    p.add_argument("checkpoint", type=Path, nargs="?", default=SHIPPED,
                   help="X.safetensors (+ X.json), a release .pt, any file with --key-map"
                        + (", or a compiled IR folder" if ir else "")
                        + " (default: the shipped trained digits model)")
    p.add_argument("--key-map", type=Path, default=None, help="JSON key-mapping file for other tensor names")
    if device_option:
        p.add_argument("--device", default="cpu", help="cpu or cuda[:i] (default: cpu)")


CHECKPOINT_PATHS = (PathOption("checkpoint", "file-or-dir", "CHECKPOINT"), PathOption("key_map", "file", "--key-map"))


def load_model(args: argparse.Namespace):
    """The model of `args.checkpoint`: a checkpoint file, or a compiled IR folder (then
    the model runs the array's dequantised codes and the IR's decoder)."""
    import models

    dev = device(getattr(args, "device", "cpu"))
    if Path(args.checkpoint).is_dir():
        import compiler

        if getattr(args, "key_map", None) is not None:
            raise CliError(f"--key-map applies to checkpoint files; {args.checkpoint} is a compiled IR folder")
        return compiler.load(args.checkpoint).to_model(device=dev)
    return models.load(args.checkpoint, key_map=getattr(args, "key_map", None), device=dev)


ERRORS = (CliError, PathCheckError)
