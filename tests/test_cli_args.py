"""The CLI's argument layer: the number type, the command table, and bad values fuzzed."""

from __future__ import annotations

import math
import sys
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gcdesign.cli as cli
from gcdesign.cli import COMMANDS, EXIT_CODES, Command, build_parser, main
from gcdesign.cli.args import ArgumentValueError, Number, NumberList, WholeNumber, quantization_model


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_error_line(code, out, err, field=None):
    assert code == 2, err
    assert out == ""
    assert err.startswith("gcdesign: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    if field is not None:
        assert f"`{field}`" in err, err


# ------------------------------------------------------------ the number type
@pytest.mark.parametrize(
    "number, text, expected",
    [
        (Number("rate", low=0, low_open=True), "2.5", 2.5),
        (Number("rate", low=0, low_open=True), " 1e-3 ", 1e-3),
        (Number("shift", low=0), "0", 0.0),
        (Number("shift", low=0), "-0", -0.0),
        (Number("workers", integer=True, low=1), "12", 12),
        (Number("workers", integer=True, low=1), "2e3", 2000),
        (Number("workers", integer=True, low=1), "1_000", 1000),
        (Number("workers", integer=True, low=1), "9" * 40, int("9" * 40)),
        (Number("trials", integer=True, low=2, also=(0,)), "0", 0),
        (WholeNumber("budget"), "1e3", 1000),
        (WholeNumber("budget"), "40.0", 40),
    ],
)
def test_number_accepts(number, text, expected):
    value = number(text)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    "number, text, message",
    [
        (Number("deadline", low=0, low_open=True), "abc", "`deadline` must be a number, got 'abc'."),
        (Number("deadline", low=0, low_open=True), "", "`deadline` must be a number, got ''."),
        (Number("deadline", low=0, low_open=True), "0", "`deadline` must be a finite number > 0, got '0'."),
        (Number("deadline", low=0, low_open=True), "nan", "must be a finite number > 0, got 'nan'."),
        (Number("deadline", low=0, low_open=True), "inf", "must be a finite number > 0, got 'inf'."),
        (Number("deadline", low=0, low_open=True), "1e400", "must be a finite number > 0, got '1e400'."),
        (Number("deadline", low=0, low_open=True), "9" * 400, "must be a finite number > 0"),
        (Number("smoothing", low=0), "-1e-300", "`smoothing` must be a finite number >= 0, got '-1e-300'."),
        (Number("workers", integer=True, low=1), "ten", "`workers` must be an integer >= 1, got 'ten'."),
        (Number("workers", integer=True, low=1), "0", "`workers` must be an integer >= 1, got 0."),
        (Number("workers", integer=True, low=1), "1.5", "`workers` must be an integer >= 1, got '1.5'."),
        (Number("workers", integer=True, low=1), "1e400", "got '1e400'."),
        (Number("workers", integer=True, low=1), "True", "got 'True'."),
        (Number("workers", integer=True, low=1), "0x10", "got '0x10'."),
        (Number("workers", integer=True, low=1), "9" * 5000, "`workers` must be an integer >= 1"),
        (Number("dim", integer=True, low=1, high=10**9), "1e30", "in [1, 10^9], got '1e30'."),
        (Number("dim", integer=True, low=1, high=10**9), "1000000001", "in [1, 10^9], got 1000000001."),
        (Number("trials", integer=True, low=2, also=(0,), allowed="0 or an integer >= 2"), "1", "got 1."),
        (
            WholeNumber("budget", allowed="an integer number of bits"),
            "x",
            "`budget` must be a number, got 'x'.",
        ),
        (WholeNumber("budget", allowed="an integer number of bits"), "40.5", "an integer number of bits"),
        (WholeNumber("budget", allowed="an integer number of bits"), "inf", "got 'inf'."),
    ],
)
def test_number_refuses_with_the_house_message(number, text, message):
    with pytest.raises(ArgumentValueError) as info:
        number(text)
    text_of = str(info.value)
    assert message in text_of and text_of.count("\n") == 0
    assert text_of.startswith(f"`{number.name}` must be ")


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.text(max_size=12),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.integers(min_value=-(10**30), max_value=10**30).map(str),
        st.sampled_from(["1e400", "-1e400", "nan", "-nan", "Infinity", "1_0", "٣", " 7 ", "0x1f", "1e-400"]),
    ),
    st.booleans(),
)
def test_number_returns_an_allowed_finite_value_or_one_line(text, integer):
    number = Number("x", integer=integer, low=-5, high=10**6)
    try:
        value = number(text)
    except ArgumentValueError as exc:
        message = str(exc)
        assert message.startswith("`x` must be ") and "\n" not in message and ", got " in message
        return
    assert math.isfinite(value) and -5 <= value <= 10**6
    assert isinstance(value, int) if integer else isinstance(value, float)


def test_number_list_and_quantization():
    stragglers = NumberList(Number("stragglers", integer=True), "integers separated by commas")
    assert stragglers("0,10, 20") == [0, 10, 20]
    for bad in ("1,x", "1,,2", "", "1.5"):
        with pytest.raises(
            ArgumentValueError, match=rf"`stragglers` must be integers separated by commas, got {bad!r}"
        ):
            stragglers(bad)
    assert quantization_model("balanced") == "balanced" and quantization_model("0.5") == 0.5
    for bad in ("-1", "nan", "inf", "1e400"):
        with pytest.raises(
            ArgumentValueError, match=r"`quantization` must be a model name or a finite number kappa >= 0"
        ):
            quantization_model(bad)


# ----------------------------------------------------------- the command table
def test_commands_are_declared_once_and_resolve():
    names = [c.name for c in COMMANDS]
    assert len(names) == len(set(names))
    assert {"design", "allocate", "show", "evaluate", "profile", "examples", "latency", "study"} <= set(names)
    for command in COMMANDS:
        assert callable(command.load("arguments")) and callable(command.load("run"))
    listing = build_parser().format_help()
    positions = [listing.index(f"\n    {name} ") for name in names]
    assert positions == sorted(positions)  # help order is the table's order


def test_help_lists_commands_and_exit_codes(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for command in COMMANDS:
        assert command.name in out
    assert "exit codes:" in out
    for code_number in EXIT_CODES:
        assert f"  {code_number} " in out


def test_a_new_command_is_one_table_entry(tmp_path, monkeypatch, capsys):
    (tmp_path / "hello_cmd.py").write_text(
        textwrap.dedent(
            """
            from gcdesign.cli.args import Number

            def arguments(parser):
                parser.add_argument("--times", type=Number("times", integer=True, low=1), default=1)

            def run(args):
                print("hello " * args.times)
                return 0
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    entry = Command("hello", "say hello", "hello_cmd:arguments", "hello_cmd:run")
    monkeypatch.setattr(cli, "COMMANDS", (*COMMANDS, entry))
    assert run(capsys, "hello", "--times", "2")[:2] == (0, "hello hello \n")
    assert_one_error_line(*run(capsys, "hello", "--times", "0"), field="times")
    sys.modules.pop("hello_cmd", None)


# ------------------------------------------------------------------- fuzzing
REAL_BAD = ["abc", "", " ", "nan", "inf", "-inf", "1e400", "-1e400", "0x10", "True", "1,5", "½"]
INT_BAD = [*REAL_BAD, "1.5", "1e-320", "-3", "9" * 5000]
COUNT_BAD = [*INT_BAD, "0", "1e30", "1000000001"]  # counts that size arrays: at most 10^9
CASES = {
    # command prefix, then {flag: values that must be refused}
    ("profile", "--traces", "t.csv", "--deadline", "1", "--dim", "3"): {
        "--deadline": [*REAL_BAD, "0", "-0", "-1e3"],
        "--dim": [*INT_BAD, "0"],
        "--partitions": [*INT_BAD, "0"],
        "--smoothing": [*REAL_BAD, "-1", "-1e-300"],
    },
    ("latency", "--workers", "10", "--rate", "1", "--stragglers", "1"): {
        "--workers": [*INT_BAD, "0"],
        "--rate": [*REAL_BAD, "0", "-2"],
        "--shift": [*REAL_BAD, "-1", "-1e-3"],
        "--trials": [*INT_BAD, "1", "1e30", "1000000001"],  # 0: no simulation
        "--rng": INT_BAD,
        "--stragglers": [*(v for v in INT_BAD if v != "1,5"), "1,", ",", "10", "0,10", "-1"],
    },
    ("evaluate", "d.json"): {
        "--trials": [*COUNT_BAD, "1"],
        "--dim": COUNT_BAD,
        "--rng": INT_BAD,
        "--replication": [*INT_BAD, "0"],
    },
    ("design", "--example", "toy-n8"): {
        "--budget": [*REAL_BAD, "40.5", "1e-320"],
        "--bits-per-worker": [*REAL_BAD, "0", "-4"],
        "--quantization": ["nan", "inf", "-1", "1e400", "-inf"],
        "--kappa-c": [*REAL_BAD, "0", "-1"],
        "--b-min": INT_BAD[:-2],
        "--b-max": INT_BAD[:-2],
    },
    ("allocate", "--example", "toy-n8", "--budget", "30"): {"--time-limit": [*REAL_BAD, "0", "-1"]},
    ("study", "latency", "--no-progress"): {"--rng": INT_BAD},
}
FUZZ = [(prefix, flag, values) for prefix, flags in CASES.items() for flag, values in flags.items()]


@pytest.mark.parametrize("prefix, flag, values", FUZZ, ids=[f"{p[0]} {f}" for p, f, _ in FUZZ])
def test_bad_numbers_exit_2_with_one_line(tmp_path, monkeypatch, capsys, prefix, flag, values):
    monkeypatch.chdir(tmp_path)  # nothing may be written: the refusal comes before any work
    for value in values:
        argv = list(prefix)
        if flag in argv:
            argv[argv.index(flag) + 1] = value
        else:
            argv += [flag, value]
        assert_one_error_line(*run(capsys, *argv), field=flag.lstrip("-"))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "argv, message",
    [
        (["design", "--example", "nope"], "Unknown example 'nope'"),
        (["design", "--example", ""], "Unknown example ''"),
        (["design", "--example", "toy-n8", "--allocator", ""], "Unknown allocator ''"),
        (["design", "--example", "toy-n8", "--quantization", ""], "Unknown quantization model ''"),
        (["design", "--example", "toy-n8", "--order", "nope"], "order"),
        (["allocate", "--example", "toy-n8", "--budget", "30", "--method", ""], "Unknown allocator ''"),
        (["allocate", "--example", "toy-n8", "--budget", "30", "--bits-per-worker", "4"], "at most one of"),
        (["allocate", "--profile", "{profile}"], "give --budget B"),
        (["study", "nope"], "Unknown study 'nope'"),
        (["study", ""], "Unknown study ''"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        ([], "the following arguments are required: COMMAND"),
        (["latency", "--workers", "10"], "the following arguments are required: --rate, --stragglers"),
        (["design", "--example", "toy-n8", "--nope"], "unrecognized arguments: --nope"),
        (["design", "--example"], "argument --example: expected one argument"),
    ],
)
def test_bad_names_and_usage_exit_2_with_one_line(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.json").write_text('{"straggler_probs": [0.1, 0.2], "dim": 10}')
    code, out, err = run(capsys, *[a.format(profile="p.json") for a in argv])
    assert_one_error_line(code, out, err)
    assert message in err


def test_negative_numbers_are_values_not_options(capsys):
    """argparse alone reads "-1e3" and "-inf" as unknown options; here they are refused values."""
    code, out, err = run(
        capsys, "latency", "--workers", "4", "--rate", "1", "--stragglers", "1", "--shift", "-1e3"
    )
    assert_one_error_line(code, out, err, field="shift")
    assert "got '-1e3'" in err
    code, out, err = run(capsys, "latency", "--workers", "4", "--rate", "-inf", "--stragglers", "1")
    assert "`rate` must be a finite number > 0, got '-inf'" in err


NUMBER_TEXT = st.one_of(
    st.text(alphabet=st.sampled_from("0123456789.,-+eEinfa _x"), max_size=8),
    st.integers(min_value=-5, max_value=10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


@settings(max_examples=60, deadline=None)
@given(NUMBER_TEXT, NUMBER_TEXT, NUMBER_TEXT, NUMBER_TEXT)
def test_latency_fuzzed_either_runs_or_refuses_in_one_line(workers, rate, stragglers, shift):
    """Random texts for every number of a cheap command: a table, or one error line (exit 2)."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    argv = ["latency", "--workers", workers, "--rate", rate, "--stragglers", stragglers, "--shift", shift]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    if code == 0:
        assert out.getvalue().startswith("N = ") and err.getvalue() == ""
    else:
        assert_one_error_line(code, out.getvalue(), err.getvalue())
