"""Datasets as data: a YAML declaration says how one benchmark file becomes :class:`Case` objects.

A declaration names the file (relative to the data folder), where its records are, how a record gives its edits and
each kind of probe, which fields hold answers and aliases, and how the questions of a multi-hop case are grouped.
The declarations shipped with the package are in ``agentedit/evaluation/schemas/``; see ``docs/evaluation.md``.

Field references (``prompt``, ``targets``, edit fields):

- ``a.b``: the field ``b`` of ``a`` in the current item (the record, or the element ``each`` walks over); a list on
  the way is walked element by element (``answers.aliases`` collects every answer's aliases);
- ``/a.b``: the same from the record, inside an ``each``;
- ``@target_new``: a field of the case's first edit as built (its prompt after ``{}`` was filled, say);
- ``.``: the item itself (a list of plain question strings).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import AgentEditError
from .cases import PROBE_KINDS, Case, Probe

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
EDIT_FIELDS = ("prompt", "subject", "target_new", "target_old", "statement")
_TOP = {"name", "description", "file", "records", "dataset", "role", "extends", "case_id", "case_id_prefix", "style",
        "edits", "probes", "shared_probes", "source"}
_EDIT_KEYS = {"each", "fill_subject", "required", *EDIT_FIELDS}
_PROBE_KEYS = {"kind", "prompt", "targets", "style", "subkind", "each", "each_key", "limit", "optional", "group", "min",
               "targets_required"}
_SHARED_KEYS = _PROBE_KEYS | {"records", "assign"}


class EvalDataError(AgentEditError, ValueError):
    """A benchmark file is missing or not in the expected shape, or a dataset declaration is malformed."""


def read_json(path: Path) -> Any:
    if not path.exists():
        raise EvalDataError(f"{path} not found; check --data-dir (the file should be copied there as-is)")
    try:
        if path.suffix == ".jsonl":
            return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]
        return json.loads(path.read_text("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EvalDataError(f"{path} is not valid UTF-8 JSON: {exc}") from None


# -- reading values -------------------------------------------------------------------------------------
_MISSING = object()


def _walk(value: Any, parts: list[str]) -> Any:
    for i, part in enumerate(parts):
        if isinstance(value, list):  # walk every element and flatten
            out: list[Any] = []
            for v in value:
                got = _walk(v, parts[i:])
                if got is not _MISSING:
                    out.extend(got if isinstance(got, list) else [got])
            return out
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _as_text(value: Any, *, blank: bool = False) -> str | None:
    """A text field: ``{"str": ...}`` (ROME's shape) and lists (the first) give their string; ``blank`` keeps ""."""
    if isinstance(value, dict):
        value = value.get("str")
    if isinstance(value, list):
        value = value[0] if value else None
    return value if isinstance(value, str) and (blank or value.strip()) else None


def _as_answers(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict) and isinstance(value.get("str"), str):
        return [value["str"]]
    if isinstance(value, list):
        return [a for v in value for a in _as_answers(v)]
    return []


@dataclass
class _Scope:
    record: Any
    item: Any
    edit: dict[str, Any]
    where: str

    def get(self, ref: str) -> Any:
        if ref == ".":
            return self.item
        if ref.startswith("@"):
            return self.edit.get(ref[1:], _MISSING)
        base, path = (self.record, ref[1:]) if ref.startswith("/") else (self.item, ref)
        return _walk(base, path.split("."))

    def text(self, ref: str, *, required: bool = True) -> str | None:
        val = _as_text(self.get(ref), blank=not required)
        if val is None and required:
            raise EvalDataError(f"{self.where}: field {ref.lstrip('/@')!r} is missing or empty")
        return val

    def answers(self, refs: str | list[str]) -> list[str]:
        return [a for ref in ([refs] if isinstance(refs, str) else refs) for a in _as_answers(self.get(ref))]


# -- the declaration -----------------------------------------------------------------------------------
def _check_keys(where: str, spec: Any, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(spec, dict):
        raise EvalDataError(f"{where} must be a mapping, got {type(spec).__name__}")
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise EvalDataError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    return spec


@dataclass(frozen=True)
class Declaration:
    """One dataset declaration: where a file's records are and how each record becomes a :class:`Case`."""

    name: str
    file: str | None = None
    records: str = ""
    dataset: str = ""
    role: str = "eval"
    description: str = ""
    source: str = ""
    case_id: str | None = None
    case_id_prefix: str = ""
    style: str = "complete"
    edits: dict[str, Any] = field(default_factory=dict)
    probes: tuple[dict[str, Any], ...] = ()
    shared_probes: tuple[dict[str, Any], ...] = ()
    origin: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any], origin: str = "") -> Declaration:
        where = f"declaration {origin or data.get('name', '?')}"
        _check_keys(where, data, _TOP)
        if not isinstance(data.get("name"), str) or not data["name"]:
            raise EvalDataError(f"{where}: 'name' is required")
        edits = _check_keys(f"{where}: edits", data.get("edits") or {}, _EDIT_KEYS)
        if not any(edits.get(k) for k in ("prompt", "statement")) or not any(edits.get(k) for k in ("target_new", "statement")):
            raise EvalDataError(f"{where}: edits must map prompt and target_new (or a statement) to fields of the record")
        probes = data.get("probes") or []
        shared = data.get("shared_probes") or []
        if not isinstance(probes, list) or not isinstance(shared, list) or not (probes or shared):
            raise EvalDataError(f"{where}: 'probes' must be a non-empty list of probe declarations")
        for i, p in enumerate(probes):
            _check_probe(f"{where}: probes[{i}]", p, _PROBE_KEYS)
        for i, p in enumerate(shared):
            _check_probe(f"{where}: shared_probes[{i}]", p, _SHARED_KEYS)
            if not p.get("records"):
                raise EvalDataError(f"{where}: shared_probes[{i}] needs 'records', the path of its own list")
        if data.get("role", "eval") not in ("eval", "train"):
            raise EvalDataError(f"{where}: role must be eval or train, got {data.get('role')!r}")
        return cls(name=data["name"], file=data.get("file"), records=data.get("records") or "",
                   dataset=data.get("dataset") or data["name"], role=data.get("role", "eval"),
                   description=data.get("description", ""), source=data.get("source", ""), case_id=data.get("case_id"),
                   case_id_prefix=str(data.get("case_id_prefix") or ""), style=data.get("style", "complete"),
                   edits=dict(edits), probes=tuple(probes), shared_probes=tuple(shared), origin=origin)

    # -- applying it --------------------------------------------------------------------------------
    def parse(self, path: Path) -> list[Case]:
        """The cases of ``path`` (a JSON list, an object holding the list at ``records``, or JSONL)."""
        data = read_json(Path(path))
        records = self._records(data, Path(path))
        cases = [self._case(rec, i, f"{Path(path).name} record {i}") for i, rec in enumerate(records)]
        for spec in self.shared_probes:
            self._share(spec, data, cases, Path(path))
        return cases

    def _records(self, data: Any, path: Path) -> list[dict[str, Any]]:
        found = _walk(data, self.records.split(".")) if self.records else data
        at = f" at {self.records!r}" if self.records else ""
        if found is _MISSING or not isinstance(found, list) or not all(isinstance(r, dict) for r in found):
            raise EvalDataError(f"{path}: expected a JSON list of objects{at} (declaration {self.name}: records)")
        return found

    def _case(self, rec: dict[str, Any], i: int, where: str) -> Case:
        raw_id = rec.get(self.case_id, i) if self.case_id else i
        cid = f"{self.case_id_prefix}{raw_id}"
        edits = self._edits(rec, where)
        probes: list[Probe] = []
        for spec in self.probes:
            probes += self._probes(spec, rec, edits[0], where, cid)
        return Case(cid, self.dataset, edits, probes)

    def _edits(self, rec: dict[str, Any], where: str) -> list[dict[str, Any]]:
        spec = self.edits
        items: list[Any] = [rec]
        if spec.get("each"):
            got = _walk(rec, spec["each"].split("."))
            if not isinstance(got, list) or not got:
                raise EvalDataError(f"{where}: field {spec['each']!r} must be a non-empty list of edits")
            items = got
        required = set(spec.get("required") or ({"prompt", "target_new"} if spec.get("prompt") else {"statement"}))
        edits = []
        for item in items:
            scope = _Scope(rec, item, {}, where)
            edit: dict[str, Any] = {}
            for key in EDIT_FIELDS:
                if spec.get(key):
                    edit[key] = scope.text(spec[key], required=key in required)
            if spec.get("fill_subject") and edit.get("prompt") and edit.get("subject"):
                edit["prompt"] = edit["prompt"].replace("{}", edit["subject"])
            edits.append(edit)
        return edits

    def _probes(self, spec: dict[str, Any], rec: dict[str, Any], edit: dict[str, Any], where: str, cid: str) -> list[Probe]:
        items: list[tuple[Any, str]]
        if spec.get("each_key"):  # a mapping of lists: every list, its key as the probe's subkind
            got = _walk(rec, spec["each_key"].split("."))
            mapping = got if isinstance(got, dict) else {}
            items = [(it, str(key)) for key, lst in mapping.items() for it in (lst or [])]
        elif spec.get("each"):
            got = _walk(rec, spec["each"].split("."))
            items = [(it, spec.get("subkind", "")) for it in (got if isinstance(got, list) else [])]
        else:
            items = [(rec, spec.get("subkind", ""))]
        if spec.get("limit") is not None:
            items = items[: int(spec["limit"])]
        out = []
        for item, subkind in items:
            scope = _Scope(rec, item, edit, where)
            prompt = scope.text(spec["prompt"], required=not spec.get("optional"))
            if not prompt:
                continue
            targets = scope.answers(spec.get("targets") or [])
            if spec.get("targets_required") and not targets:
                raise EvalDataError(f"{where}: no answer in field(s) {spec.get('targets')!r} for probe {spec['kind']}")
            out.append(Probe(spec["kind"], prompt, targets, style=spec.get("style", self.style), subkind=subkind,
                             group=cid if spec.get("group") == "case" else ""))
        if len(out) < int(spec.get("min", 0)):
            raise EvalDataError(f"{where}: no {spec['kind']} probes (field {spec.get('each') or spec['prompt']!r} is missing or empty)")
        return out

    def _share(self, spec: dict[str, Any], data: Any, cases: list[Case], path: Path) -> None:
        """Probes listed apart from the cases (Sanitation's retained facts), dealt to the cases round-robin."""
        items = _walk(data, spec["records"].split("."))
        if not isinstance(items, list):
            raise EvalDataError(f"{path}: expected a list at {spec['records']!r} (declaration {self.name}: shared_probes)")
        for j, item in enumerate(items):
            if not cases:
                return
            scope = _Scope(item, item, {}, f"{path.name} {spec['records']}[{j}]")
            prompt = scope.text(spec["prompt"])
            cases[j % len(cases)].probes.append(Probe(spec["kind"], prompt or "", scope.answers(spec.get("targets") or []),
                                                      style=spec.get("style", self.style), subkind=spec.get("subkind", "")))


def _check_probe(where: str, spec: Any, allowed: set[str]) -> None:
    _check_keys(where, spec, allowed)
    if spec.get("kind") not in PROBE_KINDS:
        raise EvalDataError(f"{where}: kind {spec.get('kind')!r} is not one of {', '.join(PROBE_KINDS)}")
    if not isinstance(spec.get("prompt"), str):
        raise EvalDataError(f"{where}: 'prompt' must name the field holding the question")
    if spec.get("assign", "round-robin") != "round-robin":
        raise EvalDataError(f"{where}: assign must be round-robin")


# -- finding declarations ---------------------------------------------------------------------------------
def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except yaml.YAMLError as exc:
        raise EvalDataError(f"declaration {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise EvalDataError(f"declaration {path} must be a YAML mapping")
    return data


def _resolve(data: dict[str, Any], origin: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    parent = data.get("extends")
    if not parent:
        return data
    if parent in seen:
        raise EvalDataError(f"declaration {origin}: 'extends' loops through {' -> '.join((*seen, parent))}")
    path = SCHEMA_DIR / f"{parent}.yaml"
    if not path.exists():
        raise EvalDataError(f"declaration {origin}: extends unknown declaration {parent!r}; known: {', '.join(builtin_names())}")
    base = _resolve(_read_yaml(path), str(path), (*seen, parent))
    merged = {k: v for k, v in base.items() if k not in ("file", "role", "dataset", "description")}
    merged.update({k: v for k, v in data.items() if k != "extends"})
    return merged


def builtin_names() -> list[str]:
    return sorted(p.stem for p in SCHEMA_DIR.glob("*.yaml"))


@lru_cache(maxsize=None)
def _builtin(name: str) -> Declaration:
    path = SCHEMA_DIR / f"{name}.yaml"
    return Declaration.from_dict(_resolve(_read_yaml(path), path.name), path.name)


def load_declaration(name_or_path: str | Path) -> Declaration:
    """A shipped declaration by name (``zsre-mend``, ``rippleedits``...) or one from a YAML file."""
    text = str(name_or_path)
    if text in builtin_names():
        return _builtin(text)
    path = Path(text)
    if path.suffix not in (".yaml", ".yml") or not path.exists():
        raise EvalDataError(f"unknown dataset declaration {text!r}: give a YAML file or one of {', '.join(builtin_names())}")
    return Declaration.from_dict(_resolve(_read_yaml(path), str(path)), str(path))


def builtin_declarations() -> list[Declaration]:
    return [_builtin(n) for n in builtin_names()]
