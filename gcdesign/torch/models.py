"""Models for the torch runtime: an MLP and a small CNN on the bundled digits, a synthetic task at d ~ 1e6.

Each builder returns a :class:`~gcdesign.torch.TorchTask` (float32 model, cross-entropy
per sample) whose data, train / test split and consecutive partitions are those of the
numpy harness's MLP problems (:func:`gcdesign.training.digits_mlp_problem`,
:func:`gcdesign.training.synthetic_mlp_problem`), so the two runtimes train on the same
samples. Needs scikit-learn for the digits (``pip install 'gcdesign[studies]'``).

Examples
--------
>>> task = digits_task("cnn", partitions=10, rng=0)
>>> task.name, task.dim, task.n_samples
('digits-cnn', 9930, 1438)
>>> digits_task("mlp", partitions=10, hidden=32).dim
2410
"""

from __future__ import annotations

import torch

from .._validate import InputError, choice
from ..training.mlp import digits_mlp_problem, mlp_width, synthetic_mlp_problem
from .task import TorchTask

MODELS = ("mlp", "cnn")


class DigitsCNN(torch.nn.Module):
    """Two 3x3 convolutions (16 and 32 channels, ReLU), a 2x2 max pool and a linear layer on 8x8 digits."""

    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(1, 16, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(16, 32, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
        )
        self.head = torch.nn.Linear(32 * 4 * 4, 10)

    def forward(self, x):
        return self.head(self.features(x.reshape(-1, 1, 8, 8)).flatten(1))


def mlp(sizes) -> torch.nn.Sequential:
    """A ReLU MLP with these layer sizes (input, hidden..., output)."""
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=False):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers[:-1])


def _task(problem, model, name) -> TorchTask:
    def tensors(X, y):
        return torch.utils.data.TensorDataset(
            torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y, dtype=torch.int64)
        )

    return TorchTask(
        model,
        torch.nn.CrossEntropyLoss(reduction="none"),
        tensors(problem.features, problem.targets),
        test_dataset=tensors(problem.test_features, problem.test_targets),
        name=name,
    )


def digits_task(model: str = "mlp", *, partitions: int = 50, hidden: int = 100, rng=0) -> TorchTask:
    """The digits (1797 images, 20 % held out) with an MLP (one hidden layer) or :class:`DigitsCNN`.

    `rng` shuffles the split and seeds torch's initialization of the model.
    """
    choice("model", model, MODELS)
    problem = digits_mlp_problem(hidden=hidden, partitions=partitions, rng=rng)
    torch.manual_seed(_seed(rng))
    net = DigitsCNN() if model == "cnn" else mlp(problem.layer_sizes)
    return _task(problem, net, f"digits-{model}")


def synthetic_task(
    *, dim: int = 10**6, partitions: int = 50, n_samples: int = 2000, n_features: int = 1000, rng=0
) -> TorchTask:
    """A seeded teacher-labelled classification set (10 classes) with a one-hidden-layer MLP of about `dim`
    parameters (:func:`gcdesign.training.synthetic_mlp_problem`'s data)."""
    width = mlp_width(dim, n_features, 10)
    problem = synthetic_mlp_problem(
        hidden=4, partitions=partitions, n_samples=n_samples, n_features=n_features, rng=rng
    )  # the data only; the torch model has the width of `dim`
    torch.manual_seed(_seed(rng))
    return _task(problem, mlp((n_features, width, 10)), "synthetic-mlp")


def _seed(rng) -> int:
    if rng is None:
        return int(torch.seed() % 2**31)
    if isinstance(rng, bool) or not isinstance(rng, int) or rng < 0:
        raise InputError(f"`rng` must be None or an integer >= 0 here (it seeds torch), got {rng!r}.")
    return rng


__all__ = ["MODELS", "DigitsCNN", "digits_task", "mlp", "synthetic_task"]
