"""The import statements of the core and the plugins, read with ``ast`` (for tests/test_meta.py)."""
from __future__ import annotations

import ast
import pathlib
from collections.abc import Iterator
from typing import NamedTuple

ROOT = pathlib.Path(__file__).resolve().parent.parent
#: Imported inside functions on purpose: present or not, the gateway runs.
OPTIONAL = frozenset({"uvloop", "openai"})
#: The layers, lowest first; a module imports its own layer and the ones below.
LAYERS = ("utilities", "provider SDK", "endpoints", "engine", "HTTP handlers", "test kit")
_UTILITIES = {"gateway", "gateway.errors", "gateway.headers", "gateway.ssrf", "gateway.lru", "gateway.logging",
              "gateway.json_decode", "gateway.compression", "gateway.redact",
              "gateway.hookspecs"}
_ENGINE = {"gateway.chain", "gateway.router", "gateway.plugins", "gateway.state", "gateway.keys", "gateway.saved"}
_HTTP = {"gateway.handlers", "gateway.app", "gateway.server", "gateway.cli", "gateway.schema"}


class Use(NamedTuple):
    path: str
    line: int
    importer: str
    module: str
    #: Inside a function body.
    local: bool
    #: Under ``if TYPE_CHECKING:``.
    type_only: bool
    #: In a test or a fake (``tests/``, ``testing.py``).
    for_tests: bool


def layer(module: str) -> int:
    if module.startswith("gateway.testing"):
        return 5
    if module in _HTTP:
        return 4
    if module in _ENGINE or module.startswith("gateway.defaults"):
        return 3
    if module.startswith("gateway.endpoints"):
        return 2
    if module in _UTILITIES:
        return 0
    return 1


def _module_name(path: pathlib.Path, base: pathlib.Path) -> str:
    parts = list(path.relative_to(base).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _uses(path: pathlib.Path, importer: str, for_tests: bool) -> Iterator[Use]:
    tree = ast.parse(path.read_text(), str(path))
    rel = str(path.relative_to(ROOT))

    def visit(nodes: list[ast.stmt], local: bool, type_only: bool) -> Iterator[Use]:
        for node in nodes:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield Use(rel, node.lineno, importer, alias.name, local, type_only, for_tests)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [f"{node.module}.{a.name}" for a in node.names]
                # ``from gateway import headers`` imports a module; ``from gateway import hookimpl`` a name.
                yield Use(rel, node.lineno, importer, node.module, local, type_only, for_tests)
                for name in names:
                    if (ROOT / (name.replace(".", "/") + ".py")).exists() or (ROOT / name.replace(".", "/")).is_dir():
                        yield Use(rel, node.lineno, importer, name, local, type_only, for_tests)
            elif isinstance(node, ast.If):
                guard = ast.unparse(node.test)
                yield from visit(node.body, local, type_only or guard in ("TYPE_CHECKING", "typing.TYPE_CHECKING"))
                yield from visit(node.orelse, local, type_only)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield from visit(node.body, True, type_only)
            elif isinstance(node, ast.ClassDef):
                yield from visit(node.body, local, type_only)
            elif isinstance(node, (ast.Try, ast.With, ast.AsyncWith, ast.For, ast.While)):
                for field in ("body", "orelse", "finalbody"):
                    yield from visit(getattr(node, field, []) or [], local, type_only)
                for handler in getattr(node, "handlers", []):
                    yield from visit(handler.body, local, type_only)

    yield from visit(tree.body, False, False)


def core() -> list[Use]:
    out = []
    for path in sorted((ROOT / "gateway").rglob("*.py")):
        out.extend(_uses(path, _module_name(path, ROOT), path.parts[-2] == "testing"))
    return out


def plugins() -> list[Use]:
    out = []
    for path in sorted((ROOT / "plugins").rglob("*.py")):
        if ".egg-info" in str(path) or "build" in path.parts:
            continue
        for_tests = "tests" in path.relative_to(ROOT).parts or path.name == "testing.py"
        out.extend(_uses(path, path.stem, for_tests))
    return out


def graph(uses: list[Use]) -> dict[str, set[str]]:
    """Module -> the core modules it imports when it runs (module level, not type-only)."""
    edges: dict[str, set[str]] = {}
    for use in uses:
        if use.local or use.type_only or not (use.module == "gateway" or use.module.startswith("gateway.")):
            continue
        if use.module != use.importer:
            edges.setdefault(use.importer, set()).add(use.module)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                strong(w)
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

    for v in sorted(edges):
        if v not in index:
            strong(v)
    return found
