"""The source stays easy to carry on: no import cycle among backrub's modules (imports inside
functions included), and no function longer than a screen or two."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = SRC / "backrub"
MAX_BODY_LINES = 80


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def sources() -> dict[str, tuple[Path, ast.Module]]:
    return {
        module_name(path): (path, ast.parse(path.read_text(), str(path)))
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def imported(name: str, path: Path, tree: ast.Module, known: set[str]) -> set[str]:
    """backrub's modules that `name` imports, anywhere in it (type-checking-only ones too: a
    cycle through them is still a knot to untie)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from backrub.cli import render` imports the module backrub.cli.render.
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = sources()
    known = set(modules)
    graph = {name: imported(name, path, tree, known) for name, (path, tree) in modules.items()}
    # A package's __init__ runs before any module in it: importing a.b imports a as well.
    for name, edges in graph.items():
        for target in list(edges):
            parent = target.rpartition(".")[0]
            while parent:
                if parent in known and parent != name:
                    edges.add(parent)
                parent = parent.rpartition(".")[0]
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle in the graph (its modules, the first repeated at the end), or None."""
    done: set[str] = set()
    path: list[str] = []
    on_path: set[str] = set()

    def visit(node: str) -> list[str] | None:
        path.append(node)
        on_path.add(node)
        for target in sorted(graph.get(node, ())):
            if target in on_path:
                return [*path[path.index(target) :], target]
            if target not in done:
                cycle = visit(target)
                if cycle:
                    return cycle
        path.pop()
        on_path.discard(node)
        done.add(node)
        return None

    for start in sorted(graph):
        if start not in done:
            cycle = visit(start)
            if cycle:
                return cycle
    return None


def test_no_import_cycle_among_backrubs_modules() -> None:
    graph = import_graph()
    # Packages import their own modules in __init__ (re-exports): not a cycle worth a name.
    for name, edges in graph.items():
        edges.difference_update(
            {t for t in edges if name.startswith(t + ".") or t.startswith(name + ".")}
        )
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " → ".join(cycle or [])


def long_functions() -> list[str]:
    found = []
    for name, (_, tree) in sources().items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                # The body: a command's long list of options is declaration, not logic.
                lines = (node.end_lineno or node.lineno) - node.body[0].lineno + 1
                if lines > MAX_BODY_LINES:
                    found.append(f"{name}.{node.name} ({lines} lines)")
    return found


def test_no_function_body_is_longer_than_80_lines() -> None:
    assert long_functions() == []


@pytest.mark.parametrize(
    ("graph", "cycle"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, None),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
        ({"a": {"b"}, "b": {"b2"}, "b2": {"b"}}, ["b", "b2", "b"]),
    ],
)
def test_the_cycle_finder_finds_cycles(graph: dict[str, set[str]], cycle: list[str]) -> None:
    assert find_cycle(graph) == cycle


def test_imports_inside_functions_are_in_the_graph() -> None:
    graph = import_graph()
    # cli.main imports the session commands only when the whole CLI is asked for.
    assert "backrub.cli.session_commands" in graph["backrub.cli.main"]
