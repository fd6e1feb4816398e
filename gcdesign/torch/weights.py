r"""Coded sample weights: one backward pass gives worker i's coded gradient.

Worker :math:`i` of a design holds the partitions :math:`j` with :math:`b_{ij} \ne 0`
and sends :math:`x_i = \sum_j b_{ij} g_j`, :math:`g_j` the gradient of partition
:math:`j`'s summed loss (times a constant `scale`, e.g. :math:`1/n` for the mean
loss). The gradient is linear in the loss, so with the per-sample weights
:math:`w_s = \mathrm{scale} \cdot b_{i,\pi(s)}` (:math:`\pi(s)` the partition of sample
:math:`s`; zero where the worker holds nothing)

.. math::

    \nabla_\theta \sum_s w_s \ell_s(\theta) = \mathrm{scale} \sum_j b_{ij} \sum_{s \in P_j}
    \nabla \ell_s(\theta) = x_i ,

one forward and one backward pass over the worker's own samples
(:func:`sample_weights`). The mini-batch form (:func:`batch_weights`) draws
:math:`m` samples of each held partition without replacement, from the stream
``default_rng([seed, BATCH, round, j])`` that every worker holding :math:`j` shares,
and weighs them :math:`\mathrm{scale} \cdot b_{ij} |P_j| / m`, so its expectation is
:math:`x_i` and the workers that share a partition use the same batch of it (the
code's cancellations stay exact). :class:`WorkerSampler` hands a
``torch.utils.data.DataLoader`` only the worker's own samples.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch

from .._validate import InputError, positive_int
from ..schemes import check_scheme

#: Stream tag of the mini-batch of ``(round, partition)`` (the cluster runtime's own).
BATCH = 2


def _held(scheme, worker: int) -> tuple[np.ndarray, np.ndarray]:
    from ..runtime import partitions_of

    held = partitions_of(scheme, worker)
    row = scheme.encoding[[worker]].toarray().ravel()
    return held, np.asarray(row[held], dtype=np.float64)


def check_sample_partition(sample_partition, partitions: int) -> np.ndarray:
    """`sample_partition` as an int64 array of partition indices in ``[0, K)`` (one per sample)."""
    if isinstance(sample_partition, torch.Tensor):
        sample_partition = sample_partition.detach().cpu().numpy()
    arr = np.asarray(sample_partition)
    if arr.ndim != 1 or arr.size == 0 or arr.dtype.kind not in "iu":
        raise InputError(
            f"`sample_partition` must be a non-empty 1-D array of integers (one partition per sample), "
            f"got shape {arr.shape} ({arr.dtype})."
        )
    bad = (arr < 0) | (arr >= partitions)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"`sample_partition[{k}]` = {int(arr[k])} is not a partition of the scheme: it must be in "
            f"[0, {partitions - 1}]."
        )
    return arr.astype(np.int64, copy=False)


def sample_weights(scheme, worker: int, sample_partition, *, scale: float = 1.0, dtype=None) -> torch.Tensor:
    r"""Per-sample weights :math:`w_s = \mathrm{scale}\, b_{i,\pi(s)}` over the whole data set.

    The gradient of :math:`\sum_s w_s \ell_s` is worker `worker`'s coded gradient
    :math:`x_i = \sum_j b_{ij} g_j` (module docstring); the weight is zero on every
    sample of a partition the worker does not hold.

    Parameters
    ----------
    scheme : Design or Scheme
    worker : int
    sample_partition : array_like of int (n,)
        The partition of each sample, in ``[0, K)``.
    scale : float
        Constant factor (``1 / n``: the gradient of the mean loss).
    dtype : torch.dtype, optional
        Default: torch's default dtype.

    Examples
    --------
    >>> from gcdesign import design, load_example
    >>> d = design(load_example("toy-n8"), bits_per_worker=4)
    >>> w = sample_weights(d, 0, np.arange(d.partitions))
    >>> held = np.flatnonzero(w.numpy())
    >>> bool(np.allclose(w.numpy()[held], d.encoding.toarray()[0, held]))
    True
    """
    scheme = check_scheme(scheme)
    part = check_sample_partition(sample_partition, scheme.encoding.shape[1])
    held, coeffs = _held(scheme, worker)
    row = np.zeros(scheme.encoding.shape[1])
    row[held] = coeffs * _scale(scale)
    return torch.as_tensor(row[part], dtype=dtype or torch.get_default_dtype())


def batch_weights(
    scheme,
    worker: int,
    sample_partition,
    *,
    batch_size: int,
    seed: int,
    round_index: int,
    scale: float = 1.0,
    dtype=None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The mini-batch form: (sample indices, weights) of worker `worker` in round `round_index`.

    For each held partition :math:`j` (increasing), ``min(batch_size, |P_j|)`` of its
    samples drawn without replacement by ``default_rng([seed, BATCH, round_index, j])``
    (the same batch on every worker that holds :math:`j`), each weighted
    :math:`\mathrm{scale}\, b_{ij} |P_j| / m`: the weighted loss's gradient has
    expectation :math:`x_i`. A batch as large as the partition is the whole partition
    (then this is :func:`sample_weights` restricted to the worker's samples).
    """
    scheme = check_scheme(scheme)
    part = check_sample_partition(sample_partition, scheme.encoding.shape[1])
    batch_size = positive_int("batch_size", batch_size)
    held, coeffs = _held(scheme, worker)
    order = np.argsort(part, kind="stable")
    bounds = np.searchsorted(part[order], np.arange(scheme.encoding.shape[1] + 1))
    indices, weights = [], []
    factor = _scale(scale)
    for j, coeff in zip(held, coeffs, strict=True):
        members = order[bounds[j] : bounds[j + 1]]  # increasing sample index (stable sort)
        if members.size == 0:
            continue
        m = min(batch_size, members.size)
        if m < members.size:
            rng = np.random.default_rng([int(seed), BATCH, int(round_index), int(j)])
            members = np.sort(rng.choice(members, size=m, replace=False))
        indices.append(members)
        weights.append(np.full(m, factor * coeff * (bounds[j + 1] - bounds[j]) / m))
    idx = np.concatenate(indices) if indices else np.zeros(0, np.int64)
    wts = np.concatenate(weights) if weights else np.zeros(0)
    return torch.as_tensor(idx, dtype=torch.int64), torch.as_tensor(
        wts, dtype=dtype or torch.get_default_dtype()
    )


def _scale(scale) -> float:
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real) or not np.isfinite(scale):
        raise InputError(f"`scale` must be a finite number, got {scale!r}.")
    return float(scale)


class WorkerSampler(torch.utils.data.Sampler):
    """The samples of one worker, round by round: a ``DataLoader`` sampler that never leaves them.

    Iterating yields the indices of the current round (:meth:`set_round`): every sample
    of the worker's partitions (``batch_size=None``), or the shared mini-batch of each
    partition (:func:`batch_weights`). :attr:`weights` is the weight of every sample of
    the data set in the current round (zero outside the round's samples), so a batch
    ``(x, y, index)`` gives the coded loss ``(sampler.weights[index] * loss(x, y)).sum()``;
    :class:`WeightedDataset` adds the weight to each item.

    Examples
    --------
    >>> from gcdesign import design, load_example
    >>> d = design(load_example("toy-n8"), bits_per_worker=4)
    >>> part = np.repeat(np.arange(d.partitions), 3)  # three samples per partition
    >>> sampler = WorkerSampler(d, 0, part)
    >>> sorted(set(part[list(sampler)])) == sorted(np.flatnonzero(d.encoding.toarray()[0]))
    True
    """

    def __init__(self, scheme, worker: int, sample_partition, *, batch_size=None, seed: int = 0, scale=1.0):
        self.scheme = check_scheme(scheme)
        self.worker = int(worker)
        self.sample_partition = check_sample_partition(sample_partition, self.scheme.encoding.shape[1])
        self.batch_size = None if batch_size is None else positive_int("batch_size", batch_size)
        self.seed = int(seed)
        self.scale = _scale(scale)
        self.set_round(0)

    def set_round(self, round_index: int) -> None:
        """Draw the samples and weights of round `round_index` (the same on every worker)."""
        self.round_index = int(round_index)
        n = self.sample_partition.size
        if self.batch_size is None:
            full = sample_weights(self.scheme, self.worker, self.sample_partition, scale=self.scale)
            self.indices = torch.as_tensor(np.flatnonzero(full.numpy()), dtype=torch.int64)
            self.weights = full
            return
        idx, wts = batch_weights(
            self.scheme,
            self.worker,
            self.sample_partition,
            batch_size=self.batch_size,
            seed=self.seed,
            round_index=self.round_index,
            scale=self.scale,
        )
        self.indices = idx
        self.weights = torch.zeros(n, dtype=wts.dtype)
        self.weights[idx] = wts

    def __iter__(self):
        return iter(self.indices.tolist())

    def __len__(self) -> int:
        return int(self.indices.numel())


class WeightedDataset(torch.utils.data.Dataset):
    """`dataset` with each item followed by its weight under `sampler` (``(*item, weight)``)."""

    def __init__(self, dataset, sampler: WorkerSampler):
        self.dataset, self.sampler = dataset, sampler

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index):
        item = self.dataset[index]
        item = item if isinstance(item, tuple) else (item,)
        return (*item, self.sampler.weights[index])


def worker_loader(
    dataset,
    scheme,
    worker: int,
    sample_partition,
    *,
    batch_size=None,
    seed: int = 0,
    scale=1.0,
    loader_batch: int = 256,
    **loader_options,
) -> torch.utils.data.DataLoader:
    """A ``DataLoader`` over worker `worker`'s own samples, each item followed by its weight.

    ``loader.sampler.set_round(r)`` moves to round `r` (a new mini-batch); the coded loss
    of a batch ``(*inputs, target, weight)`` is ``(weight * per_sample_loss).sum()``,
    summed over the loader's batches.
    """
    sampler = WorkerSampler(scheme, worker, sample_partition, batch_size=batch_size, seed=seed, scale=scale)
    return torch.utils.data.DataLoader(
        WeightedDataset(dataset, sampler), batch_size=loader_batch, sampler=sampler, **loader_options
    )


__all__ = [
    "BATCH",
    "WeightedDataset",
    "WorkerSampler",
    "batch_weights",
    "check_sample_partition",
    "sample_weights",
    "worker_loader",
]
