"""mason.tuning without models: sources and their errors, the cache, the runner's tracking (phases as
tasks, lineage to trace ids, cached phases), metric guards (exit code 4), apply_lora / apply_model
records, the llama.cpp LoRA hand-off and the LM URIs."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import mason
from mason.core.errors import InputError
from mason.pipeline.tracker import Tracker
from mason.tuning import sources as sources_module
from mason.tuning.records import make_record

t = mason.tuning


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _traces() -> list[dict]:
    return [make_record(f"t{i}", input={"question": f"Q{i}?"}, output=f"A{i}.", scores={"helpfulness": i / 4},
                        messages=[{"role": "user", "content": f"Q{i}?"}, {"role": "assistant", "content": f"A{i}."}],
                        metadata={"source": {"uri": "trace://langfuse/p/qa", "trace": f"t{i}"}})
            for i in range(1, 5)]


def test_importing_mason_tuning_imports_no_heavy_library(tmp_path):
    code = ("import sys, mason; mason.tuning.Plan; mason.tuning.to_sft; "
            "print(sorted(m for m in ('dspy', 'langfuse', 'eval_protocol', 'litellm', 'torch', 'trl') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert out.stdout.strip() == "[]"
    assert "tuning" in mason.__all__


@pytest.mark.parametrize(("uri", "message"), [
    ("s3://bucket/x", "unknown source scheme 's3'"),
    ("trace://phoenix/p/t", "unknown trace:// provider 'phoenix'"),
    ("traces.jsonl", "is not a URI"),
])
def test_unknown_sources_list_the_known_ones(uri, message):
    with pytest.raises(InputError) as e:
        t.collect_from(uri)
    assert message in str(e.value)
    assert "dataset://jsonl/<path>" in str(e.value) and "trace://langfuse/<project>/<task>" in str(e.value)


def test_dataset_source_reads_any_format_with_filters(tmp_path):
    data = _write_jsonl(tmp_path / "mixed.jsonl", [
        {"instruction": "Say hi", "output": "hi", "meta": {"score": 0.9}},
        {"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}],
         "meta": {"scores": {"score": 0.1}}},
        *_traces(),
    ])
    records = t.collect_from("dataset://jsonl/mixed.jsonl", base_dir=tmp_path)
    assert [r["input"] for r in records] == ["Say hi", "2+2?", {"question": "Q1?"}, {"question": "Q2?"},
                                             {"question": "Q3?"}, {"question": "Q4?"}]
    assert records[0]["metadata"]["source"] == {"dataset": str(data), "line": 1}
    kept = t.collect_from(f"dataset://jsonl/{data}", min_score=0.5, limit=2)  # an absolute path
    assert [r["output"] for r in kept] == ["hi", "A2."]
    with pytest.raises(InputError, match="take no filter 'since'"):
        t.collect_from("dataset://jsonl/mixed.jsonl", base_dir=tmp_path, since="2026-01-01")
    (tmp_path / "bad.jsonl").write_text('{"x": 1}\n')
    with pytest.raises(InputError, match=r"bad.jsonl:1: unknown row shape"):
        t.collect_from("dataset://jsonl/bad.jsonl", base_dir=tmp_path)


def test_remote_sources_are_cached_in_the_workspace(tmp_path, monkeypatch):
    calls = []

    def fetch(ref, filters, base_dir):
        calls.append((ref.rest, filters))
        return _traces()[: filters.get("n", 4)]

    monkeypatch.setitem(sources_module.SOURCES, "fake", {})
    t.register_source("fake", "api", fetch, filters=("n",), usage="fake://api/<x>")
    ws = tmp_path / ".mason"
    first = t.collect_from("fake://api/x", workspace=ws, n=2)
    again = t.collect_from("fake://api/x", workspace=ws, n=2)
    assert first == again and len(first) == 2 and calls == [("x", {"n": 2})]
    t.collect_from("fake://api/x", workspace=ws, n=3)  # other filters: another cache entry
    t.collect_from("fake://api/x", workspace=ws, n=2, refresh=True)
    assert len(calls) == 3
    assert len(list((ws / "cache" / "tuning" / "sources").glob("*.jsonl"))) == 2


def test_phase_and_plan_checks():
    with pytest.raises(InputError, match="letters, digits"):
        t.Phase("my phase")
    with pytest.raises(InputError, match="unique"):
        t.Plan([t.Phase("a"), t.Phase("a")])
    assert isinstance(t.Phase("a", source="dataset://jsonl/x.jsonl").source, t.Source)


def _plan(tmp_path: Path, calls: list, **kw) -> t.Plan:
    data = _write_jsonl(tmp_path / "traces.jsonl", _traces())

    def optimize(rows, ctx):
        calls.append(len(rows))
        out = ctx.out_dir / "model.txt"
        out.write_text("trained")
        return t.Artefact("model", str(out), {"rows": len(rows)})

    phase = t.Phase("sft", source=t.Source(f"dataset://jsonl/{data}", min_score=0.5), curate=t.to_sft,
                    optimize=optimize, apply=lambda a: {"applied": a.uri})
    return t.Plan([phase], name="demo", **kw)


def test_run_records_phases_lineage_and_caches_optimized_phases(tmp_path):
    calls: list = []
    result = t.run(_plan(tmp_path, calls), base_dir=tmp_path)
    ws = tmp_path / ".mason"
    assert calls == [3] and result[0].kind == "model" and result.by_phase["sft"] is result[0]
    phase_dir = Path(result[0].uri).parent
    assert [json.loads(x)["meta"]["source"]["trace"] for x in (phase_dir / "data.jsonl").read_text().splitlines()] == [
        "t2", "t3", "t4"]
    assert json.loads((phase_dir / "applied.json").read_text()) == {"applied": result[0].uri}
    with Tracker(ws / "mason.db", readonly=True) as tracker:
        run = tracker.get_run(result.run_id)
    assert run["status"] == "success" and run["name"] == "demo" and run["pipeline_path"] == "tuning:demo"
    assert [(x["task"], x["status"]) for x in run["tasks"]] == [("sft", "done")]
    assert {(m["name"], m["value"]) for m in run["metrics"]} >= {("records", 3.0), ("samples", 3.0)}
    assert any(a["kind"] == "model" and a["path"] == result[0].uri for a in run["artifacts"])
    assert run["params"]["tuning.phases.sft.source.uri"].startswith("dataset://jsonl/")
    assert t.lineage(run["tasks"][0]["key"], workspace=ws) == ["t2", "t3", "t4"]

    again = t.run(_plan(tmp_path, calls), base_dir=tmp_path)
    assert calls == [3] and again[0] == result[0]  # cached: not optimized again
    forced = t.run(_plan(tmp_path, calls), base_dir=tmp_path, force=True)
    assert calls == [3, 3] and forced[0].uri == result[0].uri
    with Tracker(ws / "mason.db", readonly=True) as tracker:
        assert tracker.get_run(again.run_id)["tasks"][0]["status"] == "cached"


def test_a_failing_metric_guard_stops_the_plan_with_exit_code_4_after_recording_why(tmp_path):
    calls: list = []
    plan = _plan(tmp_path, calls, guard=[t.metric_guard(lambda a: a["sft"].meta["rows"], 2, name="rows"),
                                         t.metric_guard(lambda a: a["sft"].meta["rows"] / 10, 0.9, name="quality"),
                                         t.metric_guard(lambda: 1 / 0, 0, name="broken")])
    with pytest.raises(t.PlanGuardFailed) as e:
        t.run(plan, base_dir=tmp_path)
    assert e.value.exit_code == 4
    assert "quality (quality) = 0.3, below min 0.9" in e.value.message and "ZeroDivisionError" in e.value.message
    ws = tmp_path / ".mason"
    with Tracker(ws / "mason.db", readonly=True) as tracker:
        run = tracker.get_run("latest")
    assert run["status"] == "failed" and "2 tuning guards failed" in run["error"]
    tasks = {x["task"]: x for x in run["tasks"]}
    assert tasks["guard:rows"]["status"] == "done" and tasks["guard:quality"]["status"] == "failed"
    assert "below min 0.9" in tasks["guard:quality"]["error"]
    assert {(m["task"], m["name"], m["value"]) for m in run["metrics"]} >= {("guard:quality", "quality", 0.3)}
    report = json.loads(Path(e.value.report).read_text())
    assert [(g["name"], g["passed"]) for g in report["guards"]] == [("rows", True), ("quality", False), ("broken", False)]


def test_main_exits_4_on_a_failed_guard(tmp_path):
    _write_jsonl(tmp_path / "traces.jsonl", _traces())
    script = tmp_path / "plan.py"
    script.write_text(
        "import mason\nt = mason.tuning\n"
        "phase = t.Phase('collect', source='dataset://jsonl/traces.jsonl', curate=t.to_sft)\n"
        "t.main(t.Plan([phase], guard=t.metric_guard(lambda a: 0.1, 0.5, name='score')), base_dir=%r)\n" % str(tmp_path))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 4, proc.stderr
    assert "score (score) = 0.1, below min 0.5" in proc.stderr


def _adapter(tmp_path: Path) -> t.Artefact:
    folder = tmp_path / "run" / "adapter"
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 4, "lora_alpha": 8}))
    return t.Artefact("adapter", str(folder), {"base_model": "smollm2-135m-instruct"})


def test_apply_lora_outside_a_plan_records_the_active_adapter(tmp_path):
    artefact = _adapter(tmp_path)
    done = t.apply_lora(artefact, workspace=tmp_path / ".mason", ollama="masonry")
    active = t.active(tmp_path / ".mason")
    assert active["adapter"]["path"] == artefact.uri and active["adapter"]["base_model"] == "smollm2-135m-instruct"
    assert Path(done["modelfile"]).read_text() == (
        f"# written by mason.tuning.apply_lora\nFROM smollm2-135m-instruct\nADAPTER {artefact.uri}\n")
    with Tracker(tmp_path / ".mason" / "mason.db", readonly=True) as tracker:
        run = tracker.get_run("latest")
    assert run["name"] == "apply_lora" and {a["kind"] for a in run["artifacts"]} == {"active_adapter", "active"}
    with pytest.raises(InputError, match="not 'program'"):
        t.apply_lora(t.Artefact("program", "p.json"))


class _LoraServer:
    """llama.cpp's `/lora-adapters` API (GET the loaded adapters, POST their scales)."""

    def __init__(self, adapters: list[dict] | None):
        self.adapters, self.posted = adapters, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _send(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):  # noqa: N802
                self._send(404, {"detail": "Not Found"}) if outer.adapters is None else self._send(200, outer.adapters)

            def do_POST(self):  # noqa: N802
                outer.posted.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self._send(200, {"success": True})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"


def test_llama_server_handoff_switches_scales_or_says_how_to_load_it(tmp_path):
    from mason.tuning.apply import llama_server_handoff

    mine = tmp_path / "adapter.gguf"
    mine.write_bytes(b"GGUF")
    srv = _LoraServer([{"id": 0, "path": str(tmp_path / "old.gguf"), "scale": 1.0},
                       {"id": 1, "path": str(mine), "scale": 0.0}])
    assert llama_server_handoff(srv.url, mine) == {"url": srv.url.removesuffix("/v1"), "id": 1, "scale": 1.0}
    assert srv.posted == [[{"id": 0, "scale": 0.0}, {"id": 1, "scale": 1.0}]]
    with pytest.raises(InputError, match="did not load") as e:
        llama_server_handoff(srv.url, tmp_path / "other.gguf")
    assert "--lora" in e.value.hint
    srv.server.shutdown()
    old = _LoraServer(None)  # llama-cpp-python's server: no hot swap
    with pytest.raises(InputError, match="no LoRA hot-swap API") as e:
        llama_server_handoff(old.url, mine)
    assert "--lora_path" in e.value.hint
    old.server.shutdown()


def test_model_uris(monkeypatch):
    from mason.tuning.apply import parse_model_uri

    monkeypatch.delenv("OPENAI_BASE", raising=False)
    monkeypatch.delenv("OPENAI_API_BASE", raising=False)
    assert parse_model_uri("openai://gpt-4o-mini@https://proxy/v1") == ("gpt-4o-mini", "https://proxy/v1")
    assert parse_model_uri("openai://smollm2@127.0.0.1:8080/v1/") == ("smollm2", "http://127.0.0.1:8080/v1")
    assert parse_model_uri("endpoint://http://host:8000/v1?model=m") == ("m", "http://host:8000/v1")
    assert parse_model_uri("endpoint://host:8000/v1?model=m&x=1") == ("m", "http://host:8000/v1")
    assert parse_model_uri("gpt-4o-mini") == ("gpt-4o-mini", None)
    monkeypatch.setenv("OPENAI_API_BASE", "http://api-base/v1")
    assert parse_model_uri("m") == ("m", "http://api-base/v1")
    monkeypatch.setenv("OPENAI_BASE", "http://base/v1")
    assert parse_model_uri("m") == ("m", "http://base/v1")
    for bad in ("hf://x", "openai://nobase", "endpoint://host:1/v1"):
        with pytest.raises(InputError):
            parse_model_uri(bad)


def test_apply_model_configures_dspy_and_records_it(tmp_path, monkeypatch):
    dspy = pytest.importorskip("dspy")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-123456789")
    lm = t.apply_model("openai://smollm2@http://127.0.0.1:9/v1", workspace=tmp_path / ".mason", temperature=0.0)
    assert dspy.settings.lm is lm and lm.model == "openai/smollm2"
    assert lm.kwargs["api_base"] == "http://127.0.0.1:9/v1" and lm.kwargs["temperature"] == 0.0
    assert t.active(tmp_path / ".mason")["model"]["base_url"] == "http://127.0.0.1:9/v1"
    program = t.Artefact("program", "p.json", {"lm": "endpoint://127.0.0.1:9/v1?model=other"})
    assert t.apply_model(program, workspace=tmp_path / ".mason").model == "openai/other"
    with pytest.raises(InputError, match="names no LM"):
        t.apply_model(t.Artefact("program", "p.json"), workspace=tmp_path / ".mason")
