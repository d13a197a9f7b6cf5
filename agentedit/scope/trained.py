"""A learned scope checker: a cross-encoder that judges whether a query asks an edit's relation.

The structural half of the decision stays as in the relation checker: the query
must name the edit's subject (or an alias). What is learned is the other half:
given the query's clause with the subject masked ("Where X is from, people speak
the language of") and the edit's relation with the subject masked ("The mother
tongue of X is"), does the query ask that relation? A MiniLM cross-encoder
scores the pair.

This module is what runs at query time: it loads a saved model. The model is
trained by :func:`agentedit.scope.training.train_scope_model` (``agentedit
train-scope``), which writes the artefact (weights, tokenizer, ``scope_model.json``
with the threshold and the training figures) to the store's ``scope-model/`` folder.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import ConfigError
from ..settings import SCOPE_MODEL_DIRNAME
from ..types import utc_now
from .calibration import Calibration, default_calibration
from .relation import SubjectGatedChecker

MODEL_DIRNAME = SCOPE_MODEL_DIRNAME
META_FILE = "scope_model.json"
MAX_TOKENS = 64


# -- the model --------------------------------------------------------------------------------------------
class PairScorer:
    """A sequence-pair classifier (one logit) over masked query and relation texts."""

    def __init__(self, path: str | Path, *, device: str = "cpu", new_head: bool = False) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        from transformers.utils import logging as hf_logging

        self.torch = torch
        self.device = device
        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # the fresh head's "newly initialised" notice is expected when training starts
        try:
            self.model = AutoModelForSequenceClassification.from_pretrained(str(path), num_labels=1)
        finally:
            hf_logging.set_verbosity(verbosity)
        self.model.to(device).eval()
        self._lock = threading.Lock()
        self.new_head = new_head

    def _batch(self, queries: Sequence[str], relations: Sequence[str]) -> Any:
        enc = self.tokenizer(list(queries), list(relations), truncation=True, max_length=MAX_TOKENS, padding=True,
                             return_tensors="pt")
        return {k: v.to(self.device) for k, v in enc.items()}

    def logits(self, queries: Sequence[str], relations: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        if not queries:
            return np.zeros((0,), dtype=np.float32)
        out = []
        with self._lock, self.torch.inference_mode():
            for i in range(0, len(queries), batch_size):
                enc = self._batch(queries[i:i + batch_size], relations[i:i + batch_size])
                out.append(self.model(**enc).logits[:, 0].float().cpu().numpy())
        return np.concatenate(out)

    def probabilities(self, queries: Sequence[str], relations: Sequence[str]) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.logits(queries, relations)))

    def save(self, path: Path) -> None:
        self.model.save_pretrained(str(path), safe_serialization=True)
        self.tokenizer.save_pretrained(str(path))


@dataclass
class TrainingReport:
    threshold: float
    target_specificity: float
    heldout_recall: float
    heldout_specificity: float
    heldout_auc: float
    n_train_pairs: int
    n_heldout_pairs: int
    n_relations: int
    steps: int
    epochs: float
    train_seconds: float
    data: str
    data_sha256: str
    base_model: str
    seed: int
    kind: str = "cross-encoder"  # or "encoder": a tuned sentence encoder scoring relations by cosine (scope/tuned.py)
    created_at: str = field(default_factory=utc_now)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_report(model_dir: str | Path) -> TrainingReport:
    path = Path(model_dir) / META_FILE
    if not path.exists():
        raise ConfigError(f"no trained scope model in {model_dir}; run `agentedit train-scope` (about 15 minutes on 2 cores) "
                          "or choose another checker with --scope")
    data = json.loads(path.read_text("utf-8"))
    return TrainingReport(**{k: v for k, v in data.items() if k in TrainingReport.__dataclass_fields__})


# -- the checker ------------------------------------------------------------------------------------------
class TrainedChecker(SubjectGatedChecker):
    """Subject gate (names and aliases) plus the trained relation cross-encoder; see the module docstring."""

    name = "trained"
    score_name = "relation probability"

    def __init__(self, model_dir: str | Path, *, fallback_threshold: float, threshold: float | None = None,
                 max_edits: int = 4, report: TrainingReport | None = None) -> None:
        self.report = load_report(model_dir) if report is None else report
        self.threshold = self.report.threshold if threshold is None else threshold
        self.fallback_threshold = fallback_threshold
        self.max_edits = max_edits
        self.scorer = PairScorer(model_dir)

    def relation_scores(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        return [float(p) for p in self.scorer.probabilities([q for q, _ in pairs], [r for _, r in pairs])]


def factory(*, calibration: Calibration | None = None, backend: Any = None, embedder: Any = None, max_edits: int = 4,
            model_dir: str | Path | None = None) -> SubjectGatedChecker:
    """The ``trained`` checker over the model saved in ``model_dir`` (the store's ``scope-model`` folder): the
    cross-encoder of :class:`TrainedChecker`, or the tuned relation encoder of :mod:`agentedit.scope.tuned`."""
    cal = calibration or default_calibration()
    if model_dir is None:
        raise ConfigError("the 'trained' scope checker needs the folder of its model; run `agentedit train-scope`")
    report = load_report(model_dir)
    if report.kind == "encoder":
        from .tuned import TunedRelationChecker

        return TunedRelationChecker(model_dir, report, fallback_threshold=cal.threshold, max_edits=max_edits)
    if report.kind != "cross-encoder":
        raise ConfigError(f"the scope model in {model_dir} is of kind {report.kind!r}, which this version cannot load; "
                          "run `agentedit train-scope` again")
    return TrainedChecker(model_dir, fallback_threshold=cal.threshold, max_edits=max_edits, report=report)


__all__ = ["MAX_TOKENS", "META_FILE", "MODEL_DIRNAME", "PairScorer", "TrainedChecker", "TrainingReport", "factory",
           "load_report"]
