"""OpenAI-shaped error replies: ``{"error": {"message", "type", "param", "code"}}`` with the right status."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import (AgentEditError, BackendError, ConfigError, DuplicateEditError, EditConflictError, EditError,
                      EditNotFoundError, ImportFormatError, UnknownNamespaceError, VersionConflictError)
from ..wire import error_body

logger = logging.getLogger(__name__)



class ApiError(Exception):
    """An error the API reports as-is: HTTP status, message, and optional OpenAI ``code``/``param``."""

    def __init__(self, status: int, message: str, *, code: str | None = None, param: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param, self.headers = status, message, code, param, headers


def error_response(status: int, message: str, *, code: str | None = None, param: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message, code=code, param=param), status_code=status, headers=headers)


def backend_status(exc: BackendError) -> int:
    """504 for an upstream timeout, 400 when the upstream rejected the request itself, else 502."""
    cause = exc.__cause__
    names = {cls.__name__ for cls in type(cause).__mro__} if cause is not None else set()
    if any("Timeout" in n for n in names):
        return 504
    status = getattr(cause, "status_code", None)
    if status in (400, 413, 422) and names & {"BadRequestError", "ContextWindowExceededError", "UnprocessableEntityError"}:
        return 400
    return 502


def as_api_error(exc: AgentEditError) -> ApiError:
    """Map a library error to its HTTP status."""
    if isinstance(exc, (EditNotFoundError, UnknownNamespaceError)):
        return ApiError(404, str(exc), code="not_found")
    if isinstance(exc, VersionConflictError):  # If-Match did not match: the reply names the current version
        return ApiError(412, str(exc), code="version_conflict", headers={"ETag": f'"{exc.current_version}"'})
    if isinstance(exc, DuplicateEditError):
        return ApiError(409, str(exc), code="duplicate_edit")
    if isinstance(exc, EditConflictError):  # retracted or superseded meanwhile: the write lost a race
        return ApiError(409, str(exc), code="edit_conflict")
    if isinstance(exc, (EditError, ImportFormatError, ConfigError)):
        return ApiError(400, str(exc), code="invalid_edit" if isinstance(exc, EditError) else None)
    if isinstance(exc, BackendError):
        status = backend_status(exc)
        code = {504: "upstream_timeout", 400: "upstream_rejected_request"}.get(status, "upstream_error")
        return ApiError(status, f"the upstream model failed: {exc}", code=code)
    return ApiError(500, f"{type(exc).__name__}: {exc}", code="store_error")


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
    """Every failure leaves the API as an OpenAI-shaped error body."""

    @app.exception_handler(ApiError)
    async def _api(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, code=exc.code, param=exc.param, headers=exc.headers)

    @app.exception_handler(AgentEditError)
    async def _library(request: Request, exc: AgentEditError) -> JSONResponse:
        err = as_api_error(exc)
        if err.status >= 500:
            logger.warning("%s %s failed: %s", request.method, request.url.path, exc)
        return error_response(err.status, err.message, code=err.code, param=err.param, headers=err.headers)

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

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("%s %s failed unexpectedly", request.method, request.url.path)
        return error_response(500, f"internal error ({type(exc).__name__}); the server log has the details")
