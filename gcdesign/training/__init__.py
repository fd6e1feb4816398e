"""Training harness: GD, SGD and Adam on coded, quantized, straggling gradients.

* :mod:`~gcdesign.training.problems`: the convex problems (least squares, logistic, softmax);
* :mod:`~gcdesign.training.mlp`: the nonconvex one, a softmax MLP (docs/math.md, section 13);
* :mod:`~gcdesign.training.optimizers`: GD, SGD, Adam and its two-track decoder;
* :mod:`~gcdesign.training.schemes`: the schemes the harness trains by name (the scheme
  registry's: the centralized reference, the joint design, the baselines; their ``"+ef"``
  variants);
* :mod:`~gcdesign.training.loop`: the round loop, error feedback, :func:`train` and its
  :class:`History`.

The round-time model (:class:`gcdesign.latency.RoundTimes`) lives with the latency model.
"""

from .loop import PROBLEM_TYPES, ErrorFeedback, History, gradient_estimates, seeds, train
from .mlp import (
    ACTIVATIONS,
    MLPProblem,
    digits_mlp_problem,
    mlp_dim,
    mlp_problem,
    mlp_width,
    synthetic_mlp_problem,
)
from .optimizers import OPTIMIZERS, SCHEDULES, Optimizer, adam, gd, second_moment_shrinkage, sgd
from .problems import PROBLEM_KINDS, Problem, digits_problem, make_problem, synthetic_problem
from .schemes import EF_SUFFIX, Centralized, available_schemes, scheme_variant, training_scheme

__all__ = [
    "ACTIVATIONS",
    "Centralized",
    "EF_SUFFIX",
    "ErrorFeedback",
    "History",
    "MLPProblem",
    "OPTIMIZERS",
    "Optimizer",
    "PROBLEM_KINDS",
    "PROBLEM_TYPES",
    "Problem",
    "SCHEDULES",
    "adam",
    "available_schemes",
    "digits_mlp_problem",
    "digits_problem",
    "gd",
    "gradient_estimates",
    "make_problem",
    "mlp_dim",
    "mlp_problem",
    "mlp_width",
    "scheme_variant",
    "second_moment_shrinkage",
    "seeds",
    "sgd",
    "synthetic_mlp_problem",
    "synthetic_problem",
    "train",
    "training_scheme",
]
