"""Lifelong runs of parametric methods: edits applied one after another, kept on disk so a stopped run resumes.

:class:`DeltaCache` names each computed delta by a chain hash: the method, its settings, the model, the
deltas the model already holds (in order) and the new edit. A resumed run (or a larger memory size
whose first edits are a smaller one's) finds the same chain and loads the delta instead of computing
it again; the model then holds bit for bit what the first run built. Every edit's seconds go to
``edits.jsonl`` beside the deltas, which :func:`edit_seconds` reads back.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, Sequence

logger = logging.getLogger(__name__)


class DeltaCache:
    """Computed deltas of one method under ``root`` (``<root>/<chain>.safetensors``) and their timings."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.keys: dict[str, str] = {}  # delta id -> its chain hash

    def _chain(self, editor: Any, requests: Sequence[Any]) -> str:
        ctx = editor.ctx
        held = [self.keys.get(d.id, d.id) for d in ctx.stack.deltas]
        config = asdict(editor.config) if is_dataclass(editor.config) else {}
        text = json.dumps({"method": editor.name, "config": config, "model": ctx.fingerprint, "held": held,
                           "edits": [[r.prompt, r.subject, r.target] for r in requests]}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def apply(self, editor: Any, requests: Sequence[Any]) -> Any:
        """The delta of ``requests`` applied to the editor's model: loaded when this chain was computed before."""
        from ..parametric.deltas import Delta

        key = self._chain(editor, requests)
        path = self.root / f"{key}.safetensors"
        held = len(editor.ctx.stack.deltas)
        t = time.perf_counter()
        if path.is_file():
            delta = Delta.load(path, device=str(editor.ctx.backend.device))
            with editor.ctx.backend.lock:
                editor.ctx.stack.push(delta)
            cached = True
        else:
            delta = editor.apply(list(requests))
            delta.save(path)
            cached = False
        self.keys[delta.id] = key
        self._log({"held_before": held, "edits": len(requests), "cached": cached,
                   "seconds": delta.meta.get("seconds") if not cached else round(time.perf_counter() - t, 3),
                   "computed_seconds": delta.meta.get("seconds")})
        return delta

    def _log(self, row: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "edits.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")


def edit_seconds(root: str | Path) -> dict[str, Any]:
    """Seconds per edit of one method's computed (not reloaded) deltas, from ``edits.jsonl`` under ``root``."""
    path = Path(root) / "edits.jsonl"
    rows = [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()] if path.is_file() else []
    computed = [r for r in rows if not r["cached"] and r.get("computed_seconds") is not None]
    n = sum(r["edits"] for r in computed)
    total = sum(r["computed_seconds"] for r in computed)
    return {"edits_computed": n, "edits_reloaded": sum(r["edits"] for r in rows if r["cached"]),
            "seconds_per_edit": round(total / n, 3) if n else None, "seconds_total": round(total, 1)}
