r"""The schemes our design is compared against (docs/math.md sections 10-11).

Every factory has the signature ``factory(profile, budget, *, rng=None,
replication=2, **options) -> Scheme`` and is registered in
:data:`gcdesign.schemes.SCHEMES`:

==================  ==========================================================  =======================
name                encoding                                                    decoder
==================  ==========================================================  =======================
``centralized``     uncoded, no stragglers, no quantization (the ideal)         ``a = 1``
``is-sgd``          identity (partition j on worker j mod N)                    ``a = 1`` (biased)
``bgc``             ``b_ij ~ Bernoulli(d_rep / N)`` i.i.d.                      ``a = 1`` (biased)
``ehd``             fractional repetition: groups of ``d_rep`` workers share    one message per group
                    a block of partitions (all ones)                            that has an arrival
``od``              random ``d_rep``-regular 0/1 assignment                     least squares per round
``sgc``             random ``d_rep``-regular, ``b_ij = 1/((1 - p_i) d_j)``      ``a = 1`` (unbiased)
``sgc-1bit``        as ``sgc``                                                  ``a = 1``, 1-bit signs
``osgc``            the optimal structure with ``delta = 0``, equal bits        ``a_i = 1/(1 - p_i)``
``random-sparse``   ``d_rep`` random ones per row                               least squares per round
``expander``        adjacency / degree of a regular graph                       ``N/(N - s)`` or LS
``joint``           :func:`gcdesign.design` (our design)                        ``a_i = 1/(1 - p_i)``
==================  ==========================================================  =======================

Baselines get equal bits: ``floor(B / N)`` each, the remainder one bit each
to the most reliable workers (smallest ``p``). ``d_rep`` is the
``replication`` argument (default 2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp

from .._validate import InputError, choice, positive_int, read_only, read_only_sparse
from ..allocation.baselines import equal_bits
from ..profile import ClusterProfile
from ..quantization import MAX_BITS
from .decoding import LeastSquaresDecoder
from .protocol import Scheme, check_scheme
from .registry import register_scheme

# ------------------------------------------------------------------ helpers


def _check_profile(profile) -> ClusterProfile:
    if not isinstance(profile, ClusterProfile):
        raise InputError("`profile` must be a ClusterProfile.")
    return profile


def _replication(replication, n: int) -> int:
    d_rep = positive_int("replication", replication)
    if d_rep > n:
        raise InputError(f"`replication` = {d_rep} exceeds the number of workers N = {n}.")
    return d_rep


def _no_options(name: str, options: dict) -> None:
    if options:
        raise InputError(f"scheme {name!r} takes no option {sorted(options)[0]!r}.")


@dataclass(frozen=True, eq=False)
class Centralized:
    """The ideal reference: the exact gradient every round, no stragglers, no quantization.

    A scheme like any other (it satisfies :class:`gcdesign.schemes.SchemeLike`): the
    uncoded layout of the profile's N workers and K partitions (partition j is held by
    worker ``j N // K`` alone), ``straggler_probs`` 0, ``quantizer`` ``"none"`` with 32
    bits per coordinate (0 for a worker that holds no partition), one bucket, and the
    fixed decoding 1 on every worker that holds data, so ``sum_i a_i x_i = sum_j g_j``.
    Every worker has ``p_i = 0``, so the round loop waits for all of them: with
    :class:`gcdesign.latency.RoundTimes` a round lasts ``max_i T_i``.

    Examples
    --------
    >>> from gcdesign import ClusterProfile
    >>> from gcdesign.schemes import check_scheme
    >>> ref = check_scheme(Centralized(ClusterProfile([0.1, 0.5, 0.2], dim=4, partitions=6)))
    >>> ref.encoding.toarray().astype(int).tolist()
    [[1, 1, 0, 0, 0, 0], [0, 0, 1, 1, 0, 0], [0, 0, 0, 0, 1, 1]]
    >>> ref.bits.tolist(), ref.straggler_probs.tolist(), ref.quantizer
    ([32, 32, 32], [0.0, 0.0, 0.0], 'none')
    """

    profile: ClusterProfile
    name: str = "centralized"
    encoding: sp.csr_array = field(init=False)
    bits: np.ndarray = field(init=False)
    straggler_probs: np.ndarray = field(init=False)
    quantizer: str = field(init=False)
    bucket_size: int | None = field(init=False)
    decoding: np.ndarray = field(init=False)
    local_decoder: bool = field(init=False)

    def __post_init__(self):
        n, k = self.profile.n_workers, self.profile.partitions
        owner = np.arange(k) * n // k
        encoding = sp.csr_array((np.ones(k), (owner, np.arange(k))), shape=(n, k))
        holds = np.bincount(owner, minlength=n) > 0
        object.__setattr__(self, "encoding", read_only_sparse(encoding))
        object.__setattr__(self, "bits", read_only(np.where(holds, MAX_BITS, 0)))
        object.__setattr__(self, "straggler_probs", read_only(np.zeros(n)))
        object.__setattr__(self, "decoding", read_only(holds.astype(np.float64)))
        object.__setattr__(self, "quantizer", "none")
        object.__setattr__(self, "bucket_size", None)
        object.__setattr__(self, "local_decoder", True)  # a fixed decoder is local
        check_scheme(self, name="centralized")

    def decode_weights(self, arrived) -> np.ndarray:
        """The fixed decoding on the workers flagged in `arrived` (0 elsewhere)."""
        return np.where(np.asarray(arrived, dtype=bool), self.decoding, 0.0)


def centralized(profile, budget=None, *, rng=None, replication=2, **options) -> Centralized:
    """The ideal reference: the exact gradient every round, no stragglers, no quantization.

    :class:`Centralized` (the `budget` does not apply: it sends float32 values).
    """
    _no_options("centralized", options)
    return Centralized(_check_profile(profile))


def regular_assignment(n: int, k: int, replication: int, *, rng=None, max_tries: int = 200) -> sp.csr_array:
    """Random 0/1 assignment: every partition on `replication` distinct workers, loads balanced.

    Worker loads are ``floor`` or ``ceil`` of ``K d_rep / N`` (exactly ``d_rep``
    when ``K = N``: a random ``d_rep``-regular bipartite graph). Drawn by the
    configuration model (random matching of replica slots to worker slots),
    rejecting matchings with a repeated edge; after `max_tries` rejections a
    randomly relabelled circulant assignment is used instead.
    """
    rng = np.random.default_rng(rng)
    if replication > n:
        raise InputError(f"`replication` = {replication} exceeds the number of workers N = {n}.")
    total = k * replication
    base, extra = divmod(total, n)
    loads = np.full(n, base, dtype=np.int64)
    loads[rng.permutation(n)[:extra]] += 1
    worker_slots = np.repeat(np.arange(n), loads)
    part_slots = np.repeat(np.arange(k), replication)
    for _ in range(max_tries):
        rows = rng.permutation(worker_slots)
        keys = rows * k + part_slots
        if np.unique(keys).size == keys.size:
            return _ones(rows, part_slots, n, k)
    # circulant fallback: replica t of partition j on worker (pi(j) + t * step) mod n
    perm_w, perm_p = rng.permutation(n), rng.permutation(k)
    step = max(1, n // replication)
    rows = perm_w[(np.repeat(np.arange(k), replication) + np.tile(np.arange(replication) * step, k)) % n]
    return _ones(rows, perm_p[part_slots], n, k)


def _ones(rows, cols, n: int, k: int) -> sp.csr_array:
    enc = sp.csr_array(sp.coo_array((np.ones(len(rows)), (rows, cols)), shape=(n, k)))
    enc.sum_duplicates()
    enc.sort_indices()
    return enc


class FirstPerGroupDecoder:
    """Weight 1 on the arrived worker of lowest index in each group (a picklable callable)."""

    def __init__(self, group_of: np.ndarray):
        self.group_of = np.asarray(group_of)

    def __call__(self, arrived: np.ndarray) -> np.ndarray:
        a = np.zeros(self.group_of.size)
        idx = np.flatnonzero(arrived)
        # idx is sorted, so np.unique's first index is the lowest arrived worker of each group
        _, first = np.unique(self.group_of[idx], return_index=True)
        a[idx[first]] = 1.0
        return a


# ------------------------------------------------------------------ schemes


def is_sgd(profile, budget, *, rng=None, replication=2, **options) -> Scheme:
    """Uncoded (ignore-stragglers) SGD: partition j on worker ``j mod N``, ``a = 1``.

    Biased when stragglers exist: ``E ghat = sum_j (1 - p_{j mod N}) g_j``.
    """
    _no_options("is-sgd", options)
    profile = _check_profile(profile)
    n, k = profile.n_workers, profile.partitions
    enc = _ones(np.arange(k) % n, np.arange(k), n, k)
    return Scheme(
        name="is-sgd",
        encoding=enc,
        bits=equal_bits(profile.straggler_probs, budget),
        straggler_probs=profile.straggler_probs,
        decoding=np.ones(n),
        description="uncoded: each worker sends its own partitions, stragglers dropped",
    )


def bgc(profile, budget, *, rng=None, replication=2, **options) -> Scheme:
    """Bernoulli gradient code: ``b_ij ~ Bernoulli(d_rep / N)`` i.i.d., ``a = 1``."""
    _no_options("bgc", options)
    profile = _check_profile(profile)
    rng = np.random.default_rng(rng)
    n, k = profile.n_workers, profile.partitions
    d_rep = _replication(replication, n)
    mask = rng.random((n, k)) < d_rep / n
    rows, cols = np.nonzero(mask)
    return Scheme(
        name="bgc",
        encoding=_ones(rows, cols, n, k),
        bits=equal_bits(profile.straggler_probs, budget),
        straggler_probs=profile.straggler_probs,
        decoding=np.ones(n),
        description=f"Bernoulli gradient code, b_ij ~ Bernoulli({d_rep}/N), a = 1",
    )


def fractional_repetition_groups(n: int, replication: int) -> list[np.ndarray]:
    """Workers ``0..N-1`` in consecutive groups of `replication` (the last may be smaller)."""
    return [np.arange(start, min(start + replication, n)) for start in range(0, n, replication)]


def ehd(profile, budget, *, rng=None, replication=2, **options) -> Scheme:
    """ErasureHead-style fractional repetition.

    Workers form groups of ``d_rep`` (consecutive indices; the last group may be
    smaller); the K partitions are split into as many contiguous blocks, and
    every worker of a group holds its group's block with coefficient 1. Each
    round the master takes **one** message per group that has an arrival (the
    arrived worker of lowest index) with weight 1; groups with no arrival are
    lost (biased estimate).
    """
    _no_options("ehd", options)
    profile = _check_profile(profile)
    n, k = profile.n_workers, profile.partitions
    d_rep = _replication(replication, n)
    groups = fractional_repetition_groups(n, d_rep)
    blocks = np.array_split(np.arange(k), len(groups))
    rows, cols = [], []
    for members, block in zip(groups, blocks, strict=True):
        for i in members:
            rows.append(np.full(block.size, i))
            cols.append(block)
    enc = _ones(np.concatenate(rows), np.concatenate(cols), n, k)
    group_of = np.concatenate([np.full(g.size, t) for t, g in enumerate(groups)])
    n_groups = len(groups)

    return Scheme(
        name="ehd",
        encoding=enc,
        bits=equal_bits(profile.straggler_probs, budget),
        straggler_probs=profile.straggler_probs,
        decoder=FirstPerGroupDecoder(group_of),
        description=f"fractional repetition ({n_groups} groups of {d_rep}), one message per covered group",
        local_decoder=True,
    )


def od(profile, budget, *, rng=None, replication=2, **options) -> Scheme:
    """Optimal decoding: random ``d_rep``-regular assignment, least-squares decoder each round."""
    _no_options("od", options)
    profile = _check_profile(profile)
    n, k = profile.n_workers, profile.partitions
    d_rep = _replication(replication, n)
    enc = regular_assignment(n, k, d_rep, rng=rng)
    return Scheme(
        name="od",
        encoding=enc,
        bits=equal_bits(profile.straggler_probs, budget),
        straggler_probs=profile.straggler_probs,
        decoder=LeastSquaresDecoder(enc),
        description=f"random {d_rep}-regular assignment, least-squares decoding per round",
        local_decoder=True,
    )


def _sgc_encoding(profile, replication, rng) -> sp.csr_array:
    """``b_ij = 1 / ((1 - p_i) d_j)`` on a random regular assignment (workers with p = 1 skipped)."""
    n, k = profile.n_workers, profile.partitions
    d_rep = _replication(replication, n)
    p = profile.straggler_probs
    ones = sp.coo_array(regular_assignment(n, k, d_rep, rng=rng))
    rows, cols = ones.row, ones.col
    live = p[rows] < 1.0
    rows, cols = rows[live], cols[live]
    # a partition whose replicas all have p = 1 goes to the most reliable worker
    missing = np.setdiff1d(np.arange(k), cols)
    if missing.size:
        rows = np.concatenate([rows, np.full(missing.size, int(np.argmin(p)))])
        cols = np.concatenate([cols, missing])
    replicas = np.bincount(cols, minlength=k)
    values = 1.0 / ((1.0 - p[rows]) * replicas[cols])
    enc = sp.csr_array(sp.coo_array((values, (rows, cols)), shape=(n, k)))
    enc.sort_indices()
    return enc


def sgc(profile, budget, *, rng=None, replication=2, **options) -> Scheme:
    """Stochastic gradient coding: ``d_rep`` random replicas, ``b_ij = 1/((1-p_i) d_j)``, ``a = 1``.

    Unbiased: ``sum_i (1 - p_i) b_ij = 1`` for every partition.
    """
    _no_options("sgc", options)
    profile = _check_profile(profile)
    return Scheme(
        name="sgc",
        encoding=_sgc_encoding(profile, replication, rng),
        bits=equal_bits(profile.straggler_probs, budget),
        straggler_probs=profile.straggler_probs,
        decoding=np.ones(profile.n_workers),
        description=f"stochastic gradient coding, {replication} replicas, inverse-propensity weights",
    )


def sgc_1bit(profile, budget, *, rng=None, replication=2, **options) -> Scheme:
    """SGC with the 1-bit sign quantizer (one bit per coordinate per worker).

    `budget` is not used (every worker sends 1 bit per coordinate, ``B = N``).
    """
    _no_options("sgc-1bit", options)
    profile = _check_profile(profile)
    n = profile.n_workers
    return Scheme(
        name="sgc-1bit",
        encoding=_sgc_encoding(profile, replication, rng),
        bits=np.ones(n, dtype=np.int64),
        straggler_probs=profile.straggler_probs,
        decoding=np.ones(n),
        quantizer="sign",
        description=f"stochastic gradient coding, {replication} replicas, 1-bit sign quantizer",
    )


def osgc(profile, budget, *, rng=None, replication=2, **options) -> Scheme:
    """Optimal structure ignoring quantization (``delta = 0``), equal bits.

    ``design(profile, budget, quantization="none", allocator="equal")`` as a scheme.
    """
    from ..design import design

    _no_options("osgc", options)
    profile = _check_profile(profile)
    result = design(profile, budget, quantization="none", allocator="equal")
    return Scheme(
        name="osgc",
        encoding=result.encoding,
        bits=result.bits,
        straggler_probs=profile.straggler_probs,
        decoding=result.decoding,
        description="optimal unquantized structure (delta = 0), equal bits",
    )


def joint(profile, budget, *, rng=None, replication=2, **options):
    """Our design: ``design(profile, budget, **options)`` (a :class:`~gcdesign.Design`)."""
    from ..design import design

    return design(_check_profile(profile), budget, **options)


def random_sparse(profile, budget, *, rng=None, replication=2, **options) -> Scheme:
    """Random sparse approximate gradient code: ``d_rep`` ones at random columns of every row.

    Decoded by least squares over the arrived rows each round (MATH 10).

    References
    ----------
    .. [1] the textbook's section 6.3, "Approximate Gradient Coding", Theorem "Approximate Gradient
       Coding via Random Sparse Encoding"; docs/math.md, section 10.
    """
    _no_options("random-sparse", options)
    profile = _check_profile(profile)
    rng = np.random.default_rng(rng)
    n, k = profile.n_workers, profile.partitions
    d_rep = positive_int("replication", replication)
    if d_rep > k:
        raise InputError(f"`replication` = {d_rep} exceeds the number of partitions K = {k}.")
    cols = np.argsort(rng.random((n, k)), axis=1)[:, :d_rep]
    enc = _ones(np.repeat(np.arange(n), d_rep), cols.ravel(), n, k)
    return Scheme(
        name="random-sparse",
        encoding=enc,
        bits=equal_bits(profile.straggler_probs, budget),
        straggler_probs=profile.straggler_probs,
        decoder=LeastSquaresDecoder(enc),
        description=f"{d_rep} random nonzeros per row, least-squares decoding per round",
        local_decoder=True,
    )


# ------------------------------------------------------------------ expander codes


def random_regular_adjacency(n: int, degree: int, *, rng=None) -> sp.csr_array:
    """Adjacency matrix of a uniformly random simple `degree`-regular graph (networkx)."""
    import networkx as nx

    if degree >= n or (n * degree) % 2:
        raise InputError(
            f"no simple {degree}-regular graph on {n} vertices (need degree < N, N*degree even)."
        )
    seed = int(np.random.default_rng(rng).integers(2**32))
    graph = nx.random_regular_graph(degree, n, seed=seed)
    return sp.csr_array(nx.to_scipy_sparse_array(graph, nodelist=range(n), format="csr", dtype=np.float64))


def margulis_adjacency(m: int) -> sp.csr_array:
    r"""Margulis-Gabber-Galil graph on :math:`\mathbb Z_m^2` (N = m^2): 8-regular multigraph.

    Vertex ``(x, y)`` is joined to ``(x + 2y, y)``, ``(x + 2y + 1, y)``,
    ``(x, y + 2x)``, ``(x, y + 2x + 1)`` (mod m) and to the inverses of these
    maps, so ``A = M + M^T`` with M the four forward maps. Self-loops count
    twice, so every row of A sums to 8. Second eigenvalue at most ``5 sqrt 2``.
    """
    m = positive_int("m", m, minimum=2)
    x, y = np.divmod(np.arange(m * m), m)
    vertex = lambda xs, ys: (xs % m) * m + (ys % m)  # noqa: E731
    src = np.tile(x * m + y, 4)
    dst = np.concatenate(
        [vertex(x + 2 * y, y), vertex(x + 2 * y + 1, y), vertex(x, y + 2 * x), vertex(x, y + 2 * x + 1)]
    )
    forward = sp.coo_array((np.ones(src.size), (src, dst)), shape=(m * m, m * m)).tocsr()
    adj = sp.csr_array(forward + forward.T)
    adj.sum_duplicates()
    return adj


def second_eigenvalue(adjacency) -> float:
    """Second-largest adjacency eigenvalue in absolute value (dense; fine for N up to a few 1000)."""
    eig = np.linalg.eigvalsh(sp.csr_array(adjacency).toarray())
    mags = np.sort(np.abs(eig))[::-1]
    return float(mags[1]) if mags.size > 1 else 0.0


def expander_upper_bound(lam: float, degree: int, n: int, stragglers: int) -> float:
    r"""Error of the fixed linear decoder: :math:`\|a^T B - 1^T\| \le (\lambda/r)\sqrt{N s/(N-s)}`.

    References
    ----------
    .. [1] N. Raviv, I. Tamo, R. Tandon and A. G. Dimakis, "Gradient Coding From Cyclic MDS Codes
       and Expander Graphs", IEEE Trans. Inf. Theory 66(12), 2020; docs/math.md, section 10.
    """
    return lam / degree * math.sqrt(n * stragglers / (n - stragglers))


def expander_lower_bound(degree: int, stragglers: int) -> float:
    r"""No decoder beats :math:`\sqrt{s / r}` for the worst set of `stragglers` stragglers.

    References
    ----------
    .. [1] N. Raviv, I. Tamo, R. Tandon and A. G. Dimakis, "Gradient Coding From Cyclic MDS Codes
       and Expander Graphs", IEEE Trans. Inf. Theory 66(12), 2020; docs/math.md, section 10.
    """
    return math.sqrt(stragglers / degree)


def expander(
    profile,
    budget,
    *,
    rng=None,
    replication=2,
    graph: str = "random",
    decoder: str = "linear",
    stragglers: int | None = None,
    **options,
) -> Scheme:
    """Expander-graph code: ``B = adjacency / r`` of an r-regular graph on the N workers (K = N).

    Parameters
    ----------
    graph : {"random", "margulis"}
        A random ``replication``-regular graph, or the Margulis-Gabber-Galil
        graph (8-regular; N must be a square).
    decoder : {"linear", "optimal"}
        ``"linear"``: fixed weight ``N / (N - s)`` on every arrived row;
        ``"optimal"``: least squares over the arrived rows each round.
    stragglers : int, optional
        ``s`` of the linear decoder; default the expected number
        ``round(sum p_i)`` (capped at N - 1).
    """
    _no_options("expander", options)
    profile = _check_profile(profile)
    n, k = profile.n_workers, profile.partitions
    if k != n:
        raise InputError(f"expander codes need K = N partitions, got K = {k}, N = {n}.")
    if choice("graph", graph, ("margulis", "random")) == "random":
        degree = positive_int("replication", replication)
        adj = random_regular_adjacency(n, degree, rng=rng)
    else:
        m = math.isqrt(n)
        if m * m != n:
            raise InputError(f"`graph` = 'margulis' needs N to be a square, got N = {n}.")
        degree = 8
        adj = margulis_adjacency(m)
    enc = sp.csr_array(adj / degree)
    bits = equal_bits(profile.straggler_probs, budget)
    label = f"{graph} {degree}-regular expander"
    if choice("decoder", decoder, ("linear", "optimal")) == "linear":
        if stragglers is None:
            stragglers = min(round(float(profile.straggler_probs.sum())), n - 1)
        s = positive_int("stragglers", stragglers, minimum=0)
        if s >= n:
            raise InputError(f"`stragglers` must be < N = {n}, got {s}.")
        return Scheme(
            name="expander",
            encoding=enc,
            bits=bits,
            straggler_probs=profile.straggler_probs,
            decoding=np.full(n, n / (n - s)),
            description=f"{label}, fixed linear decoder N/(N-s), s = {s}",
        )
    return Scheme(
        name="expander",
        encoding=enc,
        bits=bits,
        straggler_probs=profile.straggler_probs,
        decoder=LeastSquaresDecoder(enc),
        description=f"{label}, least-squares decoder",
        local_decoder=True,
    )


def expander_ls(profile, budget, *, rng=None, replication=2, **options) -> Scheme:
    """:func:`expander` with the least-squares decoder (``decoder="optimal"``)."""
    scheme = expander(profile, budget, rng=rng, replication=replication, decoder="optimal", **options)
    return replace(scheme, name="expander-ls")


# name, factory, label, plot style in the studies, and whether the training studies train it
# (description: the factory's first docstring line). The training studies keep this order.
for _name, _factory, _label, _style, _training in (
    ("centralized", centralized, "centralized SGD", {"color": "black", "linestyle": "-"}, True),
    ("joint", joint, "joint design (ours)", {"color": "tab:red", "linestyle": "-", "linewidth": 2.2}, True),
    ("osgc", osgc, "OSGC, equal bits", {"color": "tab:blue", "linestyle": "--"}, True),
    ("sgc", sgc, "SGC", {"color": "tab:green", "linestyle": "--"}, True),
    ("sgc-1bit", sgc_1bit, "SGC, 1-bit signs", {"color": "tab:olive", "linestyle": ":"}, True),
    ("bgc", bgc, "BGC", {"color": "tab:purple", "linestyle": "-."}, True),
    ("ehd", ehd, "EHD", {"color": "tab:brown", "linestyle": "-."}, True),
    ("od", od, "OD", {"color": "tab:pink", "linestyle": ":"}, True),
    ("is-sgd", is_sgd, "IS-SGD", {"color": "tab:gray", "linestyle": "--"}, True),
    ("random-sparse", random_sparse, "random sparse code (LS)", None, False),
    ("expander", expander, "expander code", None, False),
    ("expander-ls", expander_ls, "expander code (LS)", None, False),
):
    register_scheme(_name, _factory, label=_label, style=_style, training=_training)

__all__ = [
    "Centralized",
    "bgc",
    "centralized",
    "ehd",
    "expander",
    "expander_ls",
    "expander_lower_bound",
    "expander_upper_bound",
    "fractional_repetition_groups",
    "is_sgd",
    "joint",
    "margulis_adjacency",
    "od",
    "osgc",
    "random_regular_adjacency",
    "random_sparse",
    "regular_assignment",
    "second_eigenvalue",
    "sgc",
    "sgc_1bit",
]
