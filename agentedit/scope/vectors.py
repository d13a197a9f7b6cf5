"""A bounded, thread-safe cache of text embeddings, shared by the checkers and matchers that embed relation text."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Iterable

import numpy as np


class VectorCache:
    """Embeddings of texts, the missing ones computed in one batch; the oldest dropped past ``size`` entries."""

    def __init__(self, embedder: Any, size: int = 65536) -> None:
        self.embedder = embedder
        self.size = size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, texts: Iterable[str]) -> dict[str, np.ndarray]:
        want = set(texts)
        with self._lock:
            have = {t: self._cache[t] for t in want if t in self._cache}
        missing = sorted(want - set(have))
        if missing:
            have.update(zip(missing, self.embedder.embed(missing)))
            with self._lock:
                for t in missing:
                    self._cache[t] = have[t]
                while len(self._cache) > self.size:
                    self._cache.popitem(last=False)
        return have
