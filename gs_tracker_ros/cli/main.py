"""``gs-tracker`` command line: one entry point, one module per subcommand.

Each subcommand module exposes ``register(subparsers)`` which adds its parser and sets
``func`` (called with the parsed args, returns an exit code). User errors
(:class:`~gs_tracker_ros.core.errors.TrackerError`, an ``OSError`` such as a missing file or a
full disk) print one line to stderr and exit with status 2, without a traceback; an :class:`~gs_tracker_ros.core.errors.InputWarning`
(e.g. a truncated video) prints one ``warning:`` line and the command goes on.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

from ..core.errors import InputWarning, TrackerError
from ..core.output import os_error_text

# Subcommand modules, in the order they appear in ``--help``.
SUBCOMMANDS = ("demo", "track", "eval", "bench", "train", "fit_evidence", "export", "bag")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gs-tracker",
        description="Online point tracking: track, evaluate, benchmark, train, export, rosbag tools.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"gs_tracker_ros.cli.{name}_cmd")
        except ModuleNotFoundError as err:
            if err.name != f"gs_tracker_ros.cli.{name}_cmd":
                raise
            continue  # subcommand not built into this install
        module.register(sub)
    return parser


def _one_line_warnings(command: str) -> None:
    """Show :class:`InputWarning` as ``gs-tracker CMD: warning: ...`` (one line, no source line);
    other warnings keep Python's format."""

    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, InputWarning):
            print(f"gs-tracker {command}: warning: {message}", file=sys.stderr, flush=True)
        else:
            default(message, category, filename, lineno, file, line)

    warnings.showwarning = show


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _one_line_warnings(args.command)
    try:
        return int(args.func(args) or 0)
    except TrackerError as err:
        print(f"gs-tracker {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a file the command reads or writes outside the checks (disk full, ...)
        where = f"{err.filename}: " if err.filename else ""
        print(f"gs-tracker {args.command}: error: {where}{os_error_text(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:  # SIGINT (and SIGTERM where a command maps it), e.g. bag replay-eval
        detail = str(err) if str(err) and not str(err).startswith("signal ") else ""
        print(f"gs-tracker {args.command}: interrupted" + (f": {detail}" if detail else ""), file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
