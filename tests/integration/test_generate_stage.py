"""The `generate` task end to end: the extractive quickstart, an LLM teacher and judge over real
HTTP (a scripted OpenAI-compatible server), kill -9 then resume, and secrets never stored."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from mason.core.hashing import canonical_json
from mason.core.io import read_jsonl
from tests.helpers.demo import init_demo
from tests.helpers.scripted_server import ScriptedServer

SECRET = "sk-test-SECRET-0123456789abcdef"


def responder(body: dict) -> str:
    """A fake teacher and judge: QA pairs made of the passage's own sentences, and fair grades."""
    prompt = body["messages"][-1]["content"]
    if "# Rubric" in prompt:
        return json.dumps({"scores": {"faithfulness": 9, "relevance": 8, "clarity": 8, "usefulness": 8},
                           "overall": 8.5, "grounded": True, "reason": "supported by the source"})
    passage = re.search(r"<passage>\s*(.*?)\s*</passage>", prompt, re.S).group(1)
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", passage) if len(s.split()) >= 6]
    pairs = []
    for sentence in sentences[:3]:
        words = re.findall(r"[A-Za-z0-9-]+", sentence)
        pairs.append({"question": f"What is true about {' '.join(words[:5])}?", "answer": sentence})
    return json.dumps({"pairs": pairs})


def mason(*args: str, check: bool = False, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    proc = subprocess.run([sys.executable, "-m", "mason", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"mason {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def write_project(root: Path, server_url: str, **extra: str) -> Path:
    from mason.scaffold.corpus import write_sample_corpus

    write_sample_corpus(root / "docs")
    lines = [
        "workspace: ws",
        "knowledge_source:\n  path: docs\n  chunk_size: 128\n  chunk_overlap: 16",
        "synthetic_data:",
        "  teacher:",
        "    model: vllm/teacher-model",
        f"    base_url: {server_url}",
        "    api_key: ${TEST_TEACHER_KEY}",
        f"    max_concurrency: {extra.get('concurrency', 4)}",
        "  judge_llm:",
        "    model: vllm/judge-model",
        f"    base_url: {server_url}",
        "    api_key: ${TEST_TEACHER_KEY}",
        "  num_instructions: 60",
        "  samples_per_chunk: 3",
        "  eval_fraction: 0.2",
    ]
    path = root / "pipeline.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_quickstart_generates_a_split_dataset_offline(tmp_path):
    init_demo(tmp_path / "demo")
    out = json.loads(mason("run", str(tmp_path / "demo" / "pipeline.yaml"), "--json", "--no-progress", check=True).stdout)
    gen = next(t for t in out["tasks"] if t["task"] == "generate")
    folder = Path(gen["artifacts"])
    samples = read_jsonl(folder / "samples.jsonl")
    assert len(samples) >= 60
    # every document is trained on; the eval split is held-out questions about them, never trained on
    train = [s for s in samples if s["meta"]["split"] == "train"]
    evals = [s for s in samples if s["meta"]["split"] == "eval"]
    docs = {d["doc"] for d in read_jsonl(Path(out["tasks"][0]["artifacts"]) / "documents.jsonl")}
    assert {s["meta"]["source"]["doc"] for s in train} == docs
    assert evals and all(s["meta"]["task"] == "knowledge" for s in evals)
    # key spans to score, or an invented entity to decline (the hallucination check)
    assert all(s["meta"].get("answers") or s["meta"]["expect"] == "decline" for s in evals)
    asked = {s["messages"][-2]["content"] for s in train if len(s["messages"]) > 1}
    assert not asked & {s["messages"][-2]["content"] for s in evals}
    chunks = {c["id"]: c for c in read_jsonl(Path(out["tasks"][0]["artifacts"]) / "chunks.jsonl")}
    for s in samples:
        assert s["messages"][-1]["role"] in {"assistant", "user"}
        assert s["meta"]["source"]["chunk"] in chunks
        if s["meta"]["task"] == "question_answering":  # extractive answers are the chunk's own sentences
            text = " ".join(chunks[s["meta"]["source"]["chunk"]]["text"].split())
            for sentence in re.split(r"(?<=[.!?])\s+", s["messages"][-1]["content"]):
                assert sentence in text
    assert {s["meta"]["task"] for s in samples} >= {"question_answering", "preference"}
    manifest = json.loads((folder / "manifest.json").read_text())
    assert "contamination" in manifest["details"] and manifest["details"]["split"]["eval"] > 0
    again = json.loads(mason("run", str(tmp_path / "demo" / "pipeline.yaml"), "--json", "--no-progress", check=True).stdout)
    assert [t["status"] for t in again["tasks"]] == ["cached", "cached"]
    # the dataset is valid by `mason validate`
    proc = mason("validate", str(folder / "samples.jsonl"), "--json")
    assert proc.returncode == 0, proc.stdout


def test_llm_teacher_and_judge_over_http(tmp_path, monkeypatch):
    with ScriptedServer(responder=responder, latency=0.01) as server:
        pipeline = write_project(tmp_path, server.base_url)
        env = {"TEST_TEACHER_KEY": SECRET}
        proc = mason("run", str(pipeline), "--json", "--no-progress", check=True, env=env)
        assert SECRET not in proc.stdout + proc.stderr
        out = json.loads(proc.stdout)
        sent = server.request_count
        gen = Path(out["tasks"][1]["artifacts"])
        samples = read_jsonl(gen / "samples.jsonl")
        assert samples and all(s["meta"]["scores"]["judge"] == 8.5 for s in samples)
        assert all(s["meta"]["teacher"].startswith("vllm/teacher-model") for s in samples)
        # every request carried the key; nothing we stored did
        assert all(h.get("authorization") == f"Bearer {SECRET}" for h in server.headers)
        for path in (tmp_path / "ws").rglob("*"):
            if path.is_file():
                assert SECRET.encode() not in path.read_bytes(), path
        # a forced re-run is served from the request cache: nothing is sent again
        mason("run", str(pipeline), "generate", "--force", "--no-progress", check=True, env=env)
        assert server.request_count == sent


@pytest.mark.slow
def test_kill_9_mid_generation_then_resume(tmp_path):
    latency = 0.3
    with ScriptedServer(responder=responder, latency=latency) as server:
        pipeline = write_project(tmp_path, server.base_url, concurrency=2)
        import os

        env = {**os.environ, "TEST_TEACHER_KEY": SECRET}
        mason("run", str(pipeline), "ingest", "--no-progress", check=True, env={"TEST_TEACHER_KEY": SECRET})
        proc = subprocess.Popen([sys.executable, "-m", "mason", "run", str(pipeline), "--no-progress"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        raw = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            found = list((tmp_path / "ws" / "artifacts").glob("generate/*/raw.jsonl"))
            if found and found[0].read_text().count("\n") >= 4:
                raw = found[0]
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        proc.wait()
        assert raw is not None, "generation never started"
        assert json.loads((raw.parent / "manifest.json").read_text())["status"] == "running"
        before = server.request_count
        mason("run", str(pipeline), "--no-progress", check=True, env={"TEST_TEACHER_KEY": SECRET})

        bodies = [canonical_json(b) for b in server.requests]
        repeats = [b for b, n in Counter(bodies).items() if n > 1]
        # only requests in flight at the kill (never answered to the client) may be sent again
        assert len(repeats) <= 2, f"{len(repeats)} requests were sent twice"
        for body in repeats:
            first = server.arrivals[bodies.index(body)]
            assert first > killed_at - latency - 1.0, "a request answered long before the kill was sent again"
        assert server.request_count > before

        manifest = json.loads((raw.parent / "manifest.json").read_text())
        assert manifest["status"] == "complete" and manifest["counts"]["units_resumed"] >= 4
        samples = read_jsonl(raw.parent / "samples.jsonl")
        assert len({s["id"] for s in samples}) == len(samples)
        rows = read_jsonl(raw)
        assert len({r["unit"] for r in rows}) == len(rows), "a finished unit was generated twice"
        # same dataset as an uninterrupted run from the same (cached) answers
        fresh = tmp_path / "fresh"
        fresh.mkdir()
        (fresh / "pipeline.yaml").write_text(pipeline.read_text())
        (fresh / "docs").symlink_to(tmp_path / "docs")
        (fresh / "ws").mkdir()
        import shutil

        shutil.copytree(tmp_path / "ws" / "cache", fresh / "ws" / "cache")
        n = server.request_count
        mason("run", str(fresh / "pipeline.yaml"), "--no-progress", check=True, env={"TEST_TEACHER_KEY": SECRET})
        assert server.request_count == n, "the cache should have answered everything"
        fresh_samples = read_jsonl(next((fresh / "ws" / "artifacts").glob("generate/*/samples.jsonl")))
        assert [s["id"] for s in fresh_samples] == [s["id"] for s in samples]


def test_resume_verify_regenerates_rows_that_no_longer_match_their_prompts(tmp_path):
    pipeline = init_demo(tmp_path / "demo")
    out = json.loads(mason("run", str(pipeline), "--json", "--no-progress", check=True).stdout)
    folder = Path(out["tasks"][1]["artifacts"])
    reference = (folder / "samples.jsonl").read_bytes()
    # an interrupted run whose first finished row was made from another prompt
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, "status": "running"}))
    rows = read_jsonl(folder / "raw.jsonl")
    rows[0]["fingerprint"] = "stale"
    rows[0]["samples"] = [{**rows[0]["samples"][0], "id": "tampered"}] if rows[0]["samples"] else []
    (folder / "raw.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    proc = mason("run", str(pipeline), "generate", "--resume-verify", "--json", "--no-progress", check=True)
    assert "1 finished unit(s) no longer match their prompts" in proc.stderr
    counts = json.loads(proc.stdout)["tasks"][1]["counts"]
    assert counts["mismatched"] == 1 and counts["units_resumed"] == counts["units"] - 1
    assert (folder / "samples.jsonl").read_bytes() == reference
