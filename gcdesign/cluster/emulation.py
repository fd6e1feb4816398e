r"""Emulated delays: a latency model played out per logical worker, and the run's random streams.

Each logical worker ``i`` is ready :math:`D_i = t_0 + \mathrm{Exp}(\mu_i)`
time units after the round starts (when its computation took less); with
:func:`delay_rates` the emulated cluster is the profiled one: worker ``i``
misses the deadline :math:`\tau` with probability
:math:`e^{-\mu_i(\tau - t_0)} = p_i` (MATH.md sections 8 and 14).

Seeds are counter-based: every draw of a run comes from
``default_rng([seed, stream, round, index])`` (:func:`counter_rng`), one
stream per purpose (:data:`DELAY`, :data:`QUANTIZE`, :data:`BATCH`), so the
draws do not depend on which process makes them or in which order.
"""

from __future__ import annotations

import math

import numpy as np

from .._validate import MAX_WAIT_SECONDS, InputError

#: Stream tags of :func:`counter_rng`: the emulated delay of ``(round, worker)``, the
#: quantizer's uniforms of ``(round, worker)``, the mini-batch of ``(round, partition)``.
DELAY, QUANTIZE, BATCH = 0, 1, 2


def counter_rng(seed: int, stream: int, round_index: int, index: int) -> np.random.Generator:
    """The generator of draw ``(stream, round_index, index)`` of the run `seed`."""
    return np.random.default_rng([seed, stream, round_index, index])


def emulated_delays(seed: int, round_index: int, rates, shift: float) -> np.ndarray:
    r"""The emulated delays :math:`D_i = t_0 + \mathrm{Exp}(\mu_i)` of one round (time units).

    One stream per ``(seed, round, worker)``; a rate of ``inf`` gives exactly
    :math:`t_0`, a rate of 0 never answers (``inf``).

    Examples
    --------
    >>> d = emulated_delays(7, 3, [1.0, 2.0, np.inf], 0.5)
    >>> bool(np.all(d >= 0.5)), float(d[2])
    (True, 0.5)
    >>> np.array_equal(d, emulated_delays(7, 3, [1.0, 2.0, np.inf], 0.5))
    True
    """
    rates = np.asarray(rates, dtype=np.float64)
    draws = np.array(
        [counter_rng(seed, DELAY, round_index, i).standard_exponential() for i in range(rates.size)]
    )
    with np.errstate(divide="ignore"):
        return shift + draws / rates


def delay_rates(straggler_probs, *, deadline: float, shift: float) -> np.ndarray:
    r"""Rates :math:`\mu_i = -\ln p_i / (\tau - t_0)` that reproduce `straggler_probs` (MATH 8).

    ``p_i = 0`` gives ``inf`` (always on time), ``p_i = 1`` gives 0 (never).

    Examples
    --------
    >>> mu = delay_rates([0.5, 0.1], deadline=1.5, shift=1.0)
    >>> np.round(np.exp(-mu * 0.5), 12).tolist()
    [0.5, 0.1]
    """
    p = np.asarray(straggler_probs, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return -np.log(p) / (deadline - shift)


def latency_settings(
    scheme, deadline, shift, rates, emulate, rounds: int | None = None
) -> tuple[float, float, np.ndarray | None]:
    """Checked ``(deadline, shift, rates)`` of a run; ``rates`` is None without emulation.

    Defaults: ``shift = deadline / 2``, ``rates = delay_rates(scheme.straggler_probs)``.
    With `rounds`, ``rates`` may also be ``(rounds, N)``: one row per round (a cluster
    that drifts, docs/math.md, section 16).
    """
    n = scheme.encoding.shape[0]
    message = f"`deadline` must be a number > 0 (or math.inf: wait for all), got {deadline!r}."
    try:
        deadline = float(deadline)
    except (TypeError, ValueError):
        raise InputError(message) from None
    if not deadline > 0:  # NaN too
        raise InputError(message)
    if not emulate:
        return deadline, 0.0, None
    if shift is None:
        shift = 0.5 * deadline if math.isfinite(deadline) else 0.0
    shift = float(shift)
    if not (math.isfinite(shift) and 0 <= shift and (shift < deadline or not math.isfinite(deadline))):
        raise InputError(f"`shift` must be a finite number in [0, deadline = {deadline:g}), got {shift!r}.")
    if rates is None:
        if not math.isfinite(deadline):
            raise InputError("`rates` is needed to emulate delays without a deadline (deadline = inf).")
        return deadline, shift, delay_rates(scheme.straggler_probs, deadline=deadline, shift=shift)
    rates = np.asarray(rates, dtype=np.float64)
    shapes = [(n,)] + ([] if rounds is None else [(rounds, n)])
    if rates.shape not in shapes or np.any(np.isnan(rates)) or np.any(rates < 0):
        per_round = "" if rounds is None else f", or ({rounds}, {n}): a row per round"
        raise InputError(
            f"`rates` must be {n} numbers >= 0 (one per worker, inf allowed{per_round}), "
            f"got shape {rates.shape}."
        )
    return deadline, shift, rates


def timing_settings(
    scheme, deadline, time_unit, shift, rates, emulate, rounds: int | None = None
) -> tuple[float, float, float, np.ndarray | None]:
    """Checked ``(time_unit, deadline, shift, rates)`` of a run (:func:`latency_settings`):
    `time_unit` finite seconds > 0, and a round of at most ``MAX_WAIT_SECONDS``."""
    time_unit = float(time_unit)
    if not (math.isfinite(time_unit) and time_unit > 0):
        raise InputError(f"`time_unit` must be a finite number of seconds > 0, got {time_unit!r}.")
    deadline, shift, rates = latency_settings(scheme, deadline, shift, rates, emulate, rounds)
    if math.isfinite(deadline) and deadline * time_unit > MAX_WAIT_SECONDS:
        raise InputError(
            f"`deadline` x `time_unit` = {deadline:g} x {time_unit:g} s is too long a round: at "
            f"most {MAX_WAIT_SECONDS:g} s."
        )
    return time_unit, deadline, shift, rates


def load_settings(load_cost, n: int, emulate: bool) -> np.ndarray | None:
    """Checked per-partition compute time :math:`c_i` (N,) of the emulated delays (None: off)."""
    if load_cost is None:
        return None
    if not emulate:
        raise InputError("`load_cost` needs emulated delays (emulate=True).")
    from .._validate import real_array

    cost = np.asarray(load_cost, dtype=np.float64)
    if cost.ndim == 0:
        cost = np.full(n, float(cost))
    cost = real_array("load_cost", cost, low=0)
    if cost.shape != (n,):
        raise InputError(f"`load_cost` must be one number or {n} (one per worker), got shape {cost.shape}.")
    return cost


def round_delays(seed: int, round_index: int, rates, shift: float, load_cost=None, loads=None) -> np.ndarray:
    r"""The emulated delays of round `round_index` (time units), drift and load included.

    `rates` is (N,) or (rounds, N) (its row `round_index`); with `load_cost`,
    worker i holding :math:`\ell_i` = ``loads[i]`` partitions is ready at
    :math:`t_0 + c_i \ell_i + \mathrm{Exp}(\mu_i)`, so its lateness follows
    the design (:class:`gcdesign.latency.LoadLatency`, docs/math.md, section 16).

    Examples
    --------
    >>> base = emulated_delays(3, 0, [1.0, 2.0], 0.5)
    >>> np.allclose(round_delays(3, 0, [1.0, 2.0], 0.5, [0.1, 0.1], [2, 0]) - base, [0.2, 0.0])
    True
    """
    rates = np.asarray(rates, dtype=np.float64)
    delays = emulated_delays(seed, round_index, rates[round_index] if rates.ndim == 2 else rates, shift)
    if load_cost is not None:
        delays = delays + np.asarray(load_cost) * np.asarray(loads, dtype=np.float64)
    return delays


__all__ = [
    "BATCH",
    "DELAY",
    "QUANTIZE",
    "counter_rng",
    "delay_rates",
    "emulated_delays",
    "latency_settings",
    "load_settings",
    "round_delays",
    "timing_settings",
]
