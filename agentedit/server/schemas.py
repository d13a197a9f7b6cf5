"""Request bodies of the HTTP API (pydantic). Bad input becomes a 400 naming the field."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# OpenAI chat parameters sent on to the upstream as litellm arguments (litellm maps them for other providers).
FORWARDED = ("temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "seed", "presence_penalty",
             "frequency_penalty", "logit_bias", "logprobs", "top_logprobs", "tools", "tool_choice", "parallel_tool_calls",
             "functions", "function_call", "response_format", "reasoning_effort", "store", "service_tier", "modalities",
             "prediction", "audio", "safety_identifier", "prompt_cache_key", "web_search_options")
# OpenAI parameters litellm drops (user, metadata: it reads them as its own) or refuses (verbosity) for an
# OpenAI-compatible upstream: they go in the request body as they are (``extra_body``), like unknown parameters.
IN_BODY = ("user", "metadata", "verbosity")
# What the proxy itself acts on; never forwarded as given.
OWN = ("model", "messages", "stream", "stream_options", "n")


# Content part types and the field each carries; a user message may send the first four (OpenAI's).
PART_FIELDS: dict[str, type | tuple[type, ...]] = {"text": str, "image_url": (str, dict), "input_audio": dict, "file": dict, "refusal": str}
USER_PARTS = ("text", "image_url", "input_audio", "file")


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None

    @field_validator("content")
    @classmethod
    def _parts_are_whole(cls, content: Any) -> Any:
        """Each content part names its type and carries that field (an upstream call would fail on it)."""
        for i, part in enumerate(content if isinstance(content, list) else ()):
            kind = part.get("type")
            if not isinstance(kind, str):
                raise ValueError(f"part {i} has no 'type' (one of {', '.join(PART_FIELDS)})")
            wanted = PART_FIELDS.get(kind)
            if wanted is not None and not isinstance(part.get(kind), wanted):
                raise ValueError(f"part {i} of type {kind!r} needs its {kind!r} field")
        return content

    @model_validator(mode="after")
    def _user_parts(self) -> "ChatMessage":
        if self.role == "user" and isinstance(self.content, list):
            kinds = {p.get("type") for p in self.content} - set(USER_PARTS)
            if kinds:
                raise ValueError(f"a user message's content parts are {', '.join(USER_PARTS)}, not {sorted(map(str, kinds))}")
        return self


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """The OpenAI chat-completions body. The OpenAI parameters are checked here and forwarded; other top-level
    fields (``top_k``, ``min_p``, ``repetition_penalty``... of vLLM or llama.cpp) go to the upstream in the
    request body as they are, and the upstream decides (a refusal comes back as a 400)."""

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
    store: bool | None = None
    metadata: dict[str, str] | None = None
    service_tier: str | None = None
    modalities: list[str] | None = None
    prediction: dict[str, Any] | None = None
    audio: dict[str, Any] | None = None
    verbosity: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    web_search_options: dict[str, Any] | None = None

    def upstream_params(self) -> dict[str, Any]:
        """The client's parameters for the upstream call: OpenAI ones as arguments, the rest in ``extra_body``
        (only ever the request's JSON: a field such as ``api_base`` cannot redirect the call)."""
        params = {k: v for k in FORWARDED if (v := getattr(self, k)) is not None}
        extra = {k: v for k in IN_BODY if (v := getattr(self, k)) is not None}
        extra.update({k: v for k, v in (self.model_extra or {}).items() if k not in OWN})
        if extra:
            params["extra_body"] = extra
        return params

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
