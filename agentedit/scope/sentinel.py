"""RECIPE's knowledge sentinel as a scope checker: a learned, per-query threshold in the embedder's space.

RECIPE (Chen et al., 2024) retrieves an edit for a query only when the query is closer to the edit
than to a learned "knowledge sentinel": the threshold moves with the query instead of being one
number for all. Here the query and the edit text are embedded by the memory's embedder, each
passes through its own small learned map (a residual linear layer, identity at the start), and
the sentinel is a learned vector in the mapped space: an edit bears on the query when
``cos(q, e) > cos(q, s)``. The maps and the sentinel are trained on training files only
(:mod:`agentedit.scope.sentinel_training`, ``agentedit train-recipe``) and saved with the store in
``<store>/recipe/`` (``sentinel.safetensors`` and ``sentinel.json``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import ConfigError
from ..types import Candidate, ScopeDecision
from .base import BaseChecker
from .calibration import Calibration
from .vectors import VectorCache

RECIPE_DIRNAME = "recipe"
WEIGHTS_FILE = "sentinel.safetensors"
META_FILE = "sentinel.json"


def edit_text(record: Any) -> str:
    """The text an edit is compared by: its statement (the prompt followed by the new answer)."""
    return str(record.statement or "")


class SentinelModel:
    """``q ↦ q + Wq q``, ``e ↦ e + We e`` and the sentinel ``s``; numpy at query time."""

    def __init__(self, wq: np.ndarray, we: np.ndarray, sentinel: np.ndarray, meta: dict[str, Any]) -> None:
        self.wq, self.we, self.sentinel, self.meta = wq, we, sentinel, meta

    @staticmethod
    def _unit(x: np.ndarray) -> np.ndarray:
        return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-9)

    def queries(self, q: np.ndarray) -> np.ndarray:
        return self._unit(q + q @ self.wq.T)

    def edits(self, e: np.ndarray) -> np.ndarray:
        return self._unit(e + e @ self.we.T)

    def scores(self, q: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, float]:
        """Cosines of one query with each edit, and with the sentinel."""
        qm = self.queries(q[None])[0]
        return self.edits(e) @ qm, float(self._unit(self.sentinel) @ qm)

    def save(self, folder: Path) -> None:
        import torch
        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in
                   (("wq", self.wq), ("we", self.we), ("sentinel", self.sentinel))}, str(folder / WEIGHTS_FILE))
        (folder / META_FILE).write_text(json.dumps(self.meta, indent=2) + "\n", "utf-8")

    @classmethod
    def load(cls, folder: str | Path) -> "SentinelModel":
        from safetensors.numpy import load_file

        folder = Path(folder)
        if not (folder / WEIGHTS_FILE).is_file() or not (folder / META_FILE).is_file():
            raise ConfigError(f"no trained knowledge sentinel in {folder}; run `agentedit train-recipe` (a few minutes on "
                              "2 cores) or choose another checker with --scope")
        t = load_file(str(folder / WEIGHTS_FILE))
        return cls(t["wq"], t["we"], t["sentinel"], json.loads((folder / META_FILE).read_text("utf-8")))


class SentinelChecker(BaseChecker):
    """In scope when the query is closer to the edit than to the learned sentinel (both in the learned space)."""

    name = "sentinel"

    def __init__(self, model: SentinelModel, embedder: Any, *, max_edits: int = 4) -> None:
        if embedder is None:
            raise ConfigError("the 'sentinel' scope checker needs the memory's embedder")
        trained_on = model.meta.get("embedder")
        if trained_on and getattr(embedder, "name", trained_on) != trained_on:
            raise ConfigError(f"the knowledge sentinel was trained on embedder {trained_on!r}, the memory uses "
                              f"{embedder.name!r}; run `agentedit train-recipe` again for this embedder")
        self.model, self.vectors, self.max_edits = model, VectorCache(embedder), max_edits

    def check(self, query: str, candidates: Sequence[Candidate]) -> list[ScopeDecision]:
        if not candidates:
            return []
        texts = [edit_text(c.record) for c in candidates]
        vecs = self.vectors.get([query, *texts])
        sims, bar = self.model.scores(vecs[query], np.stack([vecs[t] for t in texts]))
        order = np.argsort(-sims)
        out: list[ScopeDecision] = [None] * len(candidates)  # type: ignore[list-item]
        for i in order:
            ok = bool(sims[i] > bar)
            out[i] = self._decide(candidates[i], ok, f"edit {sims[i]:.3f} {'>' if ok else '<='} sentinel {bar:.3f}")
        return self._cap([out[i] for i in order], self.max_edits)

    def scores(self, query: str, candidates: Sequence[Candidate]) -> list[tuple[str, float]]:
        """Per candidate ``(edit id, cos(q, e) − cos(q, s))``: positive when it bears on the query."""
        if not candidates:
            return []
        texts = [edit_text(c.record) for c in candidates]
        vecs = self.vectors.get([query, *texts])
        sims, bar = self.model.scores(vecs[query], np.stack([vecs[t] for t in texts]))
        return [(c.record.id, float(v - bar)) for c, v in zip(candidates, sims)]

    def margin(self, query: str, text: str) -> float:
        """``cos(q, e) − cos(q, s)``: positive when the edit bears on the query (a continuous score for ROC curves)."""
        vecs = self.vectors.get([query, text])
        sims, bar = self.model.scores(vecs[query], vecs[text][None])
        return float(sims[0] - bar)


def recipe_dir(model_dir: str | Path) -> Path:
    """``<store>/recipe`` from the store's ``scope-model`` folder (what the checkers' factories are given)."""
    return Path(model_dir).parent / RECIPE_DIRNAME


def factory(*, calibration: Calibration | None = None, backend: Any = None, embedder: Any = None, max_edits: int = 4,
            model_dir: str | Path | None = None) -> SentinelChecker:
    """The ``sentinel`` checker over the sentinel saved with the store (``<store>/recipe``)."""
    if model_dir is None:
        raise ConfigError("the 'sentinel' scope checker needs the store's folder; run `agentedit train-recipe`")
    return SentinelChecker(SentinelModel.load(recipe_dir(model_dir)), embedder, max_edits=max_edits)
