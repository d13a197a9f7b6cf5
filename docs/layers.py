"""The layers of ``agentedit``, and a diagram of which part imports which, generated from the code.

Run ``python docs/layers.py`` to rewrite ``docs/layers.md``. ``tests/test_architecture.py`` loads this file
(by path, with importlib) for :data:`LAYERS` and the import scanner, so the layer list lives here only.

Only the standard library is used, and nothing in ``agentedit`` is imported: every import is read from the
source with :mod:`ast`. An import is

- ``module``: at module level (also inside a module-level ``try``/``if``/``class``), run when the module loads;
- ``lazy``: inside a function (run on first call);
- ``type``: under ``if TYPE_CHECKING:`` (never run).
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Literal

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "agentedit"
PACKAGE_UNIT = PACKAGE  # the package's own __init__.py (public names, __version__)

# The layers, bottom-up. A unit is a top-level module (``editor``) or subpackage (``graph``) of agentedit.
# A module-level import may go to the same layer or a lower one, never to a higher one (a function may import
# upwards lazily). Each layer: (name, units, what the layer is).
LAYERS: list[tuple[str, tuple[str, ...], str]] = [
    ("foundation", ("errors", "types", "settings", "registry", "prompts", "wire", "provision", "llama_server", "child_guard"),
     "no agentedit imports beyond this layer: exceptions, record types, settings (the only reader of the "
     "environment), the lazy registry, prompt templates, OpenAI wire shapes, model files, the llama.cpp process"),
    ("parts", ("records", "db", "memory", "backends", "parametric", "anatomy"),
     "input validation, SQL connections and migrations (SQLite, PostgreSQL), the edit store (ledger + index + embedder), model backends, the parametric algorithms, "
     "statement parsing"),
    ("decisions", ("scope", "injection", "conversation"),
     "which retrieved edit bears on a query (scope checkers) and how it is put in front of the model"),
    ("routing", ("routes", "graph"),
     "where an edit lives (in context or in the weights) and the LangGraph query workflow"),
    ("facade", ("editor", "tuning", "questions", "anatomy_step", "demo"),
     "the Editor and the helpers of its verbs"),
    ("entry points", (PACKAGE_UNIT, "__main__", "server", "cli", "integrations", "evaluation"),
     "what users call: the package's public names, the CLI, the HTTP proxy, agent integrations, the benchmark harness"),
]

Kind = Literal["module", "lazy", "type"]


@dataclass(frozen=True)
class Import:
    """One ``agentedit`` module imported by one ``agentedit`` module."""

    file: str  # path relative to ROOT, e.g. "agentedit/editor.py"
    line: int
    importer: str  # dotted module name, e.g. "agentedit.editor"
    target: str  # dotted module name, e.g. "agentedit.graph"
    kind: Kind
    names: tuple[str, ...] = ()  # the names of a ``from ... import`` that come from ``target``

    def __str__(self) -> str:
        what = f"{self.target} ({', '.join(self.names)})" if self.names else self.target
        return f"{self.file}:{self.line} {self.importer} -> {what} [{self.kind}]"


def layer_units() -> dict[str, int]:
    """unit -> layer index (0 = bottom)."""
    out: dict[str, int] = {}
    for i, (_, units, _) in enumerate(LAYERS):
        for unit in units:
            out[unit] = i
    return out


def source_files(root: Path = ROOT) -> list[Path]:
    """Every ``.py`` file of the package (cached bytecode folders skipped)."""
    return sorted(p for p in (root / PACKAGE).rglob("*.py") if "__pycache__" not in p.parts)


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.resolve().relative_to(root.resolve()).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def unit_of(module: str) -> str:
    """The top-level unit of a dotted module name: ``agentedit.graph.nodes`` -> ``graph``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else PACKAGE_UNIT


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _walk(node: ast.AST, kind: Kind) -> Iterator[tuple[ast.AST, Kind]]:
    """Every node below ``node`` with the kind an import there would have."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            child_kind: Kind = "type" if kind == "type" else "lazy"
            yield child, child_kind
            yield from _walk(child, child_kind)
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            yield child, kind
            for stmt in child.body:
                yield stmt, "type"
                yield from _walk(stmt, "type")
            for stmt in child.orelse:
                yield stmt, kind
                yield from _walk(stmt, kind)
        else:
            yield child, kind
            yield from _walk(child, kind)


def imports_of(path: Path, modules: set[str], root: Path = ROOT) -> list[Import]:
    """The ``agentedit`` imports of one file, resolved to module names (``from pkg import submodule`` gives the
    submodule; ``from pkg import name`` gives ``pkg``)."""
    me = module_name(path, root)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    rel = path.resolve().relative_to(root.resolve()).as_posix()
    tree = ast.parse(path.read_text("utf-8"), filename=str(path))
    out: list[Import] = []
    for node, kind in _walk(tree, "module"):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                    out.append(Import(rel, node.lineno, me, alias.name, kind))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[:len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if not (base == PACKAGE or base.startswith(PACKAGE + ".")):
                continue
            from_base: list[str] = []
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in modules:
                    out.append(Import(rel, node.lineno, me, sub, kind))
                else:
                    from_base.append(alias.name)
            if from_base:
                out.append(Import(rel, node.lineno, me, base, kind, tuple(from_base)))
    return out


def all_imports(root: Path = ROOT) -> list[Import]:
    files = source_files(root)
    modules = {module_name(p, root) for p in files}
    return [imp for p in files for imp in imports_of(p, modules, root)]


def units(root: Path = ROOT) -> set[str]:
    """The top-level units that exist in the source tree."""
    return {unit_of(module_name(p, root)) for p in source_files(root)}


def unit_edges(imports: Iterable[Import], kind: Kind = "module") -> dict[tuple[str, str], list[Import]]:
    """(importing unit, imported unit) -> the imports behind that edge, for imports of ``kind`` across units."""
    out: dict[tuple[str, str], list[Import]] = {}
    for imp in imports:
        a, b = unit_of(imp.importer), unit_of(imp.target)
        if imp.kind == kind and a != b:
            out.setdefault((a, b), []).append(imp)
    return out


def upward(imports: Iterable[Import], kind: Kind) -> list[Import]:
    """Imports of ``kind`` from a lower layer to a higher one."""
    layer = layer_units()
    return [imp for imp in imports if imp.kind == kind
            and layer.get(unit_of(imp.importer), -1) < layer.get(unit_of(imp.target), -1)
            and unit_of(imp.importer) in layer]


def _node_id(unit: str) -> str:
    return "m_" + unit.strip("_")  # a prefix keeps Mermaid keywords (graph, end...) out of node ids


def _label(unit: str) -> str:
    return f"{PACKAGE} (__init__)" if unit == PACKAGE_UNIT else unit


def render(root: Path = ROOT) -> str:
    """The Markdown text of ``docs/layers.md``."""
    imports = all_imports(root)
    present = units(root)
    edges = unit_edges(imports, "module")
    layer = layer_units()
    lines = [
        "# Layers (generated)",
        "",
        "Generated from the source by `docs/layers.py` (module-level imports only, read with `ast`); do not edit by",
        "hand. Regenerate with `python docs/layers.py`. The layer list is `LAYERS` in that script;",
        "`tests/test_architecture.py` checks the code against it.",
        "",
        "An arrow `A --> B` means some module of `A` imports a module of `B` when it loads. A module-level import",
        "may only go to the same layer or a lower one; functions may import upwards lazily (listed at the end).",
        "",
        "```mermaid",
        "graph TD",
    ]
    for i in reversed(range(len(LAYERS))):
        name, members, _ = LAYERS[i]
        lines.append(f'  subgraph L{i}["{i} {name}"]')
        for unit in members:
            if unit in present:
                lines.append(f'    {_node_id(unit)}["{_label(unit)}"]')
        lines.append("  end")
    for a, b in sorted(edges, key=lambda e: (-layer.get(e[0], -1), e[0], layer.get(e[1], -1), e[1])):
        lines.append(f"  {_node_id(a)} --> {_node_id(b)}")
    lines += ["```", "", "| layer | units | what |", "|---|---|---|"]
    for i, (name, members, what) in enumerate(LAYERS):
        lines.append(f"| {i} {name} | {', '.join(f'`{_label(u)}`' for u in members)} | {what} |")
    up_lazy = upward(imports, "lazy")
    lines += ["", "## Lazy imports up the layers", "",
              "Allowed (they run inside a function, when called), listed so they stay visible:", ""]
    # no line numbers: the page changes only when the structure does (the freshness test compares it)
    lazy_lines = sorted({f"- `{imp.file}` ({unit_of(imp.importer)}, layer {layer[unit_of(imp.importer)]}) → "
                         f"`{imp.target}` (layer {layer[unit_of(imp.target)]})"
                         + (f": {', '.join(imp.names)}" if imp.names else "") for imp in up_lazy})
    lines += lazy_lines or ["- none"]
    up_module = upward(imports, "module")
    if up_module:
        lines += ["", "## Violations", "", "Module-level imports from a lower layer to a higher one:", ""]
        lines += sorted({f"- `{imp.file}` ({unit_of(imp.importer)}) → `{imp.target}`" for imp in up_module})
    unplaced = sorted(present - set(layer))
    if unplaced:
        lines += ["", "## Not in any layer", "", ", ".join(f"`{u}`" for u in unplaced)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    out = ROOT / "docs" / "layers.md"
    out.write_text(render(), "utf-8")
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
