"""No import cycles among the modules of ``streams/``.

Every ``import`` counts, also those inside functions: a lazy import hides a circle from
Python, not from a reader, and the shell is meant to be layered (core <- pipeline <- live
worker / bulk path <- CLI). Edges are read from the source with ``ast``: nothing is imported.
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set

PACKAGE = Path(__file__).resolve().parents[2] / "streams"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph() -> Dict[str, Set[str]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: Dict[str, Set[str]] = {m: set() for m in files}

    def known(name: str) -> str | None:
        while name:  # `from .core import codec` may name a module or a package's attribute
            if name in files:
                return name
            name = name.rpartition(".")[0]
        return None

    for module, path in files.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: List[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = resolve(module, is_package, node)
                targets = [f"{base}.{a.name}" for a in node.names] or [base]
            for target in targets:
                hit = known(target)
                if hit is not None and hit != module and not module.startswith(hit + "."):
                    graph[module].add(hit)  # a package's __init__ imported by its own modules is no circle
    return graph


def cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """One cycle per strongly connected component with more than one module (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found: List[List[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
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
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_the_package():
    graph = import_graph()
    assert "streams.pipeline" in graph["streams.topology"]
    assert "streams.core.codec" in graph["streams.pipeline"]


def test_a_planted_cycle_is_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles_in_streams():
    assert cycles(import_graph()) == []


def test_the_pure_core_imports_no_shell():
    """streams.core and streams.models import nothing of the shell (Faust, Kafka, the pipeline)."""
    graph = import_graph()
    for module, targets in graph.items():
        if module.startswith(("streams.core", "streams.models")):
            shell = [t for t in targets if not t.startswith(("streams.core", "streams.models", "streams.schemas"))]
            assert not shell, (module, shell)
