import numpy as np
import pytest

import gcdesign


@pytest.fixture(autouse=True)
def _doctest_namespace(doctest_namespace):
    doctest_namespace["np"] = np
    doctest_namespace["gcdesign"] = gcdesign


def random_probs(rng, n, *, low=0.01, high=0.95):
    return rng.uniform(low, high, size=n)


@pytest.fixture(scope="module")
def threads_client():
    """A Dask client on two in-process workers (fast start), for the short cluster runs."""
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def problem():
    """The cluster suites' problem: logistic regression, 200 samples of 6 features on 4 partitions."""
    from gcdesign.training import synthetic_problem

    return synthetic_problem("logistic", partitions=4, n_samples=200, n_features=6, rng=0, solve=False)


@pytest.fixture(scope="module")
def code(problem):
    """The cluster suites' design: `problem` on 4 workers of straggling probabilities 0.1 to 0.6, B/N = 6."""
    return gcdesign.design(gcdesign.ClusterProfile([0.1, 0.25, 0.4, 0.6], dim=problem.dim), bits_per_worker=6)
