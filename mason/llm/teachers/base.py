"""What every teacher (and judge) backend speaks: a chat request in, a completion out.

Backends raise `RetryableTeacherError` for what a retry can fix (429, 5xx, timeouts, a dropped
connection) and `TeacherError` for what it cannot (401, 404, a bad request). The retry loop,
the rate limit, the concurrency cap and the request cache live in one place
(`mason.llm.client.TeacherClient`), not in each backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from mason.core.errors import MasonError
from mason.core.hashing import stable_hash


class TeacherError(MasonError):
    """A teacher request failed and retrying will not help."""


class RetryableTeacherError(TeacherError):
    """A teacher request failed in a way a retry may fix.

    Attributes:
        retry_after: seconds the server asked us to wait (from `Retry-After`), if any.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, status: int | None = None):
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status


@dataclass(frozen=True)
class ChatRequest:
    """One chat completion request, backend-neutral.

    Attributes:
        messages: OpenAI-format messages.
        temperature, max_tokens, top_p, seed, stop: decoding parameters.
        json_mode: ask the backend for a JSON object (`response_format`) where it supports it.
        json_schema: the JSON schema the answer must follow; backends that can constrain decoding
            to it (OpenAI structured outputs, llama.cpp grammars, vLLM) do, which lets even small
            local teachers answer in the right shape.
        tools: OpenAI-format tool schemas offered to the model, if any.
    """

    messages: tuple[dict[str, Any], ...]
    temperature: float = 0.7
    max_tokens: int = 512
    top_p: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] | None = None
    json_mode: bool = False
    json_schema: dict[str, Any] | None = field(default=None, hash=False)
    tools: tuple[dict[str, Any], ...] | None = None

    @classmethod
    def of(cls, messages: list[dict[str, Any]], **params: Any) -> ChatRequest:
        tools = params.pop("tools", None)
        stop = params.pop("stop", None)
        return cls(tuple(messages), tools=tuple(tools) if tools else None,
                   stop=tuple(stop) if stop else None, **params)

    def payload(self) -> dict[str, Any]:
        """The request as plain data (what the cache key hashes)."""
        out: dict[str, Any] = {"messages": list(self.messages), "temperature": self.temperature,
                               "max_tokens": self.max_tokens}
        for name in ("top_p", "seed", "stop", "tools"):
            value = getattr(self, name)
            if value is not None:
                out[name] = list(value) if isinstance(value, tuple) else value
        if self.json_mode:
            out["json_mode"] = True
        if self.json_schema is not None:
            out["json_schema"] = self.json_schema
        return out

    def sampling_params(self) -> dict[str, Any]:
        """The OpenAI-style decoding parameters both API and in-process backends pass on
        (messages, temperature, top_p, seed, stop, tools); backends add max tokens and format."""
        out: dict[str, Any] = {"messages": list(self.messages), "temperature": self.temperature}
        if self.top_p is not None:
            out["top_p"] = self.top_p
        if self.seed is not None:
            out["seed"] = self.seed
        if self.stop:
            out["stop"] = list(self.stop)
        if self.tools:
            out["tools"] = list(self.tools)
        return out

    def cache_key(self, model: str) -> str:
        """Hash of model + messages + parameters: equal requests share one cached answer."""
        return stable_hash({"model": model, **self.payload()}, length=40)


@dataclass
class Completion:
    """A teacher's answer.

    Attributes:
        text: the assistant message content ("" when the model only called tools).
        tool_calls: OpenAI-format tool calls, if the model made any.
        prompt_tokens, completion_tokens: from the API's usage field (estimated for local models).
        cached: served from the request cache (nothing was sent).
    """

    text: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    cached: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "model": self.model, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "finish_reason": self.finish_reason,
                "tool_calls": self.tool_calls}

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, cached: bool = False) -> Completion:
        return cls(cached=cached, **{k: data.get(k) for k in
                                     ("text", "model", "prompt_tokens", "completion_tokens",
                                      "finish_reason")}, tool_calls=data.get("tool_calls") or [])


@runtime_checkable
class Teacher(Protocol):
    """A chat model backend.

    Attributes:
        model_id: a stable identifier of the model (part of the cache key), never a secret.
    """

    model_id: str

    async def complete(self, request: ChatRequest) -> Completion:
        """Answer one request. Raises RetryableTeacherError or TeacherError."""
        ...

    async def aclose(self) -> None:
        """Release connections, models, servers."""
        ...
