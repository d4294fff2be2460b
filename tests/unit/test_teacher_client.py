"""TeacherClient + OpenAI-compatible teacher against a real (scripted) HTTP server.

Faults come from `tests.helpers.scripted_server` over real sockets, through the official openai
client: 429 with Retry-After, 5xx, timeouts, broken bodies, 401/404, and the server counts what
it received (requests, concurrency, arrival times).
"""

from __future__ import annotations

import asyncio
import email.utils
import itertools
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mason.core.errors import MasonError
from mason.llm.cache import RequestCache
from mason.llm.client import TeacherClient, open_client
from mason.llm.config import TeacherConfig
from mason.llm.teachers import build_teacher, is_extractive, teacher_kind
from mason.llm.teachers.base import (
    ChatRequest,
    Completion,
    RetryableTeacherError,
    TeacherError,
)
from mason.llm.teachers.openai_compat import parse_retry_after
from mason.llm.teachers.providers import NO_KEY, resolve_endpoint
from tests.helpers.scripted_server import (
    ScriptedServer,
    error,
    hang,
    malformed,
    no_choices,
    ok,
    rate_limited,
    tool_call,
)

# Deliberately not shaped like an "sk-..." key: the code must scrub the literal key, not rely on
# redact's patterns.
KEY = "mason-test-credential-7f3a9c21"


def _cfg(server: ScriptedServer | list[ScriptedServer], **kw) -> TeacherConfig:
    urls = [s.base_url for s in server] if isinstance(server, list) else server.base_url
    return TeacherConfig(model="vllm/test-model", base_url=urls, api_key=KEY, **kw)


def _client(server, tmp_path: Path, *, cache: RequestCache | None = None, **kw) -> TeacherClient:
    overrides = {k: kw.pop(k) for k in ("backoff_base", "backoff_cap") if k in kw}
    overrides.setdefault("backoff_base", 0.02)
    return open_client(_cfg(server, **kw), base_dir=tmp_path, cache=cache, **overrides)


def _ask(text: str = "What is 2+2?", **params) -> ChatRequest:
    return ChatRequest.of([{"role": "user", "content": text}], **params)


def _run(client: TeacherClient, *requests: ChatRequest) -> list[Completion]:
    async def go() -> list[Completion]:
        try:
            return list(await asyncio.gather(*(client.complete(r) for r in requests)))
        finally:
            await client.aclose()

    return asyncio.run(go())


def _fail(client: TeacherClient, request: ChatRequest) -> TeacherError:
    with pytest.raises(TeacherError) as info:
        _run(client, request)
    return info.value


# -- retries ----------------------------------------------------------------------------------


def test_ok_request_returns_text_usage_and_sends_the_parameters(tmp_path):
    with ScriptedServer() as srv:
        client = _client(srv, tmp_path, temperature=0.3)
        (out,) = _run(client, _ask("hello there", temperature=0.3, max_tokens=42, seed=7, stop=["###"]))
    assert out.text == "echo: hello there" and not out.cached
    assert out.prompt_tokens == 2 and out.completion_tokens == 3 and out.finish_reason == "stop"
    body, headers = srv.requests[0], srv.headers[0]
    assert body["model"] == "test-model"  # the provider prefix is not sent
    assert (body["temperature"], body["max_tokens"], body["seed"], body["stop"]) == (0.3, 42, 7, ["###"])
    assert headers["authorization"] == f"Bearer {KEY}"
    assert client.stats.as_dict() == {"requests_sent": 1, "cache_hits": 0, "retries": 0, "failures": 0,
                                      "prompt_tokens": 2, "completion_tokens": 3, "cost_usd": None}


def test_429_waits_for_retry_after(tmp_path):
    with ScriptedServer([rate_limited(1), ok("done")]) as srv:
        client = _client(srv, tmp_path)
        started = time.monotonic()
        (out,) = _run(client, _ask())
        waited = srv.arrivals[1] - srv.arrivals[0]
    assert out.text == "done" and srv.request_count == 2 and client.stats.retries == 1
    # backoff alone would be <= 0.02 s: the gap comes from Retry-After
    assert waited >= 0.9, waited
    assert time.monotonic() - started < 10


def test_429_with_http_date_retry_after(tmp_path):
    when = email.utils.formatdate(time.time() + 2, usegmt=True)
    with ScriptedServer([rate_limited(when), ok("done")]) as srv:
        client = _client(srv, tmp_path)
        (out,) = _run(client, _ask())
        waited = srv.arrivals[1] - srv.arrivals[0]
    assert out.text == "done" and srv.request_count == 2
    assert waited >= 0.5, waited  # the date has 1 s resolution: at least ~1 s remained


def test_parse_retry_after_forms():
    now = 1_700_000_000.0
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after(email.utils.formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30, abs=1)
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_5xx_is_retried_then_succeeds(tmp_path):
    with ScriptedServer([error(500), error(503, "overloaded"), ok("third time")]) as srv:
        client = _client(srv, tmp_path)
        (out,) = _run(client, _ask())
    assert out.text == "third time"
    assert srv.request_count == 3 and client.stats.retries == 2 and client.stats.requests_sent == 3


def test_timeout_is_retried(tmp_path):
    with ScriptedServer([hang(10), ok("fast now")]) as srv:
        client = _client(srv, tmp_path, timeout=0.5)
        started = time.monotonic()
        (out,) = _run(client, _ask())
        elapsed = time.monotonic() - started
    assert out.text == "fast now" and srv.request_count == 2 and client.stats.retries == 1
    assert elapsed < 5, elapsed  # the hanging attempt was abandoned, not waited out


def test_broken_bodies_are_retried(tmp_path):
    with ScriptedServer([malformed(), no_choices(), ok("valid")]) as srv:
        client = _client(srv, tmp_path)
        (out,) = _run(client, _ask())
    assert out.text == "valid" and srv.request_count == 3 and client.stats.retries == 2


def test_401_is_not_retried_and_says_check_the_key(tmp_path):
    with ScriptedServer([error(401, f"Incorrect API key provided: {KEY}")], default=ok("never")) as srv:
        client = _client(srv, tmp_path)
        exc = _fail(client, _ask())
    assert not isinstance(exc, RetryableTeacherError)
    assert srv.request_count == 1 and client.stats.failures == 1 and client.stats.retries == 0
    text = str(exc)
    assert "HTTP 401" in text and "check the API key" in text
    assert KEY not in text and KEY not in repr(exc.args)


def test_404_says_check_model_and_base_url(tmp_path):
    with ScriptedServer([error(404, "model 'test-model' not found")]) as srv:
        exc = _fail(_client(srv, tmp_path), _ask())
    assert "HTTP 404" in str(exc) and "base_url" in str(exc) and srv.request_count == 1


def test_retries_exhausted_names_the_status_and_hides_the_key(tmp_path):
    with ScriptedServer(default=error(500, f"upstream failed for key {KEY}")) as srv:
        client = _client(srv, tmp_path, max_retries=2)
        exc = _fail(client, _ask())
    assert srv.request_count == 3
    assert "HTTP 500" in str(exc) and "3 attempts" in str(exc)
    assert KEY not in str(exc)
    assert client.stats.failures == 1 and client.stats.retries == 2


def test_connection_refused_is_retryable(tmp_path):
    with ScriptedServer() as srv:
        cfg = _cfg(srv, max_retries=1)
    client = open_client(cfg, base_dir=tmp_path, backoff_base=0.01)  # server is gone now
    exc = _fail(client, _ask())
    assert "cannot connect" in str(exc) and "2 attempts" in str(exc)


# -- concurrency, rate, spreading ----------------------------------------------------------------


def test_concurrency_cap_is_respected(tmp_path):
    with ScriptedServer(latency=0.1) as srv:
        client = _client(srv, tmp_path, max_concurrency=4)
        outs = _run(client, *(_ask(f"question {i}") for i in range(20)))
    assert [o.text for o in outs] == [f"echo: question {i}" for i in range(20)]
    assert srv.request_count == 20
    assert 2 <= srv.max_concurrent <= 4, srv.max_concurrent


def test_requests_per_minute_spaces_requests(tmp_path):
    with ScriptedServer() as srv:
        client = _client(srv, tmp_path, requests_per_minute=600, max_concurrency=8)  # one per 0.1 s

        async def go() -> None:
            await client.complete(_ask("warm-up"))  # opens the connection: later arrivals don't lag
            await asyncio.gather(*(client.complete(_ask(f"q{i}")) for i in range(6)))
            await client.aclose()

        asyncio.run(go())
        arrivals = srv.arrivals[1:]
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert srv.request_count == 7
    assert sorted(gaps)[len(gaps) // 2] >= 0.08, gaps
    assert arrivals[-1] - arrivals[0] >= 0.4, gaps  # 5 intervals of 0.1 s


def test_several_base_urls_share_the_traffic(tmp_path):
    with ScriptedServer(latency=0.05) as a, ScriptedServer(latency=0.05) as b:
        client = _client([a, b], tmp_path, max_concurrency=4)
        model_id = client.model_id
        _run(client, *(_ask(f"q{i}") for i in range(16)))
    assert a.request_count + b.request_count == 16
    assert a.request_count >= 4 and b.request_count >= 4, (a.request_count, b.request_count)
    assert model_id.startswith("vllm/test-model@") and a.base_url in model_id and b.base_url in model_id
    assert KEY not in model_id


# -- cache ------------------------------------------------------------------------------------


def test_cache_answers_repeated_requests_without_sending(tmp_path):
    db = tmp_path / "cache" / "requests.sqlite"
    with ScriptedServer() as srv:
        cache = RequestCache(db)
        first, second = _run(_client(srv, tmp_path, cache=cache), _ask("same"))[0], None
        client = _client(srv, tmp_path, cache=cache)
        (second,) = _run(client, _ask("same"))
        assert srv.request_count == 1
        assert second.cached and not first.cached and second.text == first.text == "echo: same"
        assert client.stats.cache_hits == 1 and client.stats.requests_sent == 0
        # another parameter is another request
        _run(_client(srv, tmp_path, cache=cache), _ask("same", temperature=0.0))
        assert srv.request_count == 2
        cache.close()
        # a new process (here: a new cache object on the same file) resumes from it
        with RequestCache(db) as reopened:
            (third,) = _run(_client(srv, tmp_path, cache=reopened), _ask("same"))
        assert third.cached and srv.request_count == 2


def test_identical_requests_in_flight_are_sent_once(tmp_path):
    with ScriptedServer(latency=0.2) as srv, RequestCache(tmp_path / "c.sqlite") as cache:
        client = _client(srv, tmp_path, cache=cache)
        outs = _run(client, *([_ask("dup")] * 5))
    assert srv.request_count == 1
    assert {o.text for o in outs} == {"echo: dup"} and sum(o.cached for o in outs) == 4


def test_api_key_never_reaches_the_cache_file(tmp_path):
    folder = tmp_path / "cache"
    with ScriptedServer([rate_limited(0), error(500, f"bad key {KEY}")]) as srv:
        cache = RequestCache(folder / "requests.sqlite")
        _run(_client(srv, tmp_path, cache=cache), _ask("secret check"), _ask("another"))
        assert len(cache) == 2
        cache.close()
    files = [p for p in folder.iterdir() if p.is_file()]
    assert files
    for path in files:
        data = path.read_bytes()
        assert KEY.encode() not in data and b"authorization" not in data.lower(), path


def test_cache_roundtrips_tool_calls(tmp_path):
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    with ScriptedServer([tool_call("lookup", {"q": "paris"})]) as srv, \
            RequestCache(tmp_path / "c.sqlite") as cache:
        (first,) = _run(_client(srv, tmp_path, cache=cache), _ask("find", tools=tools, json_mode=True))
        (again,) = _run(_client(srv, tmp_path, cache=cache), _ask("find", tools=tools, json_mode=True))
        body = srv.requests[0]
    assert body["tools"] == tools and body["response_format"] == {"type": "json_object"}
    assert first.text == "" and first.finish_reason == "tool_calls"
    assert first.tool_calls[0]["function"] == {"name": "lookup", "arguments": '{"q": "paris"}'}
    assert again.cached and again.tool_calls == first.tool_calls and srv.request_count == 1


def test_cost_from_prices(tmp_path):
    with ScriptedServer() as srv:
        cfg = _cfg(srv, price_per_million_input=1.0, price_per_million_output=2.0)
        client = open_client(cfg, base_dir=tmp_path)
        _run(client, _ask("one two three four"))
    stats = client.stats
    assert (stats.prompt_tokens, stats.completion_tokens) == (4, 5)
    assert stats.cost_usd == pytest.approx((4 * 1.0 + 5 * 2.0) / 1e6)


# -- providers and registry -------------------------------------------------------------------


def test_hosted_provider_without_key_names_the_env_var(monkeypatch):
    monkeypatch.delenv("GROQ_API_KEY", raising=False)
    with pytest.raises(MasonError) as info:
        resolve_endpoint("groq/llama-3.1-8b-instant")
    assert "GROQ_API_KEY" in str(info.value)
    monkeypatch.setenv("GROQ_API_KEY", KEY)
    ep = resolve_endpoint("groq/llama-3.1-8b-instant")
    assert ep.base_urls == ("https://api.groq.com/openai/v1",) and ep.model == "llama-3.1-8b-instant"
    assert ep.api_key == KEY and KEY not in repr(ep) and KEY not in ep.model_id


def test_local_providers_and_overrides(monkeypatch):
    for var in ("OLLAMA_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    ep = resolve_endpoint("ollama/llama3.1:8b")
    assert ep.base_urls == ("http://localhost:11434/v1",) and ep.api_key == NO_KEY
    assert resolve_endpoint("lmstudio/x").base_urls == ("http://localhost:1234/v1",)
    assert resolve_endpoint("llamacpp/x").base_urls == ("http://localhost:8080/v1",)
    assert resolve_endpoint("vllm/org/model").model == "org/model"
    # openai/ on this machine needs no key; credentials in a URL never reach the model id
    ep = resolve_endpoint("openai/m", base_url="http://user:pw@127.0.0.1:9000/v1/?token=abc")
    assert ep.api_key == NO_KEY and ep.model_id == "openai/m@http://127.0.0.1:9000/v1"
    with pytest.raises(MasonError, match="OPENAI_API_KEY"):
        resolve_endpoint("openai/gpt-4o-mini", base_url="https://proxy.example.com/v1")
    with pytest.raises(MasonError, match="no known provider"):
        resolve_endpoint("nosuch/model")


def test_registry_routes_and_extractive(tmp_path):
    assert is_extractive(TeacherConfig(model="extractive"))
    assert teacher_kind(TeacherConfig(model="openrouter/x", api_key=KEY), base_dir=tmp_path) == "openai"
    assert teacher_kind(TeacherConfig(model="anything", base_url="http://127.0.0.1:1/v1"), base_dir=tmp_path) == "openai"
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    assert teacher_kind(TeacherConfig(model="m.gguf"), base_dir=tmp_path) == "gguf"
    with pytest.raises(MasonError, match="extractive"):
        build_teacher(TeacherConfig(model="extractive"), base_dir=tmp_path)
    with pytest.raises(MasonError, match="did you mean ollama"):
        build_teacher(TeacherConfig(model="olama/llama3"), base_dir=tmp_path)


def test_importing_the_teacher_layer_is_light(tmp_path):
    code = ("import sys, mason.llm.teachers, mason.llm.client, mason.llm.cache\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'openai', 'torch', 'llama_cpp', "
            "'transformers', 'httpx2', 'httpx'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "[]"


# -- in-process transformers teacher ------------------------------------------------------------


def test_transformers_teacher_generates_and_counts_tokens(tiny_model_dir, tmp_path):
    pytest.importorskip("torch")
    cfg = TeacherConfig(model=str(tiny_model_dir), max_concurrency=8)
    assert teacher_kind(cfg, base_dir=tmp_path) == "transformers"
    client = open_client(cfg, base_dir=tmp_path)
    assert client.max_concurrency == 1  # one model, one generation at a time
    assert client.model_id == f"transformers:{tiny_model_dir}"
    outs = _run(client, _ask("hello", temperature=0.0, max_tokens=8), _ask("hello", temperature=0.0, max_tokens=8))
    # random weights: the text is noise, but greedy decoding makes it repeatable
    assert outs[0].text == outs[1].text
    assert outs[0].prompt_tokens > 3 and 0 < outs[0].completion_tokens <= 8


def test_builtin_goes_to_transformers_without_llama_cpp(monkeypatch, tmp_path):
    from mason.llm.teachers import local

    monkeypatch.setattr(local, "llama_cpp_available", lambda: False)
    assert teacher_kind(TeacherConfig(model="smollm2-135m-instruct"), base_dir=tmp_path) == "transformers"
    monkeypatch.setattr(local, "llama_cpp_available", lambda: True)
    assert teacher_kind(TeacherConfig(model="smollm2-135m-instruct"), base_dir=tmp_path) == "gguf"


def test_entry_point_plugin_serves_its_prefix(monkeypatch, tmp_path):
    from importlib.metadata import EntryPoint

    import mason.llm.teachers as teachers

    plugin = EntryPoint(name="myplug", value="mason.llm.teachers:_build_openai", group="mason.teachers")
    broken = EntryPoint(name="broken", value="no_such_module_xyz:build", group="mason.teachers")
    monkeypatch.setattr(teachers, "_plugin_entry_points", lambda: {"myplug": plugin, "broken": broken})
    cfg = TeacherConfig(model="myplug/m", base_url="http://127.0.0.1:9/v1")
    assert teacher_kind(cfg, base_dir=tmp_path) == "myplug"
    assert build_teacher(cfg, base_dir=tmp_path).model_id == "openai-compatible/myplug/m@http://127.0.0.1:9/v1"
    with pytest.raises(MasonError, match="teacher plugin 'broken'"):
        build_teacher(TeacherConfig(model="broken/x"), base_dir=tmp_path)
