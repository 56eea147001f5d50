"""The layering of DESIGN.md, enforced: imports only point down, only the transport imports the clients, no cycles.

The package's modules are read with :mod:`ast` (not imported), so the check
sees every import: at module level, inside functions, and under
``TYPE_CHECKING`` (which counts for the layering, not for cycles, since it
never runs).
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = "neuroglia.data.redis"
ROOT = Path(__file__).resolve().parents[2] / "src" / "neuroglia" / "data" / "redis"

# Lowest first. A module may import its own layer's subpackage and lower
# layers; names on one line are siblings that must not import each other.
LAYERS: list[tuple[str, ...]] = [
    ("exceptions",),
    ("serialization", "resilience"),
    ("observability",),
    ("config",),
    ("transport",),
    ("nearcache",),
    ("core",),
    ("commands",),
    ("repository",),
    ("entities", "locks"),
    ("cache",),
    ("integration", "testing"),
    ("__init__",),  # the public API; the demo runs the page's code, which imports it
    ("demo",),
    ("__main__",),
]
CLIENT_LIBRARIES = ("redis", "hiredis", "fakeredis")
CLIENT_OWNER = "transport"


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, dotted
    target: str  # the imported module, dotted
    line: int
    type_only: bool  # under ``if TYPE_CHECKING:``


@functools.cache
def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join((PACKAGE, *parts))
        found[name.removesuffix(".__init__") if parts[-1] == "__init__" and len(parts) > 1 else name] = path
    return found


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports_of(module: str, path: Path) -> Iterator[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    type_only = _type_checking_lines(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, node.lineno, node.lineno in type_only)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            # ``from . import x`` and ``from .pkg import module`` name modules too.
            known = modules()
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                yield Import(module, candidate if candidate in known else target, node.lineno, node.lineno in type_only)


def all_imports() -> list[Import]:
    return [imp for name, path in modules().items() for imp in imports_of(name, path)]


def layer_of(module: str) -> tuple[int, str]:
    """(layer index, top-level unit) of a module of the package."""
    rest = module.removeprefix(PACKAGE).lstrip(".")
    unit = rest.split(".")[0] if rest else "__init__"
    for index, names in enumerate(LAYERS):
        if unit in names:
            return index, unit
    raise AssertionError(f"{module} is in no layer: add {unit!r} to LAYERS")


def internal(imp: Import) -> bool:
    return imp.target == PACKAGE or imp.target.startswith(PACKAGE + ".")


def test_every_module_is_in_a_layer() -> None:
    for module in modules():
        layer_of(module)


def upward(imports: list[Import]) -> list[str]:
    """The imports that run up a layer, or sideways into a sibling."""
    found = []
    for imp in imports:
        if not internal(imp):
            continue
        (src_layer, src_unit), (dst_layer, dst_unit) = layer_of(imp.module), layer_of(imp.target)
        if dst_layer > src_layer or (dst_layer == src_layer and dst_unit != src_unit):
            found.append(f"{imp.module}:{imp.line} imports {imp.target} ({src_unit} -> {dst_unit})")
    return found


def test_imports_only_point_down_the_layers() -> None:
    assert upward(all_imports()) == []


def test_an_upward_or_sideways_import_is_reported() -> None:
    down = Import(f"{PACKAGE}.repository.repository", f"{PACKAGE}.core.executor", 1, False)
    up = Import(f"{PACKAGE}.core.executor", f"{PACKAGE}.repository.repository", 2, False)
    type_only_up = Import(f"{PACKAGE}.transport.redis_py", f"{PACKAGE}.repository", 3, True)
    sideways = Import(f"{PACKAGE}.locks.runtime", f"{PACKAGE}.entities.hash_repository", 4, False)
    assert len(upward([down, up, type_only_up, sideways])) == 3


def test_only_the_transport_imports_the_client_libraries() -> None:
    offenders = [
        f"{imp.module}:{imp.line} imports {imp.target}"
        for imp in all_imports()
        if imp.target.split(".")[0] in CLIENT_LIBRARIES and layer_of(imp.module)[1] != CLIENT_OWNER
    ]
    assert offenders == []


def find_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

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
                groups.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return groups


def runtime_edges() -> dict[str, set[str]]:
    """Module -> the package's modules it imports when it runs.

    Importing ``pkg.sub`` runs ``pkg/__init__`` first, so that counts as an
    import of the package too.
    """
    known = modules()
    edges: dict[str, set[str]] = {name: set() for name in known}
    for imp in all_imports():
        if imp.type_only or not internal(imp):
            continue
        target = imp.target
        while target not in known and "." in target:
            target = target.rpartition(".")[0]
        if target in known and target != imp.module:
            edges[imp.module].add(target)
    return edges


def test_there_is_no_import_cycle() -> None:
    assert find_cycles(runtime_edges()) == []


@pytest.mark.parametrize(
    ("edges", "cycles"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"a"}}, [["a", "b"]]),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ],
)
def test_the_cycle_finder_finds_cycles(edges: dict[str, set[str]], cycles: list[list[str]]) -> None:
    assert find_cycles(edges) == cycles


def test_relative_imports_are_resolved() -> None:
    found = {imp.target for imp in imports_of(f"{PACKAGE}.core.executor", ROOT / "core" / "executor.py")}
    assert f"{PACKAGE}.transport.contract" in found
    assert f"{PACKAGE}.exceptions" in found
