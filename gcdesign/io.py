"""Versioned export of designs: JSON and npz, atomic writes, validation on load.

JSON layout (``format`` = ``"gcdesign.design"``, ``version`` = "major.minor")::

    {"format", "version", "budget", "kappa", "bits", "decoding",
     "encoding": {"shape", "rows", "cols", "values"},
     "profile": {"straggler_probs", "dim", "partitions", "names"},
     "bound", "load", "components", "options"}

Floats are written with Python's shortest round-trip repr, so a save-load
round trip is bitwise exact. npz holds the same arrays plus the rest as one
JSON string (``metadata``) and is read with ``allow_pickle=False``. Loading
checks shapes, ranges, the bit budget, unbiasedness (U) to 1e-9, and that the
stored masses and bound are the ones the profile, bits and kappa imply.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ._files import _atomic_write, _reject_constant, atomic_write_text, check_version, read_json
from ._validate import InputError

DESIGN_FORMAT = "gcdesign.design"
DESIGN_VERSION = "2.0"  # 2.0: the quantization model and the bucket size (1.x files still load)
SUFFIXES = (".json", ".npz")


# ------------------------------------------------------------- to and from
def design_to_dict(design) -> dict:
    """The JSON-ready dict of a design (floats kept exact)."""
    coo = sp.coo_array(design.encoding)
    order = np.lexsort((coo.col, coo.row))
    prof = design.profile
    return {
        "format": DESIGN_FORMAT,
        "version": DESIGN_VERSION,
        "budget": int(design.budget),
        "kappa": float(design.kappa),
        "quantization": design.quantization.to_dict(),
        "bucket_size": design.bucket_size,
        "bits": design.bits.astype(int).tolist(),
        "decoding": design.decoding.tolist(),
        "encoding": {
            "shape": [int(s) for s in coo.shape],
            "rows": coo.row[order].astype(int).tolist(),
            "cols": coo.col[order].astype(int).tolist(),
            "values": coo.data[order].tolist(),
        },
        "profile": {
            "straggler_probs": prof.straggler_probs.tolist(),
            "dim": prof.dim,
            "partitions": prof.partitions,
            "names": list(prof.names),
        },
        "bound": float(design.bound),
        "load": float(design.load),
        "components": int(design.components),
        "options": dict(design.options),
    }


def _field(data: dict, name: str, what: str = "design"):
    if name not in data:
        raise InputError(f"{what}: missing field `{name}`.")
    return data[name]


def _array(value, name: str, dtype, ndim: int = 1) -> np.ndarray:
    try:
        arr = np.asarray(value)
        if dtype is np.int64:
            if arr.size and not (
                np.issubdtype(arr.dtype, np.integer)
                or (np.issubdtype(arr.dtype, np.floating) and np.all(arr == np.rint(arr)))
            ):
                raise ValueError
        arr = arr.astype(dtype)
    except (TypeError, ValueError):
        kind = "integers" if dtype is np.int64 else "numbers"
        raise InputError(f"design: `{name}` must be an array of {kind}.") from None
    if arr.ndim != ndim:
        raise InputError(f"design: `{name}` must be {ndim}-dimensional, got shape {arr.shape}.")
    if dtype is np.float64 and not np.all(np.isfinite(arr)):
        raise InputError(f"design: `{name}` must contain finite numbers only.")
    return arr


def design_from_dict(data) -> object:
    """Rebuild and fully validate a design from its dict (see the module docstring)."""
    from .allocation import check_bucket_size
    from .design import DesignError, assemble_design
    from .profile import ClusterProfile
    from .quantization import QuantizationModel, error_factors
    from .structure import optimal_structure

    if not isinstance(data, dict):
        raise InputError("design: expected a JSON object at the top level.")
    fmt = _field(data, "format")
    if fmt != DESIGN_FORMAT:
        raise InputError(f"design: `format` is {fmt!r}, expected {DESIGN_FORMAT!r}.")
    major = check_version(_field(data, "version"), DESIGN_VERSION, "design", oldest_major=1)
    prof = _field(data, "profile")
    if not isinstance(prof, dict):
        raise InputError("design: `profile` must be an object.")
    profile = ClusterProfile(
        _field(prof, "straggler_probs", "design profile"),
        dim=_field(prof, "dim", "design profile"),
        partitions=prof.get("partitions"),
        names=prof.get("names"),
    )
    n, k = profile.n_workers, profile.partitions
    enc = _field(data, "encoding")
    if not isinstance(enc, dict):
        raise InputError("design: `encoding` must be an object with shape, rows, cols, values.")
    shape = tuple(int(s) for s in _array(_field(enc, "shape", "design encoding"), "encoding.shape", np.int64))
    if shape != (n, k):
        raise InputError(f"design: `encoding.shape` is {list(shape)}, expected [{n}, {k}].")
    rows = _array(_field(enc, "rows", "design encoding"), "encoding.rows", np.int64)
    cols = _array(_field(enc, "cols", "design encoding"), "encoding.cols", np.int64)
    values = _array(_field(enc, "values", "design encoding"), "encoding.values", np.float64)
    if not rows.size == cols.size == values.size:
        raise InputError("design: `encoding` rows, cols and values must have the same length.")
    if rows.size and (rows.min() < 0 or rows.max() >= n or cols.min() < 0 or cols.max() >= k):
        raise InputError("design: `encoding` has an index outside its shape.")
    if np.unique(rows * k + cols).size != rows.size:
        raise InputError("design: `encoding` lists an entry twice.")
    encoding = sp.csr_array((values, (rows, cols)), shape=(n, k))
    bits = _array(_field(data, "bits"), "bits", np.int64)
    decoding = _array(_field(data, "decoding"), "decoding", np.float64)
    for name, arr in (("bits", bits), ("decoding", decoding)):
        if arr.shape != (n,):
            raise InputError(f"design: `{name}` has {arr.size} entries, expected N = {n}.")
    budget = _field(data, "budget")
    kappa = _field(data, "kappa")
    if isinstance(budget, bool) or not isinstance(budget, int):
        raise InputError(f"design: `budget` must be an integer, got {budget!r}.")
    if isinstance(kappa, bool) or not isinstance(kappa, (int, float)) or not kappa >= 0:
        raise InputError(f"design: `kappa` must be a number >= 0, got {kappa!r}.")
    options = data.get("options", {})
    if not isinstance(options, dict):
        raise InputError("design: `options` must be an object.")
    if np.any(bits < 0):
        raise InputError("design: `bits` must be >= 0.")
    kappa = float(kappa)
    if major == 1:  # version 1: delta = kappa * delta_raw(b), one bucket
        model, bucket_size = QuantizationModel("scaled", kappa=kappa), None
    else:
        model = QuantizationModel.from_dict(_field(data, "quantization"))
        if model.kappa != kappa:
            raise DesignError(f"design: `kappa` {kappa!r} differs from `quantization.kappa` {model.kappa!r}.")
        bucket_size = check_bucket_size(_field(data, "bucket_size"))
    delta = error_factors(bits, model, profile.dim, bucket_size)
    try:
        structure = optimal_structure(profile, delta)
    except InputError as exc:
        raise DesignError(f"design: {exc}") from None
    design = assemble_design(
        profile,
        encoding,
        decoding,
        bits,
        budget,
        kappa,
        delta,
        structure.bound,
        options,
        quantization=model,
        bucket_size=bucket_size,
    )
    stored_bound = _field(data, "bound")
    if not isinstance(stored_bound, (int, float)) or not np.isclose(
        stored_bound, structure.bound, rtol=1e-9, atol=0
    ):
        raise DesignError(
            f"design: stored `bound` {stored_bound!r} differs from the bound the profile, bits "
            f"and kappa imply ({structure.bound!r})."
        )
    mismatch = np.abs(design.row_mass - structure.row_mass)
    if np.any(mismatch > 1e-8):
        i = int(np.argmax(mismatch))
        raise DesignError(
            f"design: worker {i} carries mass {design.row_mass[i]!r}, but the optimal structure "
            f"for its bits gives {structure.row_mass[i]!r}."
        )
    return design


# ------------------------------------------------------------------ public
def _suffix(path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(f"design file {str(path)!r}: the name must end in .json or .npz.")
    return suffix


def save_design(design, path) -> Path:
    """Write `design` to ``.json`` or ``.npz`` (chosen by suffix), atomically."""
    suffix = _suffix(path)
    data = design_to_dict(design)
    if suffix == ".json":
        return atomic_write_text(path, json.dumps(data, allow_nan=False, separators=(",", ":")))
    enc = data.pop("encoding")
    arrays = {
        "bits": np.asarray(data.pop("bits"), dtype=np.int64),
        "decoding": np.asarray(data.pop("decoding"), dtype=np.float64),
        "encoding_rows": np.asarray(enc["rows"], dtype=np.int64),
        "encoding_cols": np.asarray(enc["cols"], dtype=np.int64),
        "encoding_values": np.asarray(enc["values"], dtype=np.float64),
        "straggler_probs": np.asarray(data["profile"].pop("straggler_probs"), dtype=np.float64),
    }
    data["encoding_shape"] = enc["shape"]
    arrays["metadata"] = np.array(json.dumps(data, allow_nan=False))
    return _atomic_write(path, lambda fh: np.savez(fh, **arrays))


def load_design(path):
    """Read and validate a design written by :func:`save_design` (never unpickles)."""
    suffix = _suffix(path)
    if suffix == ".json":
        return design_from_dict(read_json(path, what="design"))
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except OSError as exc:
        raise InputError(f"design file {str(path)!r}: {exc.strerror or exc}.") from None
    except (ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise InputError(f"design file {str(path)!r} is not a valid npz file ({exc}).") from None
    missing = {
        "metadata",
        "bits",
        "decoding",
        "encoding_rows",
        "encoding_cols",
        "encoding_values",
        "straggler_probs",
    } - set(arrays)
    if missing:
        raise InputError(f"design file {str(path)!r}: missing array(s) {', '.join(sorted(missing))}.")
    try:
        data = json.loads(str(arrays["metadata"]), parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise InputError(f"design file {str(path)!r}: metadata is not valid JSON ({exc.msg}).") from None
    if not isinstance(data, dict) or not isinstance(data.get("profile"), dict):
        raise InputError(f"design file {str(path)!r}: metadata must be an object with a profile.")
    data["bits"] = arrays["bits"]
    data["decoding"] = arrays["decoding"]
    data["encoding"] = {
        "shape": data.pop("encoding_shape", None),
        "rows": arrays["encoding_rows"],
        "cols": arrays["encoding_cols"],
        "values": arrays["encoding_values"],
    }
    data["profile"]["straggler_probs"] = arrays["straggler_probs"]
    return design_from_dict(data)
