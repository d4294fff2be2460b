"""The `curate` task through `mason run` without a terminal (saved decisions and the undecided policy
apply), its caching on the decisions, seeds re-running generation, and `mason curate --web`."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from mason.api import Pipeline
from mason.core.io import read_jsonl
from tests.helpers.demo import init_demo


def mason(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mason", *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)


def run_json(pipeline: Path, *args: str) -> dict:
    proc = mason("run", str(pipeline), "--json", "--no-progress", *args)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture()
def demo(tmp_path) -> Path:
    pipeline = init_demo(tmp_path / "demo")
    pipeline.write_text(pipeline.read_text() + "\ncuration:\n  enabled: true\n  undecided: drop\n")
    return pipeline


def _task(summary: dict, name: str) -> dict:
    return next(t for t in summary["tasks"] if t["task"] == name)


def test_mason_run_applies_saved_decisions_without_a_terminal(demo):
    run_json(demo, "generate")
    with Pipeline.from_yaml(demo).curation() as session:
        items = session.filter("split:train pool:dataset")
        keep, bad, edit = items[0], items[1], items[2]
        session.approve(keep.id)
        session.reject(bad.id, "says the wrong year")
        session.edit(edit.id, "Edited question?", "Edited answer.")
        session.approve(edit.id)
    first = run_json(demo)
    curate = _task(first, "curate")
    assert curate["status"] == "done"
    out = Path(curate["artifacts"])
    kept = read_jsonl(out / "samples.jsonl")
    assert [r["id"] for r in kept] == [keep.id, edit.id]  # undecided: drop
    assert kept[1]["messages"][0]["content"] == "Edited question?" and kept[1]["meta"]["curation"]["edited"]
    dropped = {r["id"]: r["meta"]["rejected"] for r in read_jsonl(out / "rejected.jsonl")}
    assert dropped[bad.id] == {"reason": "says the wrong year", "stage": "curation"}
    summary = json.loads((out / "curation.json").read_text())
    assert (summary["approved"], summary["rejected"], summary["edited"], summary["kept"]) == (2, 1, 1, 2)

    again = run_json(demo)  # nothing decided since: cached
    assert _task(again, "curate")["status"] == "cached" and _task(again, "curate")["key"] == curate["key"]
    with Pipeline.from_yaml(demo).curation() as session:
        session.undo()  # the approval of the edited sample
    third = run_json(demo)
    assert _task(third, "curate")["status"] == "done" and _task(third, "curate")["key"] != curate["key"]
    assert [r["id"] for r in read_jsonl(Path(_task(third, "curate")["artifacts"]) / "samples.jsonl")] == [keep.id]

    demo.write_text(demo.read_text().replace("undecided: drop", "undecided: fail"))
    failed = mason("run", str(demo), "--no-progress")
    assert failed.returncode == 1 and "undecided" in failed.stderr and "Traceback" not in failed.stderr


def test_imported_seeds_rerun_generation_and_join_the_dataset(demo, tmp_path):
    demo.write_text(demo.read_text().replace("undecided: drop", "undecided: keep"))
    first = run_json(demo, "generate")
    seeds = tmp_path / "seeds_in.jsonl"
    seeds.write_text(json.dumps({"instruction": "Who do I call when the buoy stops reporting?",
                                 "output": "AquaSense support, with the buoy's serial number."}) + "\n")
    proc = mason("curate", str(demo), "--import-seeds", str(seeds))
    assert proc.returncode == 0 and "1 seed instruction(s) added" in proc.stderr + proc.stdout
    assert mason("curate", str(demo), "--import-seeds", str(seeds)).returncode == 0  # same seed: not twice
    assert len((demo.parent / "seeds.jsonl").read_text().splitlines()) == 1
    second = run_json(demo)
    assert _task(second, "generate")["key"] != _task(first, "generate")["key"]  # seeds changed: re-generated
    rows = read_jsonl(Path(_task(second, "curate")["artifacts"]) / "samples.jsonl")
    seed = [r for r in rows if r["meta"].get("seed")]
    assert len(seed) == 1 and seed[0]["meta"]["split"] == "train" and seed[0]["messages"][0]["content"].startswith("Who do I call")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_web_mode_serves_on_localhost_and_stops_cleanly(demo):
    pytest.importorskip("textual_serve")
    run_json(demo, "generate")
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "mason", "curate", str(demo), "--web", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        page = None
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://localhost:{port}/", timeout=2) as response:
                    page = (response.status, response.read().decode("utf-8", "replace"))
                    break
            except OSError:
                if proc.poll() is not None:
                    break
                time.sleep(0.2)
        assert page is not None, proc.stderr.read() if proc.poll() is not None else "no answer"
        assert page[0] == 200 and "MASON curation" in page[1]
    finally:
        proc.send_signal(2)  # Ctrl+C
        try:
            rc = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert rc == 0, proc.stderr.read()
