"""Fetching pages politely, with a cache: robots.txt, a per-host rate limit, redirects, size and time limits.

Every download goes through `Fetcher.fetch`:

- **robots.txt** of each host is read first (RFC 9309: a 4xx answer allows everything, a 5xx or
  no answer forbids everything) and checked for every URL, redirect targets included; its
  `Crawl-delay` slows the rate limit down further.
- **rate limit**: at most `requests_per_second` requests to one host (the robots.txt fetch
  included); cached pages cost no request.
- **redirects** are followed by hand (at most 5), each target checked against robots.txt and
  against the crawl's scope (`same_domain`).
- **limits**: `timeout` seconds for a whole page (a server that trickles bytes is cut off too),
  `max_bytes` per body (the `Content-Length` is checked before reading); content types no parser
  reads (images, video, archives) are refused from their headers, before the body is read.
- **cache**: each URL's outcome is stored under `cache_dir` (`<key>.json`, the body beside it)
  with the final URL, fetch time and the body's SHA-256: a later run reuses it and downloads
  nothing, unless `refresh` (then each URL is fetched once per run). HTTP errors 4xx are cached;
  timeouts, network errors and 5xx answers are not (the next run tries again).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import mimetypes
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from mason.core.io import atomic_write_json

MAX_REDIRECTS = 5
ROBOTS_MAX_BYTES = 500 << 10
_REDIRECTS = (301, 302, 303, 307, 308)
#: content types read as web pages, and the extension that picks the parser of the others
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_TYPES = {
    "text/plain": ".txt", "text/markdown": ".md", "text/x-markdown": ".md", "text/csv": ".csv",
    "application/json": ".json", "application/pdf": ".pdf", "application/xml": ".xml", "text/xml": ".xml",
    "application/epub+zip": ".epub", "application/rtf": ".rtf", "text/rtf": ".rtf",
    "application/x-ipynb+json": ".ipynb", "text/x-rst": ".rst",
}  # fmt: skip


def user_agent() -> str:
    """The User-Agent MASON sends (its first word is the name robots.txt rules match)."""
    from mason import __version__

    return f"MASON/{__version__} (document ingest; +https://pypi.org/project/mason/)"


def url_key(url: str) -> str:
    """File-name-safe key of a URL in the cache."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:32]


def now_iso() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass
class Page:
    """The outcome of fetching one URL.

    Attributes:
        url: the URL asked for.
        final_url: where it ended after redirects.
        status: the last HTTP status (0 when no answer came).
        content_type: lower-case media type without parameters.
        fetched_at: UTC time of the download (ISO 8601).
        sha256: SHA-256 of the body, None without one.
        body: file name of the body in the cache folder, None without one.
        kind / reason: why the page gives no document (a `ParseError` kind and sentence), else None.
        from_cache: it came from the cache, not from the network (not stored).
    """

    url: str
    final_url: str
    status: int
    content_type: str
    fetched_at: str
    sha256: str | None = None
    body: str | None = None
    kind: str | None = None
    reason: str | None = None
    from_cache: bool = False

    @property
    def ok(self) -> bool:
        return self.kind is None and self.body is not None

    @property
    def is_html(self) -> bool:
        return self.content_type in _HTML_TYPES


class RateLimiter:
    """At most one request per `interval` seconds to each host (`clock`/`sleep` injectable for tests)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self._clock, self._sleep = clock, sleep
        self._next: dict[str, float] = {}

    def wait(self, host: str, interval: float) -> None:
        """Block until a request to `host` is allowed, and book the next slot."""
        now = self._clock()
        ready = self._next.get(host, now)
        if ready > now:
            self._sleep(ready - now)
            now = ready
        self._next[host] = now + interval


class _Robots:
    def __init__(self, text: str | None, allow_all: bool):
        from urllib.robotparser import RobotFileParser

        self.parser = RobotFileParser()
        self.allow_all = allow_all
        if text is not None:
            self.parser.parse(text.splitlines())
        elif not allow_all:
            self.parser.disallow_all = True

    def allows(self, url: str, agent: str) -> bool:
        return self.allow_all or self.parser.can_fetch(agent, url)

    def delay(self, agent: str) -> float:
        if self.allow_all:
            return 0.0
        delay = self.parser.crawl_delay(agent)
        rate = self.parser.request_rate(agent)
        rate_delay = rate.seconds / rate.requests if rate and rate.requests else 0.0
        return float(max(delay or 0.0, rate_delay))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def extension_for(content_type: str, url: str) -> str | None:
    """The file extension a body of this type is parsed as, or None when no parser reads it."""
    from mason.ingest.parsers import supported_extensions

    if content_type in _HTML_TYPES:
        return ".html"
    ext = _TYPES.get(content_type) or mimetypes.guess_extension(content_type or "") or ""
    if ext in supported_extensions():
        return ext
    # servers often send documents as application/octet-stream: trust the URL's extension then
    path_ext = os.path.splitext(urlsplit(url).path)[1].lower()
    if content_type in ("", "application/octet-stream", "binary/octet-stream") and path_ext in supported_extensions():
        return path_ext
    return None


class Fetcher:
    """Downloads pages into `cache_dir` (see module docstring). Use as a context manager."""

    def __init__(self, cache_dir: Path, *, refresh: bool = False, timeout: float = 30.0,
                 requests_per_second: float = 1.0, max_bytes: int = 256 << 20,
                 limiter: RateLimiter | None = None, transport: Any = None):  # fmt: skip
        import httpx2

        self.cache_dir = Path(cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.refresh, self.timeout, self.max_bytes = refresh, timeout, max_bytes
        self.interval = 1.0 / requests_per_second
        self.limiter = limiter or RateLimiter()
        self.agent = user_agent()
        self._robots: dict[str, _Robots] = {}
        self._done: dict[str, Page] = {}
        self.downloads = 0
        self.client = httpx2.Client(
            headers={"User-Agent": self.agent, "Accept": "text/html,application/xhtml+xml,*/*;q=0.8"},
            timeout=httpx2.Timeout(timeout), follow_redirects=False, transport=transport,
        )  # fmt: skip

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def path(self, page: Page) -> Path:
        """Where the page's body is (raises ValueError for a page without one)."""
        if page.body is None:
            raise ValueError(f"{page.url} has no body")
        return self.cache_dir / page.body

    # ---- robots.txt ------------------------------------------------------------------------
    def robots(self, url: str) -> _Robots:
        """The robots.txt rules of `url`'s host (fetched once per run, cached like pages)."""
        origin = _origin(url)
        if origin in self._robots:
            return self._robots[origin]
        meta_path = self.cache_dir / f"robots-{url_key(origin)}.json"
        record = None if self.refresh else _load(meta_path)
        if record is None:
            record = self._fetch_robots(origin)
            if record.pop("cache", True):
                atomic_write_json(meta_path, record, indent=None)
        rules = _Robots(record.get("text"), record.get("allow_all", False))
        self._robots[origin] = rules
        return rules

    def _fetch_robots(self, origin: str) -> dict[str, Any]:
        import httpx2

        host = urlsplit(origin).netloc
        url = origin + "/robots.txt"
        for _ in range(MAX_REDIRECTS + 1):
            self.limiter.wait(host, self.interval)
            try:
                r = self.client.get(url)
            except httpx2.HTTPError:
                return {"text": None, "allow_all": False, "cache": False}  # unreachable: complete disallow
            if r.status_code in _REDIRECTS and r.headers.get("location"):
                url = urljoin(url, r.headers["location"])
                host = urlsplit(url).netloc
                continue
            if 200 <= r.status_code < 300:
                return {"text": r.content[:ROBOTS_MAX_BYTES].decode("utf-8", errors="replace"), "allow_all": False}
            if 400 <= r.status_code < 500:
                return {"text": None, "allow_all": True}  # unavailable: no rules
            return {"text": None, "allow_all": False, "cache": False}
        return {"text": None, "allow_all": True}

    def allowed(self, url: str) -> bool:
        """Whether robots.txt lets MASON fetch `url`."""
        return self.robots(url).allows(url, self.agent)

    # ---- pages -----------------------------------------------------------------------------
    def fetch(self, url: str, in_scope: Callable[[str], bool] | None = None, *, as_ext: str | None = None) -> Page:
        """The page at `url`: from the cache, or downloaded (see module docstring). Never raises for
        a page that cannot be had: the returned Page says why (`kind`, `reason`).

        `as_ext` stores the body under that extension whatever its content type (sitemaps: XML or gzip).
        """
        if url in self._done:
            return self._done[url]
        meta_path = self.cache_dir / f"{url_key(url)}.json"
        if not self.refresh and (record := _load(meta_path)) is not None:
            page = Page(**record, from_cache=True)
            if page.body is None or (self.cache_dir / page.body).is_file():
                self._done[url] = page
                return page
        page, cacheable = self._download(url, in_scope, as_ext)
        if cacheable:
            record = asdict(page)
            record.pop("from_cache")
            atomic_write_json(meta_path, record, indent=None)
        self._done[url] = page
        return page

    def _download(self, url: str, in_scope: Callable[[str], bool] | None, as_ext: str | None) -> tuple[Page, bool]:
        import httpx2

        started, current = time.monotonic(), url

        def fail(kind: str, reason: str, status: int = 0, cacheable: bool = True) -> tuple[Page, bool]:
            return Page(url, current, status, "", now_iso(), kind=kind, reason=reason), cacheable

        for _ in range(MAX_REDIRECTS + 1):
            if not self.allowed(current):
                return fail("disallowed", f"robots.txt of {urlsplit(current).netloc} does not allow {current}")
            host = urlsplit(current).netloc.lower()
            self.limiter.wait(host, max(self.interval, self.robots(current).delay(self.agent)))
            self.downloads += 1
            try:
                with self.client.stream("GET", current) as r:
                    status = r.status_code
                    if status in _REDIRECTS and r.headers.get("location"):
                        target = urljoin(current, r.headers["location"]).split("#", 1)[0]
                        if urlsplit(target).scheme not in ("http", "https"):
                            return fail("unsupported", f"redirect to a non-web URL ({target})", status)
                        if in_scope is not None and not in_scope(target):
                            return fail("disallowed", f"redirects to {target}, outside the crawl's sites", status)
                        current = target
                        continue
                    if status >= 400:
                        return fail("unreachable", f"HTTP {status} {r.reason_phrase}".strip(), status, status < 500)
                    return self._save(url, current, r, started, as_ext)
            except httpx2.TimeoutException:
                return fail("unreachable", f"timed out (over {self.timeout:g} s)", cacheable=False)
            except _TooSlow:
                return fail("unreachable", f"timed out (over {self.timeout:g} s for the whole page)", cacheable=False)
            except httpx2.HTTPError as e:
                return fail("unreachable", f"{type(e).__name__}: {e}", cacheable=False)
        return fail("unreachable", f"more than {MAX_REDIRECTS} redirects")

    def _save(self, url: str, final: str, r: Any, started: float, as_ext: str | None) -> tuple[Page, bool]:
        ctype = r.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        fetched_at = now_iso()
        ext = as_ext or extension_for(ctype, final)
        if ext is None:
            return Page(url, final, r.status_code, ctype, fetched_at, kind="unsupported",
                        reason=f"content type {ctype or 'unknown'}: no parser reads it"), True  # fmt: skip
        declared = r.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            return Page(url, final, r.status_code, ctype, fetched_at, kind="too_large",
                        reason=f"{int(declared) >> 20} MB, over the limit (knowledge_source.max_file_mb)"), True  # fmt: skip
        name = f"{url_key(url)}{ext}"
        tmp = self.cache_dir / f".{name}.{os.getpid()}.part"
        digest, size = hashlib.sha256(), 0
        try:
            with open(tmp, "wb") as f:
                for chunk in r.iter_bytes():
                    size += len(chunk)
                    if size > self.max_bytes:
                        return Page(url, final, r.status_code, ctype, fetched_at, kind="too_large",
                                    reason="body over the limit (knowledge_source.max_file_mb)"), True  # fmt: skip
                    if time.monotonic() - started > self.timeout:
                        raise _TooSlow()
                    digest.update(chunk)
                    f.write(chunk)
            os.replace(tmp, self.cache_dir / name)
        finally:
            tmp.unlink(missing_ok=True)
        return Page(url, final, r.status_code, ctype, fetched_at, sha256=digest.hexdigest(), body=name), True


class _TooSlow(Exception):
    """The whole page took longer than the timeout (a server trickling bytes)."""


def _load(path: Path) -> dict[str, Any] | None:
    import json

    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        return record if isinstance(record, dict) else None
    except (OSError, ValueError):
        return None
