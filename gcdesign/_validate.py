"""Argument checks shared by the public functions (validate once, at the boundary).

Every check raises :class:`InputError` with one line naming the field, the
value (its ``repr``, so ``5e-324`` is never shown as 0) and what is allowed.
Numbers are taken only from real numbers: booleans, strings, complex values
and containers are refused rather than converted.
"""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np


class InputError(ValueError):
    """Bad input: the message names the field, the value and what is allowed."""


class FileSystemError(InputError):
    """The operating system refused a read or a write (disk full, read-only, permission, ...).

    The message is one line naming the path and the reason; the CLI exits with code 3.
    """


def read_only(array) -> np.ndarray:
    """`array` as an ndarray that cannot be written (a copy if it was writable and shared).

    Frozen values (Design, Scheme, Allocation, Structure) hold their arrays through
    this, so ``design.bits[0] = 99`` raises instead of silently breaking (U).
    """
    arr = (
        np.array(array, copy=True)
        if isinstance(array, np.ndarray) and array.flags.writeable
        else (np.asarray(array))
    )
    if arr.flags.writeable:
        arr.setflags(write=False)
    return arr


def read_only_sparse(matrix):
    """A canonical CSR copy of `matrix` whose data and index arrays are read-only."""
    import scipy.sparse as sp

    out = sp.csr_array(matrix, copy=True)
    out.sum_duplicates()  # canonical: later scipy calls never sort or merge in place
    for arr in (out.data, out.indices, out.indptr):
        arr.setflags(write=False)
    return out


INT64_MAX = 2**63 - 1
#: The longest a round of a cluster run may wait, deadline x time unit, in seconds (about 11.6
#: days): beyond it an emulated delay overflows the clock (``deadline = 1e308``).
MAX_WAIT_SECONDS = 10**6
#: The most bits per coordinate a message carries (gcdesign.quantization.MAX_BITS).
MAX_BITS = 32


def show_value(value, limit: int = 60) -> str:
    try:
        text = repr(value)
    except Exception:  # a hostile __repr__ must not hide the real message
        text = f"<{type(value).__name__}>"
    text = " ".join(text.split())  # messages stay on one line
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _scalar(value):
    """A 0-d array becomes its element; anything else is returned as is."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value.item()
    return value


def _range_text(low, high, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low!r}, {high!r}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low!r}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high!r}"
    return "finite"


def _in_range(x, low, high, low_open: bool, high_open: bool, finite: bool = True):
    """Boolean (array) of the entries inside the range (NaN never is; inf only if not `finite`)."""
    ok = np.isfinite(x) if finite else ~np.isnan(x)
    if low is not None:
        ok &= (x > low) if low_open else (x >= low)
    if high is not None:
        ok &= (x < high) if high_open else (x <= high)
    return ok


def real(name: str, value, *, low=None, high=None, low_open: bool = False, high_open: bool = False) -> float:
    """`value` as a finite float inside the given range, or raise InputError naming `name`.

    Examples
    --------
    >>> real("deadline", 1.5, low=0, low_open=True)
    1.5
    >>> real("deadline", True)
    Traceback (most recent call last):
    ...
    gcdesign._validate.InputError: `deadline` must be a finite real number, got True.
    """
    value = _scalar(value)
    if not _is_real(value):
        raise InputError(f"`{name}` must be a finite real number, got {show_value(value)}.")
    try:
        x = float(value)
    except OverflowError:
        raise InputError(f"`{name}` = {show_value(value)} is too large for a float.") from None
    if not math.isfinite(x):
        raise InputError(f"`{name}` must be a finite number, got {show_value(value)}.")
    if not _in_range(x, low, high, low_open, high_open):
        raise InputError(
            f"`{name}` must be a finite number {_range_text(low, high, low_open, high_open)}, got {x!r}."
        )
    return x


def positive_int(name: str, value, *, minimum: int = 1, maximum: int = INT64_MAX) -> int:
    """Return `value` as an int in [`minimum`, `maximum`], or raise InputError naming `name`.

    Integral floats (``4.0``) are accepted; booleans, strings and fractions are not.
    """
    value = _scalar(value)
    allowed = f"an integer in [{minimum}, {maximum}]" if maximum != INT64_MAX else f"an integer >= {minimum}"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise InputError(f"`{name}` must be {allowed}, got {show_value(value)}.")
    if not isinstance(value, numbers.Integral):
        if not (math.isfinite(float(value)) and float(value).is_integer()):
            raise InputError(f"`{name}` must be {allowed}, got {show_value(value)}.")
    value = int(value)
    if not minimum <= value <= maximum:
        raise InputError(f"`{name}` must be {allowed}, got {show_value(value)}.")
    return value


def check_bucket_size(bucket_size, name: str = "bucket_size") -> int | None:
    """`bucket_size` must be None (one bucket) or an integer >= 1 (the bucketed quantizer's beta)."""
    return None if bucket_size is None else positive_int(name, bucket_size)


def check_budget(budget, n: int, b_min: int, b_max: int, *, allow_idle: bool = False) -> int:
    """`budget` must be an integer with N b_min <= B <= N b_max (0 lower end if idle allowed)."""
    if isinstance(budget, bool) or not (
        isinstance(budget, (int, np.integer)) or (isinstance(budget, float) and budget.is_integer())
    ):
        raise InputError(f"`budget` must be an integer number of bits, got {budget!r}.")
    budget = int(budget)
    low = (b_min if not allow_idle else 0) * n
    if allow_idle and budget < b_min:
        raise InputError(
            f"`budget` = {budget} is infeasible: at least one worker needs b_min = {b_min} bits."
        )
    if not low <= budget <= n * b_max:
        raise InputError(
            f"`budget` = {budget} is infeasible for N = {n} workers with bits in "
            f"[{b_min}, {b_max}]: need {low} <= B <= {n * b_max}."
        )
    return budget


def check_bit_range(b_min, b_max) -> tuple[int, int]:
    """`b_min` and `b_max` must be integers with 2 <= b_min <= b_max <= 32 (bits per coordinate).

    32 is the widest code a message carries (at 32 bits a coordinate travels as a float32):
    a design with more bits could not be sent, and a calibrated model has no value there.
    """
    b_min = positive_int("b_min", b_min, minimum=2)
    b_max = positive_int("b_max", b_max, minimum=2)
    if b_min > b_max:
        raise InputError(f"`b_min` = {b_min} must not exceed `b_max` = {b_max}.")
    if b_max > MAX_BITS:
        raise InputError(
            f"`b_max` = {b_max} is too large: at most {MAX_BITS} bits per coordinate, the widest "
            "code a message carries."
        )
    return b_min, b_max


def boolean(name: str, value) -> bool:
    """`value` must be True or False (not a string such as ``"false"``, not a number)."""
    value = _scalar(value)
    if not isinstance(value, (bool, np.bool_)):
        raise InputError(f"`{name}` must be true or false, got {show_value(value)}.")
    return bool(value)


def _position(name: str, shape, flat_index: int) -> str:
    idx = np.unravel_index(flat_index, shape) if len(shape) > 1 else (flat_index,)
    return f"{name}[{', '.join(str(int(i)) for i in idx)}]"


_PLAIN_NUMBERS = (int, float, np.integer, np.floating)


def _numeric(name: str, value, ndim: int | None, what: str) -> np.ndarray:
    """`value` as an int or float array; refuses bool, str, complex, object entries by position.

    A list is checked element by element (numpy would turn ``True`` into 1 and
    ``[0.1, "x"]`` into strings); an ndarray by its dtype.
    """
    if isinstance(value, (str, bytes, dict)) or np.isscalar(value) and ndim not in (None, 0):
        raise InputError(f"`{name}` must be a {ndim}-D array of {what}, got {show_value(value)}.")
    try:
        if isinstance(value, np.ndarray):
            arr = value
        else:
            arr = np.asarray(value, dtype=object)
            if arr.size and arr.dtype == object and isinstance(arr.reshape(-1)[0], (list, tuple)):
                raise ValueError  # a ragged list of lists
    except (ValueError, TypeError, OverflowError, RecursionError):
        raise InputError(
            f"`{name}` must be a rectangular array of {what}, got {show_value(value)}."
        ) from None
    if ndim is not None and arr.ndim != ndim:
        raise InputError(f"`{name}` must be a {ndim}-D array of {what}, got shape {arr.shape}.")
    if arr.dtype.kind in "iuf":
        return arr
    flat = arr.reshape(-1)
    kinds = set(map(type, flat))
    if not all(issubclass(t, _PLAIN_NUMBERS) and not issubclass(t, (bool, np.bool_)) for t in kinds):
        for i, item in enumerate(flat):
            item = item.item() if isinstance(item, np.generic) else item
            if not _is_real(item) or isinstance(item, numbers.Complex) and not isinstance(item, numbers.Real):
                raise InputError(
                    f"`{_position(name, arr.shape, i)}` must be a real number, got {show_value(item)}."
                )
    if kinds <= {int} or all(issubclass(t, (int, np.integer)) for t in kinds):
        try:
            return flat.astype(np.int64).reshape(arr.shape)
        except OverflowError:
            pass  # an int beyond 64 bits: as float below (or named as too large)
    try:
        return flat.astype(np.float64).reshape(arr.shape)
    except OverflowError:
        for i, item in enumerate(flat):
            try:
                float(item)
            except OverflowError:
                raise InputError(
                    f"`{_position(name, arr.shape, i)}` = {show_value(item)} is too large for a float."
                ) from None
        raise  # pragma: no cover - astype overflowed but no element does


def real_array(
    name: str,
    value,
    *,
    ndim: int | None = 1,
    low=None,
    high=None,
    low_open: bool = False,
    high_open: bool = False,
    min_size: int = 0,
    allow_nan: bool = False,
    finite: bool = True,
) -> np.ndarray:
    """`value` as a float64 array of finite numbers in range; the first bad entry is named by position.

    Examples
    --------
    >>> real_array("rates", [1.0, -2.0], low=0, low_open=True)
    Traceback (most recent call last):
    ...
    gcdesign._validate.InputError: `rates[1]` = -2.0 must be a finite number > 0.
    """
    arr = _numeric(name, value, ndim, "numbers")
    try:
        arr = arr.astype(np.float64)
    except OverflowError:  # pragma: no cover - numeric dtypes always fit
        raise InputError(f"`{name}` has entries too large for a float.") from None
    if arr.size < min_size:
        raise InputError(f"`{name}` must have at least {min_size} element(s), got shape {arr.shape}.")
    ok = _in_range(arr, low, high, low_open, high_open, finite)
    if allow_nan:
        ok |= np.isnan(arr)
    if not ok.all():
        i = int(np.flatnonzero(~ok.reshape(-1))[0])
        kind = "a finite number" if finite else "a number"
        where = "" if low is None and high is None else f" {_range_text(low, high, low_open, high_open)}"
        raise InputError(
            f"`{_position(name, arr.shape, i)}` = {float(arr.reshape(-1)[i])!r} must be {kind}{where}."
        )
    return arr


def int_array(name: str, value, *, ndim: int = 1, minimum=None, maximum=None) -> np.ndarray:
    """`value` as an int64 array (integral floats accepted); the first bad entry is named by position."""
    arr = _numeric(name, value, ndim, "integers")
    if arr.dtype.kind in "iu":
        if arr.dtype.kind == "u" and arr.size and arr.max() > INT64_MAX:
            i = int(np.argmax(arr.reshape(-1)))
            raise InputError(f"`{_position(name, arr.shape, i)}` is too large for a 64-bit integer.")
        out = arr.astype(np.int64)
    else:
        flat = arr.astype(np.float64).reshape(-1)
        bad = ~(np.isfinite(flat) & (flat == np.rint(flat)) & (np.abs(flat) <= 2.0**62))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(f"`{_position(name, arr.shape, i)}` must be an integer, got {float(flat[i])!r}.")
        out = flat.astype(np.int64).reshape(arr.shape)
    flat = out.reshape(-1)
    bad = np.zeros(flat.shape, dtype=bool)
    if minimum is not None:
        bad |= flat < minimum
    if maximum is not None:
        bad |= flat > maximum
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        allowed = _range_text(minimum, maximum, False, False)
        raise InputError(f"`{_position(name, out.shape, i)}` = {int(flat[i])} must be an integer {allowed}.")
    return out


def probabilities(name: str, value) -> np.ndarray:
    """A 1-D float64 array of probabilities in [0, 1] with at least one element."""
    arr = real_array(name, value, finite=False, allow_nan=True)
    if arr.size == 0:
        raise InputError(
            f"`{name}` must be a one-dimensional array with at least one element "
            f"(N >= 1 workers), got shape {arr.shape}."
        )
    bad = ~((arr >= 0.0) & (arr <= 1.0))  # catches NaN too
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"`{name}[{i}]` = {float(arr[i])!r} is not a probability: every entry must lie in [0, 1]."
        )
    return arr


def names(name: str, value, count: int) -> tuple[str, ...]:
    """`count` unique strings (a list or array of them, never one string split into letters)."""
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__iter__"):
        raise InputError(f"`{name}` must be a list of {count} strings, got {show_value(value)}.")
    items = list(value)
    if len(items) != count:
        raise InputError(f"`{name}` has {len(items)} entries but there are {count} workers.")
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise InputError(f"`{name}[{i}]` must be a string, got {show_value(item)}.")
        if item in seen:
            raise InputError(
                f"`{name}[{i}]` = {show_value(item)} repeats `{name}[{seen[item]}]`; names must be unique."
            )
        seen[item] = i
    return tuple(str(item) for item in items)


def choice(name: str, value, allowed) -> str:
    """`value` must be one of `allowed` (strings); the message lists them."""
    try:
        ok = value in allowed
    except TypeError:  # unhashable
        ok = False
    if not ok or not isinstance(value, str) and all(isinstance(a, str) for a in allowed):
        raise InputError(
            f"Unknown {name} {show_value(value)}; choose one of: {', '.join(sorted(map(str, allowed)))}."
        )
    return value


def generator(rng, name: str = "rng") -> np.random.Generator:
    """`rng` (None, an integer seed >= 0 or a numpy Generator) as a Generator.

    Booleans, strings, negative or non-integral seeds are refused in one line (numpy would take
    ``True`` as the seed 1, and fail on ``"abc"`` or ``-1`` with its own messages).

    Examples
    --------
    >>> generator(True)
    Traceback (most recent call last):
    ...
    gcdesign._validate.InputError: `rng` must be None, an integer seed >= 0 or a numpy Generator, got True.
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, (bool, np.bool_)) or not isinstance(rng, numbers.Integral) or rng < 0:
        raise InputError(
            f"`{name}` must be None, an integer seed >= 0 or a numpy Generator, got {show_value(rng)}."
        )
    return np.random.default_rng(int(rng))


def path_arg(name: str, value):
    """`value` (a str or an os.PathLike of str) as a Path: bytes and NUL characters are refused."""
    import os
    from pathlib import Path

    text = value
    if isinstance(value, os.PathLike):
        text = os.fspath(value)
    if not isinstance(text, str):
        raise InputError(f"`{name}` must be a path (a str or a pathlib.Path), got {show_value(value)}.")
    if "\x00" in text:
        raise InputError(f"`{name}` {show_value(text)} holds a NUL character, which no path can.")
    if not text:
        raise InputError(f"`{name}` must be a path, got an empty string.")
    return Path(text)


def options_dict(name: str, value) -> dict:
    """`value` (None or a mapping with string keys) as a new dict."""
    from collections.abc import Mapping

    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise InputError(f"`{name}` must be a dict of named options, got {show_value(value)}.")
    return dict(value)


class _Unset:
    """The default of a deprecated keyword: tells "not given" from any value a caller may pass."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET = _Unset()


def renamed_keyword(function: str, old: str, old_value, new: str, new_value, default):
    """The value of keyword `new`, also accepted under its deprecated name `old` for one release.

    `old_value` is :data:`UNSET` when the caller did not pass `old`; then `new_value` is
    the answer. Passing `old` warns (:class:`DeprecationWarning`, naming `function` and
    both names) and gives `old_value`; passing `old` and also `new` (a value other than
    its `default`) is refused.

    Examples
    --------
    >>> renamed_keyword("f", "kappa", UNSET, "quantization", "tight", "raw")
    'tight'
    """
    if old_value is UNSET:
        return new_value
    if new_value is not default:
        raise InputError(f"{function}: give `{new}` only; `{old}` is its deprecated name.")
    warnings.warn(
        f"{function}: `{old}=` is deprecated and will be removed in the next release; use `{new}=`.",
        DeprecationWarning,
        stacklevel=3,
    )
    return old_value
