"""A study's files over an earlier run: all or nothing, a manifest last, every error names the path.

The earlier run (seed 0) is complete in the folder; a second run (seed 1, other numbers) is
killed with SIGKILL at five moments, fails on a full disk (ENOSPC injected at the write, as
tests/test_files.py does) and on a file-size limit (RLIMIT_FSIZE in a subprocess). Every
time, every earlier file is byte for byte what it was, and the earlier manifest still checks.
"""

import errno
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gcdesign._files import STAGE_SUFFIX, check_manifest
from gcdesign._validate import FileSystemError
from gcdesign.studies import run_study

pytest.importorskip("matplotlib")
ROOT = Path(__file__).resolve().parents[1]
NAMES = ["latency.csv", "latency.png", "latency.md", "latency.manifest.json"]


@pytest.fixture(scope="module")
def earlier(tmp_path_factory):
    """A complete earlier run of the latency study (seed 0): {name: bytes}."""
    out = tmp_path_factory.mktemp("earlier")
    run_study("latency", out, quick=True, rng=0, progress=False)
    return {name: (out / name).read_bytes() for name in NAMES}


def _lay(out: Path, files: dict) -> Path:
    out.mkdir(exist_ok=True)
    for name, data in files.items():
        (out / name).write_bytes(data)
    return out


def _intact(out: Path, earlier: dict) -> None:
    for name, data in earlier.items():
        assert (out / name).read_bytes() == data, f"{name} changed"
    check_manifest(out / "latency.manifest.json")


def test_a_run_publishes_its_files_and_a_manifest_last(tmp_path, earlier):
    out = _lay(tmp_path / "out", earlier)
    result = run_study("latency", out, quick=True, rng=1, progress=False)
    assert [p.name for p in result.files] == NAMES  # the manifest last
    assert check_manifest(out / "latency.manifest.json") == [out / n for n in NAMES[:3]]
    assert (out / "latency.csv").read_bytes() != earlier["latency.csv"]  # seed 1: other numbers
    assert sorted(p.name for p in out.iterdir()) == sorted(NAMES)  # no staging folder left
    import json

    settings = json.loads((out / "latency.manifest.json").read_text())["settings"]
    assert settings["study"] == "latency" and settings["rng"] == 1 and settings["quick"] is True


def _env():
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def _study(out: Path, **kwargs):
    command = [sys.executable, "-m", "gcdesign", "study", "latency", "--quick", "--rng", "1"]
    command += ["--workers", "1", "--no-progress", "--out", str(out)]
    return subprocess.Popen(command, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def _staged(out: Path) -> list[str]:
    """Names inside the run's staging folder (empty when there is none yet)."""
    for entry in out.iterdir():
        if entry.name.endswith(STAGE_SUFFIX):
            try:
                return sorted(os.listdir(entry))
            except FileNotFoundError:
                return []
    return []


# the five moments: predicates on the output folder, polled until true, then SIGKILL
MOMENTS = {
    "at start": lambda out: True,
    "staging folder made": lambda out: any(p.name.endswith(STAGE_SUFFIX) for p in out.iterdir()),
    "csv being written": lambda out: any(n.startswith(".latency.csv.") for n in _staged(out)),
    "csv complete": lambda out: "latency.csv" in _staged(out),
    "png being written": lambda out: any(n.startswith(".latency.png.") for n in _staged(out)),
}


@pytest.mark.parametrize("moment", list(MOMENTS))
def test_sigkill_at_any_moment_leaves_every_earlier_file_intact(tmp_path, earlier, moment):
    # a file being written can be gone between two polls: a run that ends before the moment was
    # seen is not a failure of the study, so lay the earlier run again and try once more
    for attempt in range(10):
        out = _lay(tmp_path / f"out{attempt}", earlier)
        process = _study(out)
        deadline = time.monotonic() + 120
        while not MOMENTS[moment](out) and process.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.001)
        if process.poll() is None:
            break
        assert process.returncode == 0, process.stderr.read()[-500:]
    else:
        pytest.fail(f"10 runs ended before {moment!r} was seen")
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert process.returncode == -signal.SIGKILL
    _intact(out, earlier)
    # the next run removes the killed run's staging folder and publishes
    rerun = _study(out)
    assert rerun.wait(timeout=300) == 0, rerun.stderr.read()
    assert sorted(p.name for p in out.iterdir()) == sorted(NAMES)
    check_manifest(out / "latency.manifest.json")


@pytest.mark.parametrize("call", ["fsync", "open"])
def test_a_full_disk_names_the_path_and_keeps_every_earlier_file(tmp_path, earlier, monkeypatch, call):
    out = _lay(tmp_path / "out", earlier)
    real = getattr(os, call)
    calls = []

    def full(*args, **kwargs):  # the second file the run writes (the figure) meets a full disk
        if call == "open" and not str(args[0]).endswith(".gctmp"):
            return real(*args, **kwargs)
        calls.append(args)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(*args, **kwargs)

    monkeypatch.setattr(f"gcdesign._files.os.{call}", full)
    with pytest.raises(FileSystemError) as exc:
        run_study("latency", out, quick=True, rng=1, progress=False)
    message = str(exc.value)
    assert repr(str(out / "latency.png")) in message and "(ENOSPC)" in message, message
    assert "\n" not in message and STAGE_SUFFIX not in message
    monkeypatch.undo()
    _intact(out, earlier)
    assert sorted(p.name for p in out.iterdir()) == sorted(NAMES)  # the staging folder is gone


def test_a_file_size_limit_names_the_path_and_keeps_every_earlier_file(tmp_path, earlier):
    out = _lay(tmp_path / "out", earlier)
    limit = len(earlier["latency.csv"]) + 1024  # the CSV fits, the figure does not
    assert len(earlier["latency.png"]) > limit

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    process = _study(out, preexec_fn=small_files)
    _, err = process.communicate(timeout=300)
    err = err.decode()
    assert process.returncode == 3, err
    assert repr(str(out / "latency.png")) in err and "(EFBIG)" in err, err
    assert err.count("\n") == 1 and STAGE_SUFFIX not in err
    _intact(out, earlier)
    assert sorted(p.name for p in out.iterdir()) == sorted(NAMES)
