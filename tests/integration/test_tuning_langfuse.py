"""`trace://langfuse/...` through the real `langfuse` SDK against a local server speaking the public API
endpoints the SDK calls (tests/helpers/langfuse_server.py): recorded shapes, cursor pagination,
filters, a 429 and a 500 retried, a 500 that does not stop, bad keys, another project's keys, and the
workspace cache."""

from __future__ import annotations

import base64
import json

import pytest

import mason
from mason.core.errors import InputError
from tests.helpers.langfuse_server import WEATHER_TOOL, LangfuseServer

pytest.importorskip("langfuse")
t = mason.tuning
URI = "trace://langfuse/support/qa"
OBS, SCORES = "/api/public/v2/observations", "/api/public/v3/scores"


@pytest.fixture
def lf(monkeypatch):
    with LangfuseServer(public_key="pk-lf-test", secret_key="sk-lf-test", max_page=2) as server:
        monkeypatch.setenv("LANGFUSE_HOST", server.url)
        monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", "pk-lf-test")
        monkeypatch.setenv("LANGFUSE_SECRET_KEY", "sk-lf-test")
        yield server


def test_traces_become_records_page_by_page(lf):
    records = t.collect_from(URI, page_size=2)
    assert [r["id"] for r in records] == ["t1", "t2", "t3", "t4"]  # oldest first; t5 is another task
    t1 = records[0]
    assert t1 == {
        "id": "t1", "input": {"question": "What holds bricks together?"}, "output": "Mortar holds bricks together.",
        "messages": [{"role": "system", "content": "You answer questions about masonry."},
                     {"role": "user", "content": "What holds bricks together?"},
                     {"role": "assistant", "content": "Mortar holds bricks together."}],
        "tool_calls": [], "scores": {"helpfulness": 0.9},  # the later of two scores of a name
        "metadata": {"app": "help-desk", "trace_id": "t1", "trace_name": "qa", "tags": ["prod"],
                     "timestamp": "2026-11-01T10:00:00Z", "user_id": "user-1", "session_id": None,
                     "environment": "production", "observations": 2, "models": ["gpt-4o-mini"],
                     "source": {"uri": URI, "trace": "t1"}},
    }
    agent = records[2]
    call = {"id": "call_w1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}
    assert agent["messages"][2:] == [
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "content": "{\"temp_c\": 21, \"rain\": false}", "tool_call_id": "call_w1"},
        {"role": "assistant", "content": "Yes: 21 °C and dry."}]
    assert agent["tool_calls"] == [call] and agent["tools"] == [WEATHER_TOOL]
    assert agent["scores"] == {"helpfulness": 1.0, "resolved": True}
    # every observation page followed through its cursor (9 observations of task qa, 2 a page)
    pages = [r for r in lf.requests if r["path"] == OBS]
    assert len(pages) == 5 and pages[0]["query"].get("cursor") is None and all("cursor" in p["query"] for p in pages[1:])
    assert json.loads(pages[0]["query"]["filter"][0]) == [
        {"type": "string", "column": "traceName", "operator": "=", "value": "qa"}]
    assert pages[0]["query"]["fields"] == ["core,basic,time,io,metadata,model,trace_context"]
    assert lf.count(SCORES) == 3  # 6 scores of the 4 traces, 2 a page
    auth = pages[0]["headers"]["Authorization"]
    assert auth == "Basic " + base64.b64encode(b"pk-lf-test:sk-lf-test").decode()


def test_filters_go_to_the_server_and_are_applied(lf):
    records = t.collect_from(URI, since="2026-11-02", until="2026-11-04T00:00:00Z", tags=["prod"],
                             environment="production", score="helpfulness", min_score=0.5)
    assert [r["id"] for r in records] == ["t3"]
    conds = json.loads(next(r for r in lf.requests if r["path"] == OBS)["query"]["filter"][0])
    assert conds[1:] == [
        {"type": "datetime", "column": "startTime", "operator": ">=", "value": "2026-11-02T00:00:00Z"},
        {"type": "datetime", "column": "startTime", "operator": "<", "value": "2026-11-04T00:00:00Z"},
        {"type": "arrayOptions", "column": "tags", "operator": "all of", "value": ["prod"]},
        {"type": "stringOptions", "column": "environment", "operator": "any of", "value": ["production"]}]
    assert [r["id"] for r in t.collect_from(URI, limit=2)] == ["t3", "t4"]  # the most recent
    with pytest.raises(InputError, match="not a date"):
        t.collect_from(URI, since="last tuesday")


def test_a_429_and_a_500_are_retried_by_the_sdk(lf):
    lf.fail_next(OBS, 429, headers={"retry-after-ms": "20"})
    lf.fail_next(SCORES, 500, headers={"retry-after-ms": "20"})
    records = t.collect_from(URI, page_size=100)
    assert len(records) == 4 and records[0]["scores"] == {"helpfulness": 0.9}
    assert lf.count(OBS) == 5 + 1 and lf.count(SCORES) == 3 + 1  # the pages and one retry each


def test_a_server_that_keeps_failing_is_one_clear_error(lf):
    lf.fail_next(OBS, 500, times=10, headers={"retry-after-ms": "10"})
    with pytest.raises(InputError) as e:
        t.collect_from(URI, retries=2)
    assert "answered 500 while reading observations (after the SDK's retries)" in e.value.message
    assert lf.count(OBS) == 3  # the first try and 2 retries


def test_bad_keys_and_another_projects_keys(lf, monkeypatch):
    monkeypatch.setenv("LANGFUSE_SECRET_KEY", "sk-lf-wrong")
    with pytest.raises(InputError) as e:
        t.collect_from(URI)
    assert "refused the keys (401) while checking the project" in e.value.message
    assert "LANGFUSE_SECRET_KEY" in e.value.hint and lf.count(OBS) == 0
    monkeypatch.setenv("LANGFUSE_SECRET_KEY", "sk-lf-test")
    with pytest.raises(InputError, match="the LangFuse keys belong to project 'support', not 'billing'"):
        t.collect_from("trace://langfuse/billing/qa")
    monkeypatch.delenv("LANGFUSE_PUBLIC_KEY")
    with pytest.raises(InputError, match="LangFuse keys are not set: LANGFUSE_PUBLIC_KEY"):
        t.collect_from(URI)
    with pytest.raises(InputError, match="must name a project and a task"):
        t.collect_from("trace://langfuse/support")


def test_a_plan_rerun_reads_the_workspace_cache(lf, tmp_path):
    phase = t.Phase("collect", source=t.Source(URI, tags=["prod"]), curate=t.to_sft)
    first = t.run(t.Plan([phase]), base_dir=tmp_path)
    requests = len(lf.requests)
    again = t.run(t.Plan([phase]), base_dir=tmp_path)
    assert len(lf.requests) == requests and again[0] == first[0]  # no download, same data
    rows = [json.loads(x) for x in open(first[0].uri, encoding="utf-8")]
    assert [r["meta"]["source"]["trace"] for r in rows] == ["t1", "t2", "t3"]
    refreshed = t.run(t.Plan([t.Phase("collect", source=t.Source(URI, tags=["prod"], refresh=True), curate=t.to_sft)]),
                      base_dir=tmp_path)
    assert len(lf.requests) > requests and refreshed[0] == first[0]
    assert t.lineage(f"sample:{rows[2]['id']}", workspace=tmp_path / ".mason") == ["t3"]
