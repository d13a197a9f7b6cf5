"""What every model backend offers the workflow."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence, runtime_checkable


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do; routing and scoring read these."""

    editable_weights: bool = False
    logprobs: bool = False
    chat_template: bool = True


@dataclass
class Completion:
    """One model reply. ``tool_calls`` holds the OpenAI-shaped tool calls the model asked for, if any;
    ``logprobs`` the choice's OpenAI ``logprobs`` object and ``system_fingerprint`` the upstream's, when it sent them."""

    text: str
    finish_reason: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    model: str = ""
    raw: Any = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    logprobs: Any = None
    system_fingerprint: str | None = None


@runtime_checkable
class Backend(Protocol):
    """A model that answers chat messages or completion prompts."""

    name: str
    capabilities: Capabilities

    def chat(self, messages: Sequence[dict[str, Any]], **params: Any) -> Completion: ...

    async def achat(self, messages: Sequence[dict[str, Any]], **params: Any) -> Completion: ...

    def complete(self, prompt: str, **params: Any) -> Completion: ...

    def close(self) -> None: ...
