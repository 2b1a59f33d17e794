"""The package's shape: stages as subpackages, no import cycle, imports that flow one way."""

from __future__ import annotations

import ast
from pathlib import Path

import scalingfit

ROOT = Path(scalingfit.__file__).parent
#: The pipeline's stages, in the order data flows (docs/design.md §5).
STAGES = ("ingest", "fitting", "checking", "report")


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, modules, *, module_level_only: bool) -> set[str]:
    """The scalingfit modules ``name`` imports (with their parent packages)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    nodes = tree.body if module_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for target in targets:
            if target in modules:
                parts = target.split(".")
                found.update(".".join(parts[:i]) for i in range(2, len(parts) + 1))
    # a module's own packages are imported before it (their __init__ runs first), so an
    # import of a sibling through them is no edge back
    ancestors = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
    return {m for m in found - ancestors - {name} if m in modules}


def _cycle(graph) -> list[str] | None:
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_module_imports_itself_back_even_inside_a_function():
    modules = _modules()
    graph = {name: _imports(name, path, modules, module_level_only=False)
             for name, path in modules.items()}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_stages_import_only_earlier_stages_at_module_level():
    modules = _modules()
    rank = {stage: i for i, stage in enumerate(STAGES)}
    for name, path in modules.items():
        stage = name.split(".")[1] if name.count(".") else None
        for target in _imports(name, path, modules, module_level_only=True):
            other = target.split(".")[1] if target.count(".") else None
            if stage in rank and other in rank:
                assert rank[other] <= rank[stage], f"{name} imports {target}"
            if stage in ("norms", "theory"):  # used by training loops: no statistics
                assert other not in rank, f"{name} imports {target}"


def test_at_most_eight_modules_stand_at_the_top():
    top = sorted(p.name for p in ROOT.glob("*.py"))
    assert len(top) <= 8, top
    packages = sorted(p.parent.name for p in ROOT.glob("*/__init__.py"))
    assert set(STAGES) <= set(packages), packages


def test_public_names_stay_functions_after_every_module_is_imported():
    """A submodule named like a function its package exports (``report.render``) would
    replace the function once imported."""
    import importlib

    for name in _modules():
        if not name.endswith("__main__"):
            importlib.import_module(name)
    from scalingfit import report

    for package in (scalingfit, scalingfit.ingest, report):
        for name in package._LAZY:
            value = getattr(package, name)
            assert name == "norms" or not isinstance(value, type(scalingfit)), (package, name)
