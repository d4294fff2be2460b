"""Web sources against a real HTTP server on localhost (tests/helpers/site.py): crawl, sitemap, robots.txt,
404, redirect, slow page, non-HTML files, the crawl cache and `refresh`, and web + local sources mixed."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from mason.ingest import IngestConfig
from mason.ingest.stage import fingerprint, ingest_documents
from mason.ingest.web import web_installed
from tests.helpers.site import serve_site

pytestmark = pytest.mark.skipif(not web_installed(), reason="the web extra (trafilatura) is not installed")


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _web(site, **kw: object) -> dict:  # noqa: ANN001
    return {
        "type": "web", "urls": [site.url("/")], "sitemap": site.url("/sitemap.xml"),
        "crawl": {"max_depth": 1, "max_pages": 30}, "requests_per_second": 1000, "timeout": 1, **kw,
    }  # fmt: skip


def test_crawl_a_small_site(tmp_path: Path) -> None:
    with serve_site() as site:
        cfg = IngestConfig.model_validate({**_web(site), "chunk_size": 128, "chunk_overlap": 16, "min_chunk_tokens": 8})
        result = ingest_documents(cfg, tmp_path, tmp_path / "out", cache_dir=tmp_path / "cache", show_progress=False)
        requests = list(site.requests)
    rows = {r["doc"]: r for r in _rows(tmp_path / "out" / "documents.jsonl")}
    u = site.url
    # listed URLs, then the sitemap's, then what they link to (breadth first, in page order)
    assert list(rows) == [
        u("/"), u("/sitemap-only.html"), u("/guide.html"), u("/faq.html"), u("/guide-v2.html"), u("/notes.txt"),
        u("/manual.pdf"), u("/deep/level2.html"),
    ]
    skipped = {s["doc"]: s["kind"] for s in result.details["skipped"]}
    assert skipped == {
        u("/noindex.html"): "disallowed",
        u("/private/secret.html"): "disallowed",
        u("/missing.html"): "unreachable",
        u("/slow.html"): "unreachable",
        u("/data.bin"): "unsupported",
    }
    reasons = {s["doc"]: s["reason"] for s in result.details["skipped"]}
    assert "robots.txt" in reasons[u("/private/secret.html")] and "404" in reasons[u("/missing.html")]
    assert "timed out" in reasons[u("/slow.html")]
    # robots.txt was read first and respected: the forbidden page was never requested
    assert requests[0] == "/robots.txt" and "/private/secret.html" not in requests
    # max_depth 1: level 3 is two links from a listed page; other hosts and images are never asked for
    assert "/deep/level3.html" not in requests and "/logo.png" not in requests
    # main text only (trafilatura): no menu, no footer; tables stay tables
    guide = rows[u("/guide.html")]
    assert guide["parser"] == "web/trafilatura" and guide["title"] == "Install Guide"
    assert "Hold the magnetic key against the lid" in guide["text"]
    assert "Site menu text" not in guide["text"] and "footer text" not in guide["text"]
    assert "| Part | Interval |" in guide["text"] and "| Seal | 12 months |" in guide["text"]
    # provenance: URL, fetch time, content hash of the bytes served
    assert guide["url"] == u("/guide.html") and guide["fetched_at"].endswith("Z")
    assert rows[u("/guide-v2.html")]["url"] == u("/guide-v2.html")  # reached through the /old redirect
    notes = rows[u("/notes.txt")]
    assert notes["sha256"] == hashlib.sha256(b"Field notes.\n\nThe buoy was serviced in May.\n").hexdigest()
    assert notes["format"] == "txt" and "serviced in May" in notes["text"]
    assert rows[u("/manual.pdf")]["parser"] == "pypdfium2" and "Store the buoy dry" in rows[u("/manual.pdf")]["text"]
    chunks = _rows(tmp_path / "out" / "chunks.jsonl")
    assert {c["doc"] for c in chunks} == set(rows)
    assert result.counts["web_pages"] == 8 and result.counts["web_requests"] > 8


def test_rerun_uses_the_crawl_cache_and_refresh_downloads_again(tmp_path: Path) -> None:
    with serve_site() as site:
        cfg = IngestConfig.model_validate(_web(site))
        first = ingest_documents(cfg, tmp_path, tmp_path / "a", cache_dir=tmp_path / "cache", show_progress=False)
        before = len(site.requests)
        second = ingest_documents(cfg, tmp_path, tmp_path / "b", cache_dir=tmp_path / "cache", show_progress=False)
        assert site.requests[before:] == ["/slow.html"]  # only the page that timed out is tried again
        assert second.counts["from_cache"] == first.counts["documents"] and second.counts["parsed"] == 0
        for name in ("documents.jsonl", "chunks.jsonl"):
            assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
        before = len(site.requests)
        fresh = IngestConfig.model_validate(_web(site, refresh=True))
        ingest_documents(fresh, tmp_path, tmp_path / "c", cache_dir=tmp_path / "cache", show_progress=False)
        assert site.count("/guide.html") == 2 and site.count("/robots.txt") == 2 and len(site.requests) > before + 7
        # refresh: the task key changes on every run, so the runner never reuses a stale crawl
        assert fingerprint(fresh, tmp_path) != fingerprint(fresh, tmp_path)
        assert fingerprint(cfg, tmp_path) == fingerprint(cfg, tmp_path)


def test_web_and_local_sources_mixed(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "local.md").write_text("# Local\n\nThe depot opens at 7 in the morning every weekday.\n")
    with serve_site() as site:
        cfg = IngestConfig.model_validate({
            "sources": [{"path": "docs"}, {"type": "web", "urls": [site.url("/faq.html")], "requests_per_second": 1000}],
            "chunk_size": 128, "chunk_overlap": 16, "min_chunk_tokens": 8,
        })  # fmt: skip
        result = ingest_documents(cfg, tmp_path, tmp_path / "out", cache_dir=tmp_path / "cache", show_progress=False)
    assert [r["doc"] for r in _rows(tmp_path / "out" / "documents.jsonl")] == ["docs/local.md", site.url("/faq.html")]
    assert result.details["source"] == [str(docs), site.url("/faq.html")]
    key = fingerprint(cfg, tmp_path)
    assert key["sources"][0]["files"][0][0] == "local.md" and key["sources"][1] == {"web": None}


def test_resume_after_a_kill_replays_the_crawl_from_the_cache(tmp_path: Path) -> None:
    with serve_site() as site:
        cfg = IngestConfig.model_validate(_web(site, crawl={"max_depth": 0}))
        ingest_documents(cfg, tmp_path, tmp_path / "ref", cache_dir=tmp_path / "cache", show_progress=False)
        ref_docs = (tmp_path / "ref" / "documents.jsonl").read_bytes()
        ref_chunks = (tmp_path / "ref" / "chunks.jsonl").read_bytes()
        out = tmp_path / "cut"
        out.mkdir()
        lines = ref_docs.splitlines(keepends=True)
        first = json.loads(lines[0])
        n_chunks = first["n_chunks"]
        (out / "documents.jsonl").write_bytes(lines[0] + lines[1][:20])
        (out / "chunks.jsonl").write_bytes(b"".join(ref_chunks.splitlines(keepends=True)[: n_chunks + 1])[:-5])
        result = ingest_documents(cfg, tmp_path, out, cache_dir=tmp_path / "cache", resuming=True, show_progress=False)
    assert result.counts["resumed"] == 1
    assert (out / "documents.jsonl").read_bytes() == ref_docs and (out / "chunks.jsonl").read_bytes() == ref_chunks
