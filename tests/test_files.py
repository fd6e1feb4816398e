"""Atomic writes: short temporary names, OS failures as FileSystemError, signals, stale temporaries."""

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from gcdesign import design, load_design, load_example, save_design
from gcdesign._files import TEMP_SUFFIX, atomic_write, atomic_write_text, remove_stale_temporaries
from gcdesign._validate import FileSystemError, InputError
from gcdesign.profile import load_profile, save_profile

# each refusal at the call where the OS reports it
FAILURES = [
    ("open", "EROFS"),
    ("open", "EACCES"),
    ("open", "ENAMETOOLONG"),
    ("fsync", "ENOSPC"),
    ("fsync", "EFBIG"),
    ("replace", "EPERM"),
    ("replace", "EISDIR"),
    ("replace", "ENOSPC"),
]


@pytest.fixture(scope="module")
def toy():
    return design(load_example("toy-n8"), bits_per_worker=4)


def _debris(directory, keep):
    return sorted(p.name for p in directory.iterdir() if p.name not in keep)


def test_file_system_error_is_an_input_error():
    assert issubclass(FileSystemError, InputError)


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_longest_target_name_is_written(tmp_path, toy, suffix):
    name = "d" * (255 - len(suffix)) + suffix
    path = save_design(toy, tmp_path / name)
    assert load_design(path).budget == toy.budget
    save_design(toy, path)  # and overwritten
    assert _debris(tmp_path, {name}) == []


def _raiser(code):
    def fail(*args, **kwargs):
        raise OSError(getattr(errno, code), os.strerror(getattr(errno, code)))

    return fail


@pytest.mark.parametrize("call, code", FAILURES)
@pytest.mark.parametrize("what", ["design.json", "design.npz", "profile.json"])
def test_os_failures_keep_the_old_file(tmp_path, toy, monkeypatch, code, call, what):
    target = tmp_path / what
    save = save_profile if what == "profile.json" else save_design
    obj = toy.profile if what == "profile.json" else toy
    save(obj, target)
    before = target.read_bytes()
    monkeypatch.setattr(f"gcdesign._files.os.{call}", _raiser(code))
    with pytest.raises(FileSystemError) as exc:
        save(obj, target)
    message = str(exc.value)
    assert "\n" not in message
    assert repr(str(target)) in message and f"({code})" in message and "old file is unchanged" in message
    monkeypatch.undo()
    assert target.read_bytes() == before
    assert _debris(tmp_path, {what}) == []
    (load_profile if what == "profile.json" else load_design)(target)


def test_writing_onto_a_directory_or_into_a_missing_one(tmp_path, toy):
    (tmp_path / "d.json").mkdir()
    with pytest.raises(FileSystemError, match=r"cannot write '.*d.json': it is a directory"):
        save_design(toy, tmp_path / "d.json")
    with pytest.raises(FileSystemError, match=r"output directory '.*nowhere' does not exist"):
        save_design(toy, tmp_path / "nowhere" / "d.json")
    assert _debris(tmp_path, {"d.json"}) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_directory_is_reported(tmp_path, toy):
    save_design(toy, tmp_path / "d.json")
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(FileSystemError, match=r"Permission denied \(EACCES\)"):
            save_design(toy, tmp_path / "d.json")
    finally:
        tmp_path.chmod(0o700)


def test_sigterm_during_a_write_cleans_up_and_reaches_the_previous_handler(tmp_path):
    target = tmp_path / "t.json"
    atomic_write_text(target, "old")
    seen = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:

        def interrupted(fh):
            fh.write(b"partial")
            os.kill(os.getpid(), signal.SIGTERM)

        with pytest.raises(FileSystemError, match="interrupted by SIGTERM; the old file is unchanged"):
            atomic_write(target, interrupted)
        assert seen == [signal.SIGTERM]  # the handler the program had installed ran
        assert signal.getsignal(signal.SIGTERM) is not None
        handler = signal.getsignal(signal.SIGTERM)
        atomic_write_text(target, "new")  # the handler is restored after every write
        assert signal.getsignal(signal.SIGTERM) is handler
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert target.read_text() == "new"
    assert _debris(tmp_path, {"t.json"}) == []


def test_keyboard_interrupt_cleans_up(tmp_path):
    target = tmp_path / "t.json"
    atomic_write_text(target, "old")

    def interrupted(fh):
        fh.write(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, interrupted)
    assert target.read_text() == "old" and _debris(tmp_path, {"t.json"}) == []


def test_stale_temporaries_removed_only_when_ours_and_dead(tmp_path):
    target = tmp_path / "t.json"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(dead.stdout)
    ours_dead = tmp_path / f".t.json.{dead_pid}-0123abcd{TEMP_SUFFIX}"
    ours_alive = tmp_path / f".t.json.{os.getpid()}-0123abcd{TEMP_SUFFIX}"  # maybe another thread writing
    others = [
        tmp_path / f".t.json.{dead_pid}-0123abcd.tmp",  # another tool's pattern
        tmp_path / f".u.json.{dead_pid}-0123abcd{TEMP_SUFFIX}",  # another target
        tmp_path / f".t.json.{dead_pid}-XYZ{TEMP_SUFFIX}",
        tmp_path / "t.json.bak",
    ]
    for path in [ours_dead, ours_alive, *others]:
        path.write_text("x")
    atomic_write_text(target, "new")
    assert not ours_dead.exists()
    assert ours_alive.exists() and all(p.exists() for p in others)
    assert remove_stale_temporaries(target) == []


WRITER = textwrap.dedent(
    """
    import sys, time
    from gcdesign._files import atomic_write

    def slow(fh):
        fh.write(b"x" * 1_000_000)
        fh.flush()
        print("writing", flush=True)
        time.sleep(60)

    atomic_write(sys.argv[1], slow)
    """
)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_writer_killed_mid_write(tmp_path, toy, sig):
    target = tmp_path / "d.json"
    save_design(toy, target)
    before = target.read_bytes()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert child.stdout.readline().strip() == "writing"
        child.send_signal(sig)
        assert child.wait(timeout=30) == -sig  # SIGTERM still ends the process, as it would have
    finally:
        child.kill()
        child.wait()
    assert target.read_bytes() == before
    debris = _debris(tmp_path, {"d.json"})
    assert debris == (
        [] if sig == signal.SIGTERM else [f".d.json.{child.pid}-{debris[0][-14:-6]}{TEMP_SUFFIX}"]
    )
    save_design(toy, target)  # the next write removes what SIGKILL left
    assert _debris(tmp_path, {"d.json"}) == []
    assert json.loads(target.read_text())["budget"] == toy.budget
