"""The argument layer of the CLI: number types for argparse and the arguments commands share.

Every numeric option is parsed by one :class:`Number` given as argparse
``type=``, so a bad value is refused while the command line is read, before
any work or any write, with the house message: one line naming the option,
the value and what is allowed::

    gcdesign: error: `deadline` must be a finite number > 0, got 'abc'.

Output and input paths have their own layer, :mod:`gcdesign.cli.paths`.
"""

from __future__ import annotations

import argparse
import math
import re
import warnings

from .errors import ArgumentValueError, UsageError
from .paths import input_file


def _show_bound(value) -> str:
    power = math.log10(value) if value >= 10**6 else 0.0
    return f"10^{power:.0f}" if power.is_integer() and power else f"{value:g}"


def _interval(integer: bool, low, high, low_open: bool) -> str:
    kind = "an integer" if integer else "a finite number"
    if low is not None and high is not None:
        return f"{kind} in {'(' if low_open else '['}{_show_bound(low)}, {_show_bound(high)}]"
    if low is not None:
        return f"{kind} {'>' if low_open else '>='} {_show_bound(low)}"
    if high is not None:
        return f"{kind} <= {_show_bound(high)}"
    return kind


def _is_int_literal(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


class Number:
    """An argparse ``type=`` that parses a number and checks its range.

    Parameters
    ----------
    name : str
        The option as messages name it (``"deadline"`` for ``--deadline``).
    integer : bool
        Whole numbers only; ``"2e3"`` is read as 2000. An integer is returned.
    low, high : float, optional
        Bounds of the allowed range (``low`` exclusive when `low_open`).
    also : tuple
        Single values allowed outside the range (``0`` for "0 or >= 2").
    allowed : str, optional
        What is allowed, in words, when the default description does not fit.

    Every value must be finite. A text that is not a number at all is refused
    as "must be a number" for a real option and with the full `allowed` text
    for an integer one; a value out of range is shown as typed (without quotes
    when an integer option gets an integer literal).

    Examples
    --------
    >>> Number("rate", low=0, low_open=True)("2.5")
    2.5
    >>> Number("trials", integer=True, low=2, also=(0,))("2e3")
    2000
    >>> Number("rate", low=0, low_open=True)("0")
    Traceback (most recent call last):
    ...
    gcdesign.cli.errors.ArgumentValueError: `rate` must be a finite number > 0, got '0'.
    """

    def __init__(
        self,
        name: str,
        *,
        integer: bool = False,
        low: float | None = None,
        high: float | None = None,
        low_open: bool = False,
        also: tuple = (),
        allowed: str | None = None,
    ):
        self.name = name
        self.integer = integer
        self.low, self.high, self.low_open = low, high, low_open
        self.also = also
        self.allowed = allowed or _interval(integer, low, high, low_open)
        self.__name__ = "integer" if integer else "number"  # argparse names the type in some messages

    def refuse(self, shown: str, allowed: str | None = None) -> ArgumentValueError:
        return ArgumentValueError(f"`{self.name}` must be {allowed or self.allowed}, got {shown}.")

    def __call__(self, text: str):
        value = self.parse(text)
        if value in self.also:
            return value
        low, high = self.low, self.high
        too_low = low is not None and (value <= low if self.low_open else value < low)
        if too_low or (high is not None and value > high):
            raise self.refuse(str(value) if self.integer and _is_int_literal(text) else repr(text))
        return value

    def parse(self, text: str):
        """The number in `text` (finite; whole when `integer`), range unchecked."""
        try:
            value = float(text)
        except (TypeError, ValueError):
            value = None
        if self.integer:
            try:
                return int(text)  # exact for long integers
            except (TypeError, ValueError):
                pass
            if value is None or not math.isfinite(value) or not value.is_integer():
                raise self.refuse(repr(text))
            return int(value)
        if value is None:
            raise self.refuse(repr(text), "a number")
        if not math.isfinite(value):
            raise self.refuse(repr(text))
        return value


class WholeNumber(Number):
    """A real option that must hold a whole number (``--budget 1e3`` is 1000 bits)."""

    def parse(self, text: str):
        value = Number.parse(self, text)
        if not value.is_integer():
            raise self.refuse(repr(text))
        return int(value)


class NumberList:
    """An argparse ``type=`` for comma-separated numbers, each parsed by `element`."""

    def __init__(self, element: Number, allowed: str):
        self.element = element
        self.allowed = allowed
        self.__name__ = "list"

    def __call__(self, text: str) -> list:
        try:
            return [self.element(part) for part in text.split(",")]
        except argparse.ArgumentTypeError:
            raise self.element.refuse(repr(text), self.allowed) from None


def quantization_model(text: str):
    """``--quantization``: a model name, which the library checks, or a number kappa (finite, >= 0)."""
    number = Number("quantization", low=0, allowed="a model name or a finite number kappa >= 0")
    try:
        float(text)
    except ValueError:
        return text
    return number(text)


def bucket_size(text: str):
    """``--bucket-size``: an integer >= 1, or ``none`` (one bucket; kept as the string)."""
    if text.strip().lower() == "none":
        return "none"
    return count("bucket-size", 1, allowed=f"an integer in [1, {_show_bound(MAX_COUNT)}] or 'none'")(text)


def quantization_args(args, profile, defaults=None) -> dict:
    """``quantization=`` and ``bucket_size=`` for design() / allocate_bits() from the options.

    Unset options take the example's recorded defaults (`defaults`), then the package's.
    """
    from .._files import read_npy
    from ..design import DEFAULT_BUCKET_SIZE, DEFAULT_QUANTIZATION
    from ..quantization import calibrate_quantization

    defaults = defaults or {}
    beta = {None: defaults.get("bucket_size", DEFAULT_BUCKET_SIZE), "none": None}.get(
        args.bucket_size, args.bucket_size
    )
    chosen = args.quantization
    if args.kappa is not None:
        if chosen is not None:
            raise UsageError("give --quantization only; --kappa is its deprecated name.")
        warnings.warn(
            "--kappa is deprecated and will be removed in the next release; use --quantization.",
            FutureWarning,
            stacklevel=2,
        )
        chosen = args.kappa
    model = defaults.get("quantization", DEFAULT_QUANTIZATION) if chosen is None else chosen
    if (model == "calibrated") != (args.samples is not None):
        raise UsageError("--quantization calibrated needs --samples FILE.npy, and --samples needs it.")
    if model == "calibrated":
        samples = read_npy(args.samples, what="samples")  # the values: calibrate_quantization's
        if samples.ndim != 2 or samples.shape[1] != profile.dim:
            raise UsageError(
                f"`samples` must be an (m, d) array with d = {profile.dim} (the profile's), "
                f"got shape {samples.shape}."
            )
        model = calibrate_quantization(samples, bucket_size=beta)
    return {"quantization": model, "bucket_size": beta}


#: ``--rng`` of every command that draws random numbers.
SEED = Number("rng", integer=True, low=0, allowed="an integer seed >= 0")
#: The most trials, workers or coordinates a command sizes arrays with.
MAX_COUNT = 10**9


def count(name: str, minimum: int, **kwargs) -> Number:
    """An integer option in ``[minimum, 10^9]`` (a count that sizes arrays)."""
    return Number(name, integer=True, low=minimum, high=MAX_COUNT, **kwargs)


# ------------------------------------------------------ shared arguments
def add_json(parser, help: str | None = None) -> None:
    parser.add_argument("--json", action="store_true", help=help)


def add_profile_source(parser) -> None:
    src = parser.add_argument_group("cluster profile (one of)")
    src.add_argument("--example", metavar="NAME", help="a bundled example (see `gcdesign examples`)")
    src.add_argument("--profile", metavar="FILE", type=input_file, help="a profile JSON file")


def load_profile_arg(args):
    """The profile from --example or --profile, and the example's defaults ({} for a file)."""
    from ..profile import load_example, load_profile

    if (args.example is None) == (args.profile is None):
        raise UsageError("give exactly one of --example NAME and --profile FILE.")
    if args.example is not None:
        return load_example(args.example, with_defaults=True)
    return load_profile(args.profile), {}


def add_budget(parser) -> None:
    """The budget and quantization options of ``design`` and ``allocate``."""
    parser.add_argument(
        "--budget",
        metavar="B",
        type=WholeNumber("budget", allowed="an integer number of bits"),
        help="total bits per coordinate over all workers",
    )
    parser.add_argument(
        "--bits-per-worker",
        metavar="X",
        type=Number("bits-per-worker", low=0, low_open=True),
        help="average bits per worker (B = X N)",
    )
    from ..design import DEFAULT_BUCKET_SIZE, DEFAULT_QUANTIZATION

    parser.add_argument(
        "--quantization",
        metavar="MODEL",
        default=None,
        type=quantization_model,
        help="quantization model the design is optimal for: tight, raw, balanced (the paper's scaling), "
        "none, calibrated (with --samples), or a number kappa >= 0 on the raw bound "
        f"(default {DEFAULT_QUANTIZATION}, chosen by measured exact error)",
    )
    # the old name of --quantization, for one release (warns)
    parser.add_argument("--kappa", default=None, type=quantization_model, help=argparse.SUPPRESS)
    parser.add_argument(
        "--kappa-c",
        type=Number("kappa-c", low=0, low_open=True),
        default=1.0,
        help="c of the balanced model (default 1)",
    )
    parser.add_argument(
        "--bucket-size",
        metavar="BETA",
        type=bucket_size,
        default=None,
        help="bucket length of the stochastic quantizer (one float32 norm per bucket), or 'none' for one "
        f"bucket (default {DEFAULT_BUCKET_SIZE})",
    )
    parser.add_argument(
        "--samples",
        metavar="FILE.npy",
        type=input_file,
        help="sample vectors (m x d, .npy) for --quantization calibrated",
    )
    bits = Number("b-min", integer=True), Number("b-max", integer=True)  # the range is the library's
    parser.add_argument("--b-min", type=bits[0], default=2, help="fewest bits per worker (default 2)")
    parser.add_argument("--b-max", type=bits[1], default=32, help="most bits per worker (default 32)")
    parser.add_argument(
        "--allow-idle", action="store_true", help="let a worker take 0 bits (no data, sends nothing)"
    )


def budget_args(args, defaults: dict) -> dict:
    """``budget=`` or ``bits_per_worker=`` from the options, else the example's default."""
    if args.budget is not None and args.bits_per_worker is not None:
        raise UsageError("give at most one of --budget and --bits-per-worker.")
    if args.budget is not None:
        return {"budget": args.budget}
    if args.bits_per_worker is not None:
        return {"bits_per_worker": args.bits_per_worker}
    if "bits_per_worker" in defaults:
        return {"bits_per_worker": defaults["bits_per_worker"]}
    raise UsageError("give --budget B (total bits) or --bits-per-worker X.")


def name_list(text: str, field: str, what: str, allowed, *, everything="all", skip=()) -> list[str]:
    """`what` names separated by commas, each one of `allowed`; `everything` means all but `skip`."""
    if text.strip() == everything:
        return [n for n in sorted(allowed) if n not in skip]
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UsageError(f"`{field}` must list {what} names separated by commas, or be {everything!r}.")
    for n in names:
        if n not in allowed:
            valid = ", ".join(sorted(allowed))
            raise UsageError(f"Unknown {what} {n!r} in `{field}`; choose from: {valid}.")
    return names


# ------------------------------------------------- processes and clusters (cluster, study)
#: Resident memory of one worker process at least (a Python interpreter with numpy, scipy and
#: this package, or a Dask worker): a machine holds at most its available memory / this many.
PROCESS_MEMORY = 100 * 2**20
#: How long ``--scheduler`` may take to answer before it is refused.
SCHEDULER_TIMEOUT = 5.0


def available_memory() -> int:
    """Bytes of memory available to new processes (``MemAvailable``; else the physical memory)."""
    import os

    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return 2**63 - 1  # unknown: no cap beyond MAX_COUNT


def process_count(name: str, *, every_core: bool = False):
    """``--workers``: a number of processes (``-1``: every core, where `every_core`) that the
    machine's memory can hold, refused before any process starts."""
    base = Number(
        name,
        integer=True,
        low=1,
        high=MAX_COUNT,
        also=(-1,) if every_core else (),
        allowed="an integer >= 1 or -1 (every core)" if every_core else None,
    )

    def parse(text: str) -> int:
        n = base(text)
        memory = available_memory()
        most = max(1, memory // PROCESS_MEMORY)
        if n > most:
            raise ArgumentValueError(
                f"`{name}` = {n} processes cannot fit this machine's memory: at most {most} "
                f"({memory / 2**30:.1f} GiB available, at least {PROCESS_MEMORY >> 20} MiB a process)."
            )
        return n

    parse.__name__ = name  # argparse names the type in its own messages
    return parse


_SCHEDULER = re.compile(r"^(?:(tcp|tls)://)?(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")


def scheduler_address(text: str) -> str:
    """``--scheduler``: a Dask scheduler address ``[tcp://|tls://]HOST:PORT``, checked as written.

    Whether a scheduler answers there is :func:`check_scheduler`'s question, asked before any work.
    """
    match = _SCHEDULER.match(text.strip())
    if not match or not 1 <= int(match.group(3)) <= 65535:
        raise ArgumentValueError(
            f"`scheduler` must be a Dask scheduler address tcp://HOST:PORT (or tls://, or HOST:PORT "
            f"with a port in [1, 65535]), got {text!r}."
        )
    return f"{match.group(1) or 'tcp'}://{match.group(2)}:{match.group(3)}"


def check_scheduler(address: str, timeout: float = SCHEDULER_TIMEOUT) -> None:
    """Refuse, in one line and within `timeout` seconds, a scheduler address nothing answers at."""
    import socket

    host, port = address.split("://", 1)[1].rsplit(":", 1)
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        reason = f"no answer within {timeout:g} s" if isinstance(exc, TimeoutError) else exc.strerror or exc
        raise UsageError(f"`scheduler` {address!r}: no Dask scheduler answers there ({reason}).") from None


def check_wait(deadline: float, time_unit: float) -> None:
    """A round waits at most MAX_WAIT_SECONDS: ``deadline x time_unit``, each already checked > 0."""
    from .._validate import MAX_WAIT_SECONDS

    if deadline * time_unit > MAX_WAIT_SECONDS:
        raise UsageError(
            f"`deadline` x `time-unit` = {deadline:g} x {time_unit:g} s is too long a round: at most "
            f"{MAX_WAIT_SECONDS:g} s."
        )


__all__ = [
    "MAX_COUNT",
    "SEED",
    "ArgumentValueError",
    "Number",
    "NumberList",
    "UsageError",
    "WholeNumber",
    "available_memory",
    "check_scheduler",
    "check_wait",
    "process_count",
    "scheduler_address",
    "add_budget",
    "add_json",
    "add_profile_source",
    "bucket_size",
    "budget_args",
    "count",
    "load_profile_arg",
    "name_list",
    "quantization_args",
    "quantization_model",
]
