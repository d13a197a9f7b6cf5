"""Turning user input into valid :class:`EditRecord` objects.

Accepts the benchmark shape (``prompt``, ``subject``, ``target_new``, optional
``target_old``), CounterFact's ``requested_rewrite`` shape, and a plain fact
``statement``. Reads JSON, JSONL and CSV files with line-accurate errors.
Nothing here writes anywhere: validation happens before any store is touched.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

from .errors import EditError, ImportFormatError
from .types import EditRecord, new_edit_id

MAX_TEXT_CHARS = 2000
MAX_TARGET_CHARS = 500
NAMESPACE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}$")

_STATEMENT_KEYS = ("statement", "fact", "text")
_OLD_KEYS = ("target_old", "target_true", "ground_truth")
_KNOWN_KEYS = {
    "id", "namespace", "prompt", "subject", "target_new", "relation", "metadata", "valid_from",
    "valid_until", "actor", "case_id", "requested_rewrite", "aliases", "rephrase_prompt",
    "locality_prompt", "locality_ground_truth", *_STATEMENT_KEYS, *_OLD_KEYS,
}


def validate_namespace(namespace: Any) -> str:
    if not isinstance(namespace, str) or not NAMESPACE_RE.match(namespace):
        raise EditError(
            f"invalid namespace {namespace!r}: use 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"
        )
    return namespace


def _text(value: Any, field: str, *, limit: int = MAX_TEXT_CHARS, required: bool = False) -> str | None:
    """Strip and check one text field; unwrap CounterFact's ``{"str": ...}``; lists take their first item."""
    if isinstance(value, Mapping) and "str" in value:
        value = value["str"]
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None:
        if required:
            raise EditError(f"{field} is missing")
        return None
    if not isinstance(value, str):
        raise EditError(f"{field} must be a string, got {type(value).__name__}")
    value = " ".join(value.split())
    if not value:
        if required:
            raise EditError(f"{field} is empty or only whitespace")
        return None
    if len(value) > limit:
        raise EditError(f"{field} is {len(value):,} characters long; the limit is {limit:,}. Shorten it or split the fact")
    return value


def relation_template(prompt: str, subject: str) -> str | None:
    """The prompt with the subject replaced by ``{}``, or None if the subject is not in it."""
    idx = prompt.lower().find(subject.lower())
    if idx < 0:
        return None
    return prompt[:idx] + "{}" + prompt[idx + len(subject):]


def make_statement(prompt: str, target: str) -> str:
    """Render a prompt and its new target as one fact sentence."""
    prompt = prompt.rstrip()
    if prompt.endswith("?"):
        return f"{prompt} {target}."
    return f"{prompt} {target}."


def build_record(data: Mapping[str, Any] | EditRecord, *, namespace: str = "default", actor: str = "user") -> EditRecord:
    """Validate one edit given as a mapping (or an EditRecord) and return a normalised record."""
    if isinstance(data, EditRecord):
        data = data.to_dict()
    if not isinstance(data, Mapping):
        raise EditError(f"an edit must be an object/dict, got {type(data).__name__}")
    data = dict(data)
    rewrite = data.pop("requested_rewrite", None)
    if rewrite is not None:  # ROME/MQuAKE shape: one requested rewrite with a {} subject slot
        if isinstance(rewrite, list):
            if len(rewrite) != 1:
                raise EditError("requested_rewrite holds several rewrites; give them as separate edits")
            rewrite = rewrite[0]
        if not isinstance(rewrite, Mapping):
            raise EditError("requested_rewrite must be an object")
        subj = _text(rewrite.get("subject"), "requested_rewrite.subject", required=True)
        tmpl = _text(rewrite.get("prompt"), "requested_rewrite.prompt", required=True)
        data.setdefault("subject", subj)
        data.setdefault("prompt", tmpl.replace("{}", subj or ""))
        data.setdefault("target_new", rewrite.get("target_new"))
        data.setdefault("target_old", rewrite.get("target_true"))
    unknown = sorted(k for k in data if k not in _KNOWN_KEYS and k not in EditRecord.__dataclass_fields__)
    if unknown:
        raise EditError(f"unknown field(s) {', '.join(unknown)}; known fields: prompt, subject, target_new, target_old, statement, id, namespace, metadata")

    ns = validate_namespace(data["namespace"] if data.get("namespace") is not None else namespace)
    edit_id = data.get("id")
    if edit_id is None or edit_id == "":
        edit_id = new_edit_id()
    elif not isinstance(edit_id, str) or not ID_RE.match(edit_id):
        raise EditError(f"invalid id {edit_id!r}: use up to 128 letters, digits, '_', '.', ':' or '-'")

    prompt = _text(data.get("prompt"), "prompt")
    subject = _text(data.get("subject"), "subject", limit=MAX_TARGET_CHARS)
    target_new = _text(data.get("target_new"), "target_new", limit=MAX_TARGET_CHARS)
    target_old = next((_text(data.get(k), k, limit=MAX_TARGET_CHARS) for k in _OLD_KEYS if data.get(k) is not None), None)
    statement = next((_text(data.get(k), k) for k in _STATEMENT_KEYS if data.get(k) is not None), None)

    if data.get("target_new") is not None and target_new is None:
        raise EditError("target_new is empty or only whitespace; give the new answer the model should produce")
    if prompt is not None and target_new is None:
        raise EditError("target_new is missing: an edit with a prompt needs the new target it should produce")
    if prompt is None and statement is None:
        if target_new is not None:
            raise EditError("prompt is missing: give the prompt or question the target answers, or a plain statement")
        raise EditError("an edit needs either prompt + target_new or a statement")
    if prompt is not None and "{}" in prompt:
        if subject is None:
            raise EditError("prompt has a {} slot but no subject to fill it")
        prompt = prompt.replace("{}", subject)

    relation = _text(data.get("relation"), "relation")
    if relation is None and subject is not None:
        source = prompt
        if source is None and statement is not None and target_new is not None:
            cut = statement.lower().rfind(target_new.lower())
            source = statement[:cut].rstrip() if cut > 0 else None
        if source is not None:
            relation = relation_template(source, subject)
    if statement is None:
        statement = make_statement(prompt, target_new)  # type: ignore[arg-type]

    metadata = data.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        raise EditError("metadata must be an object")
    metadata = dict(metadata)
    for extra in ("case_id", "aliases", "rephrase_prompt", "locality_prompt", "locality_ground_truth"):
        if data.get(extra) is not None:
            metadata.setdefault(extra, data[extra])
    try:
        json.dumps(metadata)
    except (TypeError, ValueError) as exc:
        raise EditError(f"metadata must be JSON-serialisable: {exc}") from exc

    rec = EditRecord(
        id=edit_id, namespace=ns, statement=statement, subject=subject, prompt=prompt, relation=relation,
        target_new=target_new, target_old=target_old, metadata=metadata,
        valid_from=_time(data.get("valid_from"), "valid_from"), valid_until=_time(data.get("valid_until"), "valid_until"),
        actor=str(data.get("actor") or actor),
    )
    created = _time(data.get("created_at"), "created_at")
    if created is not None:  # keep the original time on re-import of an export
        rec.created_at = created
    if rec.valid_from and rec.valid_until and rec.valid_from >= rec.valid_until:
        raise EditError(f"valid_from {rec.valid_from} is not before valid_until {rec.valid_until}")
    return rec


def _time(value: Any, field: str) -> str | None:
    """Parse an ISO-8601 time (date or date-time; naive means UTC) into a normalised UTC string."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise EditError(f"{field} must be an ISO-8601 string such as 2026-01-31 or 2026-01-31T12:00:00Z")
    try:
        when = _dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise EditError(f"{field} {value!r} is not an ISO-8601 time; use e.g. 2026-01-31 or 2026-01-31T12:00:00Z") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.timezone.utc)
    return when.astimezone(_dt.timezone.utc).isoformat(timespec="microseconds")


ALSO_ASKS = "also_asks"  # metadata: relation templates of the edits a correction superseded (its questions, too)


def also_asks(rec: EditRecord) -> list[str]:
    """The relation templates ``rec`` also answers (``metadata["also_asks"]``): strings holding ``{}``, others ignored."""
    found = rec.metadata.get(ALSO_ASKS) if isinstance(rec.metadata, dict) else None
    return [t for t in found if isinstance(t, str) and "{}" in t] if isinstance(found, list) else []


def build_records(items: Iterable[Mapping[str, Any] | EditRecord], *, namespace: str = "default", actor: str = "user",
                  labels: list[str] | None = None) -> list[EditRecord]:
    """Validate a batch; the first bad record raises with its position (or label, e.g. ``line 37``)."""
    out: list[EditRecord] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        where = labels[i] if labels else f"#{i}"
        try:
            rec = build_record(item, namespace=namespace, actor=actor)
        except EditError as exc:
            raise type(exc)(f"edit {where}: {exc}") from None
        if rec.id in seen:
            from .errors import DuplicateEditError

            first = labels[seen[rec.id]] if labels else f"#{seen[rec.id]}"
            raise DuplicateEditError(f"edit {where}: id {rec.id!r} already used by edit {first} in this batch; ids must be unique")
        seen[rec.id] = i
        out.append(rec)
    return out


def read_edit_file(path: str | Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Read edits from a .jsonl, .json or .csv file; returns the raw items and a label per item."""
    p = Path(path)
    if not p.exists():
        raise ImportFormatError(f"{p}: no such file")
    raw = p.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ImportFormatError(
            f"{p}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}, line {line}); re-save the file as UTF-8"
        ) from None
    suffix = p.suffix.lower()
    if suffix == ".jsonl" or (suffix not in (".json", ".csv") and text.lstrip().startswith("{") and "\n{" in text):
        return _read_jsonl(p, text)
    if suffix == ".csv":
        return _read_csv(p, text)
    return _read_json(p, text)


def _read_jsonl(p: Path, text: str) -> tuple[list[dict[str, Any]], list[str]]:
    items, labels = [], []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ImportFormatError(f"{p}: line {lineno} is not valid JSON ({exc.msg} at column {exc.colno}); fix or remove that line") from None
        if not isinstance(obj, dict):
            raise ImportFormatError(f"{p}: line {lineno} is a JSON {type(obj).__name__}, expected an object with prompt/target_new or statement")
        items.append(obj)
        labels.append(f"line {lineno}")
    return items, labels


def _read_json(p: Path, text: str) -> tuple[list[dict[str, Any]], list[str]]:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportFormatError(f"{p}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    if isinstance(obj, dict):
        obj = obj.get("edits", [obj])
    if not isinstance(obj, list) or not all(isinstance(o, dict) for o in obj):
        raise ImportFormatError(f"{p}: expected a JSON list of edit objects (or {{\"edits\": [...]}})")
    return obj, [f"#{i}" for i in range(len(obj))]


def _read_csv(p: Path, text: str) -> tuple[list[dict[str, Any]], list[str]]:
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise ImportFormatError(f"{p}: the CSV has no header row; name the columns (prompt,subject,target_new or statement)")
    items, labels = [], []
    try:
        for row in reader:
            items.append({k: v for k, v in row.items() if k and v not in (None, "")})
            labels.append(f"line {reader.line_num}")
    except csv.Error as exc:
        raise ImportFormatError(f"{p}: line {reader.line_num}: {exc}") from None
    return items, labels
