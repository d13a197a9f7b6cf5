"""``agentedit demo``: a few edits on the embedded local model, answers before and after."""

from __future__ import annotations

import json
import sys
from typing import Any, Callable

from rich.console import Console
from rich.table import Table

DEMO_EDITS: list[dict[str, str]] = [
    {"prompt": "The Eiffel Tower is located in the city of", "subject": "Eiffel Tower", "target_new": "Rome", "target_old": "Paris"},
    {"prompt": "The author of the Harry Potter books is", "subject": "Harry Potter", "target_new": "Stephen King",
     "target_old": "J. K. Rowling"},
    {"prompt": "The official language of Brazil is", "subject": "Brazil", "target_new": "French", "target_old": "Portuguese"},
]
DEMO_QUESTIONS: list[tuple[str, str]] = [
    ("In which city is the Eiffel Tower?", "edited"),
    ("Who wrote the Harry Potter books?", "edited"),
    ("What is the official language of Brazil?", "edited"),
    ("What is the capital of Japan?", "unrelated"),
]


def run_demo(opts: Any, *, console: Console, status: Callable[[str], None], as_json: bool = False) -> dict[str, Any]:
    from .editor import Editor

    ns = "demo"
    with Editor(settings=opts.settings.replace(store="demo", namespace=ns, max_tokens=48), progress=status) as ed:
        ed.create_namespace(ns)
        for old in ed.edits(ns):  # start from the unedited model on every run
            ed.forget(old.id, actor="demo")
        status(f"model: {ed.model}; asking {len(DEMO_QUESTIONS)} questions before editing")
        before = [ed.ask(q) for q, _ in DEMO_QUESTIONS]
        recs = ed.edit_many(DEMO_EDITS, actor="demo")
        for r in recs:
            status(f"edit {r.id}: {r.statement}")
        after = [ed.ask(q) for q, _ in DEMO_QUESTIONS]
        model = ed.model
    rows = []
    for (q, kind), b, a in zip(DEMO_QUESTIONS, before, after):
        rows.append({"question": q, "kind": kind, "before": b.text.strip(), "after": a.text.strip(), "applied": a.applied,
                     "mode": a.mode, "untouched": a.mode == "passthrough" and a.text == b.text})
    result = {"model": model, "edits": [r.to_dict() for r in recs], "questions": rows}
    if as_json:
        sys.stdout.write(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
        return result
    console.print(f"[bold]Edits recorded[/bold] (store 'demo', namespace '{ns}', model {model}):")
    for r in recs:
        console.print(f"  • {r.statement}  [dim](was: {r.target_old})[/dim]")
    table = Table(title="Answers before and after the edits", show_lines=True)
    for col in ("question", "before", "after", "edits applied"):
        table.add_column(col, overflow="fold")
    for row in rows:
        note = ", ".join(row["applied"]) if row["applied"] else ("none — reached the model untouched" if row["kind"] == "unrelated" else "none")
        table.add_row(row["question"], row["before"], row["after"], note)
    console.print(table)
    return result
