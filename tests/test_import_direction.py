"""The package's imports point one way: model <- training <- analysis/geometry <- viz <- areas <- report/app <- cli.

Every `import` in every module counts, including those inside functions (a lazy import is still a
dependency); only imports under `if TYPE_CHECKING:` (annotations, never run) are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "gpt2atlas"

# lower numbers are lower layers; a module may import its own layer and the layers below it
LAYER = {
    "errors": 0,
    "atomic": 0,  # writing files and folders whole or not at all
    "resources": 0,  # memory estimates checked before a request allocates
    "tokenizer": 0,
    "shipped": 0,
    "numerics": 0,  # PCA, nearest neighbours, thread settings: plain arithmetic every area shares
    "model": 1,
    "training": 2,
    "analysis": 3,
    "geometry": 3,
    "atlas": 3,  # the corpus scan and its SQLite database (reads analysis' corpus runner)
    "viz": 4,
    "areas": 5,  # one spec per area: refers to its analysis (analysis/geometry) and its figures and reading (viz)
    "report": 6,
    "app": 6,
    "cli": 7,
    "": 8,
    "__main__": 8,  # the package's __init__ (its public API) and `python -m gpt2atlas`
    "causes": 8,  # gpt2atlas.causes: the causal analyses' public name (their code is analysis/causes)
}
# report and app share the same layer but must not reach into each other
APART = {frozenset({"report", "app"})}


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(("gpt2atlas", *parts)).removesuffix(".__init__")


def _area(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _runtime_imports(tree: ast.Module) -> set[str]:
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {name for name in found if name == "gpt2atlas" or name.startswith("gpt2atlas.")}


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in SRC.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        imported = _runtime_imports(ast.parse(path.read_text()))
        graph[name] = {target for target in imported if target in modules}  # `from pkg import name` -> modules
    return graph


def test_every_import_points_down_or_sideways():
    wrong = []
    for module, targets in _graph().items():
        for target in targets:
            a, b = _area(module), _area(target)
            if LAYER[b] > LAYER[a] or frozenset({a, b}) in APART:
                wrong.append(f"{module} -> {target}")
    assert sorted(wrong) == []


def test_nothing_but_the_entry_point_imports_the_cli_and_analysis_never_draws():
    offenders = []
    for path in SRC.rglob("*.py"):
        module = _module_name(path)
        tree = ast.parse(path.read_text())
        imported = _runtime_imports(tree)
        if _area(module) not in ("cli", "__main__") and any(_area(t) == "cli" for t in imported):
            offenders.append(f"{module} imports the cli")
        if _area(module) in ("analysis", "geometry", "training", "model", "numerics"):
            drawing = [
                n.names[0].name if isinstance(n, ast.Import) else n.module
                for n in ast.walk(tree)
                if isinstance(n, (ast.Import, ast.ImportFrom))
            ]
            if any(str(d).split(".")[0] in ("plotly", "matplotlib") for d in drawing):
                offenders.append(f"{module} imports a plotting library")
    assert offenders == []


def test_the_package_has_no_import_cycles():
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def strong(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
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
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    assert cycles == []
