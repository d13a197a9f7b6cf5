"""Scope checkers: decide which retrieved edits bear on a query.

``make_checker(name, ...)`` builds one by name:

- ``relation`` (default): the query names the edit's subject and asks its relation (masked similarity).
- ``trained``: the subject gate plus a cross-encoder trained on counterfact-train (``agentedit train-scope``).
- ``similarity``: cosine similarity >= a calibrated threshold.
- ``judge``: the backend model answers yes/no per candidate (for capable API models).
- ``cascade``: similarity decides clear cases, the judge the ambiguous band.
- ``prefix-all``: no check, the top edit always applies (baseline).
- ``none``: no edit ever applies (the unedited model; baseline).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .base import BaseChecker, RejectAllChecker, ScopeChecker, TopKChecker
from .cascade import CascadeChecker
from .judge import JudgeChecker, parse_verdict
from .relation import RelationChecker
from .similarity import Calibration, SimilarityChecker, calibrate_similarity, choose_threshold, default_calibration

CHECKERS = ("similarity", "relation", "trained", "judge", "cascade", "prefix-all", "none")
# Chosen by measurement (evals/results/scope-checkers*, blackbox-counterfact-*): at the calibrated thresholds the
# relation-aware checker keeps 0.75 of CounterFact's in-scope queries against 0.49 for similarity alone, at
# specificity 0.995 vs 1.0, and it is the only one of the two that accepts paraphrased questions.
DEFAULT_CHECKER = "relation"


def make_checker(name: str, *, calibration: Calibration | None = None, backend: Any = None, embedder: Any = None,
                 max_edits: int = 4, model_dir: str | Path | None = None) -> ScopeChecker:
    """Build the checker called ``name``; ``calibration`` defaults to the shipped one.

    ``model_dir`` is where the ``trained`` checker's model lives (the store's ``scope-model`` folder).
    """
    if name not in CHECKERS:
        raise ConfigError(f"unknown scope checker {name!r}; choose one of {', '.join(CHECKERS)}")
    if name == "none":
        return RejectAllChecker()
    if name == "prefix-all":
        return TopKChecker(1)
    cal = calibration or default_calibration()
    if name == "similarity":
        return SimilarityChecker(cal.threshold, max_edits=max_edits)
    if name == "relation":
        if embedder is None:
            raise ConfigError("the 'relation' scope checker needs the memory's embedder")
        return RelationChecker(embedder, relation_threshold=cal.relation_threshold, fallback_threshold=cal.threshold,
                               max_edits=max_edits)
    if name == "trained":
        if model_dir is None:
            raise ConfigError("the 'trained' scope checker needs the folder of its model; run `agentedit train-scope`")
        from .trained import TrainedChecker

        return TrainedChecker(model_dir, fallback_threshold=cal.threshold, max_edits=max_edits)
    if backend is None:
        raise ConfigError(f"the {name!r} scope checker needs a model backend to ask; give the Editor a model")
    judge = JudgeChecker(backend, min_similarity=cal.band_low, max_edits=max_edits)
    if name == "judge":
        return judge
    return CascadeChecker(judge, low=cal.band_low, high=cal.band_high, max_edits=max_edits)


__all__ = [
    "BaseChecker", "CHECKERS", "Calibration", "CascadeChecker", "DEFAULT_CHECKER", "JudgeChecker", "RejectAllChecker", "RelationChecker",
    "ScopeChecker", "SimilarityChecker", "TopKChecker", "calibrate_similarity", "choose_threshold", "default_calibration",
    "make_checker", "parse_verdict",
]
