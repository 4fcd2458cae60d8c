"""The core's import graph: no cycles between its modules (lazy imports inside functions included),
and no import of a plugin package (DESIGN.md: the core never imports from plugins/)."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "magnetkit"


def module_name(path: Path) -> str:
    """``magnetkit/train/loop.py`` -> ``magnetkit.train.loop`` (a package is its ``__init__``)."""
    parts = path.relative_to(CORE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path, modules: set[str]) -> set[str]:
    """The magnetkit modules ``path`` imports anywhere (not under ``if TYPE_CHECKING``), and plugin packages."""
    found: set[str] = set()

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            if "TYPE_CHECKING" not in ast.unparse(node.test):  # typing-only imports never run
                self.generic_visit(node)

        def visit_Import(self, node: ast.Import) -> None:
            found.update(alias.name for alias in node.names)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            if node.level == 0 and node.module:
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)

    Visitor().visit(ast.parse(path.read_text()))
    return {name for name in found if name in modules or name.startswith("magnetkit_")}


def graph() -> dict[str, set[str]]:
    """Module -> the core modules it imports (the package root, which only re-exports, left out)."""
    paths = {module_name(path): path for path in CORE.rglob("*.py")}
    modules = set(paths) - {"magnetkit"}
    return {name: imported(path, modules) - {name} for name, path in paths.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in edges.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_core_modules_import_each_other_without_cycles():
    edges = graph()
    assert len(edges) > 40 and "magnetkit.engine" in edges["magnetkit.pipeline"]  # the graph is read
    found = cycles(edges)
    detail = ["; ".join(f"{m} -> {sorted(edges[m] & set(c))}" for m in c) for c in found]
    assert not found, "import cycles in the core:\n" + "\n".join(detail)


def test_the_core_never_imports_a_plugin():
    offenders = {name: sorted(d for d in deps if d.startswith("magnetkit_")) for name, deps in graph().items()}
    assert not {name: deps for name, deps in offenders.items() if deps}


def test_a_cycle_is_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
