"""Errors raised by agentedit.

Every message says what was wrong and what to do about it. Callers can catch
:class:`AgentEditError` to handle all of them.
"""

from __future__ import annotations


class AgentEditError(Exception):
    """Base class of every error agentedit raises on purpose."""


class EditError(AgentEditError, ValueError):
    """An edit record is invalid (empty target, oversize text, missing field...)."""


class DuplicateEditError(EditError):
    """An edit id already exists in the store, or twice in one batch."""


class EditConflictError(EditError):
    """The write conflicts with the edit's current state: it was retracted or superseded meanwhile, or its id
    names edits in several namespaces. Nothing was written; read the edit again and decide."""


class VersionConflictError(EditConflictError):
    """The edit is not at the version the caller expected (``expected_version=``, HTTP ``If-Match``): someone
    changed it since the caller read it. Nothing was written. :attr:`current_version` is the version now stored."""

    def __init__(self, message: str, *, edit_id: str, namespace: str, expected_version: int, current_version: int) -> None:
        super().__init__(message)
        self.edit_id, self.namespace = edit_id, namespace
        self.expected_version, self.current_version = expected_version, current_version


class EditNotFoundError(AgentEditError, KeyError):
    """No edit with that id exists in the namespace."""

    def __str__(self) -> str:  # KeyError quotes its argument; keep the message readable
        return str(self.args[0]) if self.args else ""


class UnknownNamespaceError(AgentEditError, LookupError):
    """The namespace has never been created in this store."""


class ImportFormatError(AgentEditError, ValueError):
    """A JSON/JSONL/CSV file of edits cannot be read (bad line, not UTF-8...)."""


class StoreError(AgentEditError):
    """The on-disk memory is missing, locked or inconsistent."""


class LedgerBusyError(StoreError):
    """Another writer held the store's write lock past the wait; nothing was written, retrying later may work."""


class StoreUnavailableError(StoreError):
    """The store's database server cannot be reached now; nothing was written, retrying later may work."""


class ScopeError(AgentEditError):
    """A scope checker is misconfigured or not calibrated."""


class BackendError(AgentEditError):
    """A model call failed: unreachable server, timeout, provider error.

    ``status`` is the HTTP status the upstream answered with, when it answered (429 when it was rate-limiting);
    ``retry_after`` the seconds it asked the caller to wait before trying again (its ``retry-after`` header)."""

    def __init__(self, message: str = "", *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status, self.retry_after = status, retry_after


class ConfigError(AgentEditError, ValueError):
    """A model spec, option or setting is not understood."""


class ProvisionError(AgentEditError):
    """A local model could not be fetched from the package index or failed its checksum."""
