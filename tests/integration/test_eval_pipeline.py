"""generate → training → evaluation through `mason.api.Pipeline`, on the quickstart project and the tiny
model: the runner's context (inputs, cache folder) is what the stage expects, metrics reach the tracker,
and a second run is cached."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.helpers.demo import init_demo

pytestmark = pytest.mark.slow

EVALUATION = """
evaluation:
  metrics: [rougeL, bleu, chrf, exact_match, char_f1]
  max_samples: 8
  max_new_tokens: 24
  batch_size: 8
  guards:
    - {metric: rougeL, min: 0.0}
    - {metric: latency_p95, max: 600}
"""


def _project(tmp_path: Path, model: Path, evaluation: str, export: str = "") -> Path:
    """The quickstart project on the tiny model, with these evaluation (and export) sections."""
    pipeline = init_demo(tmp_path / "demo", training=True)
    text = pipeline.read_text().split("\n# Task `evaluation`", 1)[0]
    text = text.replace("base_model: smollm2-135m-instruct", f"base_model: {model}")
    text = "\n".join(line for line in text.splitlines() if not line.startswith("  max_steps:"))
    text = text.replace("\ntraining:\n", "\ntraining:\n  max_steps: 24\n", 1)
    pipeline.write_text(text + "\n" + evaluation + export)
    return pipeline


def test_a_failed_guard_exits_4_and_export_does_not_run(tmp_path, tiny_model_dir):
    import subprocess
    import sys

    guard = EVALUATION.replace("{metric: rougeL, min: 0.0}", "{metric: rougeL, min: 2.0}")
    pipeline = _project(tmp_path, tiny_model_dir, guard, "export:\n  format: merged\n")
    proc = subprocess.run([sys.executable, "-m", "mason", "run", str(pipeline), "--no-progress"],
                          capture_output=True, text=True)
    assert proc.returncode == 4, proc.stderr[-2000:]
    assert "rougeL" in proc.stderr and "evaluation.guards" in proc.stderr
    workspace = tmp_path / "demo" / ".mason"
    assert not (workspace / "artifacts" / "export").exists() and not (tmp_path / "demo" / "exports").exists()
    (folder,) = (workspace / "artifacts" / "evaluation").iterdir()
    assert (folder / "eval_report.html").is_file()  # the report is written before the guard fails
    assert json.loads((folder / "manifest.json").read_text())["status"] == "failed"
    with sqlite3.connect(workspace / "mason.db") as db:  # the failed run's metrics are tracked
        names = {r[0] for r in db.execute("SELECT name FROM metrics WHERE task = 'evaluation'")}
    assert "tuned.rougeL" in names


def test_generate_train_evaluate(tmp_path, tiny_model_dir):
    from mason.api import Pipeline

    pipeline = _project(tmp_path, tiny_model_dir, EVALUATION)

    summary = Pipeline.from_yaml(pipeline).run(show_progress=False)
    assert [t.name for t in summary.tasks] == ["ingest", "generate", "training", "evaluation"]
    evaluation = summary.outcome("evaluation")
    folder = Path(evaluation.out_dir)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["details"]["status"] == "pass"
    report = json.loads((folder / "eval_report.json").read_text())
    generate = json.loads((Path(summary.outcome("generate").out_dir) / "manifest.json").read_text())
    assert report["data"]["train_rows"] == generate["counts"]["train"]
    probes = generate["details"]["knowledge"]["probe_questions"]  # they picked the checkpoint: not scored
    assert probes > 0 and report["data"]["probe_questions_left_out"] == probes
    assert report["data"]["available"] == generate["counts"]["eval"] - probes
    assert report["data"]["evaluated"] == min(8, report["data"]["available"])
    assert report["data"]["split"] == generate["details"]["split"]
    assert report["data"]["with_source_passage"] == report["data"]["evaluated"]  # chunks found via generate
    assert report["models"]["tuned"]["model"]["format"] == "adapter"
    assert (folder / "eval_report.html").is_file()

    with sqlite3.connect(tmp_path / "demo" / ".mason" / "mason.db") as db:
        names = {r[0] for r in db.execute("SELECT name FROM metrics WHERE task = 'evaluation'")}
    assert {"tuned.rougeL", "base.rougeL", "delta.rougeL", "tuned.latency_p95", "tuned.perplexity"} <= names

    again = Pipeline.from_yaml(pipeline).run(show_progress=False)
    assert again.outcome("evaluation").status == "cached"


def test_knowledge_recipe_trains_every_document_and_scores_closed_and_open_book(tmp_path, tiny_model_dir):
    from mason.api import Pipeline

    pipeline = _project(tmp_path, tiny_model_dir, EVALUATION.replace("  max_samples: 8\n", "  max_samples: 12\n"))
    text = pipeline.read_text().replace("  eval_fraction: 0.2", "  eval_fraction: 0.0\n  knowledge: true")
    pipeline.write_text(text)

    summary = Pipeline.from_yaml(pipeline).run(show_progress=False)
    generate = json.loads((Path(summary.outcome("generate").out_dir) / "manifest.json").read_text())
    knowledge = generate["details"]["knowledge"]
    assert knowledge["facts"] > 10 and knowledge["documents"] == generate["details"]["split"]["train_documents"]
    samples = [json.loads(line) for line in (Path(summary.outcome("generate").out_dir) / "samples.jsonl").open()]
    evals = [s for s in samples if s["meta"]["split"] == "eval"]
    assert evals and all(s["meta"]["task"] == "knowledge" for s in evals)
    unknown = [s for s in evals if s["meta"]["question_type"] == "unknown"]
    assert unknown and all(s["meta"].get("answers") or s in unknown for s in evals)  # invented entities: decline
    probes = [s for s in evals if s["meta"].get("probe")]
    assert probes and all(s["meta"]["answers"] for s in probes)
    train_docs = {s["meta"]["source"]["doc"] for s in samples if s["meta"]["split"] == "train"}
    assert {s["meta"]["source"]["doc"] for s in evals} <= train_docs  # questions about trained documents
    assert any("text" in s["meta"]["view"] for s in samples if s["meta"]["task"] == "knowledge")

    report = json.loads((Path(summary.outcome("evaluation").out_dir) / "eval_report.json").read_text())
    for model in ("tuned", "base"):
        k = report["knowledge"][model]
        asked_unknown = (k["unknown"] or {}).get("n", 0)
        assert k["n"] + asked_unknown == report["data"]["evaluated"] == 12 and 0 <= k["correct"] <= k["n"]
        assert k["open_book"]["n"] == k["n"] and set(k["by_type"]) <= {"direct", "reversed"}
        assert sum(k["errors"].values()) == k["n"] - k["correct"]
    assert report["data"]["probe_questions_left_out"] == len(probes)
    assert report["findings"][0]["text"].startswith("Knowledge (closed-book")
    md = (Path(summary.outcome("evaluation").out_dir) / "eval_report.md").read_text()
    assert "## Knowledge of the documents" in md
    with sqlite3.connect(tmp_path / "demo" / ".mason" / "mason.db") as db:
        names = {r[0] for r in db.execute("SELECT name FROM metrics WHERE task = 'evaluation'")}
    assert {"tuned.knowledge", "base.knowledge", "tuned.knowledge_open_book", "delta.knowledge"} <= names
