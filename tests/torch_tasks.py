"""A small torch task for the gloo suites (tests/test_torch_*.py): a linear classifier on random data."""

from __future__ import annotations

import torch

from gcdesign.torch.task import TorchTask


def small_task(seed=0, n=96):
    """A `TorchTask`: `n` samples of 6 features, two classes split by a line, a seeded linear model."""
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 6, generator=gen)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).long()
    torch.manual_seed(seed)
    model = torch.nn.Linear(6, 2)
    return TorchTask(model, torch.nn.CrossEntropyLoss(reduction="none"), torch.utils.data.TensorDataset(X, y))
