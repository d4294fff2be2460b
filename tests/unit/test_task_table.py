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
