"""Teacher over any OpenAI-compatible endpoint, through the official `openai` client.

One `AsyncOpenAI` client per base URL, each with `max_retries=0`: retries, backoff, the rate
limit and the concurrency cap live in `mason.llm.client.TeacherClient`, so the openai
client must not retry behind its back (it would multiply the request count and ignore our
budget). Requests go to the client with the fewest requests in flight (round-robin on ties),
so a slow replica gets less traffic.

Errors are mapped onto the two teacher error kinds: what a retry can fix (429, 5xx, timeouts,
dropped connections, a body that is not a valid completion) → `RetryableTeacherError`, with
the server's `Retry-After`; everything else (401, 403, 404, 400...) → `TeacherError` with the
fix. Messages name the endpoint without credentials and never contain the API key.
"""

from __future__ import annotations

import asyncio
import email.utils
import itertools
import json
import math
import time
from typing import TYPE_CHECKING, Any

from mason.core.redact import REDACTED, redact_text
from mason.llm.teachers.base import (
    ChatRequest,
    Completion,
    RetryableTeacherError,
    TeacherError,
)
from mason.llm.teachers.providers import Endpoint, public_url

if TYPE_CHECKING:
    from openai import AsyncOpenAI

# Longest server message quoted in an error (HTML error pages can be long)
_MAX_DETAIL = 300


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header: delta-seconds or an HTTP date.

    Returns:
        Seconds (>= 0), or None when the header is absent or unreadable.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if math.isnan(seconds):
        return None
    return max(0.0, seconds)


def _retry_after_from(response: Any) -> float | None:
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    return parse_retry_after(headers.get("retry-after"))


class OpenAICompatTeacher:
    """A teacher behind one or more OpenAI-compatible endpoints.

    Args:
        endpoint: provider, model name, base URL(s) and API key (see `providers.resolve_endpoint`).
        timeout: seconds the HTTP client waits for one response (the caller's own timeout
            usually fires first; this one guards the connection).
        max_completion_tokens_param: send `max_completion_tokens` instead of `max_tokens` (what
            OpenAI's own API wants for its newer models; other servers only know `max_tokens`).
        pools_per_url: HTTP clients (connection pools) per base URL. httpx scans every
            connection of a pool on each request, so at high concurrency several small pools
            cost less CPU than one large one.
    """

    def __init__(self, endpoint: Endpoint, *, timeout: float = 120.0,
                 max_completion_tokens_param: bool | None = None, pools_per_url: int = 1):
        import openai  # noqa: F401 - import now (~0.3 s), not inside the first rate-limited request

        self.endpoint = endpoint
        self.model_id = endpoint.model_id
        self.timeout = timeout
        if max_completion_tokens_param is None:
            max_completion_tokens_param = endpoint.provider == "openai" and not endpoint.custom_url
        self._max_tokens_key = "max_completion_tokens" if max_completion_tokens_param else "max_tokens"
        self._clients: list[AsyncOpenAI] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        # slot i talks to base URL i % len(base_urls): pools of one URL are spread over the list
        self._slot_urls = list(range(len(endpoint.base_urls))) * max(1, pools_per_url)
        self._in_flight: list[int] = [0] * len(self._slot_urls)
        self._turn = itertools.count()
        #: requests sent to each base URL, in `endpoint.base_urls` order (for reports and tests)
        self.sent_per_url: list[int] = [0] * len(endpoint.base_urls)

    def __repr__(self) -> str:
        return f"OpenAICompatTeacher({self.model_id!r})"

    # -- clients --------------------------------------------------------------------------

    def _ensure_clients(self) -> list[AsyncOpenAI]:
        loop = asyncio.get_running_loop()
        if self._clients and self._loop is loop:
            return self._clients
        # httpx connection pools belong to the event loop that opened them: a new loop
        # (another asyncio.run) needs new clients
        from openai import AsyncOpenAI

        self._clients = [
            AsyncOpenAI(base_url=self.endpoint.base_urls[u], api_key=self.endpoint.api_key, max_retries=0,
                        timeout=self.timeout)
            for u in self._slot_urls
        ]
        self._loop = loop
        return self._clients

    def _pick(self) -> int:
        turn = next(self._turn)
        n = len(self._in_flight)
        least = min(self._in_flight)
        # round-robin among the least busy, starting from this turn's position
        for k in range(n):
            i = (turn + k) % n
            if self._in_flight[i] == least:
                return i
        return turn % n

    async def aclose(self) -> None:
        """Close the HTTP connection pools (safe to call twice)."""
        clients, self._clients = self._clients, []
        same_loop = self._loop is asyncio.get_running_loop()
        self._loop = None
        if same_loop:  # pools of a finished loop cannot be closed from this one
            await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)

    # -- requests -------------------------------------------------------------------------

    def _params(self, request: ChatRequest) -> dict[str, Any]:
        params: dict[str, Any] = {"model": self.endpoint.model, **request.sampling_params(),
                                  self._max_tokens_key: request.max_tokens}
        if request.json_schema is not None and self.endpoint.provider == "llamacpp":
            # llama.cpp's servers take the schema inside json_object and compile it to a grammar
            params["response_format"] = {"type": "json_object", "schema": request.json_schema}
        elif request.json_schema is not None:
            params["response_format"] = {"type": "json_schema",
                                         "json_schema": {"name": "answer", "schema": request.json_schema}}
        elif request.json_mode:
            params["response_format"] = {"type": "json_object"}
        return params

    async def complete(self, request: ChatRequest) -> Completion:
        """Send one chat completion request to the least busy endpoint.

        Returns:
            The `Completion` (text, tool calls, usage tokens from the response).

        Raises:
            RetryableTeacherError: 429 (with `retry_after`), 5xx, timeout, connection error,
                a response that is not a valid completion.
            TeacherError: other 4xx (401: check the key; 404: check the model and base_url).
        """
        clients = self._ensure_clients()
        i = self._pick()
        u = self._slot_urls[i]
        url = public_url(self.endpoint.base_urls[u])
        self._in_flight[i] += 1
        self.sent_per_url[u] += 1
        try:
            response = await clients[i].chat.completions.create(**self._params(request))
        except Exception as exc:  # noqa: BLE001 - every failure is mapped to a teacher error
            raise self._map_error(exc, url) from None
        finally:
            self._in_flight[i] -= 1
        return self._to_completion(response, url)

    def _to_completion(self, response: Any, url: str) -> Completion:
        choices = getattr(response, "choices", None)
        if not choices:
            what = "a text body" if isinstance(response, str) else "a completion with no choices"
            raise RetryableTeacherError(f"{url} sent {what}, not a chat completion")
        choice = choices[0]
        message = getattr(choice, "message", None)
        if message is None:
            raise RetryableTeacherError(f"{url} sent a choice without a message")
        tool_calls = [call.model_dump(exclude_none=True) if hasattr(call, "model_dump") else dict(call)
                      for call in (getattr(message, "tool_calls", None) or [])]
        usage = getattr(response, "usage", None)
        return Completion(
            text=getattr(message, "content", None) or "",
            model=getattr(response, "model", None) or self.endpoint.model,
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            finish_reason=getattr(choice, "finish_reason", None),
            tool_calls=tool_calls,
        )

    # -- errors ---------------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        """`text` without the API key (literally, in case it has no recognizable shape)."""
        key = self.endpoint.api_key
        if key and len(key) >= 4:
            text = text.replace(key, REDACTED)
        return redact_text(text)[:_MAX_DETAIL]

    def _map_error(self, exc: BaseException, url: str) -> TeacherError:
        import openai

        if isinstance(exc, openai.APITimeoutError):
            return RetryableTeacherError(f"{url} did not answer within {self.timeout:g}s (timeout)")
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__ or exc.__context__
            detail = f": {self._scrub(str(cause))}" if cause else ""
            return RetryableTeacherError(f"cannot connect to {url}{detail}")
        if isinstance(exc, openai.APIStatusError):
            return self._map_status(exc, url)
        if isinstance(exc, (json.JSONDecodeError, UnicodeDecodeError, openai.APIResponseValidationError)):
            return RetryableTeacherError(f"{url} sent a body that is not a valid completion "
                                         f"({type(exc).__name__}: {self._scrub(str(exc))})")
        if isinstance(exc, openai.OpenAIError):
            return TeacherError(f"{url}: {type(exc).__name__}: {self._scrub(str(exc))}")
        raise exc

    def _map_status(self, exc: Any, url: str) -> TeacherError:
        status = int(exc.status_code)
        detail = self._scrub(_error_message(exc))
        head = f"HTTP {status} from {url} (model {self.endpoint.model!r})"
        if status == 429:
            retry_after = _retry_after_from(exc.response)
            wait = f", retry after {retry_after:g}s" if retry_after is not None else ""
            return RetryableTeacherError(f"{head}: rate limited{wait}: {detail}", retry_after=retry_after,
                                         status=status)
        if status >= 500 or status == 408:
            return RetryableTeacherError(f"{head}: server error: {detail}", status=status,
                                         retry_after=_retry_after_from(exc.response))
        hints = {
            401: "check the API key (the `api_key` of the teacher section, or the provider's env var)",
            403: "the key is valid but not allowed to use this model or endpoint",
            404: "check the model name and the base_url (it usually ends in /v1)",
        }
        return TeacherError(f"{head}: {detail}", hint=hints.get(status))


def _error_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
    return str(getattr(exc, "message", None) or exc)
