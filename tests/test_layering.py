"""The agent's imports go down the layers of docs/architecture.md and never round a loop.

Every import counts: module level, inside functions, under ``if TYPE_CHECKING:``.
The layer order is read from the block in docs/architecture.md, so the document
and the check cannot drift apart.  The checker itself is tested on small graphs
with a planted upward edge and a planted cycle.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "agent"
DOC = ROOT / "docs" / "architecture.md"

Graph = dict[str, set[str]]


# --- reading the rule and the code ---------------------------------------------------------------------


def read_layers(doc: str) -> list[tuple[str, list[str]]]:
    """The ``name: prefix prefix ...`` lines of the fenced block after the ``layers`` marker, lowest first."""
    match = re.search(r"<!-- layers:.*?-->\s*```text\n(.*?)```", doc, re.S)
    if match is None:
        raise AssertionError("docs/architecture.md has no layer block")
    layers = []
    for line in match.group(1).splitlines():
        if line.strip():
            name, _, prefixes = line.partition(":")
            layers.append((name.strip(), prefixes.split()))
    return layers


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def agent_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted((ROOT / PACKAGE).rglob("*.py"))}


def imported_names(path: Path, module: str) -> set[str]:
    """Every name an ``import`` or ``from ... import`` anywhere in the file may bind, fully qualified."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                origin = ".".join([*base, node.module] if node.module else base)
            else:
                origin = node.module or ""
            # ``from X import y``: y is a submodule of X or a name defined in X; the graph resolves which
            out.update(origin if alias.name == "*" else f"{origin}.{alias.name}" for alias in node.names)
    return out


def import_graph(modules: Mapping[str, Path]) -> Graph:
    """module -> the modules of ``agent`` it imports (``from agent.card import tlv`` is an edge to agent.card.tlv)."""
    graph: Graph = {}
    for module, path in modules.items():
        targets: set[str] = set()
        for name in imported_names(path, module):
            if name.split(".")[0] != PACKAGE:
                continue
            # the longest known module the name lies in (a module, or a name defined in one)
            while name not in modules and "." in name:
                name = name.rsplit(".", 1)[0]
            if name in modules and name != module:
                targets.add(name)
        graph[module] = targets
    return graph


# --- the checks (pure functions on a graph) -------------------------------------------------------------


def layer_of(module: str, layers: list[tuple[str, list[str]]]) -> int | None:
    """The rank of the layer whose longest prefix matches ``module``; None when no line names it."""
    best: tuple[int, int] | None = None  # (prefix length, rank)
    for rank, (_, prefixes) in enumerate(layers):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), rank)
    return None if best is None else best[1]


def upward_edges(graph: Mapping[str, Iterable[str]], rank: Mapping[str, int]) -> list[tuple[str, str]]:
    return sorted((src, dst) for src, dsts in graph.items() for dst in dsts if rank[dst] > rank[src])


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (or a module importing itself), Tarjan."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


# --- the real code ---------------------------------------------------------------------------------------

LAYERS = read_layers(DOC.read_text(encoding="utf-8"))
MODULES = agent_modules()
GRAPH = import_graph(MODULES)


def test_the_layer_block_names_the_order_of_the_architecture() -> None:
    assert [name for name, _ in LAYERS] == ["base", "transport", "protocols", "services", "app", "entry"]


def test_every_agent_module_has_a_layer() -> None:
    assert len(MODULES) > 50  # the walk found the package
    assert [m for m in MODULES if layer_of(m, LAYERS) is None] == []


def test_imports_only_go_down_the_layers() -> None:
    rank = {m: layer_of(m, LAYERS) or 0 for m in MODULES}
    bad = [
        f"{src} ({LAYERS[rank[src]][0]}) imports {dst} ({LAYERS[rank[dst]][0]})"
        for src, dst in upward_edges(GRAPH, rank)
    ]
    assert bad == []


def test_no_import_cycles_between_agent_modules() -> None:
    assert cycles(GRAPH) == []


def test_the_agent_never_imports_the_simulator_or_the_tests() -> None:
    bad = [m for m, p in MODULES.items() for n in imported_names(p, m) if n.split(".")[0] in ("sim", "tests")]
    assert bad == []


def test_the_graph_sees_local_and_type_checking_imports() -> None:
    # function-local: the wiring builds the uplink inside build_runtime
    assert "agent.uplink.client" in GRAPH["agent.app.wiring"]
    # ``from agent.card import tlv`` is an edge to the module, not to the package
    assert "agent.card.tlv" in GRAPH["agent.card.lds"] and "agent.card" not in GRAPH["agent.card.lds"]


def test_long_modules_say_why_they_are_one_piece() -> None:
    """A module over 400 lines explains in its docstring why it is not split (docs/architecture.md)."""
    long = {m: p for m, p in MODULES.items() if len(p.read_text(encoding="utf-8").splitlines()) > 400}
    unexplained = [
        m
        for m, p in long.items()
        if "Why one piece:" not in (ast.get_docstring(ast.parse(p.read_text(encoding="utf-8"))) or "")
    ]
    assert unexplained == []


# --- the checker checks ----------------------------------------------------------------------------------


def test_the_checker_finds_a_planted_upward_edge() -> None:
    graph = {"low": {"mid"}, "mid": set(), "high": {"mid", "low"}}
    rank = {"low": 0, "mid": 1, "high": 2}
    assert upward_edges(graph, rank) == [("low", "mid")]
    assert upward_edges({"low": set(), "mid": {"low"}, "high": {"mid"}}, rank) == []


def test_the_checker_finds_a_planted_cycle_and_a_self_import() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}, "f": {"d"}}
    assert cycles(graph) == [["a", "b", "c"], ["e"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_the_checker_catches_an_upward_edge_and_a_cycle_planted_in_the_real_graph() -> None:
    rank = {m: layer_of(m, LAYERS) or 0 for m in MODULES}
    planted = {m: set(d) for m, d in GRAPH.items()}
    planted["agent.model"].add("agent.app.policy")  # base -> app: upward, and policy -> model closes a loop
    assert ("agent.model", "agent.app.policy") in upward_edges(planted, rank)
    assert any({"agent.model", "agent.app.policy"} <= set(c) for c in cycles(planted))


def test_layers_resolve_by_the_longest_prefix() -> None:
    layers = [("base", ["agent", "agent.model"]), ("protocols", ["agent.card"]), ("app", ["agent.app"])]
    assert layer_of("agent", layers) == 0 and layer_of("agent.card.mrz", layers) == 1
    assert layer_of("agent.application", layers) == 0  # a prefix matches whole name parts only
    assert layer_of("agent.app.flow", layers) == 2 and layer_of("other", layers) is None


@pytest.mark.parametrize(
    ("source", "module", "is_package", "expected"),
    [
        ("from . import tlv", "agent.card.lds", False, "agent.card.tlv"),
        ("from ..errors import GateAgentError", "agent.card.lds", False, "agent.errors.GateAgentError"),
        ("from .tlv import x", "agent.card", True, "agent.card.tlv.x"),
        ("if TYPE_CHECKING:\n    from agent.app import flow", "agent.store.queue", False, "agent.app.flow"),
        ("def f():\n    import agent.daemon", "agent.model", False, "agent.daemon"),
    ],
)
def test_imports_are_read_wherever_they_are(
    tmp_path: Path, source: str, module: str, is_package: bool, expected: str
) -> None:
    path = tmp_path / ("__init__.py" if is_package else "m.py")
    path.write_text(source + "\n", encoding="utf-8")
    assert expected in imported_names(path, module)
