"""The Scheme protocol, its one validator, and the codes to compare against.

A *scheme* is anything that satisfies :class:`SchemeLike` (a ``typing.Protocol``):

* ``name`` (str);
* ``encoding`` (scipy.sparse CSR, N x K): worker i computes ``x_i = sum_j encoding[i, j] g_j``;
* ``bits`` (int array (N,)): bits per coordinate of worker i's message. 0: the worker is
  idle and sends nothing; with ``quantizer="stochastic"`` every other entry is in
  ``[2, 32]``; with ``"sign"`` it is 1; with ``"none"`` it is 32 (a float32 per coordinate,
  the paper's count and the runtime's wire format, see :func:`gcdesign.quantization.payload_bits`);
* ``straggler_probs`` (N,) in [0, 1];
* ``quantizer``: one of :data:`gcdesign.quantization.QUANTIZERS`;
* ``bucket_size``: None (one norm per message) or the bucket length ``beta >= 1`` of the
  bucketed stochastic quantizer (docs/math.md, section 2c);
* ``decoding``: the fixed decoding vector (N,) when the decoder does not depend on who
  arrived, else None;
* ``decode_weights(arrived) -> a`` (N,): the decoder for a round in which the workers
  flagged in the boolean mask ``arrived`` answered; the estimate is ``sum_i a_i Q(x_i)``
  (zero weight on the missing workers);
* ``local_decoder`` (bool): True when the decoder's weights on each connected component of
  the worker-partition graph depend only on the arrivals in that component.

:func:`check_scheme` is the one validator every consumer calls (evaluation, Monte Carlo,
training, runtime, cluster, studies). :class:`Scheme` is the plain implementation (it
checks itself when built); :class:`gcdesign.Design` satisfies the protocol too. They live
in :mod:`~gcdesign.schemes.protocol`.

:func:`make_scheme` builds the registered schemes by name (see :data:`SCHEMES`); the
registry lives in :mod:`~gcdesign.schemes.registry`. Importing this package registers the
built-in codes (:mod:`~gcdesign.schemes.baselines`, :mod:`~gcdesign.schemes.exact`).
"""

# baselines, then exact: importing them registers their schemes, in the training studies' order
from . import baselines, exact  # noqa: F401
from .protocol import SCHEME_FIELDS, Scheme, SchemeLike, check_scheme, with_bucket_size
from .registry import SCHEMES, SchemeEntry, make_scheme, register_scheme, training_schemes

__all__ = [
    "SCHEMES",
    "SCHEME_FIELDS",
    "Scheme",
    "SchemeEntry",
    "SchemeLike",
    "check_scheme",
    "make_scheme",
    "register_scheme",
    "training_schemes",
    "with_bucket_size",
]
