"""What the CLI prints: JSON for machines and the words people read."""

from __future__ import annotations

import json
import math


def jsonable(value):
    """`value` with numpy scalars and arrays as Python values and non-finite floats as strings.

    JSON has no infinity or NaN, so ``inf``, ``-inf`` and ``nan`` become the
    strings ``"inf"``, ``"-inf"`` and ``"nan"`` (``float()`` reads them back);
    ``None`` (not applicable) stays ``null``.

    Examples
    --------
    >>> import numpy as np
    >>> jsonable({"bound": float("inf"), "bits": np.array([2, 3]), "p": np.float64(0.5)})
    {'bound': 'inf', 'bits': [2, 3], 'p': 0.5}
    """
    import numpy as np

    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def print_json(data) -> None:
    """Print `data` as strict JSON (see :func:`jsonable`)."""
    print(json.dumps(jsonable(data), indent=2, allow_nan=False))


def yes_no(value) -> str:
    """True / False / None as yes / no / unknown."""
    return "unknown" if value is None else ("yes" if value else "no")


__all__ = [
    "jsonable",
    "print_json",
    "yes_no",
]
