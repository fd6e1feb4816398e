"""File helpers shared by profiles and designs: versions, atomic writes, strict JSON."""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path

from ._validate import InputError


def check_version(version, current: str, what: str, *, oldest_major: int | None = None) -> int:
    """Refuse an unknown major version; warn on a higher minor version; return the major.

    Majors from `oldest_major` (default: the current one) up to the current one are read.
    """
    try:
        major, minor = (int(x) for x in str(version).split("."))
    except ValueError:
        raise InputError(f"{what}: `version` {version!r} is not of the form 'major.minor'.") from None
    cur_major, cur_minor = (int(x) for x in current.split("."))
    if not (cur_major if oldest_major is None else oldest_major) <= major <= cur_major:
        raise InputError(
            f"{what}: format version {version} is not supported (this gcdesign reads {current})."
        )
    if major == cur_major and minor > cur_minor:
        warnings.warn(
            f"{what}: format version {version} is newer than {current}; unknown fields are ignored.",
            stacklevel=3,
        )
    return major


def _atomic_write(path, write) -> Path:
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise InputError(f"output directory {str(directory)!r} does not exist.")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; use what open() would
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path, text: str) -> Path:
    """Write `text` to `path` through a temporary file and a rename."""
    return _atomic_write(path, lambda fh: fh.write(text.encode()))


def read_json(path, *, what: str):
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputError(f"{what} file {str(path)!r}: {exc.strerror}.") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{what} file {str(path)!r} is not valid JSON: {exc.msg} (line {exc.lineno})."
        ) from None


def _reject_constant(name):
    raise json.JSONDecodeError(f"{name} is not allowed", name, 0)
