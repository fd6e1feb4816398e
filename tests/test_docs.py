"""First use as written: every shell command and Python block of README.md, docs/guide.md and
docs/cluster.md runs.

Shell blocks run line by line in a temporary directory per document: in the
default suite in this process (``gcdesign ...`` through ``gcdesign.cli.main``,
``python -c CODE`` through ``exec``), under ``-m slow`` as real subprocesses
(``gcdesign`` -> ``python -m gcdesign``, ``python`` -> this interpreter);
Python blocks run with ``exec`` in that directory, one namespace per document so
later blocks see what earlier ones defined. ``pip install`` steps are skipped:
the quick start's chained lines run their gcdesign part. Blocks that take
minutes (a study, a full comparison) are marked slow.
"""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ["README.md", "docs/guide.md", "docs/cluster.md"]
SLOW = ("gcdesign study", "--compare all", "training import", "monte_carlo_error", "cluster.train", "hist.")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def _blocks(doc):
    text = (ROOT / doc).read_text()
    return [(lang, body) for lang, body in FENCE.findall(text) if lang in ("bash", "python", "sh")]


def _commands(body):
    """The runnable commands of a shell block (comments dropped, pip/venv/pytest steps skipped)."""
    out = []
    for line in body.splitlines():
        line = re.sub(r"\s+#.*$", "", line).strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split("&&")]
        keep = [p for p in parts if not re.match(r"(python3 -m venv|\S*pip install|\S*python -m pytest)", p)]
        out += [re.sub(r"^\.venv/bin/", "", p) for p in keep]
    return out


def _shell(command):
    words = shlex.split(command)
    if words[0] == "gcdesign":
        words = [sys.executable, "-m", "gcdesign", *words[1:]]
    elif words[0] in ("python", "python3"):
        words = [sys.executable, *words[1:]]
    return words


def _case(doc, i, lang, body, mode):
    slow = mode == "subprocess" or any(s in body for s in SLOW)
    return pytest.param(
        doc, i, lang, body, mode, id=f"{doc}-{i}-{lang}-{mode}", marks=[pytest.mark.slow] if slow else []
    )


CASES = [
    _case(doc, i, lang, body, mode)
    for mode in ("in-process", "subprocess")
    for doc in DOCS
    for i, (lang, body) in enumerate(_blocks(doc))
    if lang == "python" and mode == "in-process" or lang != "python"
]


@pytest.fixture(scope="module")
def workdirs(tmp_path_factory):
    return {doc: (tmp_path_factory.mktemp(doc.replace("/", "-")), {"__name__": "__docs__"}) for doc in DOCS}


def test_the_docs_have_runnable_blocks():
    blocks = [c.values for c in CASES if c.values[4] == "in-process"]
    assert sum(1 for b in blocks if b[2] == "python") >= 4
    assert sum(len(_commands(b[3])) for b in blocks if b[2] != "python") >= 10


def _in_process(words, namespace, capsys):
    from gcdesign.cli import main

    if words[0] == "gcdesign":
        code = main(words[1:])
        err = capsys.readouterr().err
        assert code == 0, f"{shlex.join(words)!r} exited {code}: {err[-2000:]}"
    elif words[:2] in (["python", "-c"], ["python3", "-c"]):
        exec(compile(words[2], "python -c", "exec"), dict(namespace))
    else:
        pytest.fail(f"no in-process runner for {shlex.join(words)!r}")


@pytest.mark.parametrize("doc, index, lang, body, mode", CASES)
def test_block_runs_as_written(workdirs, monkeypatch, capsys, doc, index, lang, body, mode):
    directory, namespace = workdirs[doc]  # one directory per document: later blocks use earlier files
    monkeypatch.chdir(directory)
    if lang == "python":
        import matplotlib

        matplotlib.use("Agg")
        exec(compile(body, f"{doc} block {index}", "exec"), namespace)
        return
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    for command in _commands(body):
        if mode == "in-process":
            _in_process(shlex.split(command), namespace, capsys)
            continue
        result = subprocess.run(
            _shell(command), cwd=directory, env=env, capture_output=True, text=True, timeout=600
        )
        assert result.returncode == 0, f"{command!r} exited {result.returncode}:\n{result.stderr[-2000:]}"
