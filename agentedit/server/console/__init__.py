"""The web console at ``/ui``: browse, audit and resolve the edits of a namespace, and try a question before and
after them. Served by ``agentedit serve`` in the same process, with the same keys, roles and namespace rules.

The pages are plain HTML, CSS and JavaScript shipped in ``static/`` (no build step, nothing fetched from elsewhere).
They call the API's own ``/v1/edits`` and ``/v1/conflicts`` routes and the few console routes under ``/ui/api``
(:mod:`.routes`, :mod:`.tryit`, :mod:`.reports`), which all authorize through
:func:`~agentedit.server.access.require`. The key is typed once and kept in the tab's ``sessionStorage``; it
travels only in the ``Authorization`` header, never in a URL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from . import reports, routes, tryit
from .imports import Imports
from .recent import Recent, RecentQuestions
from .timing import ServerTiming

STATIC = Path(__file__).parent / "static"
#: the pages load only their own files; nothing may frame them
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
                               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@dataclass
class ConsoleState:
    """What the console keeps beside the server's state (``app.state.console``)."""

    results_dir: Path
    recent: Recent = field(default_factory=Recent)
    imports: Imports = field(default_factory=Imports)


def install(app: FastAPI, *, results_dir: str | Path | None = None) -> ConsoleState:
    """Mount the console on ``app``: the page at ``/ui``, its files at ``/ui/static``, its JSON under ``/ui/api``,
    and the middleware that keeps the recent questions answered with each edit. ``results_dir``: the eval runs
    the Reports page lists (default ``evals/results`` under the working directory)."""
    state = ConsoleState(Path(results_dir) if results_dir is not None else Path.cwd() / "evals" / "results")
    app.state.console = state
    for module in (routes, tryit, reports):
        app.include_router(module.router)
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="console-static")
    app.add_middleware(RecentQuestions, recent=state.recent)
    app.add_middleware(ServerTiming)

    @app.get("/ui", include_in_schema=False)
    def console_page() -> Any:
        return FileResponse(STATIC / "index.html", headers=SECURITY_HEADERS)

    @app.get("/ui/", include_in_schema=False)
    def console_slash() -> Any:
        return RedirectResponse("/ui")

    return state


__all__ = ["ConsoleState", "install"]
