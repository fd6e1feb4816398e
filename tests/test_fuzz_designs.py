"""Fuzz: malformed design files (JSON text, npz bytes) load as a valid design or raise one InputError line."""

import hashlib
import io
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from fuzz_strategies import FUZZ, attempt, damaged_bytes, json_text, json_values, mutated, scratch_directory
from hypothesis import given
from hypothesis import strategies as st

from gcdesign import ClusterProfile, design, load_design, save_design
from gcdesign.io import design_to_dict

CODE = design(
    ClusterProfile([0.1, 0.3, 0.5], dim=10, names=["a", "b", "c"]), bits_per_worker=3, allocator="equal"
)
GOOD = design_to_dict(CODE)


def _npz_arrays(code):
    with tempfile.TemporaryDirectory() as tmp:
        with np.load(save_design(code, Path(tmp) / "good.npz"), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return arrays, buffer.getvalue()


GOOD_ARRAYS, GOOD_NPZ = _npz_arrays(CODE)

numpy_arrays = st.one_of(
    st.lists(json_values.filter(lambda v: not isinstance(v, (list, dict))), max_size=4).map(
        lambda v: np.array(v, dtype=object) if any(isinstance(x, str) for x in v) else np.array(v)
    ),
    st.sampled_from(
        [
            np.array([True, False, True]),
            np.array([1 + 0j, 2, 3]),
            np.array(["1", "2", "3"]),
            np.zeros((3, 1)),
            np.array(3.0),
            np.array([np.nan, 0.0, 0.0]),
            np.array([2**40, 0, 0]),
            np.array([0, 1, 2], dtype=np.uint64),
            np.array([1.5, 2.0, 3.0], dtype=np.float32),
            np.array('{"format": "gcdesign.design"}'),
            np.array(json.dumps({**json.loads(str(GOOD_ARRAYS["metadata"])), "load": "x"})),
        ]
    ),
)


@st.composite
def npz_bytes(draw):
    arrays = dict(GOOD_ARRAYS)
    for _ in range(draw(st.integers(0, 2))):
        name = draw(st.sampled_from(sorted(arrays) + ["extra"]))
        if draw(st.integers(0, 4)) == 0:
            arrays.pop(name, None)
        else:
            arrays[name] = draw(numpy_arrays)
    buffer = io.BytesIO()
    try:
        np.savez(buffer, **arrays)
    except (ValueError, TypeError):  # numpy cannot store it: not a file anyone could hand us
        return GOOD_NPZ
    return buffer.getvalue()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    with scratch_directory(tmp_path_factory, "fuzz-designs") as directory:
        good = save_design(CODE, directory / "good.json")
        yield directory, good, hashlib.sha256(good.read_bytes()).hexdigest()


def _check_loaded(code):
    code.validate()  # (U), bits, shapes: the invariants hold on everything that loads
    assert int(code.bits.sum()) == code.budget and code.bits.dtype == np.int64
    assert code.encoding.shape == (code.n_workers, code.partitions)
    assert np.all(np.isfinite(code.encoding.data)) and np.all(np.isfinite(code.decoding))
    assert code.load == code.nnz / code.n_workers


def _run(workdir, name, content):
    directory, good, digest = workdir
    path = directory / name
    path.write_bytes(content)
    code = attempt(lambda: load_design(path))
    if code is not None:
        _check_loaded(code)
    assert hashlib.sha256(good.read_bytes()).hexdigest() == digest  # the good file is never touched
    return code


@FUZZ
@given(content=st.one_of(mutated(GOOD).map(json_text), damaged_bytes(json_text(GOOD))))
def test_design_json_files(workdir, content):
    code = _run(workdir, "fuzzed.json", content)
    if content == json_text(GOOD):
        assert code is not None and np.array_equal(code.bits, CODE.bits)


@FUZZ
@given(content=st.one_of(npz_bytes(), damaged_bytes(GOOD_NPZ)))
def test_design_npz_files(workdir, content):
    code = _run(workdir, "fuzzed.npz", content)
    if content == GOOD_NPZ:
        assert code is not None and (code.encoding != CODE.encoding).nnz == 0
