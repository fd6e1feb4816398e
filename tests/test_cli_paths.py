"""The CLI's output paths: refused before any work (exit 2), OS refusals while writing (exit 3)."""

from __future__ import annotations

import errno
import os

import pytest

from gcdesign import load_design
from gcdesign.cli import main
from gcdesign.cli.paths import file_system_type

OLD = b'{"old": "file"}'
TRACES = "a,b,c\n1,2,3\n1,1,3\n2,1,3\n"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def place(tmp_path, monkeypatch):
    """A working directory with an old output file, a traces CSV, a directory and a plain file."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "old.json").write_bytes(OLD)
    (tmp_path / "t.csv").write_text(TRACES)
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("x")
    return tmp_path


def snapshot(root):
    return {p.relative_to(root): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


def assert_refused(code, out, err, exit_code, *words):
    assert code == exit_code, err
    assert out == ""
    assert err.startswith("gcdesign: error: ") and err.count("\n") == 1, err
    for w in words:
        assert w in err, err


DESIGN = ["design", "--example", "toy-n8", "-o"]
PROFILE = ["profile", "--traces", "t.csv", "--deadline", "1.5", "--dim", "10", "-o"]
STUDY = ["study", "latency", "--quick", "--no-progress", "--out"]


@pytest.mark.parametrize(
    "argv, words",
    [
        ([*DESIGN, "adir"], ["`output` 'adir' is a directory"]),
        ([*DESIGN, "adir/"], ["names a directory"]),
        ([*DESIGN, "adir.json/"], ["names a directory"]),
        ([*DESIGN, "."], ["is a directory"]),
        ([*DESIGN, "nodir/d.json"], ["directory 'nodir' does not exist"]),
        ([*DESIGN, "afile/d.json"], ["'afile' is not a directory"]),
        ([*DESIGN, ""], ["`output` must name a file, got ''"]),
        ([*DESIGN, "d.txt"], ["must end in .json or .npz"]),
        ([*DESIGN, "x" * 251 + ".json"], ["is 256 bytes long", "allows at most 255"]),
        ([*DESIGN, "/proc/d.json"], ["proc file system"]),
        ([*DESIGN, "/proc/self/d.json"], ["proc file system"]),
        ([*DESIGN, "/sys/d.json"], ["sysfs file system"]),
        ([*PROFILE, "/dev/null"], ["'/dev/null'"]),
        ([*PROFILE, "adir"], ["is a directory"]),
        ([*PROFILE, "nodir/p.json"], ["does not exist"]),
        ([*PROFILE, "t.csv"], ["`output` 't.csv' is the same file as the input `traces` 't.csv'"]),
        ([*PROFILE, "./t.csv"], ["same file as the input `traces`"]),
        ([*PROFILE, "link.csv"], ["same file as the input `traces`"]),
        ([*PROFILE, "hard.csv"], ["same file as the input `traces`"]),
        (
            ["design", "--profile", "p.json", "-o", "p.json", "--budget", "4"],
            ["same file as the input `profile`"],
        ),
        ([*STUDY, "afile"], ["`out` 'afile' is a file, not a directory"]),
        ([*STUDY, "afile/sub"], ["'afile' is not a directory"]),
        ([*STUDY, ""], ["`out` must name a directory"]),
        ([*STUDY, "/proc/study"], ["proc file system"]),
        ([*STUDY, "new/" + "y" * 300], ["is 300 bytes long"]),
    ],
)
def test_unwritable_outputs_exit_2_and_write_nothing(place, capsys, argv, words):
    os.symlink("t.csv", "link.csv")
    os.link("t.csv", "hard.csv")
    (place / "p.json").write_text('{"straggler_probs": [0.1, 0.2], "dim": 10}')
    before = snapshot(place)
    assert_refused(*run(capsys, *argv), 2, *words)
    assert snapshot(place) == before  # nothing written, nothing created, old files intact


def test_proc_is_a_pseudo_file_system(tmp_path):
    if file_system_type("/proc") is None:
        pytest.skip("no /proc/self/mountinfo")
    assert file_system_type("/proc/self") == "proc"
    assert file_system_type(str(tmp_path)) not in {"proc", "sysfs", None}


def test_a_255_byte_name_is_written(place, capsys):
    name = "z" * 250 + ".json"  # the longest name ext4 allows; the temporary name must fit too
    code, out, err = run(capsys, *DESIGN, name)
    assert code == 0, err
    assert load_design(name).n_workers == 8
    assert sorted(p.name for p in place.iterdir()) == sorted(["old.json", "t.csv", "adir", "afile", name])


REFUSALS = [errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG, errno.ENAMETOOLONG]


@pytest.mark.parametrize("code", REFUSALS, ids=[errno.errorcode[c] for c in REFUSALS])
@pytest.mark.parametrize("argv", [[*DESIGN, "old.json"], [*PROFILE, "old.json"]], ids=["design", "profile"])
def test_os_refusal_while_writing_exits_3_old_file_intact(place, capsys, monkeypatch, argv, code):
    def refuse(fd):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "fsync", refuse)
    before = snapshot(place)
    result = run(capsys, *argv)
    assert_refused(*result, 3, os.strerror(code), f"({errno.errorcode[code]})")
    if "old.json" not in result[2]:  # a raw OSError of fsync carries no path
        assert result[2] == f"gcdesign: error: {os.strerror(code)} ({errno.errorcode[code]}).\n"
    assert snapshot(place) == before  # the old file intact and no temporary left


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS], ids=["ENOSPC", "EROFS"])
def test_os_refusal_in_a_study_exits_3(place, capsys, monkeypatch, code):
    import pathlib

    def refuse(self, *args, **kwargs):  # the study's first write: its output directory
        raise OSError(code, os.strerror(code), str(self))

    monkeypatch.setattr(pathlib.Path, "mkdir", refuse)
    before = snapshot(place)
    assert_refused(*run(capsys, *STUDY, "results"), 3, "'results'", os.strerror(code))
    assert snapshot(place) == before


def test_memory_refusal_exits_3(capsys, monkeypatch):
    import gcdesign.latency

    def refuse(*args, **kwargs):
        raise MemoryError("Unable to allocate 7.28 EiB for an array with shape (1000000000, 1000000000)")

    monkeypatch.setattr(gcdesign.latency, "latency_table", refuse)
    argv = ["latency", "--workers", "10", "--rate", "1", "--stragglers", "1"]
    assert_refused(*run(capsys, *argv), 3, "not enough memory: Unable to allocate")
