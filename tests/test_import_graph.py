"""No import cycles between the parts of `pipelines`: at every package level, the graph of its
children (each subpackage counted with everything below it) is acyclic. Imports under
TYPE_CHECKING count too: a cycle in the types is a cycle in the design. The graph is grimp's."""

from __future__ import annotations

import sys
from pathlib import Path

import grimp
import networkx
import pytest


def _child(graph: grimp.ImportGraph, package: str, module: str) -> str | None:
    """The child of `package` that `module` is or lies in; None when it lies outside."""
    if module == package or not module.startswith(package + "."):
        return None
    child = package + "." + module[len(package) + 1 :].split(".")[0]
    return child if child in graph.find_children(package) else None


def child_edges(graph: grimp.ImportGraph, package: str) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """Imports between the children of `package`: (importer child, imported child) -> the module imports."""
    edges: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for module in graph.find_descendants(package):
        a = _child(graph, package, module)
        for imported in graph.find_modules_directly_imported_by(module):
            b = _child(graph, package, imported)
            if a and b and a != b:
                edges.setdefault((a, b), []).append((module, imported))
    return edges


def cycles(edges: dict[tuple[str, str], list[tuple[str, str]]]) -> list[list[str]]:
    """The strongly connected components of more than one node, each sorted."""
    graph = networkx.DiGraph(list(edges))
    return sorted(sorted(c) for c in networkx.strongly_connected_components(graph) if len(c) > 1)


def package_cycles(graph: grimp.ImportGraph, root: str) -> list[str]:
    """One line per cycle at any package level under `root`, naming the imports that make it."""
    problems = []
    packages = sorted(m for m in graph.find_descendants(root) | {root} if graph.find_children(m))
    for package in packages:
        edges = child_edges(graph, package)
        for component in cycles(edges):
            inside = [imp for (a, b), v in edges.items() if a in component and b in component for imp in v]
            shown = ", ".join(f"{m} -> {i}" for m, i in sorted(inside)[:6])
            problems.append(f"{package}: cycle {' <-> '.join(component)} ({shown})")
    return problems


def test_pipelines_has_no_import_cycles() -> None:
    graph = grimp.build_graph("pipelines", cache_dir=None)
    assert package_cycles(graph, "pipelines") == []


# The packages, highest first: each layer imports only the layers below it (README's code map).
# Modules left out (the shared base: errors, fileio, yamlio, gitrepo, buildenv...; and validate,
# repro, reference, which only cli.py imports) are not constrained by this list.
LAYERS: list[grimp.Layer | str] = [
    "cli",
    grimp.Layer("ci", "consumer", "site", independent=True),
    "registry",
    "stages",
    "tasks",
    grimp.Layer("comparison", "runtimes", independent=True),
    "sources",
    "workspace",
    "descriptor",
]


def _violations(graph: grimp.ImportGraph, layers: list[grimp.Layer | str]) -> list[str]:
    found = graph.find_illegal_dependencies_for_layers(layers=layers, containers={"pipelines"})
    return sorted(f"{d.importer} -> {d.imported}" for d in found)


def test_layers_import_downwards() -> None:
    graph = grimp.build_graph("pipelines", cache_dir=None)
    assert _violations(graph, LAYERS) == []
    # Not vacuous: upside down, the same graph breaks the rule.
    assert "pipelines.stages -> pipelines.tasks" in _violations(graph, LAYERS[::-1])


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        # Two subpackages importing each other through their modules, one of them only for types.
        (
            {
                "a/x.py": "from toy.b.y import Y\n",
                "b/y.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from toy.a.x import X\nY = 1\n",
            },
            ["toy: cycle toy.a <-> toy.b (toy.a.x -> toy.b.y, toy.b.y -> toy.a.x)"],
        ),
        # A three-module cycle at the top level, through a lazy (function-level) import.
        (
            {"m1.py": "import toy.m2\n", "m2.py": "import toy.m3\n", "m3.py": "def f():\n    import toy.m1\n"},
            ["toy: cycle toy.m1 <-> toy.m2 <-> toy.m3 (toy.m1 -> toy.m2, toy.m2 -> toy.m3, toy.m3 -> toy.m1)"],
        ),
        # A cycle inside a subpackage is reported at that level.
        (
            {"a/p.py": "from toy.a import q\n", "a/q.py": "from toy.a import p\n"},
            ["toy.a: cycle toy.a.p <-> toy.a.q (toy.a.p -> toy.a.q, toy.a.q -> toy.a.p)"],
        ),
        # One direction only: no cycle.
        ({"a/x.py": "import toy.b.y\n", "b/y.py": "Y = 1\n"}, []),
    ],
)
def test_finds_cycles_in_a_synthetic_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: dict[str, str], expected: list[str]
) -> None:
    inits = {"toy/__init__.py": ""} | {f"toy/{Path(f).parent}/__init__.py": "" for f in files if "/" in f}
    _write(tmp_path, {**inits, **{f"toy/{f}": t for f, t in files.items()}})
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "toy", raising=False)
    graph = grimp.build_graph("toy", cache_dir=None)
    assert package_cycles(graph, "toy") == expected
