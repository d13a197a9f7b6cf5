"""Who is calling and in which namespace: API-key authentication and role/namespace authorization.

The namespace of a request is the ``x-agentedit-namespace`` header; without it, the key's first
namespace (or the server's default namespace for a ``*`` key and in no-auth mode).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request

from ..errors import EditError
from ..records import validate_namespace
from .auth import ALL_NAMESPACES, ApiKey, Role
from .errors import ApiError

NAMESPACE_HEADER = "x-agentedit-namespace"
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


@dataclass(frozen=True)
class Principal:
    """The caller: its key (None in no-auth mode) and the namespace this request works in."""

    key: ApiKey | None
    namespace: str

    @property
    def actor(self) -> str:
        """How the audit log names the caller."""
        return f"key:{self.key.id}" if self.key else "local"


def _refuse(request: Request, status: int, message: str, code: str) -> ApiError:
    request.app.state.agentedit.metrics.auth_failures.labels(str(status)).inc()
    return ApiError(status, message, code=code, headers=_CHALLENGE if status == 401 else None)


def authorize(request: Request, role: Role) -> Principal:
    """Check the bearer key for ``role`` and the requested namespace; raise 401/403 otherwise."""
    st = request.app.state.agentedit
    wanted = request.headers.get(NAMESPACE_HEADER)
    key: ApiKey | None = None
    if st.keys is not None:
        scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _refuse(request, 401, "no API key: send 'Authorization: Bearer <key>' (create a key with "
                                        "`agentedit keys create`)", "missing_api_key")
        key = st.keys.verify(token.strip())
        if key is None:
            raise _refuse(request, 401, "the API key is not valid (unknown, mistyped or revoked)", "invalid_api_key")
        if not key.has_role(role):
            raise _refuse(request, 403, f"this key has role {key.role!r}; {request.method} {request.url.path} "
                                        f"needs {role!r} or higher", "insufficient_role")
    if wanted is None:
        pinned = [ns for ns in (key.namespaces if key else ()) if ns != ALL_NAMESPACES]
        wanted = pinned[0] if pinned else st.config.namespace
    try:
        namespace = validate_namespace(wanted)
    except EditError as exc:
        raise ApiError(400, f"{NAMESPACE_HEADER}: {exc}", code="invalid_namespace", param=NAMESPACE_HEADER) from None
    if key is not None and not key.can_use(namespace):
        raise _refuse(request, 403, f"this key may not use namespace {namespace!r} (it may use: "
                                    f"{', '.join(key.namespaces)})", "namespace_forbidden")
    return Principal(key, namespace)


def caller(request: Request, role: Role) -> Principal | None:
    """The caller when it may act as ``role`` (everyone in no-auth mode), else None; nothing is refused or counted
    (for routes that answer everyone and tell more to some, as ``/healthz`` does)."""
    st = request.app.state.agentedit
    if st.keys is None:
        return Principal(None, st.config.namespace)
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    key = st.keys.verify(token.strip()) if scheme.lower() == "bearer" and token.strip() else None
    return Principal(key, st.config.namespace) if key is not None and key.has_role(role) else None


def require(role: Role) -> Any:
    """A FastAPI dependency giving the :class:`Principal` of a request that may act as ``role``."""

    async def dependency(request: Request) -> Principal:  # async: a key lookup is too quick for a thread hop
        return authorize(request, role)

    dependency.__name__ = f"require_{role}"
    return Depends(dependency)
