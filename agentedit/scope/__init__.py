"""Scope checkers: decide which retrieved edits bear on a query.

``make_checker(name, ...)`` builds one by name, through the :data:`CHECKERS` registry:

- ``relation`` (default): the query names the edit's subject and asks its relation (masked similarity).
- ``relation-clauses``: ``relation`` over every clause of a joined question, with a veto on the kind of answer
  (a "when" question against an edit whose answer is a place).
- ``trained``: the subject gate plus a cross-encoder trained on counterfact-train (``agentedit train-scope``).
- ``sentinel``: RECIPE's knowledge sentinel, a learned per-query threshold in the embedder's space
  (``agentedit train-recipe``).
- ``similarity``: cosine similarity >= a calibrated threshold.
- ``judge``: the backend model answers yes/no per candidate (for capable API models).
- ``cascade``: similarity decides clear cases, the judge the ambiguous band.
- ``prefix-all``: no check, the top edit always applies (baseline).
- ``none``: no edit ever applies (the unedited model; baseline).

Modules: :mod:`.text` (subject and relation text matching), :mod:`.calibration` (thresholds),
one module per checker, :mod:`.training` (training the ``trained`` checker's model).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..registry import Registry
from ..settings import DEFAULT_CHECKER
from .base import BaseChecker, CheckerFactory, RejectAllChecker, ScopeChecker, TopKChecker
from .calibration import Calibration, calibrate_similarity, choose_threshold, default_calibration
from .cascade import CascadeChecker
from .judge import JudgeChecker, parse_verdict
from .relation import RelationChecker
from .similarity import SimilarityChecker

# Name -> factory, imported on first use (the trained checker's torch/transformers only when it is asked for).
CHECKERS: Registry[CheckerFactory] = Registry("scope checker")
CHECKERS.add("similarity", "agentedit.scope.similarity:factory")
CHECKERS.add("relation", "agentedit.scope.relation:factory")
CHECKERS.add("relation-clauses", "agentedit.scope.clauses:factory")
CHECKERS.add("trained", "agentedit.scope.trained:factory")
CHECKERS.add("sentinel", "agentedit.scope.sentinel:factory")
CHECKERS.add("judge", "agentedit.scope.judge:factory")
CHECKERS.add("cascade", "agentedit.scope.cascade:factory")
CHECKERS.add("prefix-all", "agentedit.scope.base:prefix_all_factory")
CHECKERS.add("none", "agentedit.scope.base:none_factory")


def make_checker(name: str, *, calibration: Calibration | None = None, backend: Any = None, embedder: Any = None,
                 max_edits: int = 4, model_dir: str | Path | None = None) -> ScopeChecker:
    """Build the checker called ``name``; ``calibration`` defaults to the shipped one.

    ``model_dir`` is where the ``trained`` checker's model lives (the store's ``scope-model`` folder).
    """
    return CHECKERS.get(name)(calibration=calibration, backend=backend, embedder=embedder, max_edits=max_edits,
                              model_dir=model_dir)


__all__ = [
    "BaseChecker", "CHECKERS", "Calibration", "CascadeChecker", "CheckerFactory", "DEFAULT_CHECKER", "JudgeChecker",
    "RejectAllChecker", "RelationChecker", "ScopeChecker", "SimilarityChecker", "TopKChecker", "calibrate_similarity",
    "choose_threshold", "default_calibration", "make_checker", "parse_verdict",
]
