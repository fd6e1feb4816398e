"""Fuzz: the --samples loader, the design file's quantization block, and the cluster and study options.

Each input is either accepted (and then usable: a finite model, a block that round-trips,
options in range) or refused with one line naming the field (fuzz_strategies.check_refusal);
nothing else escapes, no RuntimeWarning is printed first.
"""

import contextlib
import io
import json

import numpy as np
import pytest
from fuzz_strategies import FUZZ, attempt, check_refusal, damaged_bytes, mutated, scratch_directory
from hypothesis import given, settings
from hypothesis import strategies as st

from gcdesign import ClusterProfile, design, load_design
from gcdesign._files import read_npy
from gcdesign.io import design_to_dict
from gcdesign.quantization import QuantizationModel, calibrate_quantization, resolve_quantization


def _npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


GOOD_SAMPLES = np.random.default_rng(0).standard_normal((3, 16))
GOOD_NPY = _npy(GOOD_SAMPLES)

sample_arrays = st.sampled_from(
    [
        GOOD_SAMPLES,
        GOOD_SAMPLES > 0,  # bool
        GOOD_SAMPLES * (1 + 2j),  # complex
        GOOD_SAMPLES.astype(str),  # text
        GOOD_SAMPLES.astype(object),  # needs pickle
        GOOD_SAMPLES * 1e200,
        GOOD_SAMPLES * 1e-310,  # subnormal
        np.zeros((3, 16)),
        np.full((3, 16), np.nan),
        np.full((3, 16), np.inf),
        GOOD_SAMPLES[0],  # one vector
        np.zeros((0, 16)),
        np.zeros((2, 3, 4)),
        GOOD_SAMPLES.astype(np.float32),
        (GOOD_SAMPLES * 100).astype(np.int64),
        np.array(3.0),
    ]
)


@st.composite
def samples_files(draw):
    kind = draw(st.sampled_from(["array", "array", "damaged", "npz", "text", "empty"]))
    if kind == "array":
        return _npy(draw(sample_arrays))
    if kind == "damaged":
        return draw(damaged_bytes(GOOD_NPY))
    if kind == "npz":
        buffer = io.BytesIO()
        np.savez(buffer, a=GOOD_SAMPLES)
        return buffer.getvalue()
    if kind == "text":
        return draw(st.sampled_from([b"1,2,3\n4,5,6\n", b"\x80\x04K\x01.", "h\u00e9".encode(), b"[]"]))
    return b""


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    with scratch_directory(tmp_path_factory, "samples") as directory:
        yield directory


@FUZZ
@given(data=samples_files())
def test_samples_file_calibrates_or_is_refused_in_one_line(scratch, data):
    path = scratch / "samples.npy"
    path.write_bytes(data)
    model = attempt(lambda: calibrate_quantization(read_npy(path, what="samples"), b_max=8))
    if model is not None:
        table = np.array(model.table[2:9])
        assert np.all(np.isfinite(table)) and np.all(table >= 0)  # never an all-NaN model
        again = QuantizationModel.from_dict(json.loads(json.dumps(model.to_dict())))
        assert again.to_dict() == model.to_dict()  # (the table's NaN entries compare unequal)


def test_samples_calibration_is_scale_free():
    """1e200 and subnormal samples calibrate to the model of the same samples at scale 1."""
    base = calibrate_quantization(GOOD_SAMPLES, b_max=8)
    assert calibrate_quantization(GOOD_SAMPLES * 1e200, b_max=8).table[2:9] == pytest.approx(base.table[2:9])
    tiny = np.sign(GOOD_SAMPLES) * 1e-310  # subnormal: only the signs survive, all equal magnitude
    assert calibrate_quantization(tiny, b_max=8).table[2:9] == pytest.approx(
        calibrate_quantization(np.sign(GOOD_SAMPLES), b_max=8).table[2:9]
    )


MODELS = {
    "raw": resolve_quantization("raw", [0.1, 0.3, 0.5], 9, 10),
    "tight": resolve_quantization("tight", [0.1, 0.3, 0.5], 9, 10),
    "none": resolve_quantization("none", [0.1, 0.3, 0.5], 9, 10),
    "balanced": resolve_quantization("balanced", [0.1, 0.3, 0.5], 9, 10),
    "scaled": resolve_quantization(0.5, [0.1, 0.3, 0.5], 9, 10),
    "calibrated": calibrate_quantization(np.random.default_rng(1).standard_normal((2, 10)), b_max=6),
}


@FUZZ
@given(data=st.data(), kind=st.sampled_from(sorted(MODELS)))
def test_quantization_block_loads_whole_or_is_refused(data, kind):
    block = data.draw(mutated(MODELS[kind].to_dict(), max_edits=2))
    model = attempt(lambda: QuantizationModel.from_dict(block))
    if model is not None:  # accepted: exactly the block, and it round-trips
        assert model.to_dict() == block
        assert QuantizationModel.from_dict(model.to_dict()).to_dict() == block


def test_quantization_block_refusals_name_the_field():
    cases = [
        ({"kind": "balanced", "kappa": 0.1}, "`quantization.c` is missing"),
        ({"kind": "raw", "kappa": 1.0, "c": 1.0}, "`quantization.c` is not a field of the raw model"),
        ({"kind": "raw", "kappa": 1.0, "table": [0.0] * 33}, "`quantization.table` is not a field"),
        ({"kind": "raw", "kappa": 2.0}, "the raw model has kappa = 1.0"),
        ({"kind": "none", "kappa": 1.0}, "the none model has kappa = 0.0"),
        ({"kind": "raw"}, "`quantization.kappa` is missing"),
        ({"kind": "balanced", "kappa": 0.1, "c": 0}, "`quantization.c`"),
        ({"kind": ["raw"], "kappa": 1.0}, "`quantization.kind`"),
    ]
    for block, message in cases:
        with pytest.raises(Exception) as exc:
            QuantizationModel.from_dict(block)
        assert message in check_refusal(exc.value)


def test_a_design_file_with_a_balanced_model_without_c_is_refused(tmp_path):
    """Issue 20: it loaded, and `show` then raised TypeError."""
    code = design(ClusterProfile([0.1, 0.3, 0.5], dim=10), bits_per_worker=3, quantization="balanced")
    data = design_to_dict(code)
    del data["quantization"]["c"]
    (tmp_path / "d.json").write_text(json.dumps(data))
    with pytest.raises(Exception, match=r"`quantization.c` is missing") as exc:
        load_design(tmp_path / "d.json")
    check_refusal(exc.value)


# ------------------------------------------------------------ cluster and study options
option_text = st.one_of(
    st.sampled_from(
        ["1", "2", "-1", "0", "1e9", "1000000000", "1e308", "inf", "nan", "abc", "", "2.5", "-0", "1e-320"]
    ),
    st.text(max_size=12),
    st.integers(-(10**12), 10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)
scheduler_text = st.one_of(
    st.sampled_from(
        ["bogus", "tcp://", "tcp://host", "tcp://host:0", "tcp://host:65536", "host:8786", "tls://[::1]:1"]
    ),
    st.text(max_size=20),
)


def _parse(argv):
    """The parsed options, or None after checking the one-line refusal (exit code 2)."""
    from gcdesign.cli import build_parser
    from gcdesign.cli.args import check_wait

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exc:
            assert exc.code == 2, (argv, err.getvalue())
            text = err.getvalue()
            assert text.startswith("gcdesign: error: ") and text.count("\n") == 1, text
            return None
    if argv[0] == "cluster":
        try:
            check_wait(args.deadline, args.time_unit)
        except Exception as exc:  # noqa: BLE001 - the property: only InputError
            check_refusal(exc)
            return None
    return args


@settings(FUZZ, max_examples=min(FUZZ.max_examples, 300))
@given(workers=option_text, deadline=option_text, rounds=option_text, time_unit=option_text)
def test_cluster_options_parse_in_range_or_are_refused_in_one_line(workers, deadline, rounds, time_unit):
    from gcdesign._validate import MAX_WAIT_SECONDS
    from gcdesign.cli.args import PROCESS_MEMORY, available_memory

    argv = ["cluster", "--example", "toy-n8", "--workers", workers, "--deadline", deadline]
    argv += ["--rounds", rounds, "--time-unit", time_unit]
    args = _parse(argv)
    if args is not None:
        assert 1 <= args.workers <= max(1, available_memory() // PROCESS_MEMORY)
        assert 0 < args.deadline * args.time_unit <= MAX_WAIT_SECONDS and args.rounds >= 1


@settings(FUZZ, max_examples=min(FUZZ.max_examples, 300))
@given(workers=option_text, scheduler=scheduler_text, use_scheduler=st.booleans())
def test_study_options_parse_or_are_refused_in_one_line(workers, scheduler, use_scheduler):
    where = ["--scheduler", scheduler] if use_scheduler else ["--workers", workers]
    args = _parse(["study", "latency", *where])
    if args is not None and use_scheduler:
        assert args.scheduler.split("://")[0] in ("tcp", "tls")
        assert 1 <= int(args.scheduler.rsplit(":", 1)[1]) <= 65535
    elif args is not None:
        assert args.workers == -1 or args.workers >= 1


def test_cluster_and_study_refuse_in_one_line_before_any_work(tmp_path):
    """The red-team cases: each exits 2 with one line within seconds, starting no process."""
    import socket
    import time

    from gcdesign.cli import main

    with socket.socket() as free:  # a port nothing listens on
        free.bind(("127.0.0.1", 0))
        closed = free.getsockname()[1]
    code = design(ClusterProfile([0.1, 0.3, 0.5], dim=10), bits_per_worker=3)
    from gcdesign import save_design

    save_design(code, tmp_path / "d.json")
    cases = [
        (
            ["cluster", "--example", "toy-n8", "--deadline", "2", "--rounds", "1", "--workers", "1000000000"],
            "memory",
        ),
        (["cluster", "--example", "toy-n8", "--deadline", "1e308", "--rounds", "1"], "too long a round"),
        (
            ["cluster", "--example", "toy-n8", "--deadline", "2", "--rounds", "1", "--scheduler", "bogus"],
            "address",
        ),
        (
            [
                "cluster",
                "--example",
                "toy-n8",
                "--deadline",
                "2",
                "--rounds",
                "1",
                "--scheduler",
                f"127.0.0.1:{closed}",
            ],
            "no Dask scheduler answers",
        ),
        (
            [
                "cluster",
                "--design",
                str(tmp_path / "d.json"),
                "--bits-per-worker",
                "5",
                "--deadline",
                "2",
                "--rounds",
                "1",
            ],
            "--bits-per-worker goes with --example",
        ),
        (["study", "latency", "--scheduler", "bogus"], "address"),
        (["study", "latency", "--scheduler", f"tcp://127.0.0.1:{closed}"], "no Dask scheduler answers"),
        (["study", "latency", "--workers", "1000000000"], "memory"),
    ]
    for argv, phrase in cases:
        err = io.StringIO()
        start = time.monotonic()
        with contextlib.redirect_stderr(err):
            assert main(argv) == 2, argv
        assert time.monotonic() - start < 10, argv
        text = err.getvalue()
        assert phrase in text and text.count("\n") == 1 and "Traceback" not in text, text
