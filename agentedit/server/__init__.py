"""The OpenAI-compatible edit proxy behind ``agentedit serve`` (needs the ``server`` extra).

``create_app(ServerConfig(...))`` returns a FastAPI app: ``/v1/chat/completions`` (edits applied),
``/v1/models``, ``/v1/edits``, ``/healthz``, ``/metrics``; the OpenAPI document is at ``/openapi.json``.
"""

from __future__ import annotations

from .app import ServerState, create_app, default_editor, serve
from .auth import ApiKey, KeyStore
from .config import ServerConfig, check_workers

__all__ = ["ApiKey", "KeyStore", "ServerConfig", "ServerState", "check_workers", "create_app", "default_editor", "serve"]
