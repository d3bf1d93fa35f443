"""Issue #34: data flows one way through the package (docs/architecture.md). Every module sits on a floor; it
imports from its own floor and those below, never from one above, and no modules import each other around a
circle. Read from the source with `ast`, so an import inside a function (loaded when called) counts too."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "reportgen"

# The floors, lowest first, by the first part of a module's name under reportgen/ (a folder or a module).
FLOORS = (
    # what every stage shares (reportgen/__init__.py loads the API lazily, by name, so it imports nothing)
    "__init__ errors files messages privacy stopping priority isolation settings cover languages states freed_memory",
    # the experiment and its parts: the spec, the data, the models, the training engine, the audit
    "spec spec_checker experiment data models batches cpu_kernels optimizer_step train cuda_graph measure",
    "run",  # an experiment end to end, its archive
    "report",  # the report, from an archived run
    "request cli api __main__",  # what the user calls: above both run/ and report/
)

# Circles found and not yet undone, each with its way out; the test fails when one is undone and still listed.
KNOWN_CIRCLES: list[list[str]] = []


def _name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return getattr(test, "id", getattr(test, "attr", None)) == "TYPE_CHECKING"


def _imported(tree: ast.Module, module: str, is_package: bool) -> Iterator[tuple[str, int, bool]]:
    """(imported name, line, only under TYPE_CHECKING) for every import statement, however deeply nested."""

    def visit(node: ast.AST, typing_only: bool) -> Iterator[tuple[str, int, bool]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                yield from ((alias.name, child.lineno, typing_only) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:  # relative: from the module's own package upwards
                    package = module.split(".")[: len(module.split(".")) - (0 if is_package else 1)]
                    base = ".".join(package[: len(package) - child.level + 1] + ([base] if base else []))
                yield base, child.lineno, typing_only
                yield from ((f"{base}.{alias.name}", child.lineno, typing_only) for alias in child.names)
            yield from visit(child, typing_only or isinstance(child, ast.If) and _type_checking(child))

    return visit(tree, False)


def import_graph(root: Path = PACKAGE) -> dict[str, dict[str, tuple[int, bool]]]:
    """module → {module of the package it imports: (line, whether only a type checker runs that import)}."""
    paths = {_name(path, root): path for path in root.rglob("*.py") if "__pycache__" not in path.parts}
    graph: dict[str, dict[str, tuple[int, bool]]] = {}
    for module, path in paths.items():
        edges: dict[str, tuple[int, bool]] = {}
        tree = ast.parse(path.read_text("utf-8"))
        for name, line, typing_only in _imported(tree, module, path.name == "__init__.py"):
            while name and name not in paths:  # `from reportgen.x import f`: the module is reportgen.x
                name = name.rpartition(".")[0]
            if name and name != module and (name not in edges or edges[name][1] and not typing_only):
                edges[name] = (line, typing_only)
        graph[module] = edges
    return graph


def floor(module: str) -> int | None:
    parts = module.split(".")
    first = parts[1] if len(parts) > 1 else "__init__"
    return next((n for n, names in enumerate(FLOORS) if first in names.split()), None)


def arrows_up(graph: dict[str, dict[str, tuple[int, bool]]]) -> list[str]:
    """Every import of a module on a higher floor than the importer's (type-only ones too: a name a module
    needs, even for its annotations, is a dependency)."""
    return [
        f"{module} (line {line}) imports {target}"
        for module, edges in sorted(graph.items())
        for target, (line, _typing_only) in sorted(edges.items())
        if (floor(module) or 0) < (floor(target) or 0)
    ]


def circles(graph: dict[str, dict[str, tuple[int, bool]]]) -> list[list[str]]:
    """The groups of modules that import one another around a circle (strongly connected, Tarjan), counting
    the imports that run; one a type checker alone reads (under TYPE_CHECKING) loads nothing, so it is left out."""
    runs = {
        module: [t for t, (_line, typing_only) in edges.items() if not typing_only] for module, edges in graph.items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def connect(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in runs.get(module, []):
            if target not in index:
                connect(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = stack[stack.index(module) :]
            del stack[stack.index(module) :]
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(runs):
        if module not in index:
            connect(module)
    return found


def test_every_module_is_on_a_floor():
    unplaced = sorted(module for module in import_graph() if floor(module) is None)
    assert unplaced == [], "add each to FLOORS here and to docs/architecture.md"


def test_no_import_runs_back_up_a_floor():
    assert arrows_up(import_graph()) == []


def test_no_modules_import_each_other_around_a_circle():
    found = circles(import_graph())
    assert [group for group in found if group not in KNOWN_CIRCLES] == []
    assert [group for group in KNOWN_CIRCLES if group not in found] == [], "undone: remove it from KNOWN_CIRCLES"


def test_the_checks_see_an_import_up_a_floor_and_a_circle(tmp_path):
    root = tmp_path / "reportgen"
    files = {
        "__init__.py": "",
        "spec.py": "def load():\n    from reportgen.report.render import render  # inside a function: counts\n",
        "report/__init__.py": "",
        "report/render.py": "from . import grading\n",
        "report/grading.py": "def grade():\n    from reportgen.report import render\n",
        "report/figures.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from reportgen.report.alt import A\n",
        "report/alt.py": "from reportgen.report import figures\nA = 1\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    graph = import_graph(root)
    assert arrows_up(graph) == ["reportgen.spec (line 2) imports reportgen.report.render"]
    assert circles(graph) == [["reportgen.report.grading", "reportgen.report.render"]]  # the type-only one is none
