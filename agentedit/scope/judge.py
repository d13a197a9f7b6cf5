"""LLM-judge scope checker: asks the backend model whether a fact answers the query."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any, Sequence

from ..backends.base import Backend
from ..errors import BackendError, ConfigError
from ..prompts import quote, render
from ..types import Candidate, ScopeDecision
from .base import BaseChecker
from .calibration import Calibration, default_calibration

logger = logging.getLogger(__name__)


def parse_verdict(text: str) -> bool | None:
    """True for yes, False for no, None when the reply is neither."""
    words = text.strip().lower().lstrip("*\"'`(").split()
    if not words:
        return None
    first = words[0].strip(".,!:;*\"'`)")
    if first in ("yes", "y", "true"):
        return True
    if first in ("no", "n", "false"):
        return False
    return None


class JudgeChecker(BaseChecker):
    """In scope when the model answers "yes" to ``prompts/scope_judge.j2``.

    Meant for capable API models; a judgement costs one short model call per
    candidate. Candidates below ``min_similarity`` are rejected without a call.
    A failed call counts as out of scope (the query then reaches the model
    untouched) and is logged; it never raises into the user's request.
    """

    name = "judge"

    def __init__(self, backend: Backend, *, min_similarity: float = 0.0, max_candidates: int = 4, max_edits: int = 4) -> None:
        self.backend = backend
        self.min_similarity = min_similarity
        self.max_candidates = max_candidates
        self.max_edits = max_edits

    def _messages(self, query: str, cand: Candidate) -> list[dict[str, str]]:
        return [{"role": "user", "content": render("scope_judge", fact=quote(cand.record.statement), query=quote(query))}]

    def _verdict(self, cand: Candidate, reply: str | Exception) -> ScopeDecision:
        if isinstance(reply, Exception):
            logger.warning("scope judge call failed for edit %s: %s", cand.record.id, reply)
            return self._decide(cand, False, f"judge failed: {reply}")
        verdict = parse_verdict(reply)
        if verdict is None:
            return self._decide(cand, False, f"judge reply not yes/no: {reply.strip()[:40]!r}")
        return self._decide(cand, verdict, f"judge said {'yes' if verdict else 'no'}")

    def _split(self, candidates: Sequence[Candidate]) -> tuple[list[Candidate], list[Candidate]]:
        ranked = sorted(candidates, key=lambda c: -c.similarity)
        ask = [c for c in ranked if c.similarity >= self.min_similarity][: self.max_candidates]
        skip = [c for c in ranked if c not in ask]
        return ask, skip

    def _finish(self, decisions: list[ScopeDecision], skip: list[Candidate]) -> list[ScopeDecision]:
        return self._cap(decisions, self.max_edits) + [self._decide(c, False, "not judged (below min similarity or rank)") for c in skip]

    def check(self, query: str, candidates: Sequence[Candidate]) -> list[ScopeDecision]:
        ask, skip = self._split(candidates)
        decisions = []
        for cand in ask:
            try:
                reply: str | Exception = self.backend.chat(self._messages(query, cand), max_tokens=3, temperature=0.0).text
            except BackendError as exc:
                reply = exc
            decisions.append(self._verdict(cand, reply))
        return self._finish(decisions, skip)

    async def acheck(self, query: str, candidates: Sequence[Candidate]) -> list[ScopeDecision]:
        ask, skip = self._split(candidates)

        async def one(cand: Candidate) -> ScopeDecision:
            try:
                reply: str | Exception = (await self.backend.achat(self._messages(query, cand), max_tokens=3, temperature=0.0)).text
            except BackendError as exc:
                reply = exc
            return self._verdict(cand, reply)

        decisions = list(await asyncio.gather(*(one(c) for c in ask)))
        return self._finish(decisions, skip)


def judge_for(name: str, calibration: Calibration, backend: Any, max_edits: int) -> JudgeChecker:
    """The judge of the ``judge`` or ``cascade`` checker (``name``), asking ``backend`` above the calibration's band."""
    if backend is None:
        raise ConfigError(f"the {name!r} scope checker needs a model backend to ask; give the Editor a model")
    return JudgeChecker(backend, min_similarity=calibration.band_low, max_edits=max_edits)


def factory(*, calibration: Calibration | None = None, backend: Any = None, embedder: Any = None, max_edits: int = 4,
            model_dir: str | Path | None = None) -> JudgeChecker:
    """The ``judge`` checker: ``backend`` judges every candidate above the calibration's band."""
    return judge_for("judge", calibration or default_calibration(), backend, max_edits)
