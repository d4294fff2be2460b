"""The SQLite run tracker: schema migrations, WAL, run lifecycle, reads, redaction."""

from __future__ import annotations

import json
import math
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mason.core.errors import InputError, MasonError
from mason.core.redact import is_secret_key, redact, redact_text
from mason.pipeline import tracker as tracker_mod
from mason.pipeline import tracker_schema as schema_mod
from mason.pipeline.tracker import Tracker, flatten_params, schema_version

REPO = Path(__file__).resolve().parents[2]
SECRET = "sk-proj-0123456789abcdefghijklmnopqrstuv"
HF_SECRET = "hf_abcdefghijklmnopqrstuvwxyz0123456789"
TABLES = {"runs", "params", "task_executions", "metrics", "artifacts", "lineage"}


def config(lr: float = 1e-4, **extra) -> dict:
    return {
        "ingest": {"path": "docs/", "chunk_size": 800},
        "train": {"lr": lr, "epochs": 3, "stages": [{"kind": "sft"}, {"kind": "dpo"}]},
        **extra,
    }


def start(t: Tracker, **kwargs) -> str:
    kwargs.setdefault("config", config())
    return t.start_run(pipeline_path="pipeline.yaml", mason_version="0.1.0", **kwargs)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "ws" / "mason.db"


@pytest.fixture
def tracker(db: Path):
    with Tracker(db) as t:
        yield t


def raw(db: Path) -> sqlite3.Connection:
    """A second, independent connection (as another process would have)."""
    return sqlite3.connect(db, timeout=5)


# --------------------------------------------------------------------------- schema


def test_new_database_is_migrated_to_the_current_version(tracker: Tracker, db: Path):
    conn = raw(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == schema_version() >= 1
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert TABLES <= names


def test_reopening_is_idempotent(db: Path, monkeypatch):
    with Tracker(db) as t:
        run_id = start(t)
    calls = []
    monkeypatch.setattr(
        schema_mod, "MIGRATIONS", [lambda c: calls.append(c)] * len(schema_mod.MIGRATIONS)
    )
    for _ in range(2):
        with Tracker(db) as t:
            assert t.get_run(run_id)["params"]["train.lr"] == 1e-4
    assert calls == []  # an up-to-date database runs no migration
    assert raw(db).execute("PRAGMA user_version").fetchone()[0] == schema_version()


def test_a_later_migration_is_applied_once_and_keeps_data(db: Path, monkeypatch):
    with Tracker(db) as t:
        run_id = start(t)
    base = schema_version()
    applied = []

    def v2(conn: sqlite3.Connection) -> None:
        applied.append(True)
        conn.execute("ALTER TABLE runs ADD COLUMN note TEXT")

    monkeypatch.setattr(schema_mod, "MIGRATIONS", [*schema_mod.MIGRATIONS, v2])
    for _ in range(2):
        with Tracker(db) as t:
            assert t.resolve_run(run_id) == run_id
    assert applied == [True]
    conn = raw(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == base + 1
    assert "note" in {r[1] for r in conn.execute("PRAGMA table_info(runs)")}


def test_a_failing_migration_leaves_the_database_untouched(db: Path, monkeypatch):
    Tracker(db).close()
    base = schema_version()

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("migration bug")

    monkeypatch.setattr(schema_mod, "MIGRATIONS", [*schema_mod.MIGRATIONS, broken])
    with pytest.raises(RuntimeError, match="migration bug"):
        Tracker(db)
    conn = raw(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == base
    assert not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'half_done'").fetchone()


def test_a_newer_schema_is_refused(db: Path):
    Tracker(db).close()
    conn = raw(db)
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()
    for readonly in (False, True):
        with pytest.raises(MasonError, match="newer MASON"):
            Tracker(db, readonly=readonly)


def test_wal_mode_foreign_keys_and_busy_timeout(tracker: Tracker, db: Path):
    assert raw(db).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert tracker._conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert tracker._conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000
    with pytest.raises(MasonError, match="no run 'nope'"):
        tracker.start_task("nope", "ingest", "k", None)


# --------------------------------------------------------------------------- lifecycle


def test_run_lifecycle(tracker: Tracker, tmp_path: Path):
    run_id = start(tracker, name="baseline")
    assert tracker.get_run(run_id)["status"] == "running"
    ingest = tracker.start_task(run_id, "ingest", "key-ingest", tmp_path / "a" / "ingest")
    tracker.end_task(ingest, "done", counts={"documents": 3, "chunks": 41})
    tracker.add_artifact(run_id, "ingest", "key-ingest", tmp_path / "a" / "chunks.jsonl", "jsonl")
    train = tracker.start_task(run_id, "train", "key-train", None)
    tracker.add_lineage("key-train", "key-ingest")
    tracker.add_lineage("key-train", "key-ingest")  # recorded once
    for step, loss in enumerate([2.0, 1.5, 1.2], start=1):
        tracker.log_metrics(run_id, "train", {"loss": loss, "lr": 1e-4}, step=step)
    tracker.log_metric(run_id, "evaluate", "nan_metric", float("nan"))
    tracker.end_task(train, "failed", error="CUDA out of memory")
    late = tracker.start_task(run_id, "export", "key-export", None)  # never ended
    tracker.end_run(run_id, "interrupted", error="KeyboardInterrupt")

    run = tracker.get_run(run_id)
    assert (run["id"], run["name"], run["status"]) == (run_id, "baseline", "interrupted")
    assert run["error"] == "KeyboardInterrupt" and run["duration_s"] >= 0
    assert run["params"]["train.stages.1.kind"] == "dpo"
    assert run["config"] == config()
    tasks = {t["task"]: t for t in run["tasks"]}
    assert [t["task"] for t in run["tasks"]] == ["ingest", "train", "export"]
    assert tasks["ingest"]["counts"] == {"documents": 3, "chunks": 41}
    assert tasks["ingest"]["artifact_dir"] == str(tmp_path / "a" / "ingest")
    assert tasks["train"]["status"] == "failed" and "out of memory" in tasks["train"]["error"]
    # a task still running when the run ends did not finish
    assert tasks["export"]["id"] == late and tasks["export"]["status"] == "failed"
    assert "interrupted" in tasks["export"]["error"]
    finals = {(m["task"], m["name"]): m for m in run["metrics"]}
    assert finals[("train", "loss")]["value"] == 1.2 and finals[("train", "loss")]["step"] == 3
    assert math.isnan(finals[("evaluate", "nan_metric")]["value"])
    assert [a["path"] for a in run["artifacts"]] == [str(tmp_path / "a" / "chunks.jsonl")]
    assert run["lineage"] == [{"child_key": "key-train", "parent_key": "key-ingest"}]
    history = tracker.metric_history(run_id, "train", "loss")
    assert [(h["step"], h["value"]) for h in history] == [(1, 2.0), (2, 1.5), (3, 1.2)]
    listed = tracker.list_runs()
    assert listed[0]["id"] == run_id and listed[0]["tasks"] == {"done": 1, "failed": 2}


def test_bad_statuses_and_values_are_rejected(tracker: Tracker):
    run_id = start(tracker)
    exec_id = tracker.start_task(run_id, "ingest", "k", None)
    with pytest.raises(ValueError, match="status"):
        tracker.end_task(exec_id, "finished")
    with pytest.raises(ValueError, match="status"):
        tracker.end_run(run_id, "running")
    with pytest.raises(InputError, match="not a number"):
        tracker.log_metric(run_id, "train", "loss", "low")
    with pytest.raises(MasonError, match="no run"):
        tracker.end_run("missing", "success")
    with pytest.raises(MasonError, match="no task execution"):
        tracker.end_task(12345, "done")


def test_metrics_are_visible_to_another_process_while_the_run_is_open(tracker: Tracker, db):
    run_id = start(tracker)
    tracker.start_task(run_id, "train", "k", None)
    tracker.log_metric(run_id, "train", "loss", 0.75, step=10)
    # another connection in this process...
    assert raw(db).execute("SELECT value FROM metrics").fetchall() == [(0.75,)]
    # ...and a reader in another process, as `mason runs show` would be
    code = (
        "import json, sys; from mason.pipeline.tracker import Tracker;"
        "t = Tracker(sys.argv[1], readonly=True);"
        "print(json.dumps(t.get_run('latest')['metrics']))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(db)],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=True,
    )
    metrics = json.loads(out.stdout)
    assert [(m["name"], m["value"], m["step"]) for m in metrics] == [("loss", 0.75, 10)]
    assert tracker.get_run(run_id)["status"] == "running"


def test_threads_share_one_tracker(tracker: Tracker):
    run_id = start(tracker)

    def log(worker: int) -> None:
        for step in range(50):
            tracker.log_metric(run_id, f"w{worker}", "x", step, step=step)

    threads = [threading.Thread(target=log, args=(i,)) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    count = tracker._conn.execute("SELECT COUNT(*) FROM metrics").fetchone()[0]
    assert count == 400
    assert len(tracker.get_run(run_id)["metrics"]) == 8


# --------------------------------------------------------------------------- reads


def test_resolve_run(tracker: Tracker):
    first, second, third = (start(tracker, name=f"run{i}") for i in range(3))
    assert tracker.resolve_run("latest") == tracker.resolve_run("-1") == third
    assert tracker.resolve_run("-2") == second and tracker.resolve_run("-3") == first
    assert tracker.resolve_run(first) == first
    assert tracker.resolve_run("run1") == second  # by name
    # the shortest prefix that tells `first` apart from the others
    common = max(len(os.path.commonprefix([first, other])) for other in (second, third))
    assert tracker.resolve_run(first[: common + 1]) == first

    shared = os.path.commonprefix([first, second, third])
    assert shared  # all ids start with the same date
    with pytest.raises(MasonError, match="matches several runs") as err:
        tracker.resolve_run(shared)
    assert all(run_id in str(err.value) for run_id in (first, second, third))
    with pytest.raises(MasonError, match="no run matches 'nope'") as err:
        tracker.resolve_run("nope")
    assert third in str(err.value)  # recent runs are listed as candidates
    with pytest.raises(MasonError, match="has 3 runs"):
        tracker.resolve_run("-4")
    for bad in ("", "-0"):
        with pytest.raises(MasonError):
            tracker.resolve_run(bad)


def test_list_runs_newest_first_with_limit(tracker: Tracker):
    ids = [start(tracker) for _ in range(4)]
    assert [r["id"] for r in tracker.list_runs()] == ids[::-1]
    assert [r["id"] for r in tracker.list_runs(limit=2)] == ids[:1:-1]
    assert len(ids) == len(set(ids))  # same-second runs still get distinct ids


def test_run_ids_are_redrawn_on_collision(tracker: Tracker, monkeypatch):
    ids = iter(["20261122-031500-aaaa", "20261122-031500-aaaa", "20261122-031500-bbbb"])
    monkeypatch.setattr(tracker_mod, "new_run_id", lambda: next(ids))
    assert [start(tracker), start(tracker)] == ["20261122-031500-aaaa", "20261122-031500-bbbb"]


def test_compare(tracker: Tracker):
    a = start(tracker, config=config(lr=1e-4))
    b = start(tracker, config=config(lr=3e-4, seed=7))
    tracker.log_metrics(a, "evaluate", {"accuracy": 0.8, "f1": 0.5})
    tracker.log_metrics(b, "evaluate", {"accuracy": 0.9, "f1": 0.5, "bleu": 12.0})
    result = tracker.compare([b, a])
    assert [r["id"] for r in result["runs"]] == [b, a]
    params = {p["key"]: p for p in result["params"]}
    assert params["train.lr"] == {"key": "train.lr", "values": [3e-4, 1e-4], "differs": True}
    assert params["train.epochs"]["differs"] is False
    assert params["seed"]["values"] == [7, None] and params["seed"]["differs"] is True
    metrics = {(m["task"], m["name"]): m for m in result["metrics"]}
    assert metrics[("evaluate", "accuracy")]["differs"] is True
    assert metrics[("evaluate", "f1")] == {
        "task": "evaluate", "name": "f1", "values": [0.5, 0.5], "differs": False
    }
    assert metrics[("evaluate", "bleu")]["values"] == [12.0, None]
    with pytest.raises(MasonError, match="at least two"):
        tracker.compare([a])


def test_flatten_params():
    flat = flatten_params({"a": {"b": 1, "c": [1, {"d": None}], "e": {}, "f": []}, "g": "x"})
    assert flat == {"a.b": 1, "a.c.0": 1, "a.c.1.d": None, "a.e": {}, "a.f": [], "g": "x"}


# --------------------------------------------------------------------------- redaction


def test_redact_replaces_secret_keys_at_any_depth():
    cfg = {
        "teacher": {"API_KEY": "abc", "apiKey": "abc", "base_url": "http://x", "model": "m"},
        "hub": {"hf_token": "t", "max_tokens": 512, "tokenizer": "bpe", "pad_token": "<pad>"},
        "judges": [{"client_secret": "s", "password": 1234, "Authorization": "Basic x"}],
        "unset": {"api_key": None, "token": ""},
        "note": f"key is {SECRET} ok",
    }
    out = redact(cfg)
    assert out["teacher"] == {"API_KEY": "***", "apiKey": "***", "base_url": "http://x",
                              "model": "m"}
    assert out["hub"] == {"hf_token": "***", "max_tokens": 512, "tokenizer": "bpe",
                          "pad_token": "<pad>"}
    assert out["judges"] == [{"client_secret": "***", "password": "***", "Authorization": "***"}]
    assert out["unset"] == {"api_key": None, "token": ""}
    assert out["note"] == "key is *** ok"
    assert cfg["teacher"]["API_KEY"] == "abc"  # the input is not modified
    assert is_secret_key("OPENAI-API-KEY") and is_secret_key("accessToken")
    assert not is_secret_key("pad_token_id") and not is_secret_key("max_new_tokens")
    assert redact_text(f"401 from server: Authorization: Bearer {HF_SECRET}") == (
        "401 from server: Authorization: ***"
    )


def test_the_tracker_never_stores_secrets(db: Path):
    cfg = config(
        teacher={"api_key": SECRET, "headers": {"Authorization": f"Bearer {SECRET}"}},
        hub=[{"token": HF_SECRET}],
        pasted_by_mistake=SECRET,
    )
    with Tracker(db) as t:
        run_id = start(t, config=cfg)
        exec_id = t.start_task(run_id, "generate", "k", None)
        t.end_task(exec_id, "failed", error=f"request with key {SECRET} was refused")
        t.end_run(run_id, "failed", error=f"teacher refused {HF_SECRET}")
        run = t.get_run(run_id)
    assert run["params"]["teacher.api_key"] == "***"
    assert run["params"]["hub.0.token"] == "***"
    assert run["params"]["train.lr"] == 1e-4  # the rest is kept
    dump = "\n".join(raw(db).iterdump())
    assert "refused" in dump and "teacher.api_key" in dump
    for secret in (SECRET, HF_SECRET, SECRET[10:30], HF_SECRET[10:30]):
        assert secret not in dump
    files = [p for p in db.parent.iterdir() if p.name.startswith("mason.db")]
    assert all(SECRET.encode() not in p.read_bytes() for p in files)


# --------------------------------------------------------------------------- read-only


def test_readonly_never_creates_a_database(tmp_path: Path):
    workspace = tmp_path / "ws"
    with pytest.raises(MasonError, match="no runs yet in") as err:
        Tracker(workspace / "mason.db", readonly=True)
    assert "mason run pipeline.yaml" in str(err.value)
    assert not workspace.exists()
    workspace.mkdir()
    with pytest.raises(MasonError, match="no runs yet"):
        Tracker(workspace / "mason.db", readonly=True)
    assert list(workspace.iterdir()) == []
    (workspace / "mason.db").write_bytes(b"")  # an empty file is an empty database
    with pytest.raises(MasonError, match="no runs yet"):
        Tracker(workspace / "mason.db", readonly=True)
    (workspace / "mason.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(MasonError, match="not a usable MASON tracker"):
        Tracker(workspace / "mason.db", readonly=True)


def test_readonly_reads_but_refuses_writes(db: Path):
    with Tracker(db) as t:
        run_id = start(t)
        t.log_metric(run_id, "train", "loss", 1.0)
    before = "\n".join(raw(db).iterdump())
    with Tracker(db, readonly=True) as ro:
        assert ro.get_run("latest")["id"] == run_id
        with pytest.raises(MasonError, match="read-only"):
            ro.log_metric(run_id, "train", "loss", 2.0)
        with pytest.raises(MasonError, match="read-only"):
            start(ro)
        # even past the Python guard, SQLite itself refuses
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            ro._conn.execute("DELETE FROM runs")
    assert "\n".join(raw(db).iterdump()) == before


@pytest.mark.skipif(shutil.which("sqlite3") is None, reason="sqlite3 CLI not installed")
def test_the_database_opens_with_the_sqlite3_cli(db: Path):
    with Tracker(db) as t:
        run_id = start(t, name="cli-check")
        t.log_metric(run_id, "train", "loss", 0.5)
        t.end_run(run_id, "success")
    out = subprocess.run(
        ["sqlite3", str(db), "PRAGMA integrity_check; PRAGMA journal_mode;"
         " SELECT id || '|' || status FROM runs; SELECT value FROM metrics;"],
        capture_output=True, text=True, timeout=30, check=True,
    )
    assert out.stdout.split() == ["ok", "wal", f"{run_id}|success", "0.5"]


def test_end_stale_runs_marks_dead_runs_interrupted(tracker: Tracker):
    dead = start(tracker)
    exec_id = tracker.start_task(dead, "ingest", "k1", "/tmp/x")
    finished = start(tracker)
    tracker.end_run(finished, "success")
    assert tracker.end_stale_runs() == [dead]
    run = tracker.get_run(dead)
    assert run["status"] == "interrupted"
    assert [t["status"] for t in run["tasks"]] == ["failed"]
    assert tracker.get_run(finished)["status"] == "success"
    assert tracker.end_stale_runs() == []
    assert exec_id > 0
