"""The package's layers, written once, and a walk over every import (function-level ones too)
that fails on an upward import, an import between two stages of the same layer, or a cycle."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "cryptolab"

LAYERS: tuple[tuple[str, ...], ...] = (
    ("cryptolab.errors", "cryptolab.redact", "cryptolab.data"),
    (
        "cryptolab.settings",
        "cryptolab.model",
        "cryptolab.frames",
        "cryptolab.jvm",
        "cryptolab.times",
    ),
    ("cryptolab.feeds", "cryptolab.bus", "cryptolab.store"),
    ("cryptolab.streaming", "cryptolab.dashboard", "cryptolab.batch"),
    ("cryptolab.stack", "cryptolab.stages", "cryptolab.doctor", "cryptolab.report"),
    ("cryptolab.lab",),
    ("cryptolab.cli",),
    ("cryptolab.__main__", "cryptolab"),
)
"""Bottom to top. A module may import its own component (``cryptolab.feeds.*`` from
``cryptolab.feeds.*``) and any component of a lower layer; never a higher layer, never another
component of its own layer (feeds, bus and store do not know each other)."""


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path, known: Iterable[str]) -> set[str]:
    """cryptolab modules imported anywhere in ``path`` (``from pkg import mod`` -> ``pkg.mod``
    when ``mod`` is a module)."""
    names = set(known)
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "cryptolab")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] != "cryptolab":
                continue
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in names else node.module)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports_of(path, mods) - {name} for name, path in mods.items()}


def component(module: str) -> tuple[int, str]:
    """(layer index, component) of a module: the longest layer entry it falls under."""
    best: tuple[int, str] | None = None
    for index, layer in enumerate(LAYERS):
        for entry in layer:
            if (module == entry or module.startswith(entry + ".")) and (
                best is None or len(entry) > len(best[1])
            ):
                best = (index, entry)
    assert best is not None, f"{module} is in no layer: add it to LAYERS"
    return best


def layer_violations(edges: dict[str, set[str]]) -> list[str]:
    problems = []
    for source, targets in sorted(edges.items()):
        src_layer, src_comp = component(source)
        for target in sorted(targets):
            dst_layer, dst_comp = component(target)
            if dst_layer > src_layer:
                problems.append(f"{source} imports {target}: upward (layer {src_layer} -> "
                                f"{dst_layer})")  # fmt: skip
            elif dst_layer == src_layer and dst_comp != src_comp:
                problems.append(f"{source} imports {target}: sideways within layer {src_layer}")
    return problems


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_every_import_goes_down_the_layers() -> None:
    assert layer_violations(graph()) == []


def test_no_import_cycles() -> None:
    assert cycles(graph()) == []


@pytest.mark.parametrize(
    ("source", "target", "expected"),
    [
        ("cryptolab.store.queries", "cryptolab.dashboard.app", "upward"),
        ("cryptolab.bus.producer", "cryptolab.feeds.tapes.tape", "sideways"),
        ("cryptolab.settings", "cryptolab.bus.security", "upward"),
    ],
)
def test_a_planted_bad_import_is_caught(source: str, target: str, expected: str) -> None:
    edges = graph()
    edges[source] = edges[source] | {target}
    assert any(expected in p and p.startswith(source) for p in layer_violations(edges))


def test_a_planted_cycle_is_caught(tmp_path: Path) -> None:
    edges = graph()
    edges["cryptolab.store.schema"] = edges["cryptolab.store.schema"] | {"cryptolab.store.connect"}
    assert ["cryptolab.store.connect", "cryptolab.store.schema"] in cycles(edges)


def test_function_level_imports_are_seen(tmp_path: Path) -> None:
    planted = tmp_path / "mod.py"
    planted.write_text("def f():\n    from cryptolab.stack import Stack\n    return Stack\n")
    assert imports_of(planted, modules()) == {"cryptolab.stack"}
