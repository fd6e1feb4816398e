"""Docs are true: every code block of README.md and docs/*.md (the study pages aside) runs, and
every output a page shows is compared with what the command prints now.

Sybil parses the Markdown (fenced blocks with their line numbers, ``>>>`` examples inside
Python blocks, one namespace per document); each page runs in a temporary folder of its own,
its blocks in order, so a later block uses the files an earlier one wrote. The kind of a block
is the first word of its info string:

``python``
    runs with ``exec`` in the page's namespace; a block of ``>>>`` examples is a doctest
    whose outputs are compared (ELLIPSIS, NORMALIZE_WHITESPACE).
``bash``
    each command runs in this process (``gcdesign ...`` through ``gcdesign.cli.main``) and
    must exit 0. The quick start's install steps (``python3 -m venv``, ``pip install``,
    ``python -m pytest``) are left to ``.ci/run``, which runs them for real in a fresh clone.
``console``
    ``$ command`` lines, each followed by the output the page shows. The command runs and
    its stdout must match: whitespace runs compare equal, a ``...`` stands for any text
    (doctest's ELLIPSIS), and numbers that vary from run to run are masked explicitly by
    ``mask=NAME[,NAME]`` in the info string (:data:`MASKS`), in both texts.
``text synopsis=COMMAND``
    a usage synopsis: the options it names are exactly those of ``gcdesign COMMAND``.
``bash norun=torchrun``
    a launch the test cannot make in one process (``torchrun`` over several ranks or
    machines); the same ``gcdesign cluster --backend torch`` command runs from its own
    ``bash`` block (under ``-m slow``). Only the reasons in :data:`NORUN` are accepted.
``json file=PATH``
    a file the page's earlier blocks wrote, shown re-indented: every key the file has is
    shown, each shown value equals the file's, and a list ending in ``...`` is a prefix.

A block of any other kind fails the test: nothing on a page goes unchecked.
"""

from __future__ import annotations

import contextlib
import doctest
import io
import json
import re
import shlex
import sys
from pathlib import Path

import pytest
from sybil import Sybil
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser
from sybil.parsers.markdown.lexers import RawFencedCodeBlockLexer

ROOT = Path(__file__).resolve().parents[1]
#: docs/extending.md's examples register an allocator, a scheme, a study and a quantizer in the
#: package's registries: tests/test_schemes_extending.py runs them, checks what they register
#: and unregisters it, so they do not run twice in one process.
RUN_ELSEWHERE = {"docs/extending.md": "tests/test_schemes_extending.py"}
DOCS = [
    doc
    for doc in ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
    if doc not in RUN_ELSEWHERE
]
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

#: Run-to-run varying numbers a console block may mask (``mask=NAME``): pattern -> placeholder.
MASKS = {
    # wall times such as "1.2 s" (a study's run time)
    "seconds": (re.compile(r"\b\d+(?:\.\d+)? s\b"), "<seconds>"),
    # the "time ms" column of `allocate --compare`: the number before the optimal verdict
    "ms": (re.compile(r"\b\d+\.\d+(?=\s+(?:yes|no|unknown)$)", re.M), "<ms>"),
}
SETUP = re.compile(r"^(python3 -m venv|\S*pip install|\S*python -m pytest)")
#: What takes minutes runs only under ``-m slow``: these commands are skipped in the default
#: run, and a Python block holding one of SLOW_PYTHON ends the page's default run there (the
#: blocks after it may use its results).
SLOW_COMMANDS = ("gcdesign study convergence", "gcdesign cluster")
SLOW_PYTHON = ("cluster.train(", "train(problem", "gcluster.train(")
#: The launches a page may show without the test running them (``bash norun=REASON``).
NORUN = {"torchrun": "torchrun starts its ranks as processes of its own (and on other machines)"}
_run_slow = False


class _Kinds:
    """Every fenced block that is not ``python``, by the first word of its info string."""

    def __init__(self):
        self.lexer = RawFencedCodeBlockLexer(
            info_pattern=re.compile(r"(?P<info>[^\n]*)$\n", re.M),
            mapping={"info": "info", "source": "source"},
        )

    def __call__(self, document):
        for region in self.lexer(document):
            words = region.lexemes["info"].split()
            kind = words[0] if words else ""
            if kind == "python":
                continue
            options = dict(w.split("=", 1) for w in words[1:] if "=" in w)
            region.parsed = (kind, options, str(region.lexemes["source"]))
            region.evaluator = _evaluate
            yield region


def _run(command: str) -> tuple[int, str, str]:
    from gcdesign.cli import main

    words = shlex.split(command)
    assert words[0] == "gcdesign", f"no runner for {command!r}"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(words[1:])
    return code, out.getvalue(), err.getvalue()


def _bash(source: str) -> None:
    for line in source.splitlines():
        line = re.sub(r"\s+#.*$", "", line).strip()
        if not line or line.startswith("#"):
            continue
        for step in (p.strip() for p in line.split("&&")):
            if SETUP.match(step) or (not _run_slow and step.startswith(SLOW_COMMANDS)):
                continue
            code, _, err = _run(re.sub(r"^\.venv/bin/", "", step))
            assert code == 0, f"{step!r} exited {code}: {err[-2000:]}"


def console_sessions(source: str) -> list[tuple[str, str]]:
    """The ``(command, shown output)`` pairs of a console block."""
    sessions = []
    for line in source.splitlines():
        if line.startswith("$ "):
            sessions.append([line[2:], []])
        else:
            assert sessions, f"console block output before any command: {line!r}"
            sessions[-1][1].append(line)
    return [(command, "\n".join(lines) + "\n") for command, lines in sessions]


def _mask(text: str, names) -> str:
    for name in names:
        pattern, placeholder = MASKS[name]
        text = pattern.sub(placeholder, text)
    return text


def _console(source: str, options: dict) -> None:
    masks = [m for m in options.get("mask", "").split(",") if m]
    for command, shown in console_sessions(source):
        code, out, err = _run(command)
        assert code == 0, f"{command!r} exited {code}: {err[-2000:]}"
        want, got = _mask(shown, masks), _mask(out, masks)
        if not doctest.OutputChecker().check_output(want, got, FLAGS):
            raise AssertionError(f"$ {command}\n--- the page shows:\n{shown}--- it prints now:\n{out}")


def synopsis_options(source: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*|-o)\b", source))


def command_options(name: str) -> list[list[str]]:
    """The option strings of each option of ``gcdesign NAME`` (``--help`` aside)."""
    from gcdesign.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    import argparse

    return [
        a.option_strings
        for a in sub.choices[name]._actions
        if a.option_strings and a.dest != "help" and a.help != argparse.SUPPRESS  # a hidden old name
    ]


def _synopsis(source: str, options: dict) -> None:
    name = options["synopsis"]
    if name == "commands":  # a digest of every command: each listed once, options that exist
        from gcdesign.cli import COMMANDS

        parts = re.split(r"^gcdesign (\w+)", source, flags=re.M)[1:]
        listed = dict(zip(parts[::2], parts[1::2], strict=True))
        assert sorted(listed) == sorted(c.name for c in COMMANDS), f"commands listed: {sorted(listed)}"
        for command, text in listed.items():
            unknown = synopsis_options(text) - {s for strings in command_options(command) for s in strings}
            assert not unknown, f"{command}: not an option {sorted(unknown)}"
        return
    shown, real = synopsis_options(source), command_options(name)
    missing = [strings[-1] for strings in real if not shown & set(strings)]
    unknown = shown - {s for strings in real for s in strings}
    assert not missing and not unknown, (
        f"synopsis of {name}: missing {missing}, not an option {sorted(unknown)}"
    )


def json_matches(shown, actual, where="") -> None:
    """`shown` (parsed with ``...`` elisions) agrees with `actual` as the module docstring says."""
    if isinstance(shown, dict):
        assert isinstance(actual, dict) and set(shown) == set(actual), (
            f"{where or 'top'}: the page shows keys {sorted(shown)}, the file has {sorted(actual)}"
        )
        for key in shown:
            json_matches(shown[key], actual[key], f"{where}.{key}")
    elif isinstance(shown, list) and shown and shown[-1] is Ellipsis:
        assert isinstance(actual, list) and len(actual) >= len(shown) - 1, where
        for i, item in enumerate(shown[:-1]):
            json_matches(item, actual[i], f"{where}[{i}]")
    elif isinstance(shown, list):
        assert isinstance(actual, list) and len(actual) == len(shown), f"{where}: {shown} != {actual}"
        for i, item in enumerate(shown):
            json_matches(item, actual[i], f"{where}[{i}]")
    else:
        assert shown == actual and type(shown) is type(actual), f"{where}: page {shown!r}, file {actual!r}"


def _json(source: str, options: dict) -> None:
    marker = '"__elided__"'
    shown = json.loads(re.sub(r"\.\.\.(?=\s*\])", marker, source))

    def elide(value):
        if isinstance(value, dict):
            return {k: elide(v) for k, v in value.items()}
        if isinstance(value, list):
            return [Ellipsis if v == "__elided__" else elide(v) for v in value]
        return value

    json_matches(elide(shown), json.loads(Path(options["file"]).read_text()))


def _evaluate(example) -> None:
    kind, options, source = example.parsed
    if kind == "bash" and "norun" in options:
        assert options["norun"] in NORUN, f"norun={options['norun']!r} is not one of {sorted(NORUN)}"
    elif kind == "bash":
        _bash(source)
    elif kind == "console":
        _console(source, options)
    elif kind == "text" and "synopsis" in options:
        _synopsis(source, options)
    elif kind == "json" and "file" in options:
        _json(source, options)
    else:
        raise AssertionError(f"a block of kind {kind or '(none)'!r} {options} is not checked: give it a kind")


SYBIL = Sybil(parsers=[PythonCodeBlockParser(doctest_optionflags=FLAGS), _Kinds(), SkipParser()])


def _examples(doc: str):
    return list(SYBIL.parse(ROOT / doc))


def _run_page(doc, slow, tmp_path, monkeypatch) -> int:
    """Run the page's blocks in order; return how many ran."""
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)  # the page's own folder: later blocks read what earlier ones wrote
    monkeypatch.setattr(sys.modules[__name__], "_run_slow", slow)
    examples = _examples(doc)
    for n, example in enumerate(examples):
        example.document.namespace["__name__"] = "__main__"  # as in a script run with python
        text = example.document.text[example.start : example.end]
        if not slow and any(marker in text for marker in SLOW_PYTHON):
            return n
        example.evaluate()
    return len(examples)


@pytest.mark.parametrize("doc", DOCS)
def test_every_block_runs_and_every_shown_output_matches(doc, tmp_path, monkeypatch):
    _run_page(doc, False, tmp_path, monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("doc", DOCS)
def test_every_block_runs_with_the_slow_ones(doc, tmp_path, monkeypatch):
    assert _run_page(doc, True, tmp_path, monkeypatch) == len(_examples(doc))


def test_the_runner_checks_blocks_and_outputs():
    """Counts, so that a page whose blocks stop being recognized cannot pass by running nothing."""
    assert all((ROOT / test).exists() for test in RUN_ELSEWHERE.values())
    examples = [e for doc in DOCS for e in _examples(doc)]
    shown = sum(
        len(console_sessions(e.parsed[2]))
        for e in examples
        if isinstance(e.parsed, tuple) and e.parsed[0] == "console"
    )
    assert len(examples) >= 40 and shown >= 5


def test_masks_and_elisions_are_what_they_say():
    out = "study latency: 1.2 s, wrote\n"
    assert _mask(out, ["seconds"]) == "study latency: <seconds>, wrote\n"
    assert (
        _mask("dp    36.18   0.00e+00      0.057  yes\n", ["ms"]) == "dp    36.18   0.00e+00      <ms>  yes\n"
    )
    json_matches({"a": [1, 2, Ellipsis]}, {"a": [1, 2, 3]})
    with pytest.raises(AssertionError, match="keys"):
        json_matches({"a": 1}, {"a": 1, "b": 2})  # a field the page does not show
    with pytest.raises(AssertionError, match="page 2, file 3"):
        json_matches({"a": [1, 2]}, {"a": [1, 3]})
    assert synopsis_options("gcdesign x [--a-b N] [-o FILE] [--json]") == {"--a-b", "-o", "--json"}


def test_a_changed_output_fails():
    with pytest.raises(AssertionError, match="the page shows"):
        _console("$ gcdesign latency --workers 4 --rate 1 --stragglers 0\nN = 5 workers\n...\n", {})
    _console("$ gcdesign latency --workers 4 --rate 1 --stragglers 0\nN = 4 workers...\n...\n", {})


def test_help_names_every_default():
    """`gcdesign COMMAND --help` names the default of every option that has one."""
    import argparse

    from gcdesign.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    missing = [
        f"{name} {action.option_strings[-1]}"
        for name, parser in sub.choices.items()
        for action in parser._actions
        if action.option_strings
        and not isinstance(action, (argparse._HelpAction, argparse._StoreTrueAction, argparse._VersionAction))
        and action.default is not None
        and "default" not in (action.help or "")
    ]
    assert not missing, missing
    vague = [
        f"{name} {action.option_strings[-1]}"
        for name, parser in sub.choices.items()
        for action in parser._actions
        if re.search(r"default:? (the package'?s?|the package default)\)", action.help or "")
    ]
    assert not vague, vague  # "default: the package's" names no default


@pytest.mark.slow
def test_the_cluster_example_runs_saved_as_a_script(tmp_path):
    """docs/cluster.md's first example, saved as a script and run with python: the spawned
    LocalCluster imports the script in every worker process, so it needs its __main__ guard."""
    import os
    import subprocess

    first = next(e for e in _examples("docs/cluster.md") if "cluster.train(" in str(e.parsed))
    script = tmp_path / "example.py"
    script.write_text(str(first.parsed))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip()  # the final loss, the straggler frequencies, the overhead
