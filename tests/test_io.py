import json

import numpy as np
import pytest

from gcdesign import DesignError, InputError, design, load_design, load_example, save_design


@pytest.fixture(scope="module")
def paper_design():
    return design(load_example("paper-n50"), bits_per_worker=7)


def _same(a, b):
    assert a.profile == b.profile
    assert np.array_equal(a.bits, b.bits) and np.array_equal(a.decoding, b.decoding)
    assert a.encoding.shape == b.encoding.shape
    assert np.array_equal(a.encoding.toarray(), b.encoding.toarray())  # bitwise
    assert a.kappa == b.kappa and a.bound == b.bound and a.budget == b.budget
    assert a.load == b.load and a.components == b.components
    assert np.array_equal(a.row_mass, b.row_mass)


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_round_trip_is_bitwise(tmp_path, paper_design, suffix):
    path = save_design(paper_design, tmp_path / f"d{suffix}")
    _same(paper_design, load_design(path))


def test_json_keys_for_other_tools(tmp_path, paper_design):
    data = json.loads(save_design(paper_design, tmp_path / "d.json").read_text())
    for key in (
        "format",
        "version",
        "budget",
        "kappa",
        "bits",
        "decoding",
        "encoding",
        "profile",
        "bound",
        "load",
        "options",
    ):
        assert key in data
    assert data["format"] == "gcdesign.design"
    assert set(data["encoding"]) == {"shape", "rows", "cols", "values"}
    assert {"straggler_probs", "dim", "partitions"} <= set(data["profile"])
    # a reader with only json + numpy reproduces (U)
    enc = np.zeros(data["encoding"]["shape"])
    enc[data["encoding"]["rows"], data["encoding"]["cols"]] = data["encoding"]["values"]
    p = np.array(data["profile"]["straggler_probs"])
    np.testing.assert_allclose(((1 - p) * np.array(data["decoding"])) @ enc, 1.0, atol=1e-9)


def _tamper(tmp_path, paper_design, edit):
    path = save_design(paper_design, tmp_path / "d.json")
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda d: d["encoding"]["values"].__setitem__(0, d["encoding"]["values"][0] * 1.01),
            r"unbiasedness \(U\) fails",
        ),
        (lambda d: d.__setitem__("version", "3.0"), "format `version` 3.0 is not supported"),
        (lambda d: d.__setitem__("version", "one"), "is not of the form 'major.minor'"),
        (lambda d: d.__setitem__("format", "other"), "`format` is 'other'"),
        (lambda d: d["bits"].__setitem__(0, d["bits"][0] + 1), "bits sum to 351, not the budget 350"),
        (lambda d: d.__setitem__("bound", d["bound"] * 1.1), "stored `bound`"),
        (lambda d: d.__setitem__("bits", d["bits"][:-1]), "`bits` has 49 entries, expected N = 50"),
        (lambda d: d["profile"]["straggler_probs"].__setitem__(3, 1.5), r"`straggler_probs\[3\]` = 1.5"),
        (
            lambda d: d["encoding"].__setitem__("rows", [99] + d["encoding"]["rows"][1:]),
            r"`encoding.rows\[0\]` = 99 must be an integer in \[0, 49\]",
        ),
        (lambda d: d.pop("decoding"), "missing field `decoding`"),
        (lambda d: d["encoding"].__setitem__("shape", [50, 49]), r"`encoding.shape` is \[50, 49\]"),
    ],
)
def test_tampered_files_are_refused(tmp_path, paper_design, edit, message):
    with pytest.raises(InputError, match=message):
        load_design(_tamper(tmp_path, paper_design, edit))


def test_consistent_but_suboptimal_masses_are_refused(tmp_path, paper_design):
    # swap two workers' bits: bits still sum to B and (U) may hold, but the masses no longer match
    def edit(d):
        d["bits"][0], d["bits"][1] = 6, 8

    with pytest.raises(DesignError):
        load_design(_tamper(tmp_path, paper_design, edit))


def test_newer_minor_version_warns(tmp_path, paper_design):
    path = _tamper(tmp_path, paper_design, lambda d: d.__setitem__("version", "2.9"))
    with pytest.warns(UserWarning, match="newer than 2.0"):
        load_design(path)


def test_malformed_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "gcdesign.design", "version": NaN}')
    with pytest.raises(InputError, match="is not valid JSON"):
        load_design(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(InputError, match="expected a JSON object"):
        load_design(bad)
    npz = tmp_path / "bad.npz"
    npz.write_bytes(b"not a zip")
    with pytest.raises(InputError, match="is not a valid npz file"):
        load_design(npz)
    with pytest.raises(InputError, match=r"must end in \.json or \.npz"):
        load_design(tmp_path / "d.pkl")
    with pytest.raises(InputError, match="No such file"):
        load_design(tmp_path / "missing.json")


def test_npz_with_pickled_object_is_refused(tmp_path, paper_design):
    path = save_design(paper_design, tmp_path / "d.npz")
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["metadata"] = np.array([{"evil": 1}], dtype=object)
    np.savez(path, **arrays)
    with pytest.raises(InputError, match="holds a Python object array, which would need pickle: refused"):
        load_design(path)


def test_atomic_write_leaves_old_file_on_failure(tmp_path, paper_design, monkeypatch):
    path = save_design(paper_design, tmp_path / "d.json")
    before = path.read_bytes()

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(json, "dumps", boom)
    with pytest.raises(RuntimeError):
        save_design(paper_design, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["d.json"]  # no temporary file left


def test_written_file_has_ordinary_permissions(tmp_path, paper_design):
    import os

    mask = os.umask(0o022)
    try:
        path = save_design(paper_design, tmp_path / "d.json")
    finally:
        os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o644


def test_options_of_old_files_read_under_the_new_name(tmp_path, paper_design):
    # files written by 0.1 name the quantization option `kappa_policy`; it loads as `quantization`
    data = json.loads(save_design(paper_design, tmp_path / "d.json").read_text())
    assert data["options"]["quantization"] == paper_design.options["quantization"]
    data["options"]["kappa_policy"] = data["options"].pop("quantization")
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data))
    back = load_design(path)
    assert back.options["quantization"] == paper_design.options["quantization"]
    assert "kappa_policy" not in back.options
    _same(paper_design, back)
