"""Versioned export of designs: JSON and npz, atomic writes, validation on load.

JSON layout (``format`` = ``"gcdesign.design"``, ``version`` = "major.minor")::

    {"format", "version", "budget", "kappa", "quantization", "bucket_size", "bits", "decoding",
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

from ._files import (
    atomic_write,
    atomic_write_text,
    check_fields,
    check_readable,
    check_version,
    newer_minor,
    parse_json,
    read_json,
)
from ._validate import (
    InputError,
    boolean,
    check_bit_range,
    check_bucket_size,
    choice,
    int_array,
    path_arg,
    positive_int,
    real,
    real_array,
    show_value,
)

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


DESIGN_FIELDS_V1 = (
    "format",
    "version",
    "budget",
    "kappa",
    "bits",
    "decoding",
    "encoding",
    "profile",
    "bound",
    "load",
    "components",
    "options",
)
DESIGN_FIELDS = (*DESIGN_FIELDS_V1[:4], "quantization", "bucket_size", *DESIGN_FIELDS_V1[4:])
ENCODING_FIELDS = ("shape", "rows", "cols", "values")


def _field(data: dict, name: str, what: str = "design"):
    if name not in data:
        raise InputError(f"{what}: missing field `{name}`.")
    return data[name]


def _object(value, name: str) -> dict:
    if not isinstance(value, dict):
        raise InputError(f"design: `{name}` must be an object, got {show_value(value)}.")
    return value


def mass_tolerance(n_workers: int, partitions: int) -> float:
    r"""How far a stored worker mass may drift from the closed form by rounding alone.

    The segment layout places the N masses end to end on [0, K] with a running
    sum. Each boundary is a sequential float sum of at most N terms whose total
    is K, so it is off by at most :math:`\gamma_N K \approx N \varepsilon K`
    (Higham, *Accuracy and Stability of Numerical Algorithms*, 2002, section 4.2);
    the last boundary is set to K exactly, so the last worker on the axis
    absorbs the whole drift. A worker's mass is the difference of its two
    boundaries, each also moved by at most the snap tolerance (1e-9) onto an
    integer. Hence ``1e-8 + 2 (N + 1) eps K``: 1e-8 for small designs, growing
    with N K as the rounding does (4.4e-4 at N = K = 10^6, still far below the
    change of one bit of any worker).
    """
    return 1e-8 + 2.0 * (n_workers + 1) * np.finfo(np.float64).eps * partitions


def _options(value) -> dict:
    """The options the checks of :meth:`Design.validate` read, typed; the rest is informational."""
    from .design import CONSTRUCTIONS

    options = dict(_object(value, "options"))
    if "kappa_policy" in options and "quantization" not in options:  # its name in files of 0.1
        options["quantization"] = options.pop("kappa_policy")
    try:
        if "construction" in options:
            choice("options.construction", options["construction"], CONSTRUCTIONS)
        if "allow_idle" in options:
            boolean("options.allow_idle", options["allow_idle"])
        b_min = positive_int("options.b_min", options.get("b_min", 2), minimum=2, maximum=62)
        b_max = positive_int("options.b_max", options.get("b_max", 32), minimum=2, maximum=62)
        options["b_min"], options["b_max"] = check_bit_range(b_min, b_max)
    except InputError as exc:
        raise InputError(f"design: {exc}") from None
    return options


def design_from_dict(data) -> object:
    """Rebuild and fully validate a design from its dict (see the module docstring)."""
    from .design import DesignError, assemble_design
    from .profile import PROFILE_FIELDS, ClusterProfile
    from .quantization import QuantizationModel, error_factors
    from .structure import optimal_structure

    if not isinstance(data, dict):
        raise InputError("design: expected a JSON object at the top level.")
    fmt = _field(data, "format")
    if fmt != DESIGN_FORMAT:
        raise InputError(f"design: `format` is {show_value(fmt)}, expected {DESIGN_FORMAT!r}.")
    version = _field(data, "version")
    major = check_version(version, DESIGN_VERSION, "design", oldest_major=1)
    newer = newer_minor(version, DESIGN_VERSION)
    check_fields(data, DESIGN_FIELDS if major > 1 else DESIGN_FIELDS_V1, "design", newer=newer)
    prof = _object(_field(data, "profile"), "profile")
    check_fields(prof, PROFILE_FIELDS, "design profile", newer=newer)
    try:
        profile = ClusterProfile(
            _field(prof, "straggler_probs", "design profile"),
            dim=_field(prof, "dim", "design profile"),
            partitions=prof.get("partitions"),
            names=prof.get("names"),
        )
    except InputError as exc:
        raise InputError(f"design: {exc}") from None
    n, k = profile.n_workers, profile.partitions
    enc = _object(_field(data, "encoding"), "encoding")
    check_fields(enc, ENCODING_FIELDS, "design encoding", newer=newer)
    options = _options(data.get("options", {}))
    try:
        shape = tuple(int_array("encoding.shape", _field(enc, "shape", "design encoding")).tolist())
        if shape != (n, k):
            raise InputError(f"`encoding.shape` is {list(shape)}, expected [{n}, {k}].")
        rows = int_array("encoding.rows", _field(enc, "rows", "design encoding"), minimum=0, maximum=n - 1)
        cols = int_array("encoding.cols", _field(enc, "cols", "design encoding"), minimum=0, maximum=k - 1)
        values = real_array("encoding.values", _field(enc, "values", "design encoding"))
        if not rows.size == cols.size == values.size:
            raise InputError(
                f"`encoding` rows, cols and values must have the same length, got "
                f"{rows.size}, {cols.size} and {values.size}."
            )
        if values.size < k:  # (U) needs weight in every column; also bounds the work below
            raise InputError(
                f"`encoding` has {values.size} entries; each of the K = {k} partitions needs one."
            )
        bits = int_array("bits", _field(data, "bits"), minimum=0, maximum=options["b_max"])
        decoding = real_array("decoding", _field(data, "decoding"))
        for name, arr in (("bits", bits), ("decoding", decoding)):
            if arr.shape != (n,):
                raise InputError(f"`{name}` has {arr.size} entries, expected N = {n}.")
        budget = positive_int("budget", _field(data, "budget"), minimum=0)
        kappa = real("kappa", _field(data, "kappa"), low=0)
        stored_bound = real("bound", _field(data, "bound"), low=0)
        stored_load = real("load", _field(data, "load"), low=0)
        stored_components = positive_int("components", _field(data, "components"), minimum=0)
    except InputError as exc:
        raise InputError(f"design: {exc}") from None
    keys = rows * k + cols
    if np.unique(keys).size != keys.size:
        _, first = np.unique(keys, return_index=True)
        e = int(np.setdiff1d(np.arange(keys.size), first)[0])
        raise InputError(
            f"design: `encoding` lists entry ({int(rows[e])}, {int(cols[e])}) twice (again at position {e})."
        )
    encoding = sp.csr_array((values, (rows, cols)), shape=(n, k))
    try:
        if major == 1:  # version 1: delta = kappa * delta_raw(b), one bucket
            model, bucket_size = QuantizationModel("scaled", kappa=kappa), None
        else:
            model = QuantizationModel.from_dict(_field(data, "quantization"))
            bucket_size = check_bucket_size(_field(data, "bucket_size"))
    except InputError as exc:
        raise InputError(f"design: {exc}") from None
    if major > 1 and model.kappa != kappa:
        raise DesignError(f"design: `kappa` {kappa!r} differs from `quantization.kappa` {model.kappa!r}.")
    with np.errstate(over="ignore", invalid="ignore"):
        delta = error_factors(bits, model, profile.dim, bucket_size)
    if np.any(~np.isfinite(delta) & (bits > 0)):
        i = int(np.flatnonzero(~np.isfinite(delta) & (bits > 0))[0])
        raise InputError(f"design: `kappa` = {kappa!r} overflows the quantization error of worker {i}.")
    try:
        structure = optimal_structure(profile, delta)
    except InputError as exc:
        raise DesignError(
            f"design: the stored `bits`, `kappa` and `straggler_probs` admit no code: {exc}"
        ) from None
    try:  # the invariants of every design: (U), bits against the budget, idle workers
        design = assemble_design(
            profile,
            encoding,
            decoding,
            bits,
            budget,
            delta,
            structure.bound,
            options,
            quantization=model,
            bucket_size=bucket_size,
        )
    except DesignError as exc:
        raise DesignError(f"design: {exc}") from None
    if not np.isclose(stored_bound, structure.bound, rtol=1e-9, atol=0):
        raise DesignError(
            f"design: stored `bound` {stored_bound!r} differs from the bound the profile, bits "
            f"and kappa imply ({float(structure.bound)!r})."
        )
    tol = mass_tolerance(n, k)
    mismatch = np.abs(design.row_mass - structure.row_mass)
    if np.any(mismatch > tol):
        i = int(np.argmax(mismatch))
        raise DesignError(
            f"design: worker {i} carries mass {float(design.row_mass[i])!r} in `encoding`, but the "
            f"optimal structure for its bits gives {float(structure.row_mass[i])!r} (tolerance {tol:.3g})."
        )
    if stored_load != design.load:
        raise DesignError(f"design: stored `load` {stored_load!r} differs from nnz / N = {design.load!r}.")
    if stored_components != design.components:
        raise DesignError(
            f"design: stored `components` {stored_components} differs from the "
            f"{design.components} of the encoding."
        )
    return design


# ------------------------------------------------------------------ public
def _suffix(path) -> str:
    suffix = path_arg("path", path).suffix.lower()
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
    return atomic_write(path, lambda fh: np.savez(fh, **arrays))


NPZ_ARRAYS = (
    "metadata",
    "bits",
    "decoding",
    "encoding_rows",
    "encoding_cols",
    "encoding_values",
    "straggler_probs",
)


def _read_npz(path) -> dict:
    """The arrays of an npz archive, never unpickling; anything else is one InputError line."""
    path = Path(path)
    check_readable(path, what="design")
    if not zipfile.is_zipfile(path):
        raise InputError(f"design file {str(path)!r} is not a valid npz file (not a zip archive).")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise InputError(
                f"design file {str(path)!r} holds a Python object array, which would need pickle: refused."
            ) from None
        raise InputError(
            f"design file {str(path)!r} is not a valid npz file ({show_value(str(exc))[1:-1]})."
        ) from None
    except Exception as exc:  # np.load fails in many ways on a damaged archive; all mean the same
        raise InputError(
            f"design file {str(path)!r} is not a valid npz file "
            f"({type(exc).__name__}: {show_value(str(exc))[1:-1]})."
        ) from None


def load_design(path):
    """Read and validate a design written by :func:`save_design` (never unpickles)."""
    suffix = _suffix(path)
    if suffix == ".json":
        return design_from_dict(read_json(path, what="design"))
    arrays = _read_npz(path)
    missing = set(NPZ_ARRAYS) - set(arrays)
    if missing:
        raise InputError(f"design file {str(path)!r}: missing array(s) {', '.join(sorted(missing))}.")
    meta = arrays["metadata"]
    if meta.ndim != 0 or meta.dtype.kind != "U":
        raise InputError(
            f"design file {str(path)!r}: `metadata` must be one JSON string, got {meta.dtype} {meta.shape}."
        )
    data = parse_json(str(meta), what=f"design file {str(path)!r}: metadata")
    if not isinstance(data, dict) or not isinstance(data.get("profile"), dict):
        raise InputError(f"design file {str(path)!r}: metadata must be an object with a profile.")
    for key in ("bits", "decoding", "encoding", "straggler_probs"):
        if key in data or key in data["profile"]:
            raise InputError(
                f"design file {str(path)!r}: metadata must not hold `{key}` (an array of its own)."
            )
    data["bits"] = arrays["bits"]
    data["decoding"] = arrays["decoding"]
    data["encoding"] = {
        "shape": _field(data, "encoding_shape", "design metadata"),
        "rows": arrays["encoding_rows"],
        "cols": arrays["encoding_cols"],
        "values": arrays["encoding_values"],
    }
    del data["encoding_shape"]
    data["profile"]["straggler_probs"] = arrays["straggler_probs"]
    return design_from_dict(data)


__all__ = [
    "DESIGN_FIELDS",
    "DESIGN_FIELDS_V1",
    "DESIGN_FORMAT",
    "DESIGN_VERSION",
    "ENCODING_FIELDS",
    "NPZ_ARRAYS",
    "SUFFIXES",
    "design_from_dict",
    "design_to_dict",
    "load_design",
    "mass_tolerance",
    "save_design",
]
