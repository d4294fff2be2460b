"""Which pages of a web source to fetch: its `urls`, its sitemap, and the links found on them.

Breadth first from the listed pages (depth 0) and the sitemap's pages (depth 0 too), following
`<a href>` links up to `crawl.max_depth`, at most `crawl.max_pages` fetches in all. Links are
made absolute (honouring `<base href>`), stripped of their `#fragment`, and kept only when they
are http(s), not `rel=nofollow`, not obviously a stylesheet, script, image or archive, and (with
`same_domain`) on a host of the listed pages or sitemap. A page whose `<meta name=robots>` says
`noindex` is not ingested and one that says `nofollow` is not followed. The order is fixed by the
pages themselves, so a re-run from the cache visits the same pages in the same order.
"""

from __future__ import annotations

import gzip
import io
import os
import re
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit, urlunsplit

from mason.ingest.config import CrawlConfig, SourceConfig
from mason.ingest.web.fetch import Fetcher, Page

#: link targets never worth a request
_SKIP_EXT = frozenset(
    ".css .js .mjs .png .jpg .jpeg .gif .svg .webp .ico .bmp .tif .tiff .mp3 .mp4 .avi .mov .mkv .webm .wav .ogg "
    ".zip .gz .tgz .bz2 .xz .7z .rar .tar .exe .dmg .msi .iso .woff .woff2 .ttf .otf .eot".split()
)
_SITEMAP_DEPTH = 2
_META_ROBOTS = re.compile(rb"<meta[^>]+name\s*=\s*[\"']?robots[\"']?[^>]*>", re.IGNORECASE)
_CONTENT = re.compile(rb"content\s*=\s*(?:[\"']([^\"']*)[\"']|([^\s\"'>]+))", re.IGNORECASE)


def normalize_url(url: str) -> str | None:
    """Canonical form of an http(s) URL (lower-case scheme and host, no default port, no fragment), or None."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower()
    try:
        port = parts.port
    except ValueError:
        return None
    netloc = host if port is None or (scheme, port) in (("http", 80), ("https", 443)) else f"{host}:{port}"
    if ":" in host:  # IPv6 literal
        netloc = f"[{host}]" if port is None else f"[{host}]:{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def page_links(html: bytes, base_url: str) -> tuple[list[str], bool, bool]:
    """(links of the page in document order, noindex, nofollow) from its HTML."""
    import lxml.html

    noindex = nofollow = False
    for tag in _META_ROBOTS.findall(html[:200_000]):
        m = _CONTENT.search(tag)
        value = (m.group(1) or m.group(2) or b"") if m else b""
        words = {w.strip().lower() for w in value.decode("latin-1").split(",")}
        noindex |= bool(words & {"noindex", "none"})
        nofollow |= bool(words & {"nofollow", "none"})
    try:
        doc = lxml.html.document_fromstring(html)
    except Exception:  # lxml raises several types for broken or hostile markup: no links then
        return [], noindex, nofollow
    base = doc.find(".//base[@href]")
    if base is not None:
        base_url = urljoin(base_url, base.get("href", ""))
    links = []
    for a in doc.iter("a"):
        href = a.get("href")
        if not href or "nofollow" in (a.get("rel") or "").lower().split():
            continue
        url = normalize_url(urljoin(base_url, href.strip()))
        if url is None or os.path.splitext(urlsplit(url).path)[1].lower() in _SKIP_EXT:
            continue
        links.append(url)
    return links, noindex, nofollow


def sitemap_urls(fetcher: Fetcher, url: str, limit: int, skipped: list[dict[str, str]]) -> list[str]:
    """Page URLs listed by the sitemap at `url` (sitemap indexes followed two levels down), at most `limit`."""
    from defusedxml import ElementTree

    out: list[str] = []
    queue = [(url, 0)]
    while queue and len(out) < limit:
        current, depth = queue.pop(0)
        page = fetcher.fetch(current, as_ext=".xml")
        if not page.ok:
            skipped.append({"doc": current, "reason": f"sitemap: {page.reason}", "kind": page.kind or "unreachable"})
            continue
        data = fetcher.path(page).read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.GzipFile(fileobj=io.BytesIO(data)).read(fetcher.max_bytes + 1)[: fetcher.max_bytes]
        try:
            root = ElementTree.fromstring(data)
        except Exception as e:  # malformed or refused XML (entities)
            skipped.append({"doc": current, "reason": f"sitemap: not a readable sitemap ({type(e).__name__})",
                            "kind": "corrupt"})  # fmt: skip
            continue
        index = root.tag.endswith("sitemapindex")
        for loc in root.iter():
            if not loc.tag.endswith("loc") or not (loc.text or "").strip():
                continue
            target = normalize_url(loc.text.strip())
            if target is None:
                continue
            if index:
                if depth < _SITEMAP_DEPTH:
                    queue.append((target, depth + 1))
            elif target not in out:
                out.append(target)
                if len(out) >= limit:
                    break
    return out


@dataclass
class CrawlResult:
    """Pages to ingest (in order), the URLs skipped with their reasons, and counts."""

    pages: list[Page] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    fetched: int = 0
    left: int = 0


def crawl(src: SourceConfig, fetcher: Fetcher) -> CrawlResult:
    """Fetch the pages of one web source (see module docstring)."""
    settings = src.crawl or CrawlConfig(max_depth=0)
    result = CrawlResult()
    seeds = [u for u in (normalize_url(x) for x in src.urls) if u]
    for bad in (x for x in src.urls if normalize_url(x) is None):
        result.skipped.append({"doc": bad, "reason": "not an http(s) URL", "kind": "unsupported"})
    hosts = {host_of(u) for u in seeds}
    if src.sitemap and (sitemap := normalize_url(src.sitemap)):
        hosts.add(host_of(sitemap))
        seeds += sitemap_urls(fetcher, sitemap, settings.max_pages, result.skipped)

    def in_scope(url: str) -> bool:
        return not settings.same_domain or host_of(url) in hosts

    queue: deque[tuple[str, int]] = deque()
    seen: set[str] = set()
    for url in seeds:
        if url not in seen:
            seen.add(url)
            queue.append((url, 0))
    final_seen: set[str] = set()
    while queue and result.fetched < settings.max_pages:
        url, depth = queue.popleft()
        page = fetcher.fetch(url, in_scope)
        result.fetched += 1
        if not page.ok:
            result.skipped.append({"doc": url, "reason": page.reason or "no content", "kind": page.kind or "unreachable"})
            continue
        final = normalize_url(page.final_url) or page.final_url
        if final in final_seen:
            continue  # a redirect to a page already read
        final_seen.add(final)
        seen.add(final)
        noindex = False
        if page.is_html:
            links, noindex, nofollow = page_links(fetcher.path(page).read_bytes(), page.final_url)
            if depth < settings.max_depth and not nofollow:
                for link in links:
                    if link not in seen and in_scope(link):
                        seen.add(link)
                        queue.append((link, depth + 1))
        if noindex:
            result.skipped.append({"doc": final, "reason": "the page asks not to be indexed (meta robots noindex)",
                                   "kind": "disallowed"})  # fmt: skip
            continue
        result.pages.append(page)
    result.left = len(queue)
    return result
