"""The `un0hw` command line: one subcommand per job, errors as one line and exit code 2.

The commands live in the modules of `COMMANDS`, in the order of `un0hw --help`; each
defines ``register(subparsers)`` (its parser, its ``func`` and the paths it reads and
writes, see `un0hw.options.paths`) and ``ERRORS``, the exception types reported as one
line with exit code 2. Before a command runs, every declared path is checked; when it
fails with one of those errors, the outputs it created are removed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from un0hw import __version__, cmd_cells, cmd_compile, cmd_demo, cmd_energy, cmd_fid, cmd_finetune, cmd_model
from un0hw import cmd_distill, cmd_emit, cmd_explore, cmd_fidelity, cmd_sweep, cmd_train, options

#: every command module, in the order `un0hw --help` lists them
COMMANDS = (cmd_model, cmd_train, cmd_fid, cmd_fidelity, cmd_cells, cmd_compile, cmd_emit, cmd_demo, cmd_energy, cmd_finetune, cmd_distill, cmd_sweep, cmd_explore)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="un0hw",
        description="Hardware co-design simulator and compiler for Un-0, the coupled-oscillator image generator.",
    )
    parser.add_argument("--version", action="version", version=f"un0hw {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    return parser


def errors() -> tuple[type[BaseException], ...]:
    """The exception types every command reports as one line with exit code 2."""
    from analysis.inception import InceptionWeightsError
    from models import CheckpointError, ConfigError
    from models.data import DataError
    from models.train import TrainError
    from oscsim import OscsimError

    found = (*options.ERRORS, CheckpointError, ConfigError, OscsimError, DataError, TrainError, InceptionWeightsError)
    return found + tuple(e for module in COMMANDS for e in module.ERRORS)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    caught = errors()
    created: list = []
    try:
        created = options.prepare(args)
        return args.func(args)
    except caught as exc:
        options.cleanup(created)
        print(f"un0hw: error: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("un0hw: interrupted", file=sys.stderr)
        return 130
