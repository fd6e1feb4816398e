"""Fuzz: malformed trace CSVs give a profile whose numbers mean what the file says, or one InputError line."""

import math

import numpy as np
import pytest
from fuzz_strategies import FUZZ, attempt, damaged_bytes, scratch_directory
from hypothesis import given
from hypothesis import strategies as st

from gcdesign import ClusterProfile

DEADLINE = 1.0
good_cells = st.sampled_from(["0.5", "1.5", "2", "0", "1e-3", "inf", "nan", "", " 0.7 ", "1.0", "3E2"])
bad_cells = st.sampled_from(["-1", "1e400", "true", "abc", "1_0", "w0", '"', "1,5", "0x1", "\u00bd", "-inf"])
workers = st.sampled_from(["a", "b", "c", "d", "w0", "w1"])


@st.composite
def _corrupt(draw, table):
    """Mostly leave `table` (header + rows of cells) alone; else break one thing in it."""
    kind = draw(st.sampled_from(["none"] * 4 + ["cell", "header", "extra", "duplicate"]))
    header, rows = table[0], table[1:]
    if kind == "cell" and rows:
        row = draw(st.integers(0, len(rows) - 1))
        rows[row][draw(st.integers(0, len(header) - 1))] = draw(bad_cells)
    elif kind == "header":
        header[draw(st.integers(0, len(header) - 1))] = draw(
            st.sampled_from(["", "worker", "round", "time", "w0"])
        )
    elif kind == "extra" and rows:
        rows[draw(st.integers(0, len(rows) - 1))].append(draw(good_cells))
    elif kind == "duplicate" and rows:
        rows.append(list(rows[draw(st.integers(0, len(rows) - 1))]))
    return "\n".join(",".join(r) for r in [header, *rows]) + "\n"


@st.composite
def long_csv(draw):
    header = [
        draw(st.sampled_from([str.lower, str.upper, str.title]))(h) for h in draw(st.permutations(LONG))
    ]
    rows = []
    for worker in draw(st.lists(workers, min_size=1, max_size=3, unique=True)):
        for rnd in draw(st.lists(st.integers(0, 9), min_size=1, max_size=3, unique=True)):
            cell = {"worker": worker, "round": str(rnd), "time": draw(good_cells)}
            rows.append([cell[h.lower()] for h in header])
    return draw(_corrupt([header, *draw(st.permutations(rows))]))


@st.composite
def wide_csv(draw):
    header = draw(st.lists(workers, min_size=1, max_size=4, unique=True))
    n_rounds = draw(st.integers(1, 4))
    rows = [[draw(good_cells) for _ in header] for _ in range(n_rounds)]
    if draw(st.booleans()):  # a round column, anywhere
        at = draw(st.integers(0, len(header)))
        header.insert(at, draw(st.sampled_from(["round", "Round"])))
        for i, row in zip(draw(st.permutations(range(n_rounds))), rows, strict=True):
            row.insert(at, str(i))
    return draw(_corrupt([header, *rows]))


LONG = ("worker", "round", "time")
GOOD = "worker,round,time\na,1,0.5\na,2,1.5\nb,1,0.2\nb,2,0.3\n"


def _reference(text):
    """The long-format meaning of `text` by an independent reading (None when not plain long format)."""
    lines = [line.split(",") for line in text.strip().split("\n")]
    header = [h.strip().lower() for h in lines[0]]
    if sorted(header) != ["round", "time", "worker"] or any(len(r) != 3 for r in lines[1:]):
        return None
    late, total = {}, {}
    for row in lines[1:]:
        cell = dict(zip(header, (c.strip() for c in row), strict=True))
        t = math.nan if cell["time"] in ("", "nan") else float(cell["time"])
        if not math.isnan(t):
            total[cell["worker"]] = total.get(cell["worker"], 0) + 1
            late[cell["worker"]] = late.get(cell["worker"], 0) + (t > DEADLINE)
    return {w: (late[w] + 1) / (total[w] + 2) for w in total}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    with scratch_directory(tmp_path_factory, "fuzz-traces") as directory:
        yield directory


@FUZZ
@given(
    text=st.one_of(long_csv(), wide_csv(), damaged_bytes(GOOD.encode()).map(lambda b: b.decode("latin-1")))
)
def test_trace_files(workdir, text):
    path = workdir / "times.csv"
    path.write_bytes(text.encode("utf-8", errors="surrogateescape") if isinstance(text, str) else text)
    profile = attempt(lambda: ClusterProfile.from_traces(path, deadline=DEADLINE, dim=1))
    if profile is None:
        return
    p = profile.straggler_probs
    assert np.all((p > 0) & (p < 1))  # smoothing 1 keeps every estimate inside (0, 1)
    assert len(set(profile.names)) == p.size and not {"round", "worker", "time"} & {
        n.lower() for n in profile.names
    }
    expected = _reference(text)
    if expected is not None:
        assert dict(zip(profile.names, p.tolist(), strict=True)) == pytest.approx(expected, rel=1e-15)
