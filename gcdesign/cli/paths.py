"""The output-path layer of the CLI: every path a command writes is checked here first.

:func:`output_file` and :func:`output_dir` are argparse ``type=`` callables:
a path that cannot be written is refused while the command line is read, so
nothing is computed and nothing is written (exit code 2). They refuse an
empty name, a directory given as a file (or a file given as a directory), a
missing or non-directory parent, a directory that is not writable, a kernel
pseudo-file system (``/proc``, ``/sys``, ``/dev``, ...), a name longer than
the file system allows and a target that exists but is not a regular file.
:func:`refuse_overwriting_inputs` then refuses an output that is the same
file as one of the command's inputs (``os.path.samefile``: links too).

What the operating system refuses later, during the write itself (a full
disk, a read-only mount, a file-size limit, ...), is reported by the CLI's
error handler with exit code 3; the atomic writes of :mod:`gcdesign._files`
leave the old file intact.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import stat

from .errors import ArgumentValueError, UsageError

#: File systems that hold kernel objects, not files a command could write.
PSEUDO_FILE_SYSTEMS = frozenset(
    {
        "autofs",
        "binfmt_misc",
        "bpf",
        "cgroup",
        "cgroup2",
        "configfs",
        "debugfs",
        "devpts",
        "devtmpfs",
        "efivarfs",
        "fusectl",
        "mqueue",
        "nsfs",
        "proc",
        "pstore",
        "securityfs",
        "sysfs",
        "tracefs",
    }
)


class InputPath(str):
    """A path a command reads (marks the value for :func:`refuse_overwriting_inputs`)."""


class OutputPath(str):
    """A path a command writes, checked by :func:`output_file` or :func:`output_dir`."""


def input_file(text: str) -> InputPath:
    """argparse ``type=`` of a file a command reads (the file's own loader validates it)."""
    return InputPath(text)


def _refuse(message: str) -> ArgumentValueError:
    return ArgumentValueError(message)


def _stat(name: str, shown: str, path: str):
    """``os.stat(path)``, None when it does not exist; other refusals name the option."""
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise _refuse(f"`{name}` {shown!r}: cannot check {path!r}: {exc.strerror}.") from None


@functools.lru_cache(maxsize=1)
def _mounts() -> tuple[tuple[str, str], ...]:
    """(mount point, file-system type) pairs of this process, longest mount point first."""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:  # not Linux: no pseudo-file-system check
        return ()
    mounts = []
    for line in lines:
        fields = line.split()
        if "-" not in fields[6:]:
            continue
        sep = fields.index("-", 6)
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), fields[4])  # " " is \040
        mounts.append((point, fields[sep + 1]))
    return tuple(sorted(mounts, key=lambda m: len(m[0]), reverse=True))


def file_system_type(directory: str) -> str | None:
    """The type of the file system holding `directory` (Linux), or None when unknown."""
    real = os.path.realpath(directory)
    for point, fstype in _mounts():
        if real == point or real.startswith(point.rstrip("/") + "/"):
            return fstype
    return None


def _name_max(directory: str) -> int:
    try:
        return os.pathconf(directory, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def _check_directory(name: str, shown: str, directory: str) -> None:
    """`directory` exists, is a directory, holds real files and is writable."""
    info = _stat(name, shown, directory)
    if info is None:
        raise _refuse(f"`{name}` {shown!r}: directory {directory!r} does not exist.")
    if not stat.S_ISDIR(info.st_mode):
        raise _refuse(f"`{name}` {shown!r}: {directory!r} is not a directory.")
    fstype = file_system_type(directory)
    if fstype in PSEUDO_FILE_SYSTEMS:
        raise _refuse(
            f"`{name}` {shown!r}: {directory!r} is on the kernel's {fstype} file system, "
            "which holds no files; choose another directory."
        )
    if not os.access(directory, os.W_OK | os.X_OK):
        raise _refuse(
            f"`{name}` {shown!r}: directory {directory!r} is not writable "
            "(no permission, or a read-only file system)."
        )


def _check_name(name: str, shown: str, directory: str, filename: str) -> None:
    limit = _name_max(directory)
    length = len(os.fsencode(filename))
    if length > limit:
        raise _refuse(
            f"`{name}`: the name {filename[:20]!r}... is {length} bytes long; "
            f"the file system of {directory!r} allows at most {limit}."
        )


def output_file(name: str, *, suffixes: tuple[str, ...] | None = None):
    """argparse ``type=`` for a file a command writes: refused now if it cannot be written.

    Parameters
    ----------
    name : str
        The option as messages name it (``"output"`` for ``-o/--output``).
    suffixes : tuple of str, optional
        The allowed suffixes (lower case), when the suffix chooses the format.
    """

    def check(text: str) -> OutputPath:
        if not text:
            raise _refuse(f"`{name}` must name a file, got ''.")
        if text.endswith((os.sep, "/")):
            raise _refuse(f"`{name}` {text!r} names a directory; give a file name.")
        directory, filename = os.path.split(text)
        directory = directory or "."
        _check_directory(name, text, directory)
        _check_name(name, text, directory, filename)
        info = _stat(name, text, text)
        if info is not None and stat.S_ISDIR(info.st_mode):
            raise _refuse(f"`{name}` {text!r} is a directory; give a file name.")
        if suffixes is not None and os.path.splitext(text)[1].lower() not in suffixes:
            allowed = " or ".join(suffixes)
            raise _refuse(f"`{name}` {text!r} must end in {allowed} (the suffix chooses the format).")
        if info is not None and not stat.S_ISREG(info.st_mode):
            raise _refuse(f"`{name}` {text!r} exists and is not a regular file; give a file name.")
        return OutputPath(text)

    check.__name__ = "file"
    return check


def output_dir(name: str):
    """argparse ``type=`` for a directory a command writes into (created if missing)."""

    def check(text: str) -> OutputPath:
        if not text:
            raise _refuse(f"`{name}` must name a directory, got ''.")
        info = _stat(name, text, text)
        if info is not None:
            if not stat.S_ISDIR(info.st_mode):
                raise _refuse(f"`{name}` {text!r} is a file, not a directory.")
            _check_directory(name, text, text)
            return OutputPath(text)
        missing = []
        existing = os.path.normpath(text)
        while _stat(name, text, existing) is None:
            existing, part = os.path.split(existing)
            missing.append(part)
            existing = existing or "."
        _check_directory(name, text, existing)
        for part in missing:
            _check_name(name, text, existing, part)
        return OutputPath(text)

    check.__name__ = "directory"
    return check


def refuse_overwriting_inputs(args: argparse.Namespace) -> None:
    """Refuse an output that is the same file as an input of the command (links included)."""
    values = vars(args)
    inputs = {k: v for k, v in values.items() if isinstance(v, InputPath)}
    for out_name, out in values.items():
        if not isinstance(out, OutputPath):
            continue
        for in_name, source in inputs.items():
            try:
                same = os.path.samefile(out, source)
            except OSError:  # one of them does not exist: nothing to overwrite
                continue
            if same:
                raise UsageError(
                    f"`{out_name}` {str(out)!r} is the same file as the input `{in_name}` "
                    f"{str(source)!r}; writing it would destroy the input. Choose another file."
                )


__all__ = [
    "PSEUDO_FILE_SYSTEMS",
    "InputPath",
    "OutputPath",
    "file_system_type",
    "input_file",
    "output_dir",
    "output_file",
    "refuse_overwriting_inputs",
]
