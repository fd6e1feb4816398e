"""Training harness: GD, SGD and Adam on coded, quantized, straggling gradients.

* :mod:`~gcdesign.training.problems`: the convex problems (least squares, logistic, softmax);
* :mod:`~gcdesign.training.optimizers`: GD, SGD, Adam and its two-track decoder;
* :mod:`~gcdesign.training.schemes`: the schemes the harness knows by name (the centralized
  reference, the joint design, the baselines);
* :mod:`~gcdesign.training.loop`: the round loop, :func:`train` and its :class:`History`.

The round-time model (:class:`gcdesign.latency.RoundTimes`) lives with the latency model.
"""

from .loop import History, gradient_estimates, seeds, train
from .optimizers import OPTIMIZERS, SCHEDULES, Optimizer, adam, gd, second_moment_shrinkage, sgd
from .problems import PROBLEM_KINDS, Problem, digits_problem, make_problem, synthetic_problem
from .schemes import TRAINING_SCHEMES, Centralized, available_schemes, training_scheme

__all__ = [
    "Centralized",
    "History",
    "OPTIMIZERS",
    "Optimizer",
    "PROBLEM_KINDS",
    "Problem",
    "SCHEDULES",
    "TRAINING_SCHEMES",
    "adam",
    "available_schemes",
    "digits_problem",
    "gd",
    "gradient_estimates",
    "make_problem",
    "second_moment_shrinkage",
    "seeds",
    "sgd",
    "synthetic_problem",
    "train",
    "training_scheme",
]
