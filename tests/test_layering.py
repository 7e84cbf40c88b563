"""The import graph of the installed fcnlab package has no cycles, and only the CLI uses the CLI.

Every module's source is parsed with :mod:`ast` (nothing is imported), and every ``import``
and ``from ... import`` counts: at module level, inside functions, under ``TYPE_CHECKING``
or ``try``. Relative imports are resolved against the module's package; ``from pkg import
name`` is an edge to ``pkg.name`` when that is a module, else to ``pkg`` itself (importing
``pkg.sub`` is an edge to ``pkg.sub`` only: a package ``__init__`` that re-exports its
submodules is fine, unless a submodule imports the package back, which is a cycle).

- the package graph: one node per subpackage (``cli``, ``bench``, ``data``, ``engine``,
  ``export``, ``infer``, ``models``, ``serve``) and per top-level module (``card``,
  ``config``, ``errors``, ``masks``, ...; ``fcnlab`` for the package's own ``__init__``);
- the module graph: one node per module.

Neither may have a cycle, and no module outside ``fcnlab.cli`` imports ``fcnlab.cli``
(``fcnlab.__main__``, the ``python -m fcnlab`` entry point, exists to run it).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

import fcnlab

ROOT = "fcnlab"
#: Modules that may import the CLI: the entry point of ``python -m fcnlab``.
ENTRY_POINTS = {"fcnlab.__main__"}

Graph = dict[str, set[str]]


def package_modules(package_dir: Path, root: str = ROOT) -> dict[str, Path]:
    """Every module of the package in ``package_dir``: dotted name -> source file."""
    modules = {}
    for file in sorted(package_dir.rglob("*.py")):
        relative = file.relative_to(package_dir).with_suffix("")
        folders = [package_dir.joinpath(*relative.parts[:i]) for i in range(len(relative.parts))]
        if not all((folder / "__init__.py").is_file() for folder in folders):
            continue  # not inside a regular package: never imported as fcnlab.*
        parts = [root, *relative.parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = file
    return modules


def imports(source: str, module: str, is_package: bool) -> set[tuple[str, str | None]]:
    """What ``module``'s source imports, as ``(module, name)``: ``import X`` gives ``(X, None)``,
    ``from X import a`` gives ``(X, "a")``, relative imports resolved against its package."""
    package = module if is_package else module.rpartition(".")[0]
    found: set[tuple[str, str | None]] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update((alias.name, None) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.update((target, alias.name) for alias in node.names)
    return found


def module_graph(modules: dict[str, Path], root: str = ROOT) -> Graph:
    """Module -> the modules of the package it imports: ``from X import a`` is an edge to the
    module ``X.a`` when there is one, else to ``X``."""
    graph: Graph = {}
    for name, file in modules.items():
        source = file.read_text(encoding="utf-8")
        targets = set()
        for target, alias in imports(source, name, file.name == "__init__.py"):
            if target != root and not target.startswith(root + "."):
                continue
            if alias is not None and f"{target}.{alias}" in modules:
                targets.add(f"{target}.{alias}")
            elif target in modules:
                targets.add(target)
            else:
                raise AssertionError(f"{name} imports {target}, which is not a module of {root}")
        graph[name] = targets - {name}
    return graph


def component(module: str, root: str = ROOT) -> str:
    """The package-graph node of ``module``: its first component after ``fcnlab``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else root


def package_graph(graph: Graph) -> Graph:
    packages: Graph = {}
    for source, targets in graph.items():
        node = packages.setdefault(component(source), set())
        node.update(component(t) for t in targets if component(t) != component(source))
    return packages


def find_cycles(graph: Graph) -> list[list[str]]:
    """One cycle ``[a, b, ..., a]`` per strongly connected component that has one (Tarjan),
    in a stable order; [] when the graph is acyclic."""
    nodes = sorted(set(graph) | {t for targets in graph.values() for t in targets})
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            members = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                members.append(member)
                if member == node:
                    break
            components.append(sorted(members))

    for node in nodes:
        if node not in index:
            visit(node)
    cycles = []
    for members in sorted(components):
        start = members[0]
        if len(members) > 1 or start in graph.get(start, ()):
            cycles.append(_cycle_through(start, set(members), graph))
    return cycles


def _cycle_through(start: str, members: set[str], graph: Graph) -> list[str]:
    """A shortest cycle from ``start`` back to itself inside one strongly connected set."""
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(graph.get(node, ())):
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [start, *reversed(path[:-1]), start] if node != start else [start, start]
                if nxt in members and nxt not in previous:
                    previous[nxt] = node
                    following.append(nxt)
        frontier = following
    raise AssertionError(f"{start} is on no cycle")  # pragma: no cover


def describe(cycles: Iterable[list[str]]) -> str:
    return "; ".join(" -> ".join(cycle) for cycle in cycles)


# --- the cycle finder and the import reader, on hand-made input -------------------------------


def test_find_cycles_on_hand_made_graphs():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    assert find_cycles({"a": {"b", "c"}, "b": {"c"}}) == []  # a diamond is not a cycle
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert find_cycles({"x": {"x"}}) == [["x", "x"]]
    two = {"a": {"b"}, "b": {"a", "c"}, "c": {"d"}, "d": {"e"}, "e": {"c"}, "f": {"a"}}
    assert find_cycles(two) == [["a", "b", "a"], ["c", "d", "e", "c"]]
    assert describe(find_cycles(two)) == "a -> b -> a; c -> d -> e -> c"
    # the shortest way back: a -> b -> a, not a -> c -> d -> a
    assert find_cycles({"a": {"b", "c"}, "b": {"a"}, "c": {"d"}, "d": {"a"}})[0] == ["a", "b", "a"]


SOURCE = """
from __future__ import annotations
import os
import fcnlab.errors
from . import sibling
from .. import card
from ..infer.runtime import make_runner
from fcnlab.masks import overlay

def later():
    from fcnlab.cli import app  # inside a function: counts too

if TYPE_CHECKING:
    from fcnlab.serve.app import create_app
"""


def test_imports_are_read_everywhere_and_relative_ones_resolved(tmp_path):
    package = tmp_path / "fcnlab"
    for folder in ("", "export", "infer", "serve", "cli", "static"):
        (package / folder).mkdir(parents=True, exist_ok=True)
        if folder != "static":
            (package / folder / "__init__.py").write_text("")
    for name in ("errors", "card", "masks", "export/sibling", "infer/runtime", "serve/app"):
        (package / f"{name}.py").write_text("")
    (package / "export" / "onnx.py").write_text(SOURCE)
    (package / "static" / "not_a_module.py").write_text("import fcnlab.cli")
    modules = package_modules(package)
    assert "fcnlab.static.not_a_module" not in modules and "fcnlab.export" in modules
    graph = module_graph(modules)
    assert graph["fcnlab.export.onnx"] == {
        "fcnlab.errors",
        "fcnlab.export.sibling",
        "fcnlab.card",
        "fcnlab.infer.runtime",
        "fcnlab.masks",
        "fcnlab.cli",
        "fcnlab.serve.app",
    }
    packages = package_graph(graph)
    assert packages["export"] == {"errors", "card", "infer", "masks", "cli", "serve"}
    assert cli_importers(graph) == ["fcnlab.export.onnx"]


def test_a_package_whose_submodule_imports_it_back_is_a_cycle(tmp_path):
    package = tmp_path / "fcnlab"
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "data" / "__init__.py").write_text("from fcnlab.data.check import check\n")
    (package / "data" / "build.py").write_text("")
    (package / "data" / "check.py").write_text("from fcnlab.data.build import build\n")
    assert find_cycles(module_graph(package_modules(package))) == []  # re-exporting is fine
    (package / "data" / "check.py").write_text("def check():\n    from fcnlab.data import x\n")
    cycles = find_cycles(module_graph(package_modules(package)))
    assert cycles == [["fcnlab.data", "fcnlab.data.check", "fcnlab.data"]]


# --- the real package -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def graph() -> Graph:
    modules = package_modules(Path(fcnlab.__file__).parent)
    assert {"fcnlab.cli", "fcnlab.infer.runtime", "fcnlab.export.onnx"} <= set(modules)
    return module_graph(modules)


def cli_importers(graph: Graph) -> list[str]:
    """Modules outside ``fcnlab.cli`` (and the entry points) that import ``fcnlab.cli``."""
    return sorted(
        module
        for module, targets in graph.items()
        if component(module) != "cli"
        and module not in ENTRY_POINTS
        and any(component(t) == "cli" for t in targets)
    )


def test_the_package_graph_has_no_cycle(graph):
    cycles = find_cycles(package_graph(graph))
    assert not cycles, f"import cycles between fcnlab's packages: {describe(cycles)}"


def test_the_module_graph_has_no_cycle(graph):
    cycles = find_cycles(graph)
    assert not cycles, f"import cycles between fcnlab's modules: {describe(cycles)}"


def test_only_the_cli_imports_the_cli(graph):
    assert cli_importers(graph) == [], "library modules must not import fcnlab.cli"


def test_the_graph_holds_the_real_imports(graph):
    """The checks above see the real imports, not an empty graph: infer runs export's files,
    config checks model names with models (lazily), the CLI imports everything it runs."""
    packages = package_graph(graph)
    assert "export" in packages["infer"] and "infer" not in packages["export"]
    assert "models" in packages["config"] and "config" not in packages["models"]
    assert {"bench", "export", "infer", "serve", "engine"} <= packages["cli"]
    assert "fcnlab.infer.companion" in graph["fcnlab.infer.predictor"]  # imported lazily
    assert "fcnlab.export.checkpoint" in graph["fcnlab.export"]  # under TYPE_CHECKING too
