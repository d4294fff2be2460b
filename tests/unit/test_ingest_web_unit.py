"""Web sources, the parts that need no server: URLs, links, robots.txt rules, the rate limit, config."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mason.ingest import IngestConfig
from mason.ingest.web.crawl import normalize_url, page_links
from mason.ingest.web.fetch import RateLimiter, _Robots, extension_for, user_agent


def test_normalize_url() -> None:
    assert normalize_url("HTTP://Example.ORG:80/a/b?x=1#frag") == "http://example.org/a/b?x=1"
    assert normalize_url("https://example.org") == "https://example.org/"
    assert normalize_url("https://example.org:8443/x") == "https://example.org:8443/x"
    for bad in ("mailto:a@b.c", "javascript:void(0)", "ftp://x/y", "/relative", "http://"):
        assert normalize_url(bad) is None


def test_page_links_base_nofollow_meta_robots_and_assets() -> None:
    html = (
        b'<html><head><base href="https://site.org/docs/"><meta name="robots" content="noindex, follow"></head><body>'
        b'<a href="guide.html#part">Guide</a><a href="/img/logo.png">logo</a><a rel="nofollow" href="/login">in</a>'
        b'<a href="https://other.org/x">x</a><a href="mailto:a@b.c">mail</a><a>no href</a></body></html>'
    )
    links, noindex, nofollow = page_links(html, "https://site.org/index.html")
    assert links == ["https://site.org/docs/guide.html", "https://other.org/x"]
    assert noindex and not nofollow
    assert page_links(b"<html><head><meta name=robots content=none></head></html>", "http://a/")[1:] == (True, True)


def test_robots_rules_and_crawl_delay() -> None:
    agent = user_agent()
    assert agent.startswith("MASON/")
    rules = _Robots("User-agent: *\nDisallow: /private/\nCrawl-delay: 2\n\nUser-agent: MASON\nDisallow: /nomason/\n", False)
    assert rules.allows("http://a/private/x", "OtherBot/1.0") is False
    assert rules.allows("http://a/nomason/x", agent) is False
    assert rules.allows("http://a/private/x", agent) is True  # the MASON group replaces the * group
    assert rules.allows("http://a/guide", agent) is True
    assert _Robots("User-agent: *\nCrawl-delay: 2\n", False).delay(agent) == 2.0
    assert _Robots(None, True).allows("http://a/x", agent)  # 4xx robots.txt: everything allowed
    assert not _Robots(None, False).allows("http://a/x", agent)  # unreachable robots.txt: nothing


def test_rate_limiter_spaces_requests_per_host() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(round(s, 6))
        now[0] += s

    limiter = RateLimiter(clock=lambda: now[0], sleep=sleep)
    for _ in range(3):
        limiter.wait("a.org", 0.5)
    limiter.wait("b.org", 0.5)  # another host is not slowed by the first
    assert slept == [0.5, 0.5]
    now[0] += 2.0
    limiter.wait("a.org", 0.5)
    assert slept == [0.5, 0.5]


def test_content_types_pick_parsers() -> None:
    assert extension_for("text/html", "http://a/x") == ".html"
    assert extension_for("application/pdf", "http://a/x") == ".pdf"
    assert extension_for("text/plain", "http://a/x.md") == ".txt"
    assert extension_for("application/octet-stream", "http://a/report.docx") == ".docx"
    assert extension_for("application/octet-stream", "http://a/blob") is None
    assert extension_for("image/png", "http://a/x.png") is None
    assert extension_for("video/mp4", "http://a/x.mp4") is None


def test_config_single_list_and_web_forms() -> None:
    single = IngestConfig(path="docs")
    assert [s.path for s in single.source_list()] == ["docs"]
    web = IngestConfig.model_validate({"type": "web", "urls": ["https://a.org/"], "crawl": {"max_depth": 1}})
    assert web.source_list()[0].crawl.max_pages == 100 and web.path is None
    mixed = IngestConfig.model_validate([{"path": "docs"}, {"type": "web", "sitemap": "https://a.org/sitemap.xml"}])
    assert [s.type for s in mixed.source_list()] == ["local", "web"] and mixed.chunk_size == 512
    explicit = IngestConfig.model_validate({"sources": [{"path": "a"}, {"path": "b", "name": "bee"}], "chunk_size": 256})
    assert explicit.chunk_size == 256 and explicit.source_list()[1].name == "bee"
    with pytest.raises(ValidationError) as err:
        IngestConfig.model_validate({"type": "web"})
    assert err.value.errors()[0]["loc"] == ("urls",)
    with pytest.raises(ValidationError):
        IngestConfig.model_validate({"type": "web", "urls": ["ftp://a.org/x"]})
    with pytest.raises(ValidationError) as err:
        IngestConfig.model_validate({"path": "docs", "sources": [{"path": "b"}]})
    assert "not both" in str(err.value)
    with pytest.raises(ValidationError) as err:
        IngestConfig.model_validate([{"glob": "*.md"}])
    assert err.value.errors()[0]["loc"] == ("sources", 0, "path")


def test_list_form_in_pipeline_yaml_plans_and_reports_lines(tmp_path) -> None:  # noqa: ANN001
    from mason.api import Pipeline
    from mason.core.errors import ConfigError
    from mason.pipeline.loader import load_yaml_config

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A\n\nSome text.")
    (tmp_path / "pipeline.yaml").write_text(
        "workspace: ws\nknowledge_source:\n  - path: docs\n  - type: web\n    urls: ['http://127.0.0.1:9/x']\n"
    )
    cfg = load_yaml_config(tmp_path / "pipeline.yaml")
    assert [s.type for s in cfg.knowledge_source.source_list()] == ["local", "web"]
    p = Pipeline.from_yaml(tmp_path / "pipeline.yaml")
    first = [(t.name, t.key) for t in p.plan()]
    assert first == [(t.name, t.key) for t in p.plan()] and first[0][0] == "ingest"
    (tmp_path / "bad.yaml").write_text("knowledge_source:\n  - glob: '*.md'\n  - type: web\n")
    with pytest.raises(ConfigError) as err:
        load_yaml_config(tmp_path / "bad.yaml")
    text = str(err.value)
    assert "knowledge_source.sources[0].path: required field is missing" in text
    assert "knowledge_source.sources[1].urls: required field is missing" in text
