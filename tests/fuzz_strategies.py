"""Hypothesis strategies for the fuzz suites (tests/test_fuzz_*.py): malformed versions of good files.

Each strategy starts from a good object and breaks it a little: a field replaced
by an arbitrary JSON value, removed, an unknown field added, an array shortened
or extended, then (for text) a few bytes inserted, deleted or replaced. Small
examples keep the suite fast; ``GCDESIGN_FUZZ_EXAMPLES`` raises the count.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st

from gcdesign import InputError

EXAMPLES = int(os.environ.get("GCDESIGN_FUZZ_EXAMPLES", "1000"))
settings.register_profile(
    "gcdesign-fuzz",
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=EXAMPLES <= 1000,  # the default run is the same every time; a long run explores
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
FUZZ = settings.get_profile("gcdesign-fuzz")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from([0, 1, -1, 2, 10**400, 2**63, 2**64, 0.5, 1.0, -0.0, 5e-324, 1e308])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(["", "0.5", "1", "false", "true", "nan", "abc", "w0", "\u00e9", "gcdesign.design"])
)
json_values = json_scalars | st.lists(json_scalars, max_size=3) | st.sampled_from([[], {}, [[0.5]], {"a": 1}])


def _paths(obj, prefix=()):
    """Every (path) into nested dicts and lists, the root excluded."""
    out = []
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for key, value in items:
        out.append((*prefix, key))
        if isinstance(value, (dict, list)) and len(prefix) < 3:
            out.extend(_paths(value, (*prefix, key))[:40])
    return out


def _parent(obj, path):
    for key in path[:-1]:
        obj = obj[key]
    return obj


@st.composite
def mutated(draw, good: dict, max_edits: int = 3):
    """A deep copy of `good` with 0 to `max_edits` structural edits."""
    data = copy.deepcopy(good)
    for _ in range(draw(st.integers(0, max_edits))):
        paths = _paths(data)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = _parent(data, path)
        action = draw(st.sampled_from(["replace", "replace", "delete", "add", "resize"]))
        if action == "replace":
            parent[path[-1]] = copy.deepcopy(draw(json_values))
        elif action == "delete":
            del parent[path[-1]]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.sampled_from(["partiton", "extra", "Dim", ""]))] = copy.deepcopy(draw(json_values))
        elif action == "resize" and isinstance(parent[path[-1]], list):
            values = parent[path[-1]]
            if values and draw(st.booleans()):
                del values[draw(st.integers(0, len(values) - 1)) :]
            else:
                values.append(
                    copy.deepcopy(draw(json_values) if draw(st.booleans()) else (values[-1] if values else 0))
                )
    return data


@st.composite
def damaged_bytes(draw, good: bytes, max_edits: int = 3):
    """`good` with a few byte edits, or (rarely) something else entirely."""
    kind = draw(st.sampled_from(["edit"] * 8 + ["binary", "png", "truncate"]))
    if kind == "binary":
        return draw(st.binary(max_size=64))
    if kind == "png":
        return PNG_MAGIC + good[: draw(st.integers(0, 32))]
    if kind == "truncate":
        return good[: draw(st.integers(0, len(good)))]
    data = bytearray(good)
    for _ in range(draw(st.integers(0, max_edits))):
        pos = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        chunk = draw(
            st.binary(min_size=1, max_size=3)
            | st.sampled_from([b"-", b"0", b"e9", b'"', b"[", b"]", b"\xff"])
        )
        if op == "insert":
            data[pos:pos] = chunk
        elif op == "delete":
            del data[pos : pos + len(chunk)]
        else:
            data[pos : pos + len(chunk)] = chunk
    return bytes(data)


@contextlib.contextmanager
def scratch_directory(tmp_path_factory, name: str):
    """A directory for the fuzzed files: in memory (/dev/shm) where there is one, else pytest's tmp.

    Thousands of small writes and reads: on a busy disk each costs milliseconds,
    in tmpfs microseconds. The medium is not under test; the loaders are.
    """
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        directory = Path(tempfile.mkdtemp(prefix=f"gcdesign-{name}-", dir=shm))
        try:
            yield directory
        finally:
            shutil.rmtree(directory, ignore_errors=True)
    else:
        yield tmp_path_factory.mktemp(name)


def json_text(data) -> bytes:
    """JSON bytes of `data`, NaN and Infinity included (the loaders must refuse them)."""
    return json.dumps(data, allow_nan=True).encode()


FILE_LEVEL = (
    "is not valid JSON",
    "is not usable JSON",
    "is not UTF-8 text",
    "is not a valid npz file",
    "holds a Python object array",
    "appears twice",
    "traces file",
    "missing array",
    "must not hold",
    "metadata must be an object",
    "expected a JSON object",
    "Unknown ",  # a choice: "Unknown options.construction 'x'; choose one of: hub, segment."
    # the invariants Design.validate names (design.py)
    "unbiasedness (U) fails",
    "weights must be nonnegative",
    "idle worker",
    "bits sum to",
    "every worker has p = 1",
)


def check_refusal(exc: Exception) -> str:
    """The contract of every refusal: an InputError, one line, naming a field or the file."""
    assert isinstance(exc, InputError), f"{type(exc).__name__} escaped: {exc}"
    message = str(exc)
    assert message and "\n" not in message and "\r" not in message, repr(message)
    assert "`" in message or any(phrase in message for phrase in FILE_LEVEL), message
    assert "np.float64(" not in message and "np.int64(" not in message, message
    return message


def attempt(call):
    """``call()``'s result, or None after checking its refusal; RuntimeWarnings are errors.

    Records a hypothesis event (loaded / refused) so ``--hypothesis-show-statistics``
    shows how the examples split.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # nothing may print before the message
        warnings.filterwarnings("ignore", ".*format version .* is newer", UserWarning)
        try:
            result = call()
        except Exception as exc:  # noqa: BLE001 - the property: only InputError may escape
            check_refusal(exc)
            event("refused")
            return None
    event("loaded")
    return result
