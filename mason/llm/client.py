"""`TeacherClient`: the one place where teacher requests are cached, rate-limited, capped and retried.

    async with open_client(cfg.teacher, base_dir=root, cache=RequestCache(ws / "cache/requests.sqlite")) as tc:
        completion = await tc.complete(ChatRequest.of([{"role": "user", "content": "..."}]))
    print(tc.stats.as_dict())

For each request: the cache is asked first (a hit sends nothing); identical requests in flight
at the same time are sent once; then, per attempt, the rate limiter spaces request starts, a
semaphore caps the requests in flight, and `asyncio.wait_for` bounds each attempt. What a retry
can fix (`RetryableTeacherError`, timeouts) is retried with exponential backoff and full
jitter, waiting at least what the server's `Retry-After` asked (up to `backoff_cap`). The
answer is cached as soon as it arrives.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Self

from mason.core.redact import redact_text
from mason.llm.cache import RequestCache
from mason.llm.config import TeacherConfig
from mason.llm.teachers.base import (
    ChatRequest,
    Completion,
    RetryableTeacherError,
    Teacher,
    TeacherError,
)

log = logging.getLogger("mason.llm")


class _Abandoned(Exception):
    """The sender of a shared request stopped without an answer (cancelled, or a bug)."""


@dataclass
class TeacherStats:
    """Counters of one `TeacherClient`.

    Attributes:
        requests_sent: attempts that reached the backend (retries included, cache hits not).
        cache_hits: requests answered from the cache (or by an identical request in flight).
        retries: attempts repeated after a retryable failure.
        failures: requests that finally failed (TeacherError raised to the caller).
        prompt_tokens, completion_tokens: usage of the answers received (not of cache hits).
        cost_usd: from the prices per million tokens; None when no price is configured.
    """

    requests_sent: int = 0
    cache_hits: int = 0
    retries: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """The counters as a plain dict (for manifests and the tracker)."""
        return asdict(self)


class RateLimiter:
    """Spaces request starts at least `60 / requests_per_minute` seconds apart (no bursts).

    Strict spacing rather than a bucket with burst capacity: providers count requests over
    sliding windows shorter than a minute, and a burst of a minute's worth at start-up is what
    trips their 429s.
    """

    def __init__(self, requests_per_minute: float):
        self.interval = 60.0 / requests_per_minute
        self._last = -float("inf")
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        """Return when the caller may start its request."""
        # the lock is held while sleeping: waiters leave one by one, each measured from the
        # previous one's actual start, so a stalled event loop cannot release a burst
        async with self._lock:
            delay = self._last + self.interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self._last = time.monotonic()


class TeacherClient:
    """Cache + concurrency cap + rate limit + timeout + retries around one `Teacher`.

    Args:
        teacher: the backend.
        cache: the request cache (None: no caching). Owned by the caller: `aclose` leaves it open.
        max_concurrency: attempts in flight at once.
        requests_per_minute: cap on attempt starts per minute (None: no cap).
        max_retries: retries after the first attempt, for retryable failures only.
        timeout: seconds one attempt may take.
        price_in, price_out: USD per million prompt / completion tokens (for `stats.cost_usd`).
        backoff_base: first backoff ceiling in seconds (doubles at each retry).
        backoff_cap: longest wait between attempts, `Retry-After` included.
    """

    def __init__(
        self,
        teacher: Teacher,
        *,
        cache: RequestCache | None = None,
        max_concurrency: int = 8,
        requests_per_minute: float | None = None,
        max_retries: int = 6,
        timeout: float = 120.0,
        price_in: float | None = None,
        price_out: float | None = None,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
    ):
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        self.teacher = teacher
        self.cache = cache
        self.max_concurrency = max_concurrency
        self.max_retries = max(0, int(max_retries))
        self.timeout = timeout
        self.price_in, self.price_out = price_in, price_out
        self.backoff_base, self.backoff_cap = backoff_base, backoff_cap
        self.stats = TeacherStats(cost_usd=0.0 if price_in is not None or price_out is not None else None)
        self._requests_per_minute = requests_per_minute
        # asyncio primitives are created on first use, inside the running loop
        self._semaphore: asyncio.Semaphore | None = None
        self._limiter: RateLimiter | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: dict[str, asyncio.Future[Completion]] = {}

    @property
    def model_id(self) -> str:
        """The teacher's model id (part of every cache key)."""
        return self.teacher.model_id

    def _primitives(self) -> tuple[asyncio.Semaphore, RateLimiter | None]:
        loop = asyncio.get_running_loop()
        if self._semaphore is None or self._loop is not loop:
            self._semaphore = asyncio.Semaphore(self.max_concurrency)
            self._limiter = RateLimiter(self._requests_per_minute) if self._requests_per_minute else None
            self._pending = {}
            self._loop = loop
        return self._semaphore, self._limiter

    async def complete(self, request: ChatRequest) -> Completion:
        """Answer `request`: from the cache, or from the teacher with retries.

        Returns:
            The `Completion` (`cached=True` when nothing was sent).

        Raises:
            TeacherError: a non-retryable failure (the backend's message, e.g. HTTP 401 with
                the hint to check the key), or retries exhausted (names the last error).
        """
        self._primitives()
        if self.cache is None:
            return await self._send_with_retries(request)
        key = request.cache_key(self.teacher.model_id)
        hit = self.cache.get(key)
        if hit is not None:
            self.stats.cache_hits += 1
            return hit
        # the same request already on its way: share its answer (as a cache hit would)
        while (pending := self._pending.get(key)) is not None:
            try:
                shared = await asyncio.shield(pending)
            except _Abandoned:
                continue  # its sender was cancelled: send it ourselves (or wait for the next)
            self.stats.cache_hits += 1
            return Completion.from_dict(shared.to_dict(), cached=True)
        self._pending[key] = asyncio.get_running_loop().create_future()
        try:
            completion = await self._send_with_retries(request)
        except BaseException as exc:
            self._settle(key, exc=exc)
            raise
        self.cache.put(key, completion)
        self._settle(key, completion=completion)
        return completion

    def _settle(self, key: str, *, completion: Completion | None = None, exc: BaseException | None = None) -> None:
        future = self._pending.pop(key, None)
        if future is None or future.done():
            return
        if completion is not None:
            future.set_result(completion)
        else:
            future.set_exception(exc if isinstance(exc, TeacherError) else _Abandoned())
            future.exception()  # mark retrieved: nobody may be waiting, and that is fine

    async def _send_with_retries(self, request: ChatRequest) -> Completion:
        semaphore, limiter = self._primitives()
        last: RetryableTeacherError | None = None
        for attempt in range(self.max_retries + 1):
            if attempt:
                self.stats.retries += 1
                delay = self._backoff(attempt, last.retry_after if last else None)
                log.info("retry %d/%d in %.1fs after: %s", attempt, self.max_retries, delay,
                         redact_text(str(last)))
                await asyncio.sleep(delay)
            if limiter is not None:
                await limiter.wait()
            async with semaphore:
                self.stats.requests_sent += 1
                try:
                    # asyncio.timeout, not wait_for: no extra task per attempt
                    async with asyncio.timeout(self.timeout):
                        completion = await self.teacher.complete(request)
                except RetryableTeacherError as exc:
                    last = exc
                    continue
                except TimeoutError:
                    last = RetryableTeacherError(f"no answer within {self.timeout:g}s (timeout)")
                    continue
                except TeacherError:
                    self.stats.failures += 1
                    raise
            self._count(completion)
            return completion
        self.stats.failures += 1
        attempts = self.max_retries + 1
        raise TeacherError(
            f"{self.teacher.model_id}: gave up after {attempts} attempt{'s' if attempts != 1 else ''}; "
            f"last error: {last}",
            hint="raise `max_retries` or `timeout` in the teacher section, lower `max_concurrency` "
            "or set `requests_per_minute`, or check that the server is up",
        )

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Full jitter: uniform(0, base * 2^(attempt-1)), capped; at least `retry_after`."""
        ceiling = min(self.backoff_cap, self.backoff_base * (2 ** (attempt - 1)))
        delay = random.uniform(0, ceiling)
        if retry_after is not None:
            # a little jitter on top, so clients told the same Retry-After don't return in lockstep
            delay = max(delay, retry_after + random.uniform(0, 0.1 * max(retry_after, 0.1)))
        return min(delay, self.backoff_cap)

    def _count(self, completion: Completion) -> None:
        stats = self.stats
        stats.prompt_tokens += completion.prompt_tokens or 0
        stats.completion_tokens += completion.completion_tokens or 0
        if stats.cost_usd is not None:
            stats.cost_usd = (stats.prompt_tokens * (self.price_in or 0.0)
                              + stats.completion_tokens * (self.price_out or 0.0)) / 1e6

    async def aclose(self) -> None:
        """Release the teacher (connections, models). The cache stays open (the caller owns it)."""
        await self.teacher.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"TeacherClient({self.teacher.model_id!r}, max_concurrency={self.max_concurrency})"


def open_client(cfg: TeacherConfig, *, base_dir: Path, cache: RequestCache | None = None,
                **overrides: Any) -> TeacherClient:
    """Build the teacher described by `cfg` and wrap it in a `TeacherClient` with cfg's limits.

    In-process teachers (llama.cpp, transformers) answer one request at a time; their
    concurrency is capped at 1 so that the per-request timeout measures generation, not
    queueing behind the lock.

    Args:
        cfg: the teacher (or judge) section.
        base_dir: folder relative model paths resolve against (the pipeline YAML's folder).
        cache: the request cache, or None.
        overrides: TeacherClient keyword arguments that win over cfg (e.g. backoff_base in tests).

    Returns:
        The client; close it with `await client.aclose()` (or `async with`).

    Raises:
        MasonError: see `mason.llm.teachers.build_teacher`.
    """
    from mason.llm.teachers import build_teacher

    teacher = build_teacher(cfg, base_dir=base_dir)
    concurrency = cfg.max_concurrency
    local_cap = getattr(teacher, "max_concurrency", None)
    if local_cap:
        concurrency = min(concurrency, int(local_cap))
    kwargs: dict[str, Any] = {
        "cache": cache,
        "max_concurrency": concurrency,
        "requests_per_minute": cfg.requests_per_minute,
        "max_retries": cfg.max_retries,
        "timeout": cfg.timeout,
        "price_in": cfg.price_per_million_input,
        "price_out": cfg.price_per_million_output,
    }
    kwargs.update(overrides)
    return TeacherClient(teacher, **kwargs)
