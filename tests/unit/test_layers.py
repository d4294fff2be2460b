"""The house rules of the package layout (see CONTRIBUTING.md), checked on the source itself.

- Stage packages never import each other: they meet through the shared layers, and only the
  orchestrators (pipeline, tuning, cli, api) call several stages.
- Shared layers never import a stage.
- No import circle between modules (lazy imports inside functions included).
- No module over the size limit; every package says in its docstring what it owns.
- Each stage in the task table exposes `run(ctx)` in its package.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import mason

ROOT = Path(mason.__file__).parent
STAGES = {"ingest", "generate", "curate", "train", "evaluate", "export", "chat"}
SHARED = {"core", "data", "models", "runtime", "llm", "report", "scaffold"}
ORCHESTRATORS = {"pipeline", "tuning", "cli", "api", "__init__", "__main__"}
MAX_LINES = 600


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported module) of every import in the file, those inside functions included;
    `from pkg import sub` counts as importing `pkg.sub` when that is a module."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            out += [(node.lineno, f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base) for a in node.names]
    return [(line, m) for line, m in out if m == "mason" or m.startswith("mason.")]


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _type_checking_lines(path: Path) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in ast.walk(node):
                if hasattr(child, "lineno"):
                    lines.add(child.lineno)
    return lines


def test_the_rooms_are_known():
    rooms = {_room(m) for m in MODULES}
    assert rooms <= STAGES | SHARED | ORCHESTRATORS, "a new top-level package: put it in a layer here and in CONTRIBUTING.md"


def test_stages_import_no_other_stage_and_shared_layers_no_stage():
    wrong = []
    for name, path in MODULES.items():
        src = _room(name)
        if src not in STAGES | SHARED:
            continue
        for line, target in _imports(path):
            dst = _room(target)
            if dst in STAGES and dst != src:
                wrong.append(f"{path.relative_to(ROOT.parent)}:{line} imports {target}")
            elif src in STAGES | SHARED and dst in ORCHESTRATORS - {"__init__"}:
                wrong.append(f"{path.relative_to(ROOT.parent)}:{line} imports the orchestrator {target}")
    assert not wrong, "stages meet through core/data/models/runtime/llm/report:\n" + "\n".join(wrong)


def test_no_import_circles():
    graph = {name: set() for name in MODULES}
    for name, path in MODULES.items():
        skip = _type_checking_lines(path)
        for line, target in _imports(path):
            # a package's own `__init__` is a door to its modules, not a dependency of theirs
            if target in MODULES and target != name and line not in skip and not name.startswith(target + "."):
                graph[name].add(target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
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
                circles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert not circles, f"import circles (move the shared names to a module both use): {circles}"


def test_no_module_is_too_long():
    long = {str(p.relative_to(ROOT.parent)): n for p in MODULES.values()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"split these modules (over {MAX_LINES} lines): {long}"


def test_every_package_says_what_it_owns():
    silent = [str(p.relative_to(ROOT.parent)) for p in MODULES.values()
              if p.name == "__init__.py" and not ast.get_docstring(ast.parse(p.read_text(encoding="utf-8")))]
    assert not silent, f"packages without a docstring: {silent}"


@pytest.mark.parametrize("task", ["ingest", "generate", "training", "evaluation", "export"])
def test_each_stage_package_exposes_its_run(task):
    import importlib

    from mason.pipeline.tasks import TASKS

    spec = TASKS[task]
    package = importlib.import_module(spec.package)
    assert inspect.signature(package.run).parameters.keys() == {"ctx"}
    assert spec.entry() is package.run
    assert isinstance(spec.load().VERSION, str)
    for called in spec.calls:
        assert TASKS[called].available
