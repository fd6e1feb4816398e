"""Fuzz: malformed profiles (dicts and JSON files) load correctly or raise one InputError line."""

import hashlib
import json

import numpy as np
import pytest
from fuzz_strategies import FUZZ, attempt, damaged_bytes, json_text, mutated, scratch_directory
from hypothesis import given, settings
from hypothesis import strategies as st

from gcdesign import ClusterProfile
from gcdesign.profile import load_profile, save_profile

GOOD = ClusterProfile([0.1, 5e-324, 0.5], dim=7, partitions=2, names=["a", "b", "c"]).to_dict()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    with scratch_directory(tmp_path_factory, "fuzz-profiles") as directory:
        good = save_profile(ClusterProfile.from_dict(GOOD), directory / "good.json")
        yield directory, good, hashlib.sha256(good.read_bytes()).hexdigest()


def _check_loaded(profile):
    p = profile.straggler_probs
    assert p.dtype == np.float64 and p.ndim == 1 and np.all((p >= 0) & (p <= 1)) and np.any(p < 1)
    assert type(profile.dim) is int and profile.dim >= 1 and type(profile.partitions) is int
    assert len(set(profile.names)) == len(profile.names) == p.size
    assert all(type(n) is str for n in profile.names)
    assert ClusterProfile.from_dict(json.loads(json.dumps(profile.to_dict()))) == profile  # stable


@settings(FUZZ, max_examples=max(FUZZ.max_examples // 3, 1))  # the files below carry the 1000
@given(data=mutated(GOOD))
def test_profile_dicts(data):
    profile = attempt(lambda: ClusterProfile.from_dict(data))
    if data == GOOD:
        assert profile == ClusterProfile.from_dict(GOOD)
    if profile is not None:
        _check_loaded(profile)


@FUZZ
@given(content=st.one_of(mutated(GOOD).map(json_text), damaged_bytes(json_text(GOOD))))
def test_profile_files(workdir, content):
    directory, good, digest = workdir
    path = directory / "fuzzed.json"
    path.write_bytes(content)
    profile = attempt(lambda: load_profile(path))
    if profile is not None:
        _check_loaded(profile)
    assert hashlib.sha256(good.read_bytes()).hexdigest() == digest  # the good file is never touched
