"""The core's shape: no import cycles among zoo's modules, and no module reaching into another's private names.

Imports are read from the source (module level and inside functions alike, since a function-local
import is still a dependency), except those under ``if TYPE_CHECKING:``, which never run.
"""
from __future__ import annotations

import ast
from pathlib import Path

ZOO = Path(__file__).resolve().parent.parent / "zoo"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ZOO.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in ZOO.rglob("*.py")}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> list[tuple[str, list[str]]]:
    """(imported zoo module, names taken from it) for one import statement."""
    if isinstance(node, ast.Import):
        return [(alias.name, []) for alias in node.names if alias.name in MODULES]
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    if node.level:
        base = package.split(".")
        base = base[: len(base) - (node.level - 1)]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    out = []
    for alias in node.names:
        submodule = f"{source}.{alias.name}"
        if submodule in MODULES:
            out.append((submodule, []))
        elif source in MODULES:
            out.append((source, [alias.name]))
    return out


def _graph() -> dict[str, dict[str, list[str]]]:
    graph: dict[str, dict[str, list[str]]] = {name: {} for name in MODULES}
    for module, path in MODULES.items():
        for node in _imports(ast.parse(path.read_text())):
            for target, names in _targets(module, node):
                if target != module:
                    graph[module].setdefault(target, []).extend(names)
    return graph


def _cycles(graph: dict[str, dict[str, list[str]]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def _package_of(module: str) -> str:
    return module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]


def test_zoo_modules_import_each_other_without_cycles():
    graph = _graph()
    # A package's __init__ re-exporting its own submodules is not a cycle worth reporting.
    graph = {m: {t: n for t, n in targets.items() if not (MODULES[m].name == "__init__.py" and _package_of(t) == m)}
             for m, targets in graph.items()}
    assert _cycles(graph) == []


def test_no_module_imports_another_modules_private_names():
    private = [f"{module} imports {name} from {target}"
               for module, targets in _graph().items() for target, names in targets.items()
               for name in names if name.startswith("_") and not name.startswith("__")]
    assert private == []
