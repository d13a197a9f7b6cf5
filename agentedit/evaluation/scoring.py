"""Scoring functions, named in every report.

- ``generation-match``: the model generates an answer; it scores 1 when a
  normalised target (or alias) appears in it as whole words.
- ``teacher-forced``: EasyEdit's token accuracy: the target's tokens are fed
  after the prompt and the score is the fraction of them that are the model's
  top prediction. Needs the model's logits: in-process llama.cpp over the GGUF
  (llama.cpp's server returns wrong prompt log-probs, see MODELS.md).

Locality, under either protocol, is agreement with the unedited model on the
same probe: the same normalised answer, or the same top-1 tokens.
"""

from __future__ import annotations

import re
import string
import threading
from pathlib import Path
from typing import Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans({c: " " for c in string.punctuation})


def normalise(text: str) -> str:
    """Lower-case, punctuation and articles removed, whitespace collapsed."""
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCT)).split())


def gen_match(answer: str, targets: Sequence[str]) -> bool:
    """True when any normalised target appears as whole words in the normalised answer."""
    hay = f" {normalise(answer)} "
    return any((t := normalise(x)) and f" {t} " in hay for x in targets)


def agree(answer: str, reference: str) -> bool:
    """Locality under generation: the same normalised answer as the unedited model."""
    return normalise(answer) == normalise(reference)


class TeacherForcedScorer:
    """Token-level scoring with llama.cpp in-process (``logits_all=True``) over a GGUF file."""

    def __init__(self, model_path: str | Path, *, n_ctx: int = 4096, n_threads: int | None = None) -> None:
        from llama_cpp import Llama

        self._llm = Llama(model_path=str(model_path), logits_all=True, n_ctx=n_ctx, n_threads=n_threads, verbose=False)
        self._lock = threading.Lock()

    def top1(self, prefix: str, target: str) -> tuple[list[int], list[int]]:
        """The target's token ids and the model's top-1 prediction at each of their positions."""
        import numpy as np

        llm = self._llm
        pre = llm.tokenize(prefix.encode("utf-8"), add_bos=True, special=True)
        full = llm.tokenize((prefix + " " + target.strip()).encode("utf-8"), add_bos=True, special=True)
        k = len(pre)
        while k > 0 and (k > len(full) or full[:k] != pre[:k]):  # tokenisation may merge across the boundary
            k -= 1
        tgt = full[k:]
        if not tgt:
            return [], []
        with self._lock:
            llm.reset()
            llm.eval(full)
            logits = np.asarray(llm.scores[: len(full)])
        preds = [int(np.argmax(logits[k - 1 + i])) for i in range(len(tgt))]
        return [int(t) for t in tgt], preds

    def accuracy(self, prefix: str, target: str) -> float:
        tgt, preds = self.top1(prefix, target)
        return sum(int(a == b) for a, b in zip(tgt, preds)) / len(tgt) if tgt else 0.0

    def best_accuracy(self, prefix: str, targets: Sequence[str]) -> float:
        return max((self.accuracy(prefix, t) for t in targets if t.strip()), default=0.0)
