"""OpenAI-shaped error replies: ``{"error": {"message", "type", "param", "code"}}`` with the right status.

What the client sees never names the upstream's address or the store: upstream and store failures get a generic
message with the request's id (``x-request-id``), and the server log has the details under that id.
"""

from __future__ import annotations

import logging
import math
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import (AgentEditError, StoreUnavailableError, BackendError, ConfigError, DuplicateEditError, EditConflictError, EditError,
                      EditNotFoundError, ImportFormatError, UnknownNamespaceError, VersionConflictError)
from ..wire import error_body, json_text

logger = logging.getLogger(__name__)

CLIENT_GONE = 499  # nginx's status for "the client closed the connection": what the metrics count then
_STORE_NAME = re.compile(r"\bstore '[^']*'")


class WireJSON(JSONResponse):
    """A JSON reply that cannot fail half-way (non-finite numbers and lone surrogates from upstream are made safe)."""

    def render(self, content: Any) -> bytes:
        return json_text(content).encode("utf-8")


class ApiError(Exception):
    """An error the API reports as-is: HTTP status, message, and optional OpenAI ``code``/``param``."""

    def __init__(self, status: int, message: str, *, code: str | None = None, param: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param, self.headers = status, message, code, param, headers


class ClientGone(Exception):
    """The client closed the connection before its reply was ready; the upstream call was cancelled."""


def request_id(request: Request | None) -> str:
    """The id :class:`~agentedit.server.middleware.RequestContext` gave the request (``-`` outside one)."""
    if request is None:
        return "-"
    return str(request.scope.get("state", {}).get("request_id", "-"))


def error_response(status: int, message: str, *, code: str | None = None, param: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return WireJSON(error_body(status, message, code=code, param=param), status_code=status, headers=headers)


def backend_status(exc: BackendError) -> int:
    """The status the client gets: the upstream's 429 or 503 as they are, 504 for an upstream timeout, 400 when the
    upstream rejected the request itself, else 502."""
    if exc.status in (429, 503):
        return exc.status
    cause = exc.__cause__
    names = {cls.__name__ for cls in type(cause).__mro__} if cause is not None else set()
    if any("Timeout" in n for n in names):
        return 504
    status = exc.status or getattr(cause, "status_code", None)
    if status in (400, 413, 422) and names & {"BadRequestError", "ContextWindowExceededError", "UnprocessableEntityError",
                                               "UnsupportedParamsError"}:
        return 400
    return 502


_CLIENT_PREFIXES = re.compile(r"^(litellm\.\w+: )?(\w+Error: )?(\w+Exception - )?")


def _upstream_says(exc: BackendError) -> str:
    """The upstream's (or litellm's) own message for a request it refused: what to change is in there. Left out
    when it would show an address."""
    cause = exc.__cause__
    body = getattr(cause, "body", None)
    message: Any = None
    if isinstance(body, dict):
        inner = body["error"] if isinstance(body.get("error"), dict) else body
        message = inner.get("message")
    if not isinstance(message, str) or not message.strip():
        message = _CLIENT_PREFIXES.sub("", str(cause or ""))
    message = " ".join(message.split())[:300]
    return f": {message}" if message and "://" not in message else ""


def _upstream_error(exc: BackendError, rid: str) -> ApiError:
    status = backend_status(exc)
    ref = f"request id {rid}; the server log has the details"
    if status in (429, 503):
        wait = max(1, math.ceil(exc.retry_after)) if exc.retry_after is not None else 1
        what = "is rate-limiting requests" if status == 429 else "is unavailable for now"
        return ApiError(status, f"the upstream model {what}; retry after {wait} s ({ref})",
                        code="upstream_rate_limited" if status == 429 else "upstream_unavailable",
                        headers={"Retry-After": str(wait)})
    if status == 504:
        return ApiError(504, f"the upstream model did not answer in time ({ref})", code="upstream_timeout")
    if status == 400:
        return ApiError(400, f"the upstream model refused the request{_upstream_says(exc)} ({ref})",
                        code="upstream_rejected_request")
    if "connect" in f"{type(exc.__cause__).__name__} {exc.__cause__}".lower():
        return ApiError(502, f"the upstream model could not be reached ({ref})", code="upstream_error")
    return ApiError(502, f"the upstream model failed or sent a reply that is not a valid chat completion ({ref})",
                    code="upstream_error")


def as_api_error(exc: AgentEditError, request: Request | None = None) -> ApiError:
    """Map a library error to its HTTP status; upstream and store failures are logged here with the request id."""
    rid = request_id(request)
    if isinstance(exc, BackendError):
        err = _upstream_error(exc, rid)
        logger.warning("request %s: upstream call failed (%d to the client): %s", rid, err.status, exc)
        return err
    message = _STORE_NAME.sub("the store", str(exc))
    if isinstance(exc, (EditNotFoundError, UnknownNamespaceError)):
        return ApiError(404, message, code="not_found")
    if isinstance(exc, VersionConflictError):  # If-Match did not match: the reply names the current version
        return ApiError(412, message, code="version_conflict", headers={"ETag": f'"{exc.current_version}"'})
    if isinstance(exc, DuplicateEditError):
        return ApiError(409, message, code="duplicate_edit")
    if isinstance(exc, EditConflictError):  # retracted or superseded meanwhile: the write lost a race
        return ApiError(409, message, code="edit_conflict")
    if isinstance(exc, (EditError, ImportFormatError, ConfigError)):
        return ApiError(400, message, code="invalid_edit" if isinstance(exc, EditError) else None)
    if isinstance(exc, StoreUnavailableError):  # the database is down: the client may retry
        logger.warning("request %s: %s", rid, exc)
        return ApiError(503, "the edit store's database is unreachable; nothing was written; retry shortly",
                        code="store_unavailable", headers={"Retry-After": "2"})
    logger.error("request %s: %s: %s", rid, type(exc).__name__, exc)
    return ApiError(500, f"the edit store failed (request id {rid}; the server log has the details)", code="store_error")


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    errors = exc.errors()
    if not errors:
        return "the request is invalid", None
    first = errors[0]
    if first.get("type") == "json_invalid":
        ctx = first.get("ctx", {}) or {}
        return f"the request body is not valid JSON ({ctx.get('error', 'parse error')}); send a JSON object", None
    where = tuple(first.get("loc", ()))
    loc = [str(p) for p in (where[1:] if where[:1] in (("body",), ("query",), ("path",), ("header",)) else where)]
    param = ".".join(loc) or None
    if param is None and where[:1] == ("body",) and first.get("type") != "missing":
        return "the request body must be a JSON object (send it with Content-Type: application/json)", None
    msg = first.get("msg", "invalid value")
    if first.get("type") == "missing":
        msg = f"'{param}' is required" if param else "the request body is required"
    elif param:
        msg = f"'{param}': {msg}"
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return msg + more, param


def install_error_handlers(app: FastAPI) -> None:
    """Every failure leaves the API as an OpenAI-shaped error body (unexpected exceptions: see
    :class:`~agentedit.server.middleware.RequestContext`, which keeps the connection usable)."""

    @app.exception_handler(ApiError)
    async def _api(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, code=exc.code, param=exc.param, headers=exc.headers)

    @app.exception_handler(AgentEditError)
    async def _library(request: Request, exc: AgentEditError) -> JSONResponse:
        err = as_api_error(exc, request)
        return error_response(err.status, err.message, code=err.code, param=err.param, headers=err.headers)

    @app.exception_handler(ClientGone)
    async def _gone(request: Request, exc: ClientGone) -> Response:
        return Response(status_code=CLIENT_GONE)  # nobody reads it; the metrics and the access log do

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = _validation_message(exc)
        return error_response(400, message, param=param, code="invalid_request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such endpoint: {request.method} {request.url.path}; see /docs for the API"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}; see /docs for the API"
        return error_response(exc.status_code, message, headers=getattr(exc, "headers", None))
