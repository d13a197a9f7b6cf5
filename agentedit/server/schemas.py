"""Request bodies of the HTTP API (pydantic). Bad input becomes a 400 naming the field."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# Request fields sent on to the upstream model when the client sets them.
FORWARDED = ("temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "seed", "presence_penalty",
             "frequency_penalty", "logit_bias", "logprobs", "top_logprobs", "tools", "tool_choice", "parallel_tool_calls",
             "functions", "function_call", "response_format", "user", "reasoning_effort")


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """The OpenAI chat-completions body. Unknown top-level fields are accepted and not forwarded."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(1, ge=1, le=1, description="only 1 is supported")
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    functions: list[dict[str, Any]] | None = None
    function_call: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    user: str | None = None
    reasoning_effort: str | None = None

    def upstream_params(self) -> dict[str, Any]:
        return {k: v for k in FORWARDED if (v := getattr(self, k)) is not None}

    def plain_messages(self) -> list[dict[str, Any]]:
        """The messages exactly as the client sent them (explicit nulls kept, nothing added)."""
        return [m.model_dump(exclude_unset=True) for m in self.messages]


class EditPatch(BaseModel):
    """Fields to change on an active edit."""

    model_config = ConfigDict(extra="forbid")

    prompt: str | None = None
    target_new: str | None = None
    subject: str | None = None
    statement: str | None = None
    target_old: str | None = None
    metadata: dict[str, Any] | None = None
    valid_from: str | None = None
    valid_until: str | None = None

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True, exclude_none=True)


class EditIn(EditPatch):
    """One edit: ``prompt`` + ``target_new`` (+ ``subject``), or a plain ``statement``."""

    id: str | None = None
    aliases: list[str] | None = None

    def data(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class EditBatch(BaseModel):
    """A batch import: all edits are stored, or none."""

    model_config = ConfigDict(extra="forbid")

    edits: list[EditIn] = Field(min_length=1)
