"""``agentedit serve --workers N``: N proxy processes behind one listening socket.

One process runs the request path (HTTP, auth, the workflow, the upstream call) under one GIL, so it uses about
one core however many the machine has (``evals/results/proxy-bench-session4``: 0.85 of a core at full load). Workers
are replicas in one command: each process builds its own app (Editor, embedder, key store) from the same
:class:`~agentedit.server.config.ServerConfig` and accepts connections from one socket the supervisor bound, and
uvicorn's supervisor restarts a worker that dies. Because they are replicas, they need what replicas need: a
shared index (``--chroma-url`` or ``--vector-index pgvector``; the embedded Chroma index belongs to one process),
and an upstream that is not a model inside the process (``llamacpp:`` would start one llama.cpp server per
worker; ``hf:`` weights edited in one worker would not be the others').

Per-process state stays per worker: ``/metrics`` counts the worker that answers the scrape, and the console's
recent questions are the answering worker's.
"""

from __future__ import annotations

import logging
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

from .config import ServerConfig, check_workers

logger = logging.getLogger(__name__)


class WorkerConfig(uvicorn.Config):
    """A uvicorn config that builds the agentedit app inside each worker process (it is pickled to them)."""

    def __init__(self, server_config: ServerConfig, **kwargs: Any) -> None:
        super().__init__(app="agentedit.server.app:create_app", **kwargs)  # the string is never imported: see load
        self.server_config = server_config

    def load(self) -> None:
        if not self.loaded:
            from .app import create_app

            self.app = create_app(self.server_config, cap_torch_threads=True)
        super().load()


def serve_workers(cfg: ServerConfig, workers: int, *, log_level: str = "info") -> None:
    """Run ``workers`` processes of the proxy on ``cfg.host:cfg.port`` until interrupted."""
    check_workers(cfg, workers)
    config = WorkerConfig(cfg, host=cfg.host, port=cfg.port, log_level=log_level, server_header=False, workers=workers)
    sock = config.bind_socket()
    logger.info("serving with %d worker processes on %s:%d", workers, cfg.host, cfg.port)
    Multiprocess(config, sockets=[sock]).run()
