"""The import graph of gcdesign/: no cycles, and nothing below the CLI imports it.

The graph is read from the source with ``ast`` (nothing is imported). An edge ``a -> b``
means that executing module ``a``'s body imports module ``b``:

* only module-level statements count (imports inside functions and classes run later, on
  demand); those under ``if TYPE_CHECKING:`` never run;
* ``import gcdesign.x.y`` and ``from gcdesign.x.y import z`` also run the ``__init__`` of
  every package on the way (``gcdesign.x``), except the importer's own ancestors, which
  are already being imported; ``from .pkg import name`` is an edge to ``pkg.name`` when
  that is a module, else to ``pkg`` (its ``__init__``).

The CLI rule looks at every import, lazy ones included: a module outside ``gcdesign.cli``
(``gcdesign.__main__``, the entry point, aside) never imports it.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "gcdesign"


def module_names(root: Path = PACKAGE) -> dict[str, Path]:
    """``{"gcdesign.x.y": path}`` for every .py file (a package is named by its ``__init__``)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _is_package(name: str, modules: dict[str, Path]) -> bool:
    return modules[name].name == "__init__.py"


def _absolute(node: ast.ImportFrom, importer: str, modules: dict[str, Path]) -> str:
    """The module a ``from ... import`` names (relative levels resolved against `importer`)."""
    if node.level == 0:
        return node.module or ""
    base = importer.split(".")
    if not _is_package(importer, modules):
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _statements(tree: ast.Module, *, lazy: bool):
    """Import statements at module level (through if / try blocks), or every one if `lazy`."""
    if lazy:
        yield from (n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom))
        return
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            test = ast.unparse(node.test)
            if "TYPE_CHECKING" not in test:
                stack.extend(node.body)
            stack.extend(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody, *[h.body for h in node.handlers]):
                stack.extend(block)
        elif isinstance(node, ast.With):
            stack.extend(node.body)


def imported_modules(importer: str, modules: dict[str, Path], *, lazy: bool = False) -> set[str]:
    """The gcdesign modules that running `importer`'s body imports (see the module docstring)."""
    tree = ast.parse(modules[importer].read_text(encoding="utf-8"))
    targets = set()
    for node in _statements(tree, lazy=lazy):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            base = _absolute(node, importer, modules)
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        for name in names:
            while name and name not in modules:  # `import gcdesign.x.attr` -> gcdesign.x
                name = name.rpartition(".")[0]
            if not name:
                continue  # not gcdesign
            targets.add(name)
            parent = name.rpartition(".")[0]
            while parent:  # the packages on the way, unless already being imported
                if not (importer == parent or importer.startswith(parent + ".")):
                    targets.add(parent)
                parent = parent.rpartition(".")[0]
    targets.discard(importer)
    return targets


def import_graph(root: Path = PACKAGE, *, lazy: bool = False) -> dict[str, set[str]]:
    modules = module_names(root)
    return {name: imported_modules(name, modules, lazy=lazy) for name in modules}


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def cli_imports_from_below(root: Path = PACKAGE) -> dict[str, set[str]]:
    """Modules outside gcdesign.cli (and the entry point) that import gcdesign.cli, lazily or not."""
    graph = import_graph(root, lazy=True)
    return {
        name: {t for t in targets if t == "gcdesign.cli" or t.startswith("gcdesign.cli.")}
        for name, targets in graph.items()
        if not (name == "gcdesign.cli" or name.startswith("gcdesign.cli.") or name == "gcdesign.__main__")
        and any(t == "gcdesign.cli" or t.startswith("gcdesign.cli.") for t in targets)
    }


def test_the_graph_reader_sees_real_edges():
    """Guard against a reader that finds nothing: known edges, a lazy import kept out, parents counted."""
    graph = import_graph()
    assert "gcdesign.quantization" in graph["gcdesign._codec_kernels"]
    assert {"gcdesign.schemes", "gcdesign.quantization"} <= graph["gcdesign.runtime"]
    assert "gcdesign.schemes" in graph["gcdesign.training.schemes"]  # `from ..schemes.baselines import`
    assert "gcdesign.design" not in graph["gcdesign.schemes.baselines"]  # imported inside a function only
    lazy = import_graph(lazy=True)
    assert "gcdesign.design" in lazy["gcdesign.schemes.baselines"]
    assert any(t.startswith("gcdesign.cli") for t in lazy["gcdesign.__main__"])  # what the CLI rule looks for
    toy = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert import_cycles(toy) == [["a", "b", "c"]]


def test_no_import_cycles():
    cycles = import_cycles(import_graph())
    assert cycles == [], f"import cycles in gcdesign/: {cycles}"


def test_no_import_cycles_through_lazy_imports_either():
    """Imports inside functions included: no two modules need each other (the old cli.args <-> cli.paths)."""
    cycles = import_cycles(import_graph(lazy=True))
    assert cycles == [], f"import cycles in gcdesign/, lazy imports included: {cycles}"


def test_nothing_below_the_cli_imports_it():
    offenders = cli_imports_from_below()
    assert offenders == {}, f"modules below gcdesign.cli that import it: {offenders}"
