"""A small web site on localhost for the web-source tests: links, a sitemap, robots.txt, a 404, a
redirect, a slow page, a PDF, a text file and a binary file. Every request is logged."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SLOW_SECONDS = 3.0


def _page(title: str, body: str, links: list[str] = ()) -> bytes:  # type: ignore[assignment]
    nav = "".join(f'<a href="{href}">{href}</a> ' for href in links)
    return (
        f"<html><head><title>{title} | Buoy Docs</title></head><body>"
        f'<nav class="menu"><a href="/">Home</a> <a href="/faq.html">FAQ</a> Site menu text</nav>'
        f"<main><article><h1>{title}</h1>{body}<p>{nav}</p></article></main>"
        f"<footer>Copyright Buoy Docs footer text</footer></body></html>"
    ).encode()


def _para(text: str) -> str:
    return f"<p>{text} " + "This sentence adds enough words for the main text extractor to keep the paragraph. " * 3 + "</p>"


@dataclass
class Site:
    """The running site: its base URL and the paths requested so far."""

    base: str
    requests: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.base + path

    def count(self, path: str) -> int:
        return sum(1 for p in self.requests if p == path)


def _routes(pdf: bytes) -> dict[str, tuple[int, str, bytes, dict[str, str]]]:
    html = "text/html; charset=utf-8"
    return {
        "/robots.txt": (200, "text/plain", b"User-agent: *\nDisallow: /private/\n", {}),
        "/": (200, html, _page("Welcome", _para("The AquaSense buoy measures water quality."),
                               ["/guide.html", "/private/secret.html", "/missing.html", "/old", "/slow.html",
                                "/notes.txt", "/manual.pdf", "/data.bin", "/logo.png", "http://127.0.0.2:1/other.html",
                                "mailto:team@example.org"]), {}),  # fmt: skip
        "/guide.html": (200, html, _page("Install Guide", _para("Hold the magnetic key against the lid for five seconds.")
                                         + "<table><tr><th>Part</th><th>Interval</th></tr><tr><td>Seal</td><td>12 months</td></tr></table>",
                                         ["/deep/level2.html"]), {}),  # fmt: skip
        "/faq.html": (200, html, _page("FAQ", _para("The battery lasts 400 charge cycles.")), {}),
        "/deep/level2.html": (200, html, _page("Level Two", _para("Second level page."), ["/deep/level3.html"]), {}),
        "/deep/level3.html": (200, html, _page("Level Three", _para("Third level page.")), {}),
        "/private/secret.html": (200, html, _page("Secret", _para("PRIVATE-PAGE-TEXT must never be fetched.")), {}),
        "/old": (301, html, b"moved", {"Location": "/guide-v2.html"}),
        "/guide-v2.html": (200, html, _page("Guide v2", _para("The redirected guide explains calibration.")), {}),
        "/slow.html": (200, html, _page("Slow", _para("Too slow to wait for.")), {"X-Slow": "1"}),
        "/notes.txt": (200, "text/plain; charset=utf-8", b"Field notes.\n\nThe buoy was serviced in May.\n", {}),
        "/manual.pdf": (200, "application/pdf", pdf, {}),
        "/data.bin": (200, "application/octet-stream", b"\0\1\2\3" * 100, {}),
        "/noindex.html": (200, html, b'<html><head><meta name="robots" content="noindex"></head><body><p>hidden</p></body></html>', {}),
        "/sitemap-only.html": (200, html, _page("Sitemap Only", _para("Only the sitemap lists this page.")), {}),
    }


@contextmanager
def serve_site() -> Iterator[Site]:
    """Run the site on 127.0.0.1 (a free port) in a thread for the `with` block."""
    from mason.scaffold.corpus import write_pdf

    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        pdf = write_pdf(Path(tmp) / "m.pdf", "Buoy Manual", [("Storage", ["Store the buoy dry and out of the sun."])]).read_bytes()
    routes = _routes(pdf)
    site = Site(base="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            site.requests.append(self.path)
            path = self.path
            if path == "/sitemap.xml":
                body = (
                    '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                    f"<url><loc>{site.base}/sitemap-only.html</loc></url><url><loc>{site.base}/guide.html</loc></url>"
                    f"<url><loc>{site.base}/noindex.html</loc></url></urlset>"
                ).encode()
                status, ctype, headers = 200, "application/xml", {}
            elif path in routes:
                status, ctype, body, headers = routes[path]
            else:
                status, ctype, body, headers = 404, "text/html", b"<html><body>Not found</body></html>", {}
            if headers.get("X-Slow"):
                time.sleep(SLOW_SECONDS)
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    site.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()
