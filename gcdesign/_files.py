"""File helpers shared by profiles, designs and traces: versions, atomic writes, strict reads.

Reads turn every failure into :class:`~gcdesign._validate.InputError` with one
line: an operating-system refusal is a :class:`~gcdesign._validate.FileSystemError`
naming the path and the reason; bytes that are not UTF-8 text or not JSON say so.

Writes are atomic. The data goes to a temporary file beside the target,
named ``.<target name>.<pid>-<8 hex>.gctmp`` (the target part shortened so the
name fits the directory's name limit), is flushed and fsynced, then renamed
over the target. On any failure, SIGINT or SIGTERM the temporary file is
removed and the old target is untouched. A writer killed by SIGKILL cannot
clean up; the next write to the same target removes such leftovers: files
matching that pattern for this target whose process no longer runs.
"""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import signal
import threading
import warnings
from contextlib import contextmanager
from pathlib import Path

from ._validate import FileSystemError, InputError, path_arg

TEMP_SUFFIX = ".gctmp"
_NAME_MAX_FALLBACK = 255


def check_version(version, current: str, what: str, *, oldest_major: int | None = None) -> int:
    """Refuse an unknown major version; warn on a higher minor version; return the major.

    Majors from `oldest_major` (default: the current one) up to the current one are read.
    """
    if not isinstance(version, str) or not re.fullmatch(r"[0-9]{1,6}\.[0-9]{1,6}", version):
        raise InputError(f"{what}: `version` {_short(version)} is not of the form 'major.minor'.")
    major, minor = (int(x) for x in version.split("."))
    cur_major, cur_minor = (int(x) for x in current.split("."))
    if not (cur_major if oldest_major is None else oldest_major) <= major <= cur_major:
        raise InputError(
            f"{what}: format `version` {version} is not supported (this gcdesign reads {current})."
        )
    if major == cur_major and minor > cur_minor:
        warnings.warn(
            f"{what}: format version {version} is newer than {current}; unknown fields are ignored.",
            stacklevel=3,
        )
    return major


def newer_minor(version: str, current: str) -> bool:
    """True for a version (already checked) of the current major with a higher minor."""
    (major, minor), (cur_major, cur_minor) = (tuple(int(x) for x in v.split(".")) for v in (version, current))
    return major == cur_major and minor > cur_minor


def check_fields(data: dict, allowed, what: str, *, newer: bool = False) -> None:
    """Refuse a field not in `allowed` (a typo such as ``partiton``), unless the file is newer."""
    if newer:
        return
    unknown = [key for key in data if key not in allowed]
    if unknown:
        raise InputError(
            f"{what}: unknown field `{_short(unknown[0], 40)[1:-1]}`; allowed: {', '.join(allowed)}."
        )


def _short(value, limit: int = 60) -> str:
    from ._validate import show_value

    return show_value(value, limit)


# ------------------------------------------------------------------ reading
def _reason(exc: OSError) -> str:
    name = errno.errorcode.get(exc.errno or 0, "")
    text = exc.strerror or str(exc) or type(exc).__name__
    return f"{text} ({name})" if name else text


def _read_error(path, what: str, exc: OSError) -> InputError:
    """A missing file is bad input (the name is wrong); any other OSError is the OS refusing."""
    message = f"{what} file {str(path)!r}: cannot read it: {_reason(exc)}."
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return InputError(message)
    return FileSystemError(message)


def read_bytes(path, *, what: str) -> bytes:
    """The bytes of `path`; an OS refusal becomes FileSystemError naming the path and the reason."""
    path = path_arg(f"{what} path", path)
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise _read_error(path, what, exc) from None


def check_readable(path, *, what: str) -> None:
    """Open `path` for reading and close it: an OS refusal becomes FileSystemError."""
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise _read_error(path, what, exc) from None


def read_npy(path, *, what: str):
    """The one array of a ``.npy`` file, read without pickle; anything else is named for what it is.

    An empty file, an ``.npz`` archive (a zip), a text file or any other bytes that do not start
    with the ``.npy`` magic are refused in one line naming the path; an object array (it would
    need pickle) too. The array's values are the caller's to check.
    """
    import io

    import numpy as np

    data = read_bytes(path, what=what)
    name = f"`{what}` file {str(path)!r}"
    if not data:
        raise InputError(f"{name} is empty; expected a .npy array (numpy.save).")
    if data.startswith(b"PK\x03\x04"):
        raise InputError(
            f"{name} is an .npz archive (a zip), not a .npy array; save one array with numpy.save."
        )
    if not data.startswith(b"\x93NUMPY"):
        kind = "text" if _looks_like_text(data) else "binary data"
        raise InputError(f"{name} is {kind}, not a .npy array (it does not start with the .npy magic).")
    try:
        return np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
    except Exception as exc:  # numpy's header parser raises ValueError, SyntaxError, TokenError...
        reason = " ".join(str(exc).split()) or type(exc).__name__
        if isinstance(exc, ValueError) and "pickle" in reason:
            raise InputError(f"{name} holds an object array, which needs pickle; never loaded.") from None
        raise InputError(f"{name} is not a valid .npy array ({reason[:200]}).") from None


def _looks_like_text(data: bytes) -> bool:
    try:
        data[:4096].decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start > 4090  # a character cut at the end of the window
    return b"\x00" not in data[:4096]


def read_text(path, *, what: str) -> str:
    """The UTF-8 text of `path` (a binary file, e.g. a PNG, is refused in one line)."""
    data = read_bytes(path, what=what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{what} file {str(path)!r} is not UTF-8 text (byte {exc.start}); is it a binary file?"
        ) from None


class _BigFloat(float):
    """A JSON number beyond the float range: inf that still shows the text of the file."""

    def __new__(cls, text: str):
        obj = super().__new__(cls, text)
        obj.text = text
        return obj

    def __repr__(self) -> str:
        return self.text


def _parse_float(text: str) -> float:
    value = float(text)
    return _BigFloat(text) if value in (float("inf"), float("-inf")) else value


def _reject_constant(name):
    raise json.JSONDecodeError(f"{name} is not allowed", name, 0)


def _unique_keys(pairs):
    data = {}
    for key, value in pairs:
        if key in data:
            raise InputError(f"field `{_short(key, 40)[1:-1]}` appears twice in one object.")
        data[key] = value
    return data


def parse_json(text: str, *, what: str):
    """Strict JSON: no NaN / Infinity, no repeated field, a depth and integer-size limit."""
    try:
        return json.loads(
            text, parse_constant=_reject_constant, parse_float=_parse_float, object_pairs_hook=_unique_keys
        )
    except json.JSONDecodeError as exc:
        raise InputError(f"{what} is not valid JSON: {exc.msg} (line {exc.lineno}).") from None
    except RecursionError:
        raise InputError(f"{what} is not usable JSON: it is nested too deeply.") from None
    except InputError as exc:
        raise InputError(f"{what}: {exc}") from None
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise InputError(f"{what} is not usable JSON: {_short(str(exc), 80)[1:-1]}.") from None


def read_json(path, *, what: str):
    """Read a JSON file strictly (see :func:`parse_json`)."""
    return parse_json(read_text(path, what=what), what=f"{what} file {str(path)!r}")


# ------------------------------------------------------------------ writing
def _name_max(directory: Path) -> int:
    try:
        return int(os.pathconf(directory, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return _NAME_MAX_FALLBACK


def _temp_stem(name: str, limit: int) -> str:
    """The target part of the temporary name, shortened (by bytes) so the whole name fits `limit`."""
    room = limit - len(f"..{2**22}-{'0' * 8}{TEMP_SUFFIX}".encode())
    encoded = name.encode(errors="surrogateescape")
    if len(encoded) <= room:
        return name
    return encoded[: max(room, 1)].decode(errors="ignore") or "x"


def _temp_pattern(stem: str) -> re.Pattern:
    return re.compile(rf"\.{re.escape(stem)}\.(\d+)-[0-9a-f]{{8}}{re.escape(TEMP_SUFFIX)}")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True  # maybe another thread of this process, still writing
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # someone else's live process: not ours to judge
    return True


def _orphans(directory, pattern: re.Pattern) -> list[os.DirEntry]:
    """The entries of `directory` named by `pattern` whose process (its group 1) has exited."""
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return []
    return [
        entry
        for entry in entries
        if (match := pattern.fullmatch(entry.name)) and not _pid_alive(int(match.group(1)))
    ]


def remove_stale_temporaries(path) -> list[Path]:
    """Remove the temporary files an interrupted write to `path` left behind (see module docstring).

    Only names of the form ``.<target>.<pid>-<8 hex>.gctmp`` for this target whose
    process has exited are removed; every other file is left alone.
    """
    path = Path(path)
    directory = path.parent
    pattern = _temp_pattern(_temp_stem(path.name, _name_max(directory)))
    removed = []
    for entry in _orphans(directory, pattern):
        try:
            if entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            pass
    return removed


class _Terminated(BaseException):
    """Raised inside a write when SIGTERM arrives, so the temporary file is removed."""


@contextmanager
def _sigterm_cleans_up():
    """Turn SIGTERM into an exception inside the block (main thread only), then re-deliver it.

    The previous handler is restored on the way out; if it lets the process live
    on, the interrupted write is reported as a FileSystemError.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise _Terminated

    try:
        previous = signal.getsignal(signal.SIGTERM)
        if previous in (signal.SIG_IGN, None):  # ignored, or installed from C: leave it alone
            yield
            return
        signal.signal(signal.SIGTERM, handler)
    except (ValueError, OSError):  # no signals here
        yield
        return
    try:
        yield
    except _Terminated:
        signal.signal(signal.SIGTERM, previous)
        signal.raise_signal(signal.SIGTERM)  # what would have happened without us
        raise FileSystemError("the write was interrupted by SIGTERM; the old file is unchanged.") from None
    finally:
        signal.signal(signal.SIGTERM, previous)


def atomic_write(path, write) -> Path:
    """Write through a temporary file and a rename; ``write(fh)`` gets a binary file object."""
    path = path_arg("path", path)
    directory = path.parent
    if not directory.is_dir():
        raise FileSystemError(f"output directory {str(directory)!r} does not exist.")
    if path.is_dir():
        raise FileSystemError(f"cannot write {str(path)!r}: it is a directory.")
    stem = _temp_stem(path.name, _name_max(directory))
    remove_stale_temporaries(path)
    tmp = directory / f".{stem}.{os.getpid()}-{secrets.token_hex(4)}{TEMP_SUFFIX}"
    created = False
    with _sigterm_cleans_up():
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
            created = True
            with os.fdopen(fd, "wb") as fh:
                write(fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
            created = False
        except OSError as exc:
            _discard(tmp, created)
            raise FileSystemError(
                f"cannot write {str(path)!r}: {_reason(exc)}; the old file is unchanged."
            ) from None
        except BaseException:
            _discard(tmp, created)
            raise
    return path


def _discard(tmp: Path, created: bool) -> None:
    if created:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def atomic_write_text(path, text: str) -> Path:
    """Write `text` (UTF-8) to `path` through a temporary file and a rename."""
    return atomic_write(path, lambda fh: fh.write(text.encode()))


# ------------------------------------------------------------------ a run's set of files
STAGE_SUFFIX = ".gcstage"
MANIFEST_FORMAT, MANIFEST_VERSION = "gcdesign.manifest", "1.0"


def _stage_pattern(name: str) -> re.Pattern:
    return re.compile(rf"\.{re.escape(name)}\.(\d+)-[0-9a-f]{{8}}{re.escape(STAGE_SUFFIX)}")


def remove_stale_stages(out, name: str) -> list[Path]:
    """Remove the staging folders that killed runs of `name` left in `out` (their process is gone)."""
    import shutil

    removed = []
    for entry in _orphans(out, _stage_pattern(name)):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(Path(entry.path))
    return removed


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def staged_run(out, name: str):
    """A run that writes a set of files into `out` all or nothing, then a manifest last.

    Yields a private staging folder ``out/.<name>.<pid>-<8 hex>.gcstage`` for the run to
    write into; error messages that name a staged file name its place in `out`. When the
    block ends normally nothing is in `out` yet: call :func:`publish` with the staged files.
    On any exception (an OS refusal, SIGINT, SIGTERM) the staging folder is removed and
    `out` is as it was. A run killed by SIGKILL leaves its staging folder, which the next
    run of `name` into `out` removes; the earlier files are untouched either way.
    """
    import shutil

    out = Path(out)
    remove_stale_stages(out, name)
    stage = out / f".{name}.{os.getpid()}-{secrets.token_hex(4)}{STAGE_SUFFIX}"
    try:
        stage.mkdir()
    except OSError as exc:
        raise FileSystemError(f"cannot write into {str(out)!r}: {_reason(exc)}.") from None
    with _sigterm_cleans_up():  # SIGTERM: the staging folder goes, then the signal has its effect
        try:
            yield stage
        except FileSystemError as exc:
            shutil.rmtree(stage, ignore_errors=True)
            text = str(exc).replace(str(stage), str(out)).replace("the old file is", "the earlier files are")
            raise FileSystemError(text) from None
        except OSError as exc:
            shutil.rmtree(stage, ignore_errors=True)
            where = str(exc.filename).replace(str(stage), str(out)) if exc.filename else str(out)
            raise FileSystemError(
                f"cannot write {where!r}: {_reason(exc)}; the earlier files are unchanged."
            ) from None
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise


def publish(stage: Path, files, manifest: Path, settings: dict) -> list[Path]:
    """Move the staged `files` into the parent of `stage`, then write `manifest` last.

    Every file is complete and fsynced before the first one moves; each move is an atomic
    rename, so every file in the folder is always whole (the earlier version or the new
    one). The manifest (JSON: ``format``, ``version``, ``settings``, ``files`` with each
    file's name, size and SHA-256) names exactly the files of the run that wrote it; a file
    whose hash differs belongs to another run. Returns the published paths, manifest last.
    """
    import shutil

    stage = Path(stage)
    out = stage.parent
    staged = [Path(f) for f in files]
    entries = []
    for path in staged:
        with open(path, "rb") as fh:
            os.fsync(fh.fileno())
        entries.append({"name": path.name, "bytes": path.stat().st_size, "sha256": _sha256(path)})
    published = []
    with _sigterm_cleans_up():
        for path in staged:
            os.replace(path, out / path.name)
            published.append(out / path.name)
        try:
            fd = os.open(out, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:
            pass  # some file systems cannot fsync a directory
        shutil.rmtree(stage, ignore_errors=True)
        text = json.dumps(
            {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "settings": settings, "files": entries},
            indent=1,
        )
        published.append(atomic_write_text(manifest, text + "\n"))
    return published


def check_manifest(manifest) -> list[Path]:
    """The files a manifest names, after checking that each is there with its recorded hash."""
    manifest = Path(manifest)
    data = read_json(manifest, what="manifest")
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise InputError(f"{str(manifest)!r} is not a gcdesign manifest.")
    paths = []
    for entry in data["files"]:
        path = manifest.parent / entry["name"]
        if not path.is_file() or _sha256(path) != entry["sha256"]:
            raise InputError(f"{str(path)!r} is not the file {str(manifest)!r} records.")
        paths.append(path)
    return paths
