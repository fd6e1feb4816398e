"""Command-line interface: ``gcdesign COMMAND ...`` (also ``python -m gcdesign``).

Results go to stdout (a table for people, ``--json`` for machines), progress,
notes and warnings to stderr. Exit codes (:data:`EXIT_CODES`): 0 success,
1 internal error (a bug), 2 bad input (one line naming the field), 3 the
operating system refused a read, a write or memory (one line naming the path
and the reason), 130 interrupted.

Layout: :mod:`.args` is the argument layer (the number type every numeric
option uses, the shared profile and budget options), :mod:`.paths` the
output-path layer, :mod:`.output` JSON and words; one module per command
group. Every command is one :class:`Command` entry of :data:`COMMANDS`:
adding a command is adding an entry (see docs/cli.md).
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import re
import sys
import traceback
import warnings
from dataclasses import dataclass

from .._validate import FileSystemError, InputError


@dataclass(frozen=True)
class Command:
    """One subcommand: its name, its line in ``gcdesign --help`` and where its code lives.

    `arguments` and `run` are ``"module:function"`` references, the module
    relative to this package (``".design"``) or absolute
    (``"gcdesign.cli.design"``). ``arguments(parser)`` adds the command's options
    to its parser; ``run(args)`` does the work and returns the exit code (0).
    """

    name: str
    help: str
    arguments: str
    run: str

    def load(self, field: str):
        """The function that `field` ("arguments" or "run") refers to."""
        module, _, function = getattr(self, field).partition(":")
        return getattr(importlib.import_module(module, __name__), function)


#: Every command, in ``gcdesign --help`` order. Add a command here, nowhere else.
COMMANDS: tuple[Command, ...] = (
    Command(
        "design",
        "design the optimal code for a cluster and export it",
        ".design:design_arguments",
        ".design:run_design",
    ),
    Command(
        "allocate",
        "choose bits per worker; --compare runs every allocator",
        ".design:allocate_arguments",
        ".design:run_allocate",
    ),
    Command(
        "examples",
        "list the bundled example profiles",
        ".profile:examples_arguments",
        ".profile:run_examples",
    ),
    Command(
        "profile",
        "estimate a profile from observed round times (CSV)",
        ".profile:profile_arguments",
        ".profile:run_profile",
    ),
    Command(
        "show", "validate a design file and print its summary", ".design:show_arguments", ".design:run_show"
    ),
    Command(
        "latency",
        "expected round time and speedup of s-straggler tolerance",
        ".latency:latency_arguments",
        ".latency:run_latency",
    ),
    Command(
        "study",
        "run a reproducible study (figures, CSV, summary)",
        ".study:study_arguments",
        ".study:run_study",
    ),
    Command(
        "evaluate",
        "exact and Monte-Carlo error of a design (and of baselines at the same budget)",
        ".evaluate:evaluate_arguments",
        ".evaluate:run_evaluate",
    ),
    Command(
        "cluster",
        "coded training on digits on a Dask cluster with real deadlines, against wait-for-all",
        ".cluster:cluster_arguments",
        ".cluster:run_cluster",
    ),
)

#: Exit codes and their meaning (also in ``gcdesign --help`` and docs/cli.md).
EXIT_CODES = {
    0: "success",
    1: "internal error (a bug: the traceback is printed; please report it)",
    2: "bad input (one line naming the option or field, the value and what is allowed)",
    3: "the operating system refused a read, a write or memory: disk full, read-only,\n"
    "       permission, file too large, name too long... (one line naming the path and the reason)",
    130: "interrupted",
}
EXIT_INTERNAL, EXIT_INPUT, EXIT_SYSTEM, EXIT_INTERRUPTED = 1, 2, 3, 130

# argparse reads only "-1" and "-1.5" as values, not "-1e3" or "-inf"
_NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$|^-(inf|infinity|nan)$", re.IGNORECASE)
# argparse puts "argument --x: " before the message of a type; the house message names the option
_ARGUMENT_PREFIX = re.compile(r"^argument [^:]+: (?=`)")


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = _NEGATIVE_NUMBER

    def error(self, message):  # one line, exit code 2
        self.exit(EXIT_INPUT, f"gcdesign: error: {_ARGUMENT_PREFIX.sub('', message)}\n")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = _Parser(
        prog="gcdesign",
        description="Design unbiased, quantized gradient codes for heterogeneous clusters.",
        epilog="exit codes:\n" + "\n".join(f"  {code:<4} {text}" for code, text in EXIT_CODES.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"gcdesign {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for command in COMMANDS:
        p = sub.add_parser(command.name, help=command.help)
        command.load("arguments")(p)
        p.set_defaults(command_entry=command)
    return parser


def _refusal(exc: BaseException) -> str:
    """One line for an operating-system refusal."""
    if isinstance(exc, FileSystemError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return f"not enough memory: {exc}" if str(exc) else "not enough memory."
    code = f" ({errno.errorcode[exc.errno]})" if exc.errno in errno.errorcode else ""
    where = f"{_short(exc.filename)!r}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc}{code}."


def _short(path, limit: int = 100) -> str:
    text = os.fsdecode(path)
    return text if len(text) <= limit else f"{text[:60]}...{text[-30:]}"


def _print_warnings(caught) -> None:
    seen = set()
    for w in caught:
        text = str(w.message)
        if text not in seen:
            seen.add(text)
            print(f"gcdesign: warning: {text}", file=sys.stderr)


def main(argv=None) -> int:
    """Run ``gcdesign`` with `argv` (default ``sys.argv[1:]``) and return the exit code."""
    from .paths import refuse_overwriting_inputs

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return 0 if exc.code is None else int(exc.code)
    try:
        # warnings are held back: on success they follow the output, one line each; on an
        # error the error line is all there is (a RuntimeWarning would only precede it)
        with warnings.catch_warnings(record=True) as caught:
            refuse_overwriting_inputs(args)
            code = int(args.command_entry.load("run")(args) or 0)
    except BrokenPipeError:  # the reader went away (`gcdesign ... | head`)
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return 0
    except KeyboardInterrupt:
        print("gcdesign: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (FileSystemError, OSError, MemoryError) as exc:
        print(f"gcdesign: error: {_refusal(exc)}", file=sys.stderr)
        return EXIT_SYSTEM
    except InputError as exc:
        print(f"gcdesign: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except Exception as exc:
        traceback.print_exc()
        print(f"gcdesign: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_INTERNAL
    _print_warnings(caught)
    return code


__all__ = ["COMMANDS", "EXIT_CODES", "Command", "build_parser", "main"]
