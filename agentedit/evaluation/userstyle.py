"""The user-style scope benchmark as harness cases (``agentedit eval --suite userstyle``).

Its files live in the repository, not in the shared data folder: ``evals/data/userstyle.jsonl`` (generated from
training files by ``evals/userstyle/build.py``) and ``evals/data/userstyle_hand.jsonl`` (written by hand). A line is a
case: ``edits`` (plain statements, each with its gold ``subject``, ``prompt`` and ``target``; a second edit is a
correction in other words that supersedes the first) and ``probes`` (``prompt`` or chat ``messages``, ``in_scope``,
``type``, ``target``). In-scope probes become ``generality`` probes, out-of-scope ones ``locality`` probes, with the
probe's ``type`` as subkind.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .cases import Case, Probe

FILES = ("userstyle.jsonl", "userstyle_hand.jsonl")


def data_folder() -> Path:
    """``evals/data`` of the source tree this package belongs to."""
    return Path(__file__).resolve().parents[2] / "evals" / "data"


def read_records(folder: str | Path | None = None) -> list[dict[str, Any]]:
    """The benchmark's cases as stored (generated ones first, then the hand-written ones), files that exist only."""
    from .schema import EvalDataError

    root = Path(folder) if folder is not None else data_folder()
    out: list[dict[str, Any]] = []
    found = False
    for name in FILES:
        path = root / name
        if not path.exists():
            continue
        found = True
        for lineno, line in enumerate(path.read_text("utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise EvalDataError(f"{path}: line {lineno} is not JSON: {exc}") from None
            if not isinstance(rec, dict) or not isinstance(rec.get("probes"), list) or not isinstance(rec.get("edits"), list):
                raise EvalDataError(f"{path}: line {lineno} needs 'edits' and 'probes' lists")
            rec.setdefault("origin", "hand" if name.endswith("_hand.jsonl") else "generated")
            out.append(rec)
    if not found:
        raise EvalDataError(f"no user-style benchmark files in {root}; run `python evals/userstyle/build.py`")
    return out


def edit_dict(edit: dict[str, Any], *, gold: bool = True) -> dict[str, Any]:
    """An edit in the store's input shape: the statement, with its gold subject and prompt unless ``gold`` is off
    (then the anatomy step finds them)."""
    out: dict[str, Any] = {"statement": edit["statement"]}
    if gold:
        out.update({"subject": edit["subject"], "prompt": edit["prompt"], "target_new": edit["target"]})
    return out


def last_user(messages: list[dict[str, Any]]) -> str:
    return next((str(m.get("content", "")) for m in reversed(messages) if m.get("role") == "user"), "")


def to_case(rec: dict[str, Any]) -> Case:
    probes = []
    for p in rec["probes"]:
        messages = p.get("messages")
        prompt = p.get("prompt") or (last_user(messages) if messages else "")
        targets = [p["target"]] if p.get("target") else []
        probes.append(Probe("generality" if p["in_scope"] else "locality", prompt, targets, style="chat",
                            subkind=str(p.get("type", "")), messages=messages))
    return Case(str(rec["id"]), "userstyle", [edit_dict(e) for e in rec["edits"]], probes)


def load_userstyle(path: Path) -> list[Case]:
    """The harness loader: ``path`` is the folder of the benchmark files."""
    return [to_case(r) for r in read_records(path if path.is_dir() else path.parent)]


def _dataset() -> Any:
    from .loaders import Dataset

    return Dataset(str(data_folder()), load_userstyle)


DATASET = _dataset()

__all__ = ["DATASET", "FILES", "data_folder", "edit_dict", "last_user", "load_userstyle", "read_records", "to_case"]
