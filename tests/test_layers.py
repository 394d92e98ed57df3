"""The layering docs/design.md draws: each package imports only the layers below it, and no module circle.

contract (torch-free floor) <- foundation (nascore) <- {enas_ext, nasib} <- retraining <-
{experiments, benchmarks}; analysis imports only contract.
Imports are read from the source (every `import`, at any depth, TYPE_CHECKING ones included),
so a lazy import cannot hide an arrow.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("contract", "nascore", "nasib", "enas_ext", "retraining", "experiments", "benchmarks", "analysis")
# package -> the kit packages it may import (itself always allowed); contract is the torch-free floor
ALLOWED = {
    "contract": set(),
    "nascore": {"contract"},
    "nasib": {"contract", "nascore"},
    "enas_ext": {"contract", "nascore"},
    "retraining": {"contract", "nascore", "nasib", "enas_ext"},
    "experiments": {"contract", "nascore", "nasib", "enas_ext", "retraining"},
    "benchmarks": {"contract", "nascore", "nasib", "enas_ext", "retraining"},
    "analysis": {"contract"},
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every kit module a file imports, as dotted names."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in found if m.split(".")[0] in PACKAGES}


def _graph() -> dict[str, set[str]]:
    files = [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")]
    modules = {_module_name(p): p for p in files}
    return {name: {m for m in _imports(p) if m in modules and m != name} for name, p in modules.items()}


def test_graph_is_not_empty():
    graph = _graph()
    assert "nasib.search" in graph and "nascore.loop" in graph["nasib.search"]


@pytest.mark.parametrize("package", PACKAGES)
def test_package_imports_only_lower_layers(package):
    allowed = ALLOWED[package] | {package}
    bad = sorted(f"{mod} -> {dep}" for mod, deps in _graph().items() if mod.split(".")[0] == package
                 for dep in deps if not any(dep == a or dep.startswith(a + ".") for a in allowed))
    assert not bad, "imports that run against the layers:\n" + "\n".join(bad)


def test_no_import_circles():
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return stack[stack.index(dep):] + [dep]
            if dep not in state and (cycle := visit(dep)):
                return cycle
        state[node] = 2
        stack.pop()
        return None

    for mod in sorted(graph):
        if mod not in state and (cycle := visit(mod)):
            pytest.fail("import circle: " + " -> ".join(cycle))


def test_names_match_the_registries():
    from contract import names
    from nascore.spaces import get_space
    from nasib.strategies import STRATEGY_NAMES, get_strategy

    assert names.STRATEGIES == STRATEGY_NAMES
    for name in names.STRATEGIES:
        assert get_strategy(name).name == name
    for space in names.SPACES:
        assert get_space(space).ops  # every listed space builds
