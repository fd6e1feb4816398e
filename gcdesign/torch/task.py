r"""What the torch runtime trains: any ``nn.Module`` with a per-sample loss and a data set.

A :class:`TorchTask` carries the model, the per-sample loss
``loss(outputs, targets) -> (batch,)`` (``reduction="none"``), the training data
set (items ``(input, target)``; a ``TensorDataset`` is indexed in one go), the
partition of every training sample (default: ``K`` consecutive blocks whose sizes
differ by at most one, as in the numpy harness) and an optional test set.

The partition gradient is :math:`g_j = \frac1n \sum_{s \in P_j} \nabla \ell_s`, so
:math:`\sum_j g_j` is the gradient of the mean training loss (the numpy harness's
convention): the weights of :func:`gcdesign.torch.sample_weights` with
``scale = 1 / n``. A :class:`TorchShard` is one process's side of a run: the
scheme, the samples of the partitions its logical workers hold (and no others), and
one replica of the model per logical worker it hosts, so logical workers computing in
threads of one process never share parameters. After a redesign it keeps the
partitions it still needs and takes the ones it lacked (:meth:`TorchShard.reshard`).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from .. import runtime
from .._validate import InputError
from ..training.problems import split_sizes
from .codec import encode, flat_grad, flat_params, set_flat_params
from .weights import batch_weights, check_sample_partition, sample_weights

QUANTIZE = 1  # the stream tag of a message's quantizer key (gcdesign.cluster.emulation.QUANTIZE)


@dataclass(eq=False)
class TorchTask:
    """A model, its per-sample loss and its data (module docstring).

    Attributes
    ----------
    model : torch.nn.Module
        Its trainable parameters are the model vector ``w`` (in ``parameters()`` order).
    loss : callable
        ``loss(outputs, targets)`` -> per-sample losses (1-D, one per sample).
    dataset : torch.utils.data.Dataset
        Training items ``(input, target)``.
    sample_partition : array of int (n,), optional
        The partition of each training sample (default: consecutive blocks, see
        :meth:`partition_of`).
    test_dataset : Dataset, optional
        Held-out items for :meth:`evaluate`'s accuracy.
    name : str
    batch : int
        Samples per forward pass when a worker or :meth:`evaluate` goes through the data.
    """

    model: torch.nn.Module
    loss: Callable
    dataset: object
    sample_partition: np.ndarray | None = None
    test_dataset: object | None = None
    name: str = "torch"
    batch: int = 4096
    _cache: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        if not isinstance(self.model, torch.nn.Module):
            raise InputError(f"`model` must be a torch.nn.Module, got {type(self.model).__name__}.")
        if not callable(self.loss):
            raise InputError("`loss` must be callable: loss(outputs, targets) -> per-sample losses.")
        if len(self.dataset) < 1:
            raise InputError("`dataset` is empty.")

    @property
    def n_samples(self) -> int:
        return len(self.dataset)

    @property
    def dim(self) -> int:
        return int(sum(p.numel() for p in self.model.parameters() if p.requires_grad))

    def partition_of(self, partitions: int) -> np.ndarray:
        """The partition of every training sample (the given one, or `partitions` consecutive blocks)."""
        if self.sample_partition is not None:
            return check_sample_partition(self.sample_partition, partitions)
        if partitions > self.n_samples:
            raise InputError(
                f"the scheme has K = {partitions} partitions but the data set only {self.n_samples} samples."
            )
        return np.repeat(np.arange(partitions), split_sizes(self.n_samples, partitions))

    def initial_point(self) -> np.ndarray:
        """The model's current parameters as a float64 vector."""
        return flat_params(self.model).to(torch.float64).numpy().copy()

    def items(self, indices, dataset=None):
        """``(inputs, targets)`` of the samples `indices` (a TensorDataset is indexed at once)."""
        data = self.dataset if dataset is None else dataset
        idx = torch.as_tensor(indices, dtype=torch.int64)
        if isinstance(data, torch.utils.data.TensorDataset):
            return tuple(t[idx] for t in data.tensors[:2])
        pairs = [data[int(k)] for k in idx]
        return torch.stack([torch.as_tensor(p[0]) for p in pairs]), torch.as_tensor([p[1] for p in pairs])

    def evaluate(self, w, *, model=None) -> tuple[float, float]:
        """(mean training loss, test accuracy or NaN) of the model vector `w`."""
        model = self._eval_model() if model is None else model
        set_flat_params(model, torch.as_tensor(w))
        model.eval()
        total, correct, seen = 0.0, 0, 0
        with torch.no_grad():
            for lo in range(0, self.n_samples, self.batch):
                X, y = self.items(range(lo, min(lo + self.batch, self.n_samples)))
                total += float(self.loss(model(X), y).sum())
            accuracy = math.nan
            if self.test_dataset is not None:
                n_test = len(self.test_dataset)
                for lo in range(0, n_test, self.batch):
                    X, y = self.items(range(lo, min(lo + self.batch, n_test)), self.test_dataset)
                    correct += int((model(X).argmax(dim=1) == y).sum())
                    seen += y.numel()
                accuracy = correct / seen
        model.train()
        return total / self.n_samples, accuracy

    def _eval_model(self):
        if "eval" not in self._cache:
            self._cache["eval"] = copy.deepcopy(self.model)
        return self._cache["eval"]


class TorchShard:
    """One process's logical workers: their partitions' data, a model replica each, their weights.

    `partitions` are the partitions this process holds (None: all of them); their
    samples are copied out of the task's data set once, and a worker's forward pass
    reads only them (a sample of another partition is refused). :meth:`reshard`
    switches to another scheme with the partitions it keeps and those it is sent.
    """

    def __init__(self, task: TorchTask, scheme, *, batch_size: int | None = None, partitions=None, data=None):
        self.task, self.scheme, self.batch_size = task, scheme, batch_size
        self.partition = task.partition_of(scheme.encoding.shape[1])
        self.scale = 1.0 / task.n_samples
        self.replicas: dict[int, torch.nn.Module] = {}
        self.full: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        if data is None:
            held = range(scheme.encoding.shape[1]) if partitions is None else partitions
            data = {int(j): task.items(self.members(j)) for j in held}
        self.data = data  # partition -> (inputs, targets) of its samples, in data-set order
        self.local = np.full(task.n_samples, -1, dtype=np.int64)  # data-set index -> row of self.inputs
        held = sorted(self.data)
        for j, (lo, hi) in zip(held, _spans([self.data[j][1].shape[0] for j in held]), strict=True):
            members = self.members(j)
            if members.size != hi - lo:
                raise InputError(
                    f"partition {j} arrived with {hi - lo} samples; the data set has {members.size} in it."
                )
            self.local[members] = np.arange(lo, hi)
        self.inputs = torch.cat([self.data[j][0] for j in held]) if held else None
        self.targets = torch.cat([self.data[j][1] for j in held]) if held else None

    def members(self, j: int) -> np.ndarray:
        """The data-set indices of partition `j`'s samples (ascending)."""
        return np.flatnonzero(self.partition == j)

    def items(self, indices) -> tuple[torch.Tensor, torch.Tensor]:
        """``(inputs, targets)`` of the data-set samples `indices`, from this shard's partitions only."""
        rows = self.local[np.asarray(indices, dtype=np.int64)]
        if rows.size and rows.min() < 0:
            missing = sorted({int(j) for j in self.partition[np.asarray(indices)[rows < 0]]})
            raise RuntimeError(f"this shard does not hold partition(s) {missing}.")
        rows = torch.from_numpy(rows)
        return self.inputs[rows], self.targets[rows]

    def reshard(self, scheme, received: dict, keep) -> TorchShard:
        """This process after a redesign: `scheme`, the partitions of `keep` it held, and `received`
        (``{partition: (inputs, targets)}``, those it lacked). The model replicas carry over."""
        keep = set(int(j) for j in keep)
        data = {j: pair for j, pair in self.data.items() if j in keep}
        data.update({int(j): pair for j, pair in received.items()})
        if set(data) != keep:
            raise RuntimeError(f"the new scheme needs partitions {sorted(keep - set(data))}, not received.")
        out = TorchShard(self.task, scheme, batch_size=self.batch_size, data=data)
        out.replicas = self.replicas  # one thread per logical worker uses its replica: never shared at once
        return out

    def sends(self, worker: int) -> bool:
        """Whether `worker` sends a message (bits > 0 and some partition)."""
        return bool(self.scheme.bits[worker] > 0 and runtime.partitions_of(self.scheme, worker).size)

    def samples(self, worker: int, round_index: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(indices, weights) of `worker`'s samples in round `round_index`."""
        if self.batch_size is not None:
            return batch_weights(
                self.scheme,
                worker,
                self.partition,
                batch_size=self.batch_size,
                seed=seed,
                round_index=round_index,
                scale=self.scale,
            )
        if worker not in self.full:
            wts = sample_weights(self.scheme, worker, self.partition, scale=self.scale)
            idx = torch.nonzero(wts, as_tuple=True)[0]
            self.full[worker] = (idx, wts[idx])
        return self.full[worker]

    def coded_gradient(self, worker: int, w, round_index: int, seed: int) -> torch.Tensor:
        """:math:`x_i` at the model vector `w`: one weighted forward and backward pass over its samples."""
        model = self.replicas.get(worker)
        if model is None:
            model = self.replicas[worker] = copy.deepcopy(self.task.model)
        set_flat_params(model, torch.as_tensor(w))
        model.zero_grad(set_to_none=True)
        idx, wts = self.samples(worker, round_index, seed)
        for lo in range(0, idx.numel(), self.task.batch):
            X, y = self.items(idx[lo : lo + self.task.batch])
            losses = self.task.loss(model(X), y)
            (wts[lo : lo + self.task.batch].to(losses.dtype) * losses).sum().backward()
        return flat_grad(model)

    def message(self, worker: int, w, round_index: int, seed: int) -> bytes | None:
        """The bytes of `worker`'s coded message at `w` (None when it sends nothing)."""
        if not self.sends(worker):
            return None
        x = self.coded_gradient(worker, w, round_index, seed)
        rng = np.random.default_rng([seed, QUANTIZE, round_index, worker])
        return encode(self.scheme, worker, x, rng=rng).to_bytes()


def _spans(sizes) -> list[tuple[int, int]]:
    """Consecutive ``(start, stop)`` rows of blocks of `sizes`."""
    ends = np.cumsum(sizes, dtype=np.int64)
    return [(int(e - s), int(e)) for s, e in zip(sizes, ends, strict=True)]


__all__ = ["TorchShard", "TorchTask"]
