"""`mason report`: finds a run's reports through the tracker (task folders and curriculum stages)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from mason.cli import app
from mason.pipeline.tracker import Tracker


def _workspace(tmp_path: Path) -> Path:
    ws = tmp_path / ".mason"
    train, evald = ws / "artifacts/training/k1", ws / "artifacts/evaluation/k2"
    for folder in (train / "stages/facts", evald):
        folder.mkdir(parents=True)
    (train / "stages/facts/train_report.md").write_text("# Train report\n\nloss went **down**\n")
    (train / "stages/facts/train_report.json").write_text(json.dumps({"loss": 1.0}))
    (evald / "eval_report.md").write_text("# Evaluation\n\n| metric | tuned |\n|---|---|\n| rougeL | 0.42 |\n")
    (evald / "eval_report.json").write_text(json.dumps({"tuned": {"rougeL": 0.42}}))
    (evald / "eval_report.html").write_text("<html></html>")
    with Tracker(ws / "mason.db") as t:
        run = t.start_run(pipeline_path="p.yaml", config={}, name="demo", mason_version="0")
        for task, folder in (("training", train), ("evaluation", evald)):
            t.end_task(t.start_task(run, task, folder.name, folder), "done", {})
        t.end_run(run, "success")
    return ws


def test_report_prints_every_report_of_the_latest_run(tmp_path):
    ws = _workspace(tmp_path)
    result = CliRunner().invoke(app, ["report", "-w", str(ws)])
    assert result.exit_code == 0, result.output
    assert "train_report (facts)" in result.output and "loss went down" in result.output
    assert "rougeL" in result.output and "eval_report.html" in result.output


def test_report_json_and_task_filter(tmp_path):
    ws = _workspace(tmp_path)
    result = CliRunner().invoke(app, ["report", "latest", "-w", str(ws), "--task", "evaluation", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"eval_report": {"tuned": {"rougeL": 0.42}}}
    paths = CliRunner().invoke(app, ["report", "-w", str(ws), "--paths"]).output.split()
    assert paths[0].endswith("train_report.md") and any(p.endswith("eval_report.html") for p in paths)


def test_report_without_reports_is_one_clear_error(tmp_path):
    ws = _workspace(tmp_path)
    result = CliRunner().invoke(app, ["report", "-w", str(ws), "--task", "export"])
    assert result.exit_code == 1 and "has no reports for task export" in result.output
