"""Model backends and the resolution of a model spec to one.

Specs:

- ``provider/model`` (any litellm provider), with ``api_base`` for OpenAI-compatible servers.
- ``llamacpp:<known-name>`` or ``llamacpp:/path/to/model.gguf``: the embedded local server.
- ``hf:<hub id or dir>``: local weights for parametric editing (white-box path).
"""

from __future__ import annotations

import os
from typing import Any, Callable

from ..errors import ConfigError
from .api import LiteLLMBackend
from .base import Backend, Capabilities, Completion
from .llamacpp import DEFAULT_LOCAL_MODEL, LlamaCppBackend

DEFAULT_MODEL = f"llamacpp:{DEFAULT_LOCAL_MODEL}"


def resolve_backend(spec: str, *, api_base: str | None = None, api_key: str | None = None, timeout: float = 60.0,
                    max_retries: int = 2, default_params: dict[str, Any] | None = None,
                    progress: Callable[[str], None] | None = None) -> Backend:
    """Turn a model spec into a backend (nothing is started or called yet)."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError("model spec is empty; use e.g. 'openai/gpt-4o-mini' or 'llamacpp:qwen2.5-coder-0.5b-instruct'")
    spec = spec.strip()
    if spec.startswith("llamacpp:"):
        if api_base:
            raise ConfigError("api_base cannot be combined with a llamacpp: model; the embedded server picks its own address")
        return LlamaCppBackend(spec.split(":", 1)[1] or DEFAULT_LOCAL_MODEL, timeout=max(timeout, 120.0),
                               default_params=default_params, progress=progress)
    if spec.startswith("hf:"):
        if api_base:
            raise ConfigError("api_base cannot be combined with an hf: model; its weights are loaded in this process")
        from .local import LocalBackend

        # device and dtype: $AGENTEDIT_DEVICE (auto, cpu, cuda...) and $AGENTEDIT_DTYPE (auto, float32, bfloat16, float16)
        return LocalBackend(spec.split(":", 1)[1], device=os.environ.get("AGENTEDIT_DEVICE", "auto"),
                            dtype=os.environ.get("AGENTEDIT_DTYPE", "auto"), default_params=default_params, progress=progress)
    return LiteLLMBackend(spec, api_base=api_base, api_key=api_key, timeout=timeout, max_retries=max_retries,
                          default_params=default_params)


__all__ = ["Backend", "Capabilities", "Completion", "DEFAULT_MODEL", "LiteLLMBackend", "LlamaCppBackend", "resolve_backend"]
