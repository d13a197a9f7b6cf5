"""Structural rules of the code base, checked on the source with ``ast`` (no agentedit module is imported).

The layer list and the import scanner live in ``docs/layers.py`` (loaded here by path), which also draws
``docs/layers.md``; each rule below is one test whose failure message names the offending file and import.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load_layers():
    name = "agentedit_docs_layers"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / "layers.py")
    assert spec is not None and spec.loader is not None, "docs/layers.py is missing"
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


layers = _load_layers()
IMPORTS = layers.all_imports(ROOT)

MAX_LINES = 400
LINE_LIMITED = ("agentedit", "tests", "evals")
NOT_LINE_LIMITED = ("evals/results",)  # generated benchmark output

# Who may read the process environment (``os.environ`` / ``os.getenv``), and why.
ENV_READERS = {
    "agentedit/settings.py": "the one place the environment is read (ENV_VARS lists every variable)",
    "agentedit/server/process.py": "starts `agentedit serve` / `chroma run` as child processes and hands them this "
                                   "process's environment (plus offline flags); it interprets none of it",
}

# The entry points call the Editor's verbs and nothing below it.
ENTRY_POINTS = ("agentedit/server/", "agentedit/cli/", "agentedit/integrations/")
BELOW_EDITOR = ("agentedit.memory", "agentedit.graph", "agentedit.scope", "agentedit.routes", "agentedit.parametric")
# Names of a package below the Editor that are settings-level (vocabulary of a setting, for help text), and why.
SETTINGS_LEVEL_NAMES = {
    ("agentedit.scope", "CHECKERS"): "the scope checker names for the --scope help text (a registry of import "
                                     "strings; no checker is built)",
    ("agentedit.scope", "DEFAULT_CHECKER"): "re-export of settings.DEFAULT_CHECKER, for the --scope help text",
}
# The Editor's internals, which entry points must not reach through (``editor.memory.list(...)`` and the like).
EDITOR_INTERNALS = ("memory", "routes", "workflow")


def _py_files(*tops: str) -> list[Path]:
    out = []
    for top in tops:
        for path in (ROOT / top).rglob("*.py"):
            rel = path.relative_to(ROOT).as_posix()
            if "__pycache__" in path.parts or any(rel.startswith(p + "/") for p in NOT_LINE_LIMITED):
                continue
            out.append(path)
    return sorted(out)


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_no_file_over_400_lines() -> None:
    over = []
    for path in _py_files(*LINE_LIMITED):
        n = len(path.read_text("utf-8").splitlines())
        if n > MAX_LINES:
            over.append(f"{_rel(path)}: {n} lines")
    assert not over, f"files over {MAX_LINES} lines (split them by concern):\n  " + "\n  ".join(over)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a closed path) per strongly connected component that has one (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    sccs: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            sccs.append(comp)

    for v in sorted(edges):
        if v not in index:
            visit(v)
    out = []
    for comp in sccs:
        members = set(comp)
        start = min(comp)
        if len(comp) == 1 and start not in edges.get(start, ()):
            continue
        # shortest path start -> ... -> start inside the component
        prev: dict[str, str] = {}
        frontier, seen, found = [start], {start}, None
        while frontier and found is None:
            nxt = []
            for v in frontier:
                for w in sorted(edges.get(v, ())):
                    if w == start:
                        found = v
                        break
                    if w in members and w not in seen:
                        seen.add(w)
                        prev[w] = v
                        nxt.append(w)
                if found is not None:
                    break
            frontier = nxt
        path = [start]
        v = found
        while v is not None and v != start:
            path.append(v)
            v = prev.get(v)
        out.append([start] + list(reversed(path[1:])) + [start])
    return out


def test_no_import_cycles() -> None:
    edges: dict[str, set[str]] = {}
    where: dict[tuple[str, str], str] = {}
    for imp in IMPORTS:
        if imp.kind == "module" and imp.importer != imp.target:
            edges.setdefault(imp.importer, set()).add(imp.target)
            where.setdefault((imp.importer, imp.target), f"{imp.file}:{imp.line}")
    cycles = _cycles(edges)
    described = [" -> ".join(c) + "\n      via " + ", ".join(where[(a, b)] for a, b in zip(c, c[1:])) for c in cycles]
    assert not cycles, "module-level import cycles:\n  " + "\n  ".join(described)


def test_every_unit_is_in_one_layer() -> None:
    placed = [u for _, units, _ in layers.LAYERS for u in units]
    twice = sorted({u for u in placed if placed.count(u) > 1})
    present = layers.units(ROOT)
    missing = sorted(present - set(placed))
    gone = sorted(set(placed) - present)
    assert not twice, f"units in more than one layer of docs/layers.py LAYERS: {twice}"
    assert not missing, f"agentedit modules/packages in no layer (add them to LAYERS in docs/layers.py): {missing}"
    assert not gone, f"LAYERS in docs/layers.py names units that no longer exist: {gone}"


def test_module_level_imports_go_down_the_layers() -> None:
    layer = layers.layer_units()
    bad = [f"{imp} (layer {layer[layers.unit_of(imp.importer)]} -> layer {layer[layers.unit_of(imp.target)]})"
           for imp in layers.upward(IMPORTS, "module")]
    # Informational only: a function may import upwards (it runs when called, not when the module loads).
    for imp in layers.upward(IMPORTS, "lazy"):
        print(f"lazy import up the layers (allowed): {imp}")
    assert not bad, "module-level imports from a lower layer to a higher one:\n  " + "\n  ".join(bad)


def test_layers_diagram_is_current() -> None:
    page = ROOT / "docs" / "layers.md"
    assert page.is_file() and page.read_text("utf-8") == layers.render(ROOT), (
        "docs/layers.md does not match the code's imports; regenerate it with `python docs/layers.py`")


def _os_names(tree: ast.Module) -> set[str]:
    names = {"os"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.asname or a.name for a in node.names if a.name == "os"}
    return names


def _env_reads(path: Path) -> list[str]:
    tree = ast.parse(path.read_text("utf-8"), filename=str(path))
    os_names = _os_names(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in os_names \
                and node.attr in ("environ", "environb", "getenv"):
            found.append(f"{_rel(path)}:{node.lineno} os.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            found += [f"{_rel(path)}:{node.lineno} from os import {a.name}" for a in node.names
                      if a.name in ("environ", "environb", "getenv")]
    return found


def test_only_settings_reads_the_environment() -> None:
    bad = [hit for path in _py_files("agentedit") if _rel(path) not in ENV_READERS for hit in _env_reads(path)]
    assert not bad, ("the environment is read outside agentedit/settings.py (add the variable to settings.ENV_VARS and "
                     "use settings.env()):\n  " + "\n  ".join(bad))


def _below_editor(target: str) -> str | None:
    for pkg in BELOW_EDITOR:
        if target == pkg or target.startswith(pkg + "."):
            return pkg
    return None


def test_entry_points_import_nothing_below_the_editor() -> None:
    bad, type_only = [], []
    for imp in IMPORTS:
        if not imp.file.startswith(ENTRY_POINTS) or _below_editor(imp.target) is None:
            continue
        if imp.kind == "type":
            type_only.append(str(imp))  # annotations only: never executed
            continue
        names = [n for n in imp.names if (imp.target, n) not in SETTINGS_LEVEL_NAMES]
        if imp.names and not names:
            continue
        bad.append(str(imp) + (f" (not settings-level: {', '.join(names)})" if imp.names else ""))
    for line in type_only:
        print(f"type-only import below the Editor (allowed): {line}")
    assert not bad, ("entry points import below the Editor (call an Editor verb instead, or move a settings-level "
                     "name to agentedit/settings.py):\n  " + "\n  ".join(bad))


def test_entry_points_do_not_reach_into_the_editor() -> None:
    bad = []
    for path in _py_files(*(p.rstrip("/") for p in ENTRY_POINTS)):
        tree = ast.parse(path.read_text("utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in EDITOR_INTERNALS:
                bad.append(f"{_rel(path)}:{node.lineno} {ast.unparse(node)}")
    assert not bad, (f"entry points use the Editor's internals ({', '.join(EDITOR_INTERNALS)}); add or use an Editor "
                     "verb:\n  " + "\n  ".join(bad))
