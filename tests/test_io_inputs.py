"""Numbers that are not numbers, files that are not what they claim: one InputError line naming the field."""

import json
import warnings

import numpy as np
import pytest

from gcdesign import ClusterProfile, InputError, design, load_design, load_example, save_design
from gcdesign._validate import int_array, positive_int, real, real_array
from gcdesign.profile import load_profile, save_profile

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(8) + b"\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"


@pytest.fixture(scope="module")
def toy():
    return design(load_example("toy-n8"), bits_per_worker=4)


def _one_line(exc):
    text = str(exc.value)
    assert "\n" not in text and text.strip() == text
    return text


# ------------------------------------------------------------------ helpers
@pytest.mark.parametrize(
    "value, message",
    [
        (True, r"`x` must be a finite real number, got True"),
        ("1.5", r"`x` must be a finite real number, got '1.5'"),
        (1 + 0j, r"`x` must be a finite real number, got \(1\+0j\)"),
        (float("nan"), r"got nan"),
        (10**400, r"`x` = 1000.*is too large for a float"),
        (-1.0, r"`x` must be a finite number >= 0, got -1.0"),
        ([1.0], r"got \[1.0\]"),
    ],
)
def test_real_refuses_what_is_not_a_real_number(value, message):
    with pytest.raises(InputError, match=message) as exc:
        real("x", value, low=0)
    _one_line(exc)


def test_real_shows_tiny_numbers_exactly():
    with pytest.raises(InputError, match=r"got 5e-324"):
        real("p", 5e-324, low=0, low_open=True, high=5e-324, high_open=True)


@pytest.mark.parametrize(
    "value, message",
    [
        (True, "got True"),
        (np.True_, "got np.True_|got True"),
        ("3", "got '3'"),
        (2.5, "got 2.5"),
        (float("inf"), "got inf"),
        (2**64, r"must be an integer >= 1, got 18446744073709551616"),
        (0, "got 0"),
    ],
)
def test_positive_int_refuses(value, message):
    with pytest.raises(InputError, match=message):
        positive_int("dim", value)


def test_array_entries_are_named_by_position():
    with pytest.raises(InputError, match=r"`v\[2\]` must be a real number, got 'x'"):
        real_array("v", [0.1, 0.2, "x"])
    with pytest.raises(InputError, match=r"`v\[0\]` must be a real number, got True"):
        real_array("v", [True, False])
    with pytest.raises(InputError, match=r"`v\[1\]` must be a real number, got \(1\+2j\)"):
        real_array("v", [1, 1 + 2j])
    with pytest.raises(InputError, match=r"`v\[1\]` = 1000.* is too large for a float"):
        real_array("v", [1, 10**400])
    with pytest.raises(InputError, match=r"`v\[1, 0\]` = inf must be a finite number"):
        real_array("v", [[1.0], [np.inf]], ndim=2)
    with pytest.raises(InputError, match=r"`v\[1\]` must be an integer, got 2.5"):
        int_array("v", [1, 2.5])
    with pytest.raises(InputError, match=r"`v` must be a 1-D array of integers, got 'abc'"):
        int_array("v", "abc")
    assert int_array("v", [1.0, 2.0]).dtype == np.int64


# ------------------------------------------------------------------ profiles
def _profile_file(tmp_path, data):
    path = tmp_path / "profile.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


GOOD = {"straggler_probs": [0.1, 0.2, 0.3], "dim": 10}


@pytest.mark.parametrize(
    "edit, message",
    [
        ({"dim": True}, r"profile: `dim` must be an integer >= 1, got True"),
        ({"dim": "10"}, r"`dim` must be an integer >= 1, got '10'"),
        ({"dim": 10**30}, r"`dim` must be an integer >= 1, got 1000000000000000000000000000000"),
        ({"partitions": 2.5}, r"`partitions` must be an integer >= 1, got 2.5"),
        ({"straggler_probs": [0.1, "0.2", 0.3]}, r"`straggler_probs\[1\]` must be a real number, got '0.2'"),
        ({"straggler_probs": [0.1, True, 0.3]}, r"`straggler_probs\[1\]` must be a real number, got True"),
        ({"straggler_probs": [0.1, 0.2, 1.5]}, r"`straggler_probs\[2\]` = 1.5 is not a probability"),
        ({"straggler_probs": "0.1"}, r"`straggler_probs` must be a 1-D array of numbers, got '0.1'"),
        ({"straggler_probs": [[0.1], [0.2, 0.3]]}, r"`straggler_probs` must be a rectangular array"),
        ({"names": "abc"}, r"`names` must be a list of 3 strings, got 'abc'"),
        ({"names": ["a", "b", "a"]}, r"`names\[2\]` = 'a' repeats `names\[0\]`"),
        ({"names": ["a", "b", 3]}, r"`names\[2\]` must be a string, got 3"),
        ({"partiton": 2}, r"profile: unknown field `partiton`; allowed: format, version, straggler_probs"),
        ({"format": "gcdesign.design"}, r"profile: `format` is 'gcdesign.design'"),
        ({"version": 1.0}, r"`version` 1.0 is not of the form 'major.minor'"),
    ],
)
def test_bad_profile_files(tmp_path, edit, message):
    with pytest.raises(InputError, match=message) as exc:
        load_profile(_profile_file(tmp_path, {**GOOD, **edit}))
    _one_line(exc)


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"straggler_probs": [0.1], "dim": 1e400}', r"`dim` must be an integer >= 1, got 1e400"),
        ('{"straggler_probs": [0.1], "dim": 1, "dim": 2}', r"field `dim` appears twice"),
        ('{"straggler_probs": [NaN], "dim": 1}', r"is not valid JSON: NaN is not allowed"),
        ('{"straggler_probs": [0.1], "dim": 1' + "0" * 5000 + "}", r"is not usable JSON: Exceeds the limit"),
        ("[" * 100_000 + "]" * 100_000, r"is not usable JSON: it is nested too deeply"),
        ("", r"is not valid JSON: Expecting value \(line 1\)"),
        ('{"straggler_probs": [5e-324, 1.0], "dim": 1}', None),
    ],
)
def test_bad_profile_json(tmp_path, text, message):
    path = _profile_file(tmp_path, text)
    if message is None:  # a denormal probability is a probability, kept exactly
        assert load_profile(path).straggler_probs[0] == 5e-324
        return
    with pytest.raises(InputError, match=message) as exc:
        load_profile(path)
    _one_line(exc)


@pytest.mark.parametrize("content", [PNG, b"\xff\xfe{}", "{}".encode("utf-16")])
def test_binary_files_are_refused_as_such(tmp_path, content, toy):
    for name, loader in (("p.json", load_profile), ("d.json", load_design)):
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(InputError, match=r"is not UTF-8 text \(byte \d+\); is it a binary file\?"):
            loader(path)
    npz = tmp_path / "d.npz"
    npz.write_bytes(content)
    with pytest.raises(InputError, match=r"is not a valid npz file \(not a zip archive\)"):
        load_design(npz)


def test_a_newer_minor_profile_warns_and_ignores_unknown_fields(tmp_path):
    path = _profile_file(tmp_path, {**GOOD, "version": "1.7", "future_field": 1})
    with pytest.warns(UserWarning, match="newer than 1.0"):
        assert load_profile(path).n_workers == 3


def test_profile_round_trip_and_file_system_errors(tmp_path):
    prof = ClusterProfile([5e-324, 0.5], dim=3, names=["a", "b"])
    assert load_profile(save_profile(prof, tmp_path / "p.json")) == prof
    from gcdesign._validate import FileSystemError

    with pytest.raises(FileSystemError, match=r"cannot read it: Is a directory \(EISDIR\)"):
        load_profile(tmp_path)
    with pytest.raises(InputError, match=r"No such file or directory \(ENOENT\)") as exc:
        load_profile(tmp_path / "missing.json")
    assert not isinstance(
        exc.value, FileSystemError
    )  # a wrong name is bad input (exit 2), not the OS refusing


def test_python_api_refuses_strings_and_booleans():
    with pytest.raises(InputError, match=r"`dim` must be an integer >= 1, got True"):
        ClusterProfile([0.1], dim=True)
    with pytest.raises(InputError, match=r"`deadline` must be a finite real number, got '1.5'"):
        ClusterProfile.from_latency_model("exponential", rates=[1.0], deadline="1.5", dim=1)
    with pytest.raises(InputError, match=r"`rates\[0\]` must be a real number, got '1'"):
        ClusterProfile.from_latency_model("exponential", rates=["1"], deadline=1.5, dim=1)


# ------------------------------------------------------------------ designs
def _tampered(tmp_path, toy, edit):
    data = json.loads(save_design(toy, tmp_path / "d.json").read_text())
    edit(data)
    path = tmp_path / "t.json"
    path.write_text(json.dumps(data))
    return path


def _set(*keys_value):
    *keys, value = keys_value

    def edit(data):
        target = data
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return edit


@pytest.mark.parametrize(
    "edit, message",
    [
        (_set("load", 3.0), r"stored `load` 3.0 differs from nnz / N = 1.875"),
        (_set("components", 7), r"stored `components` 7 differs from the 1 of the encoding"),
        (_set("components", True), r"`components` must be an integer >= 0, got True"),
        (_set("load", "1.875"), r"`load` must be a finite real number, got '1.875'"),
        (_set("budget", 32.5), r"`budget` must be an integer >= 0, got 32.5"),
        (_set("budget", "32"), r"`budget` must be an integer >= 0, got '32'"),
        (_set("kappa", True), r"`kappa` must be a finite real number, got True"),
        (_set("kappa", [0.1]), r"`kappa` must be a finite real number, got \[0.1\]"),
        (
            lambda d: d.update(kappa=1e308, quantization={"kind": "scaled", "kappa": 1e308}),
            r"`kappa` = 1e\+308 overflows the quantization error of worker \d",
        ),
        (_set("kappa", 0.5), r"`kappa` 0.5 differs from `quantization.kappa` \d"),
        (_set("quantization", "balanced"), r"`quantization` must be an object"),
        (_set("bucket_size", True), r"`bucket_size` must be an integer >= 1, got True"),
        (_set("bits", [4, 4, 4, 4, 4, 4, 4, True]), r"`bits\[7\]` must be a real number, got True"),
        (_set("bits", [4, 4, 4, 4, 4, 4, 4, 4.5]), r"`bits\[7\]` must be an integer, got 4.5"),
        (_set("bits", [4, 4, 4, 4, 4, 4, 4, 99]), r"`bits\[7\]` = 99 must be an integer in \[0, 32\]"),
        (_set("decoding", 1.0), r"`decoding` must be a 1-D array of numbers, got 1.0"),
        (_set("options", "x"), r"`options` must be an object, got 'x'"),
        (_set("options", "allow_idle", "false"), r"`options.allow_idle` must be true or false, got 'false'"),
        (_set("options", "b_min", "2"), r"`options.b_min` must be an integer in \[2, 62\], got '2'"),
        (_set("options", "construction", ["hub"]), r"Unknown options.construction \['hub'\]"),
        (_set("profile", "names", "abcdefgh"), r"`names` must be a list of 8 strings, got 'abcdefgh'"),
        (_set("profile", "dim", True), r"`dim` must be an integer >= 1, got True"),
        (_set("profile", "partiton", 4), r"design profile: unknown field `partiton`"),
        (_set("extra", 1), r"design: unknown field `extra`"),
        (_set("encoding", "shape", [8, True]), r"`encoding.shape\[1\]` must be a real number, got True"),
        (_set("encoding", "cols", []), r"rows, cols and values must have the same length"),
        (_set("profile", "partitions", 10**15), r"`encoding.shape` is \[8, 8\], expected \[8, 10{15}\]"),
    ],
)
def test_bad_design_fields(tmp_path, toy, edit, message):
    with pytest.raises(InputError, match=message) as exc:
        load_design(_tampered(tmp_path, toy, edit))
    _one_line(exc)


def test_kappa_beyond_the_float_range_names_the_field(tmp_path, toy):
    path = save_design(toy, tmp_path / "d.json")
    text = path.read_text()
    path.write_text(text.replace(f'"kappa":{toy.kappa!r}', '"kappa":1e400'))
    with pytest.raises(InputError, match=r"`kappa` must be a finite number, got 1e400"):
        load_design(path)


def test_duplicate_encoding_entry_is_named(tmp_path, toy):
    def edit(data):
        enc = data["encoding"]
        enc["rows"][1], enc["cols"][1] = enc["rows"][0], enc["cols"][0]

    with pytest.raises(InputError, match=r"lists entry \(0, 0\) twice \(again at position 1\)"):
        load_design(_tampered(tmp_path, toy, edit))


def _npz(tmp_path, toy, **changes):
    path = save_design(toy, tmp_path / "d.npz")
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays.update(changes)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"bits": np.array([True] * 8)}, r"`bits\[0\]` must be a real number, got True"),
        ({"bits": np.full(8, 4 + 0j)}, r"`bits\[0\]` must be a real number, got \(4\+0j\)"),
        ({"decoding": np.array(["1"] * 8)}, r"`decoding\[0\]` must be a real number, got '1'"),
        ({"straggler_probs": np.zeros((8, 1))}, r"`straggler_probs` must be a 1-D array of numbers"),
        ({"metadata": np.array([1, 2])}, r"`metadata` must be one JSON string, got int64 \(2,\)"),
        ({"metadata": np.array("{")}, r"metadata is not valid JSON"),
        ({"encoding_rows": None}, r"missing array\(s\) encoding_rows"),
    ],
)
def test_bad_npz_arrays(tmp_path, toy, changes, message):
    with pytest.raises(InputError, match=message) as exc:
        load_design(_npz(tmp_path, toy, **changes))
    _one_line(exc)


def test_npy_and_truncated_npz_are_not_npz(tmp_path, toy):
    good = save_design(toy, tmp_path / "d.npz").read_bytes()
    npy = tmp_path / "a.npz"
    np.save(tmp_path / "a.npy", np.arange(3))
    (tmp_path / "a.npy").rename(npy)
    with pytest.raises(InputError, match=r"not a valid npz file \(not a zip archive\)"):
        load_design(npy)
    cut = tmp_path / "cut.npz"
    for size in (len(good) // 2, len(good) - 30):
        cut.write_bytes(good[:size])
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(InputError, match=r"not a valid npz file"):
                load_design(cut)
