"""The task table's contract with the runner: unavailable tasks are refused before any work."""

from __future__ import annotations

import dataclasses

import pytest

from mason.api import Pipeline
from mason.core.errors import TaskNotAvailableError
from mason.pipeline import tasks


def test_unavailable_task_is_refused_before_any_work(tmp_path, monkeypatch):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A\n\nThe tower is 80 metres tall.\n")
    monkeypatch.setitem(tasks.TASKS, "curate", dataclasses.replace(tasks.TASKS["curate"], package=None))
    p = Pipeline.from_dict({"knowledge_source": {"path": "docs"}, "synthetic_data": {"teacher": "extractive"},
                            "curation": {"enabled": True}}, base_dir=tmp_path)
    assert [t.state for t in p.plan() if t.name == "curate"] == ["unavailable"]
    with pytest.raises(TaskNotAvailableError, match="curate"):
        p.run(show_progress=False)
    assert not (tmp_path / ".mason").exists()
    # the implemented tasks still run when named
    assert [t.status for t in p.run(["ingest"], show_progress=False).tasks] == ["done"]


def test_enabled_false_is_the_same_as_no_section(tmp_path):
    (tmp_path / "docs").mkdir()
    config = {"knowledge_source": {"path": "docs"}, "synthetic_data": {"teacher": "extractive"}}
    off = Pipeline.from_dict({**config, "curation": {"enabled": False}}, base_dir=tmp_path)
    on = Pipeline.from_dict({**config, "curation": {"enabled": True}}, base_dir=tmp_path)
    assert [t.name for t in off.plan()] == ["ingest", "generate"]
    assert [t.name for t in on.plan()] == ["ingest", "generate", "curate"]


def test_a_review_in_the_run_is_taken_into_the_key_before_the_task_runs(tmp_path, monkeypatch):
    """`interactive: true`: the runner opens the UI (here a stand-in that approves one sample) before
    curate's key is taken, re-plans, and the curated set holds that decision; the next run is cached."""
    import json

    import mason.curate.app as app_module

    from mason.scaffold.corpus import write_sample_corpus

    write_sample_corpus(tmp_path / "docs")
    opened = []

    class FakeApp:
        def __init__(self, session, title=""):
            self.session = session

        def run(self):
            first = self.session.filter("pool:dataset")[0]
            self.session.approve(first.id)
            opened.append(first.id)

    monkeypatch.setattr(app_module, "CurationApp", FakeApp)
    p = Pipeline.from_dict({"knowledge_source": {"path": "docs"},
                            "synthetic_data": {"teacher": "extractive", "eval_fraction": 0.0},
                            "curation": {"interactive": True, "undecided": "drop"}}, base_dir=tmp_path)
    planned_key = next(t.key for t in p.plan() if t.name == "curate")
    summary = p.run(show_progress=False)
    curate = summary.outcome("curate")
    assert opened and curate.key != planned_key  # re-planned after the review
    rows = [json.loads(line) for line in (curate.out_dir / "samples.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == opened and rows[0]["meta"]["curation"]["decision"] == "approved"
    again = Pipeline.from_dict(p.config.model_dump(), base_dir=tmp_path)
    again.config.curation.interactive = False
    assert again.run(show_progress=False).outcome("curate").status == "cached"
