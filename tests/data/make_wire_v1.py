"""Write tests/data/wire_v1.json: version-1 runtime messages made by the version-1 encoder.

The version-1 encoder (gcdesign.runtime before WIRE_VERSION 2) is the one of commit f7676e4.
Regenerate with that code on the path, e.g.::

    git worktree add /tmp/gc-v1 f7676e4
    PYTHONPATH=/tmp/gc-v1 python tests/data/make_wire_v1.py tests/data/wire_v1.json

Each entry holds the message bytes (hex), its header fields and the values the
version-1 decoder gave (``Message.values()``, float64 as shortest-repr JSON numbers).
"""

import json
import sys

import numpy as np
import scipy.sparse as sp

from gcdesign.runtime import WIRE_VERSION, encode
from gcdesign.schemes import Scheme

assert WIRE_VERSION == 1, "run this with the version-1 runtime (commit f7676e4) on the path"


def scheme(bits, quantizer):
    return Scheme(
        name="v1",
        encoding=sp.eye_array(1, format="csr"),
        bits=np.array([bits]),
        straggler_probs=np.zeros(1),
        decoding=np.ones(1),
        quantizer=quantizer,
    )


def main(path):
    rng = np.random.default_rng(20261201)
    cases = [(b, "stochastic", 37) for b in (2, 3, 5, 8, 9, 13, 32)]
    cases += [(1, "sign", 20), (32, "none", 11), (4, "stochastic", 1), (7, "stochastic", 64)]
    entries = []
    for b, quantizer, dim in cases:
        x = rng.standard_normal((1, dim)) * 10.0 ** rng.integers(-3, 4)
        msg = encode(scheme(b, quantizer), 0, x, rng=rng)
        entries.append(_entry(msg))
    zero = encode(scheme(5, "stochastic"), 0, np.zeros((1, 9)), rng=1)  # zero vector: norm 0
    entries.append(_entry(zero))
    zero_sign = encode(scheme(1, "sign"), 0, np.zeros((1, 9)), rng=1)
    entries.append(_entry(zero_sign))
    with open(path, "w") as fh:
        json.dump(
            {"format": "gcdesign wire v1 test vectors", "commit": "f7676e4", "messages": entries},
            fh,
            indent=1,
        )
        fh.write("\n")


def _entry(msg):
    return {
        "bytes": msg.to_bytes().hex(),
        "worker": msg.worker,
        "dim": msg.dim,
        "bits": msg.bits,
        "quantizer": msg.quantizer,
        "norm": msg.norm,
        "values": msg.values().tolist(),
    }


if __name__ == "__main__":
    main(sys.argv[1])
