"""Argument checks shared by the public functions (validate once, at the boundary)."""

from __future__ import annotations

import numbers

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


def _show(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def positive_int(name: str, value, *, minimum: int = 1) -> int:
    """Return `value` as an int >= `minimum`, or raise InputError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, numbers.Real) and float(value).is_integer():
            value = int(value)
        else:
            raise InputError(f"`{name}` must be an integer >= {minimum}, got {_show(value)}.")
    value = int(value)
    if value < minimum:
        raise InputError(f"`{name}` must be an integer >= {minimum}, got {value}.")
    return value


def probabilities(name: str, value) -> np.ndarray:
    """A 1-D float64 array of probabilities in [0, 1] with at least one element."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(
            f"`{name}` must be a one-dimensional array of numbers in [0, 1], got {_show(value)}."
        ) from None
    if arr.ndim != 1 or arr.size == 0:
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


def choice(name: str, value, allowed) -> str:
    """`value` must be one of `allowed` (strings); the message lists them."""
    if value not in allowed:
        raise InputError(f"Unknown {name} {value!r}; choose one of: {', '.join(sorted(map(str, allowed)))}.")
    return value
