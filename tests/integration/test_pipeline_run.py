"""`mason run` end to end on the ingest stage: caching, re-parse of changed documents only,
dry-run, clear errors with exit codes, the lock, the tracker, and resume after kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mason.core.io import read_jsonl
from tests.helpers.demo import init_demo


def mason(*args: str, cwd: Path | None = None, check: bool = False) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "mason", *args], capture_output=True, text=True, cwd=cwd)
    if check and proc.returncode != 0:
        raise AssertionError(f"mason {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def run_json(pipeline: Path, *args: str) -> dict:
    proc = mason("run", str(pipeline), "--json", "--no-progress", *args, check=True)
    return json.loads(proc.stdout)


@pytest.fixture()
def demo(tmp_path) -> Path:
    init_demo(tmp_path / "demo")
    return tmp_path / "demo"


def test_init_run_cached_and_changed_document(demo):
    pipeline = demo / "pipeline.yaml"
    docs = sorted(p.name for p in (demo / "docs").iterdir())
    assert {Path(d).suffix for d in docs} >= {".pdf", ".docx", ".md", ".html"}

    first = run_json(pipeline)
    assert [t["task"] for t in first["tasks"]] == ["ingest", "generate"]
    ingest = first["tasks"][0]
    assert ingest["status"] == "done"
    out = Path(ingest["artifacts"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["key"] == ingest["key"]
    assert manifest["counts"]["documents"] == len(docs)
    chunks = read_jsonl(out / "chunks.jsonl")
    documents = {d["doc"]: d for d in read_jsonl(out / "documents.jsonl")}
    assert len(chunks) == manifest["counts"]["chunks"] > 0
    for c in chunks:  # provenance: every chunk is an exact span of its document's text
        start, end = c["span"]
        assert documents[c["doc"]]["text"][start:end] == c["text"]

    second = run_json(pipeline)
    assert second["tasks"][0]["status"] == "cached" and second["tasks"][0]["key"] == ingest["key"]

    md = next((demo / "docs").glob("*.md"))
    md.write_text(md.read_text() + "\n\n## Appendix\n\nA new closing section about support hours.\n")
    third = run_json(pipeline)
    assert third["tasks"][0]["status"] == "done" and third["tasks"][0]["key"] != ingest["key"]
    counts = third["tasks"][0]["counts"]
    assert counts["parsed"] == 1 and counts["from_cache"] == len(docs) - 1

    # the tracker saw three runs, and the read-only commands show them
    listed = json.loads(mason("runs", "list", "--json", "-w", str(demo / ".mason"), check=True).stdout)
    assert len(listed) == 3
    shown = json.loads(mason("runs", "show", "latest", "--json", "-w", str(pipeline), check=True).stdout)
    assert shown["id"] == third["run_id"]
    compared = mason("runs", "compare", first["run_id"], third["run_id"], "--json", "-w", str(pipeline), check=True)
    assert first["run_id"] in compared.stdout


def test_force_reruns(demo):
    pipeline = demo / "pipeline.yaml"
    run_json(pipeline)
    forced = run_json(pipeline, "ingest", "--force")
    assert forced["tasks"][0]["status"] == "done"
    assert forced["tasks"][0]["counts"]["from_cache"] == forced["tasks"][0]["counts"]["documents"]


def test_dry_run_writes_nothing(demo):
    proc = mason("run", str(demo / "pipeline.yaml"), "--dry-run", "--json", check=True)
    plan = json.loads(proc.stdout)
    assert [(t["task"], t["state"]) for t in plan] == [("ingest", "run"), ("generate", "run")]
    assert not (demo / ".mason").exists()
    run_json(demo / "pipeline.yaml")
    plan = json.loads(mason("run", str(demo / "pipeline.yaml"), "--dry-run", "--json", check=True).stdout)
    assert [t["state"] for t in plan] == ["cached", "cached"]


def test_bad_config_exits_2_and_writes_nothing(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "pipeline.yaml").write_text("knowledge_source:\n  path: docs\n  chunk_sise: 3\ntrainig: {}\n")
    proc = mason("run", str(tmp_path / "pipeline.yaml"))
    assert proc.returncode == 2
    assert "2 problems" in proc.stderr
    assert "did you mean 'chunk_size'" in proc.stderr and "did you mean 'training'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["docs", "pipeline.yaml"]


def test_missing_docs_folder_is_a_clear_error(tmp_path):
    (tmp_path / "pipeline.yaml").write_text("knowledge_source:\n  path: nowhere\n")
    proc = mason("run", str(tmp_path / "pipeline.yaml"))
    assert proc.returncode == 1
    assert "nowhere" in proc.stderr and "Traceback" not in proc.stderr


def test_second_run_on_a_locked_workspace_fails_clearly(demo):
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import time\nfrom mason.pipeline.workspace import Workspace\n"
         f"with Workspace({str(demo / '.mason')!r}).lock():\n    print('locked', flush=True)\n    time.sleep(30)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        proc = mason("run", str(demo / "pipeline.yaml"))
        assert proc.returncode == 3 and f"pid {holder.pid}" in proc.stderr
    finally:
        holder.kill()
        holder.wait()


def test_python_api_builds_and_runs_a_pipeline(demo, tmp_path):
    import mason as m

    p = m.Pipeline(knowledge_source=m.IngestConfig(path=str(demo / "docs")), workspace=m.WorkspaceConfig(path=str(tmp_path / "ws")))
    assert [t.state for t in p.plan()] == ["run"]
    summary = p.run(show_progress=False)
    assert summary.outcome("ingest").status == "done"
    assert p.run(show_progress=False).outcome("ingest").status == "cached"
    result = m.run_ingest({"path": str(demo / "docs")}, out_dir=tmp_path / "direct", show_progress=False)
    assert result.counts["chunks"] == summary.outcome("ingest").counts["chunks"]


def _big_corpus(folder: Path, n: int = 160) -> None:
    from mason.scaffold.corpus import write_docx, write_pdf

    folder.mkdir()
    para = ("The maintenance schedule of pump model {i} requires a seal inspection every {d} days, "
            "a bearing check each quarter, and a full overhaul after {h} operating hours. ") * 6
    for i in range(n):
        sections = [(f"Pump {i} section {s}", [para.format(i=i, d=s + 10, h=1000 + i * s)] * 3) for s in range(4)]
        if i % 20 == 0:
            write_pdf(folder / f"manual_{i:03d}.pdf", f"Manual {i}", sections)
        elif i % 20 == 1:
            write_docx(folder / f"manual_{i:03d}.docx", f"Manual {i}", sections)
        else:
            text = f"# Manual {i}\n\n" + "\n\n".join(f"## {h}\n\n" + "\n\n".join(ps) for h, ps in sections)
            (folder / f"manual_{i:03d}.md").write_text(text)


@pytest.mark.slow
def test_kill_9_during_ingest_then_resume_gives_identical_output(tmp_path):
    docs = tmp_path / "docs"
    _big_corpus(docs)
    for name in ("a", "b"):
        (tmp_path / f"{name}.yaml").write_text(
            f"workspace: ws_{name}\nknowledge_source:\n  path: docs\n  chunk_size: 64\n  chunk_overlap: 8\n"
        )
    reference = run_json(tmp_path / "a.yaml")["tasks"][0]
    ref_dir = Path(reference["artifacts"])

    proc = subprocess.Popen([sys.executable, "-m", "mason", "run", str(tmp_path / "b.yaml"), "--no-progress"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    chunks = tmp_path / "ws_b" / "artifacts" / "ingest" / reference["key"] / "chunks.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not chunks.exists() or chunks.stat().st_size < 20_000):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    manifest = json.loads((chunks.parent / "manifest.json").read_text())
    assert manifest["status"] == "running", "the run finished before the kill; make the corpus bigger"

    plan = json.loads(mason("run", str(tmp_path / "b.yaml"), "--dry-run", "--json", check=True).stdout)
    assert plan[0]["state"] == "resume"
    resumed = run_json(tmp_path / "b.yaml")["tasks"][0]
    assert resumed["key"] == reference["key"] and resumed["status"] == "done"
    for name in ("chunks.jsonl", "documents.jsonl"):
        assert (chunks.parent / name).read_bytes() == (ref_dir / name).read_bytes(), name
    # the killed run is recorded as interrupted, not left "running" forever
    runs = json.loads(mason("runs", "list", "--json", "-w", str(tmp_path / "ws_b"), check=True).stdout)
    assert sorted(r["status"] for r in runs) == ["interrupted", "success"]
