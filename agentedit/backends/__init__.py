"""Model backends, and the resolution of a :class:`~agentedit.settings.ModelSpec` to one.

- ``api``: any litellm ``provider/model`` (:class:`LiteLLMBackend`); ``openai/<name>`` with ``api_base`` (an
  OpenAI-compatible server) goes straight over httpx (:class:`OpenAIHTTPBackend`).
- ``llamacpp``: the embedded llama.cpp server over a GGUF (:class:`LlamaCppBackend`).
- ``hf``: local weights in this process, editable (:class:`~agentedit.backends.local.LocalBackend`).

Backends are registered by spec kind in :data:`BACKENDS` and imported on first use.
"""

from __future__ import annotations

from typing import Any, Callable

from ..registry import Registry
from ..settings import DEFAULT_LOCAL_MODEL, ModelSettings, ModelSpec
from .api import LiteLLMBackend
from .base import Backend, Capabilities, Completion
from .llamacpp import LlamaCppBackend
from .openai_http import OpenAIHTTPBackend, openai_compatible

DEFAULT_MODEL = f"llamacpp:{DEFAULT_LOCAL_MODEL}"

BACKENDS: Registry[Callable[..., Backend]] = Registry("model backend kind", "a spec is 'provider/model', 'llamacpp:...' or 'hf:...'")


def _api(spec: ModelSpec, cfg: ModelSettings, default_params: dict[str, Any] | None, progress: Any) -> Backend:
    return openai_compatible(spec.name, api_base=spec.api_base, api_key=cfg.api_key, timeout=cfg.timeout,
                             max_retries=cfg.max_retries, default_params=default_params)


def _llamacpp(spec: ModelSpec, cfg: ModelSettings, default_params: dict[str, Any] | None, progress: Any) -> Backend:
    return LlamaCppBackend(spec.name, timeout=max(cfg.timeout, 120.0), default_params=default_params, progress=progress)


def _hf(spec: ModelSpec, cfg: ModelSettings, default_params: dict[str, Any] | None, progress: Any) -> Backend:
    from .local import LocalBackend

    return LocalBackend(spec.name, device=cfg.device, dtype=cfg.dtype, default_params=default_params, progress=progress)


BACKENDS.add("api", _api)
BACKENDS.add("llamacpp", _llamacpp)
BACKENDS.add("hf", _hf)


def make_backend(cfg: ModelSettings, *, default_params: dict[str, Any] | None = None,
                 progress: Callable[[str], None] | None = None) -> Backend:
    """The backend for ``cfg.spec`` (nothing is started or called yet)."""
    return BACKENDS.get(cfg.spec.kind)(cfg.spec, cfg, default_params, progress)


def resolve_backend(spec: str | ModelSpec, *, api_base: str | None = None, api_key: str | None = None, timeout: float = 60.0,
                    max_retries: int = 2, default_params: dict[str, Any] | None = None,
                    progress: Callable[[str], None] | None = None) -> Backend:
    """Turn a model spec into a backend (nothing is started or called yet); device and dtype of hf: models
    come from the environment (``AGENTEDIT_DEVICE``, ``AGENTEDIT_DTYPE``)."""
    from ..settings import env

    parsed = ModelSpec.parse(spec if spec is not None else "", api_base=api_base)
    cfg = ModelSettings(spec=parsed, api_key=api_key, timeout=timeout, max_retries=max_retries,
                        device=env("AGENTEDIT_DEVICE", "auto") or "auto", dtype=env("AGENTEDIT_DTYPE", "auto") or "auto")
    return make_backend(cfg, default_params=default_params, progress=progress)


__all__ = ["BACKENDS", "Backend", "Capabilities", "Completion", "DEFAULT_MODEL", "LiteLLMBackend", "LlamaCppBackend",
           "OpenAIHTTPBackend", "make_backend", "resolve_backend"]
