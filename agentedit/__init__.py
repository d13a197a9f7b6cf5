"""agentedit: change what an LLM knows without retraining it.

The public API is small: :class:`Editor`, the record types and the errors.
Submodules (``memory``, ``scope``, ``backends``, ``graph``) hold the parts.
Importing this package loads nothing heavy; models load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import (AgentEditError, BackendError, ConfigError, DuplicateEditError, EditConflictError, EditError,
                     EditNotFoundError, ImportFormatError, ProvisionError, ScopeError, StoreError, UnknownNamespaceError,
                     VersionConflictError)
from .types import Answer, EditRecord, ScopeDecision

if TYPE_CHECKING:
    from .editor import Editor

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "Editor":
        from .editor import Editor

        return Editor
    raise AttributeError(f"module 'agentedit' has no attribute {name!r}")


__all__ = [
    "AgentEditError", "Answer", "BackendError", "ConfigError", "DuplicateEditError", "EditConflictError", "EditError",
    "EditNotFoundError", "EditRecord", "Editor", "ImportFormatError", "ProvisionError", "ScopeDecision", "ScopeError",
    "StoreError", "UnknownNamespaceError", "VersionConflictError",
]
