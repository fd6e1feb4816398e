import numpy as np
import pytest

import gcdesign


@pytest.fixture(autouse=True)
def _doctest_namespace(doctest_namespace):
    doctest_namespace["np"] = np
    doctest_namespace["gcdesign"] = gcdesign


def random_probs(rng, n, *, low=0.01, high=0.95):
    return rng.uniform(low, high, size=n)
