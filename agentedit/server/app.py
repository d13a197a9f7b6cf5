"""The app factory: ``create_app(config) -> FastAPI``. All state lives on ``app.state.agentedit``."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable

from fastapi import FastAPI, Request
from fastapi.responses import Response

from .. import __version__
from ..errors import ConfigError
from . import chat, conflicts, console, edits
from .access import Principal, caller, require
from .auth import KeyStore
from .config import ServerConfig
from .errors import install_error_handlers
from .guards import HostCheck, TextCheck
from .metrics import CONTENT_TYPE, Metrics
from .middleware import BodyLimit, RequestContext, RequestMetrics

if TYPE_CHECKING:
    from ..backends.base import Backend
    from ..editor import Editor
    from ..graph import Prepared

logger = logging.getLogger(__name__)

EditorFactory = Callable[[ServerConfig], "Editor"]

_DESCRIPTION = """An OpenAI-compatible proxy that applies recorded edits to what a model knows.

Point any OpenAI client at this server's `/v1`: chat requests that an edit bears on get the updated facts;
others reach the model untouched. `/v1/edits` manages the edits. Authenticate with `Authorization: Bearer <key>`;
pick a namespace with the `x-agentedit-namespace` header (default: the key's first namespace)."""


def default_editor(config: ServerConfig) -> "Editor":
    """An Editor over the configured store and upstream; client parameters are sent as given (no forced defaults)."""
    from ..editor import Editor

    return Editor(settings=config.settings)


@dataclass
class ServerState:
    """What the routes share: settings, the Editor and its backend, the key store, metrics."""

    config: ServerConfig
    editor: "Editor"
    keys: KeyStore | None
    metrics: Metrics
    model_name: str
    started: int = field(default_factory=lambda: int(time.time()))

    @property
    def backend(self) -> "Backend":
        return self.editor.backend

    async def prepare(self, messages: list[dict[str, Any]], namespace: str) -> "Prepared":
        """``Editor.prepare_chat`` (the workflow stopped before the final model call) in one worker thread.

        One thread hop for the whole workflow instead of one per node (``ainvoke``): 48 ms against 72 ms per
        request, measured interleaved on the loaded 2-core machine (embedding alone: 31 ms)."""
        return await asyncio.to_thread(self.editor.prepare_chat, messages, namespace=namespace)

    def active_edits(self) -> dict[str, int]:
        return {ns: self.editor.count(ns) for ns in self.editor.namespaces()}


def _warm(editor: "Editor") -> None:
    """Load the embedder, the scope checker and the backend now (an embedded model server starts here)."""
    editor.warm()


#: seconds between a replica's checks for writes another replica left unfinished (see ``EditMemory.recover``)
HEAL_EVERY_S = 5.0


async def _heal(editor: "Editor") -> None:
    """Reconcile the shared index whenever a writer of the store died mid-write, for as long as the server runs."""
    while True:
        await asyncio.sleep(HEAL_EVERY_S)
        try:
            done = await asyncio.to_thread(editor.recover)
        except Exception:  # the database may be down for a while: try again next time
            logger.warning("checking the store for unfinished writes failed", exc_info=True)
            continue
        if done is not None:
            logger.warning("a writer of store %r died mid-write; the index was reconciled: %s", editor.settings.store.name, done)


def create_app(config: ServerConfig | None = None, *, editor_factory: EditorFactory | None = None,
               cap_torch_threads: bool = False) -> FastAPI:
    """Build the HTTP app. The Editor (from ``editor_factory``, default :func:`default_editor`) is made at
    startup and closed, with its backend, at shutdown; the key store is opened unless ``config.auth`` is off.
    ``cap_torch_threads`` (the process owner, :func:`serve`): once warm, torch's threads are capped at
    ``config.torch_threads`` if anything loaded torch (the default ONNX embedder does not: no ~200 MB import)."""
    cfg = (config or ServerConfig()).validate()
    factory = editor_factory or default_editor
    holder: dict[str, ServerState] = {}
    metrics = Metrics(active_edits=lambda: holder["state"].active_edits() if "state" in holder else {})

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        editor = await asyncio.to_thread(factory, cfg)
        keys = cfg.open_keys() if cfg.auth else None
        healer = asyncio.create_task(_heal(editor)) if editor.database else None
        try:
            await asyncio.to_thread(_warm, editor)
            if cap_torch_threads and cfg.torch_threads and "torch" in sys.modules:
                sys.modules["torch"].set_num_threads(cfg.torch_threads)
            state = ServerState(cfg, editor, keys, metrics, model_name=editor.model)
            holder["state"] = app.state.agentedit = state
            logger.info("agentedit proxy for %s over store %r ready (auth %s)", editor.model, cfg.store,
                        "on" if keys else "off")
            yield
        finally:
            if healer is not None:
                healer.cancel()
            holder.pop("state", None)
            aclose = getattr(editor.backend, "aclose", None)  # pooled upstream connections belong to this loop
            if aclose is not None:
                await aclose()  # closes the backend too
            else:
                editor.backend.close()
            editor.close()
            if keys is not None:
                keys.close()

    app = FastAPI(title="agentedit", version=__version__, description=_DESCRIPTION, lifespan=lifespan)
    install_error_handlers(app)
    app.include_router(chat.router)
    app.include_router(edits.router)
    app.include_router(conflicts.router)
    console.install(app)  # the web console at /ui (same keys and roles)

    @app.get("/healthz", tags=["ops"], summary="Liveness (no key needed); the store's status for admin keys")
    def healthz(request: Request) -> dict[str, Any]:
        st: ServerState = request.app.state.agentedit
        if caller(request, "admin") is None:  # anyone may probe liveness; the details are the operator's
            return {"status": "ok"}
        return {"status": "ok", "model": st.model_name, "store": cfg.store, "chroma": cfg.chroma_url or "embedded",
                "database": st.editor.database or "sqlite", "pid": os.getpid(),
                "auth": st.keys is not None, "active_edits": st.editor.count()}

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics (admin keys)")
    async def metrics_text(who: Principal = require("admin")) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    # outermost last: metrics see every reply; ids and the last-resort 500 wrap the guards; the body limit holds
    # while the text check reads the body
    app.add_middleware(TextCheck)
    app.add_middleware(BodyLimit, limit=cfg.max_body_bytes, limits={"/v1/edits/batch": cfg.max_batch_bytes,
                                                                          "/ui/api/imports": cfg.max_batch_bytes})
    app.add_middleware(HostCheck, allowed=cfg.allowed_hosts, loopback_only=not cfg.auth)
    app.add_middleware(RequestContext)
    app.add_middleware(RequestMetrics, observe=metrics.observe_request)
    return app


def serve(config: ServerConfig, *, editor_factory: EditorFactory | None = None, log_level: str = "info",
          workers: int = 1) -> None:
    """Run the proxy with uvicorn until interrupted (this owns the process: it caps torch's thread count); with
    ``workers`` > 1, that many processes on the one port (:mod:`.workers`)."""
    import uvicorn

    if workers > 1:
        if editor_factory is not None:
            raise ConfigError("workers > 1 builds each worker's Editor from the config; an editor_factory cannot cross "
                              "processes")
        from .workers import serve_workers

        serve_workers(config, workers, log_level=log_level)
        return

    app = create_app(config, editor_factory=editor_factory, cap_torch_threads=True)
    uvicorn.run(app, host=config.host, port=config.port, log_level=log_level, server_header=False)
