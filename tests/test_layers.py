"""The house rules of the code, checked from the source (no module is imported to check them).

* Layers, lowest first: ``server.domain`` (the rules), ``server.infra`` (database,
  broadcast, jobs, outbox, settings), the edges ``server.web`` and ``server.graphql``, and
  at the top ``server.demo`` and ``server.cli``. A module never imports one from a layer
  above it; the domain imports no web, GraphQL or terminal framework.
* The server and the admin client never import each other: they meet over the API only.
* No import cycle between modules (``if TYPE_CHECKING:`` imports included).
* No module over :data:`MAX_LINES` lines.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MAX_LINES = 450

LAYERS = {
    "server.domain": 0,
    "server.infra": 1,
    "server.web": 2,
    "server.graphql": 2,
    "server.demo": 3,
    "server.cli": 3,
}
FRAMEWORKS = ("starlette", "strawberry", "textual", "graphql", "uvicorn", "gql", "rich")


def modules(package: str) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted((REPO / package).rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        if "migrations" in parts:
            continue  # historical scripts, run by Alembic
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


ALL = {**modules("server"), **modules("tui_client")}


def imports(name: str, path: Path) -> Iterator[str]:
    """Every module ``name`` imports (at any depth of the file), as a known module name if possible."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                yield submodule if submodule in ALL else base


def layer(name: str) -> int | None:
    return next(
        (rank for prefix, rank in LAYERS.items() if name == prefix or name.startswith(prefix + ".")), None
    )


def test_every_server_module_belongs_to_a_layer() -> None:
    loose = [n for n in ALL if n.startswith("server") and layer(n) is None and n != "server"]
    assert loose == []


@pytest.mark.parametrize("name", sorted(n for n in ALL if n.startswith("server")))
def test_no_module_imports_a_layer_above_it(name: str) -> None:
    mine = layer(name)
    if mine is None:
        return
    above = sorted({t for t in imports(name, ALL[name]) if (rank := layer(t)) is not None and rank > mine})
    assert above == [], f"{name} (layer {mine}) imports from above: {above}"


@pytest.mark.parametrize("name", sorted(n for n in ALL if n.startswith("server.domain")))
def test_the_domain_imports_no_web_graphql_or_terminal_framework(name: str) -> None:
    frameworks = sorted({t for t in imports(name, ALL[name]) if t.split(".")[0] in FRAMEWORKS})
    assert frameworks == [], f"{name} imports {frameworks}"


def test_the_server_and_the_client_do_not_import_each_other() -> None:
    crossing = sorted(
        (name, target)
        for name, path in ALL.items()
        for target in imports(name, path)
        if target.split(".")[0] in ("server", "tui_client") and target.split(".")[0] != name.split(".")[0]
    )
    assert crossing == []


def test_there_is_no_import_cycle() -> None:
    graph = {n: {t for t in imports(n, p) if t in ALL and t != n} for n, p in ALL.items()}
    # A package's __init__ is where `from pkg import mod` starts: it is no edge to the package.
    cycles = [c for c in strongly_connected(graph) if len(c) > 1]
    assert cycles == []


@pytest.mark.parametrize("name", sorted(ALL))
def test_no_module_is_over_the_line_limit(name: str) -> None:
    lines = len(ALL[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{ALL[name].relative_to(REPO)} has {lines} lines (at most {MAX_LINES})"


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iteratively (no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components
