"""Similarity-threshold scope checker and its calibration on training data.

The threshold is never guessed: :func:`calibrate_similarity` picks it on a
CounterFact-shaped training file for a stated objective, and the result is
saved with the store (``store.json``). A store that was never calibrated uses
the calibration shipped in ``default_calibration.json``, produced by the same
function on ``counterfact-train.json``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import numpy as np

from ..errors import ScopeError
from ..memory.embed import Embedder
from ..records import make_statement
from ..types import Candidate, ScopeDecision, utc_now
from .base import BaseChecker

logger = logging.getLogger(__name__)

Objective = Literal["recall@specificity", "balanced-accuracy", "f1"]
_DEFAULT_FILE = Path(__file__).with_name("default_calibration.json")


@dataclass
class Calibration:
    """A calibrated threshold and how it was obtained."""

    threshold: float
    objective: str
    target_specificity: float | None
    recall: float
    specificity: float
    balanced_accuracy: float
    band_low: float
    band_high: float
    relation_threshold: float
    relation_recall: float
    relation_specificity: float
    relation_negatives: int
    n_positive: int
    n_negative: int
    n_cases: int
    data: str
    data_sha256: str
    embedder: str
    seed: int
    created_at: str = field(default_factory=utc_now)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Calibration":
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in names})


def default_calibration() -> Calibration:
    """The calibration shipped with the package (see module docstring)."""
    try:
        return Calibration.from_dict(json.loads(_DEFAULT_FILE.read_text("utf-8")))
    except (OSError, json.JSONDecodeError, TypeError) as exc:
        raise ScopeError(f"the shipped default calibration {_DEFAULT_FILE} is unreadable ({exc}); run `agentedit calibrate`") from None


def _rates(pos: np.ndarray, neg: np.ndarray, t: float) -> tuple[float, float]:
    return float(np.mean(pos >= t)), float(np.mean(neg < t))


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Area under the ROC curve: the chance that an in-scope score beats an out-of-scope one (rank statistic)."""
    scores = np.concatenate([pos, neg])
    ranks = scores.argsort(kind="mergesort").argsort(kind="mergesort") + 1
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def choose_threshold(pos: np.ndarray, neg: np.ndarray, objective: Objective = "recall@specificity",
                     target_specificity: float = 0.98) -> float:
    """Pick the threshold (accept when similarity >= t) that best meets ``objective``."""
    if len(pos) == 0 or len(neg) == 0:
        raise ScopeError("calibration needs both in-scope and out-of-scope examples")
    if objective == "recall@specificity":
        if not 0.0 < target_specificity < 1.0:
            raise ScopeError(f"target specificity must be in (0, 1), got {target_specificity}")
        srt = np.sort(neg)
        k = math.ceil(target_specificity * len(srt))  # at least k negatives must fall below t
        return float(srt[k - 1] + 1e-6)
    if objective not in ("balanced-accuracy", "f1"):
        raise ScopeError(f"unknown calibration objective {objective!r}; use recall@specificity, balanced-accuracy or f1")
    cands = np.unique(np.concatenate([pos, neg + 1e-6]))
    sp, sn = np.sort(pos), np.sort(neg)
    recall = 1.0 - np.searchsorted(sp, cands, side="left") / len(sp)  # share of pos >= t
    spec = np.searchsorted(sn, cands, side="left") / len(sn)  # share of neg < t
    if objective == "balanced-accuracy":
        score = (recall + spec) / 2
    else:
        tp, fp = recall * len(pos), (1 - spec) * len(neg)
        score = np.where(tp > 0, 2 * tp / np.maximum(2 * tp + fp + (1 - recall) * len(pos), 1e-12), 0.0)
    return float(cands[int(np.argmax(score))])


def relation_pairs(cases: Sequence[dict[str, Any]], embedder: Embedder) -> tuple[np.ndarray, np.ndarray]:
    """Masked-relation similarities: in-scope pairs, and synthetic same-subject/other-relation pairs.

    In scope: each case's prompt and paraphrase (the clause naming the subject,
    subject masked) against its own relation template. Out of scope: pairs of
    relation templates whose answer sets never overlap in the data (a place vs
    a language, say): the question a checker faces when a query names an
    edited subject but asks about another of its relations.
    """
    from .relation import find_subject, mask_subject, query_relation

    left, right = [], []
    answers: dict[str, set[str]] = {}
    for c in cases:
        rel = mask_subject(c["prompt"], c["subject"])
        answers.setdefault(rel, set()).update(
            str(c.get(k) or "").strip().lower() for k in ("target_new", "ground_truth") if c.get(k))
        for q in (c["prompt"], c["rephrase_prompt"]):
            if find_subject(q, [c["subject"]]):
                left.append(query_relation(q, c["subject"]))
                right.append(rel)
    if not left:
        raise ScopeError("no calibration query names its subject; the data lacks usable subject fields")
    a, b = embedder.embed(left), embedder.embed(right)
    pos = np.sum(a * b, axis=1)
    templates = [t for t, ans in answers.items() if len(ans) >= 3]
    vecs = embedder.embed(templates)
    sims = vecs @ vecs.T
    neg = [sims[i, j] for i in range(len(templates)) for j in range(i + 1, len(templates))
           if not answers[templates[i]] & answers[templates[j]]]
    if not neg:
        raise ScopeError("the calibration data has no relations with disjoint answers to contrast")
    return pos, np.asarray(neg, dtype=np.float32)


def scope_pairs(cases: Sequence[dict[str, Any]], embedder: Embedder) -> tuple[np.ndarray, np.ndarray]:
    """Similarities of in-scope pairs and of the hardest out-of-scope pair per locality query.

    In scope: each case's prompt and rephrase against its own edit statement.
    Out of scope: each locality prompt against its nearest edit among all cases
    (the decision a checker faces when that query arrives with all edits stored).
    """
    statements = [make_statement(c["prompt"], c["target_new"]) for c in cases]
    docs = embedder.embed(statements)
    prompts = embedder.embed([c["prompt"] for c in cases])
    rephr = embedder.embed([c["rephrase_prompt"] for c in cases])
    local = embedder.embed([c["locality_prompt"] for c in cases])
    pos = np.concatenate([np.sum(prompts * docs, axis=1), np.sum(rephr * docs, axis=1)])
    neg = (local @ docs.T).max(axis=1)
    return pos, neg


def calibrate_similarity(data: str | Path, embedder: Embedder, *, n_cases: int = 2000, objective: Objective = "recall@specificity",
                         target_specificity: float = 0.98, seed: int = 0,
                         progress: Callable[[str], None] | None = None) -> Calibration:
    """Calibrate the similarity threshold on a CounterFact-shaped training file."""
    path = Path(data)
    if not path.exists():
        raise ScopeError(f"calibration data {path} not found; pass the path to counterfact-train.json (e.g. ../shared/datasets/counterfact/counterfact-train.json)")
    raw = path.read_bytes()
    try:
        cases = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ScopeError(f"calibration data {path} is not valid JSON: {exc}") from None
    need = ("prompt", "subject", "target_new", "rephrase_prompt", "locality_prompt")
    cases = [c for c in cases if isinstance(c, dict) and all(isinstance(c.get(k), str) and c.get(k) for k in need)]
    if len(cases) < 20:
        raise ScopeError(f"calibration data {path} has {len(cases)} usable cases with {', '.join(need)}; need at least 20")
    rng = random.Random(seed)
    rng.shuffle(cases)
    cases = cases[:n_cases]
    if progress:
        progress(f"embedding {len(cases)} training cases")
    pos, neg = scope_pairs(cases, embedder)
    t = choose_threshold(pos, neg, objective, target_specificity)
    rec, spec = _rates(pos, neg, t)
    band_low = float(np.quantile(pos, 0.01))
    band_high = choose_threshold(pos, neg, "recall@specificity", 0.999)
    if progress:
        progress("embedding subject-masked relations")
    rel_pos, rel_neg = relation_pairs(cases, embedder)
    # The relation threshold balances recall on in-scope pairs against rejection of other relations.
    rel_t = choose_threshold(rel_pos, rel_neg, "balanced-accuracy")
    rel_recall, rel_spec = _rates(rel_pos, rel_neg, rel_t)
    cal = Calibration(
        threshold=round(t, 6), objective=objective,
        target_specificity=target_specificity if objective == "recall@specificity" else None,
        recall=round(rec, 4), specificity=round(spec, 4), balanced_accuracy=round((rec + spec) / 2, 4),
        band_low=round(min(band_low, t), 6), band_high=round(max(band_high, t), 6),
        relation_threshold=round(rel_t, 6), relation_recall=round(rel_recall, 4), relation_specificity=round(rel_spec, 4),
        relation_negatives=len(rel_neg),
        n_positive=len(pos), n_negative=len(neg), n_cases=len(cases), data=path.name,
        data_sha256=hashlib.sha256(raw).hexdigest(), embedder=embedder.name, seed=seed,
    )
    logger.info("calibrated similarity threshold %.4f (recall %.3f, specificity %.3f)", cal.threshold, cal.recall, cal.specificity)
    return cal


class SimilarityChecker(BaseChecker):
    """In scope when cosine similarity >= a calibrated threshold."""

    name = "similarity"

    def __init__(self, threshold: float, *, max_edits: int = 4) -> None:
        if not -1.0 <= threshold <= 1.0:
            raise ScopeError(f"similarity threshold must be in [-1, 1], got {threshold}")
        self.threshold = threshold
        self.max_edits = max_edits

    def check(self, query: str, candidates: Sequence[Candidate]) -> list[ScopeDecision]:
        out = []
        accepted = 0
        for cand in sorted(candidates, key=lambda c: -c.similarity):
            ok = cand.similarity >= self.threshold and accepted < self.max_edits
            accepted += ok
            rel = ">=" if cand.similarity >= self.threshold else "<"
            out.append(self._decide(cand, ok, f"similarity {cand.similarity:.3f} {rel} {self.threshold:.3f}"))
        return out
