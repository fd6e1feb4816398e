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
