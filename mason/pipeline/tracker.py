"""The run tracker: one SQLite database per workspace (`<workspace>/mason.db`), stdlib only.

It records runs, their flattened params, task executions, metrics, artifacts and the lineage
between artifact keys. Design choices:

- WAL mode, so `mason runs show` (another process) reads while `mason run` writes, and every
  write is committed at once: metrics are visible live.
- One connection per `Tracker`, shared by threads under a lock (sqlite3 objects are not safe
  to use from two threads at once).
- The schema version lives in `PRAGMA user_version`; `MIGRATIONS[i]` takes a database from
  version i to i + 1. A later MASON appends functions, never edits shipped ones.
- Configs are redacted (`mason.core.redact`) before they are stored, even though callers are
  expected to have done it already: a leaked API key in a shared workspace cannot be undone.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from mason.core.errors import InputError, MasonError
from mason.core.redact import redact, redact_text
from mason.pipeline.tracker_schema import (
    _connect,
    _migrate,
    _newer_schema_error,
    flatten_params,
    new_run_id,
    schema_version,
    utc_now,
)

DB_NAME = "mason.db"
RUN_STATUSES = ("running", "success", "failed", "interrupted")
TASK_STATUSES = ("running", "done", "partial", "cached", "failed")
# rowid breaks ties between runs started in the same microsecond: insertion order.
_RECENT_FIRST = "ORDER BY started_at DESC, rowid DESC"
_RUN_REF_HINT = "name a run by its id, a unique id prefix, its name, `latest`, or -1, -2, ..."


# --------------------------------------------------------------------------- helpers


def duration_s(started_at: str | None, ended_at: str | None) -> float | None:
    """Seconds between two ISO timestamps, or None when either is missing."""
    if not started_at or not ended_at:
        return None
    delta = datetime.fromisoformat(ended_at) - datetime.fromisoformat(started_at)
    return round(delta.total_seconds(), 3)


def _json(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=str)


def _to_float(task: str, name: str, value: Any) -> float | None:
    """A metric value as a float for SQLite; None stands for NaN."""
    try:
        number = float(value)  # also takes numpy scalars and 0-d tensors
    except (TypeError, ValueError):
        raise InputError(
            f"metric {name!r} of task {task!r} is not a number: {value!r}",
            hint="log numbers only; put text results in an artifact",
        ) from None
    return None if math.isnan(number) else number


def _check_status(status: str, allowed: tuple[str, ...], what: str) -> None:
    if status not in allowed:
        raise ValueError(f"{what} status must be one of {', '.join(allowed)}; got {status!r}")


def _no_runs_error(db_path: Path) -> MasonError:
    return MasonError(
        f"no runs yet in {db_path.parent}", hint="run `mason run pipeline.yaml` first"
    )


_SUMMARY_FIELDS = ("id", "name", "pipeline_path", "status", "started_at", "ended_at",
                   "mason_version", "error")


def _run_summary(row: sqlite3.Row) -> dict[str, Any]:
    summary = {field: row[field] for field in _SUMMARY_FIELDS}
    summary["duration_s"] = duration_s(row["started_at"], row["ended_at"])
    return summary


def _metric_value(value: float | None) -> float:
    return math.nan if value is None else value


def _same(values: list[Any]) -> bool:
    # Compare canonical JSON: NaN equals NaN, and True, 1 and "1" stay distinct.
    return len({json.dumps(v, sort_keys=True, default=str) for v in values}) <= 1


_MISSING = object()

# The parts of `get_run`, one query each on the run id.
_RUN_PART_QUERIES = {
    "params": "SELECT key, value FROM params WHERE run_id = ? ORDER BY key",
    "tasks": "SELECT * FROM task_executions WHERE run_id = ? ORDER BY id",
    # The final value is the last one logged (highest id), whatever its step.
    "metrics": "SELECT task, name, value, step, time FROM metrics WHERE id IN"
    " (SELECT MAX(id) FROM metrics WHERE run_id = ? GROUP BY task, name) ORDER BY task, name",
    "artifacts": "SELECT id, task, key, path, kind, created_at FROM artifacts"
    " WHERE run_id = ? ORDER BY id",
    "lineage": "SELECT child_key, parent_key FROM lineage WHERE child_key IN"
    " (SELECT key FROM task_executions WHERE run_id = ?) ORDER BY child_key, parent_key",
}


# --------------------------------------------------------------------------- tracker


class Tracker:
    """Read and write the runs of one workspace.

    Args:
        db_path: the database file, normally `<workspace>/mason.db`.
        readonly: open with SQLite's read-only mode; never creates the database or its folder
            (SQLite may add its `-wal`/`-shm` companions beside an existing database: a WAL
            reader needs them).

    Raises:
        MasonError: readonly and no database yet ("no runs yet in ..."); the file is not a
            MASON tracker database; its schema is newer than this MASON (or, readonly, older).

    Safe to share between threads. Use as a context manager or call `close()`.
    """

    def __init__(self, db_path: str | Path, *, readonly: bool = False):
        self.db_path = Path(db_path)
        self.readonly = readonly
        self._lock = threading.RLock()
        self._closed = False
        self._conn = self._open_readonly() if readonly else self._open_writable()

    # ------------------------------------------------------------------ opening

    def _open_writable(self) -> sqlite3.Connection:
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        conn: sqlite3.Connection | None = None
        try:
            conn = _connect(str(self.db_path), uri=False)
            # WAL is persistent in the file; readers in other processes then never block us.
            conn.execute("PRAGMA journal_mode = WAL")
            _migrate(conn, self.db_path)
        except BaseException as e:
            if conn is not None:
                conn.close()
            if isinstance(e, sqlite3.DatabaseError):  # not SQLite, or a folder, or unreadable
                raise self._unusable(e) from None
            raise
        return conn

    def _open_readonly(self) -> sqlite3.Connection:
        if not self.db_path.is_file():
            raise _no_runs_error(self.db_path)
        try:
            # mode=ro: SQLite refuses to create or write the file, whatever the caller does next.
            conn = _connect(self.db_path.resolve().as_uri() + "?mode=ro", uri=True)
        except sqlite3.DatabaseError as e:
            raise self._unusable(e) from None
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as e:
            conn.close()
            raise self._unusable(e) from None
        if version != schema_version():
            conn.close()
            if version == 0:
                raise _no_runs_error(self.db_path)
            if version > schema_version():
                raise _newer_schema_error(self.db_path, version)
            raise MasonError(
                f"{self.db_path} has tracker schema version {version}; this MASON reads "
                f"version {schema_version()}",
                hint="any `mason run` in this workspace upgrades it",
            )
        return conn

    def _unusable(self, error: Exception) -> MasonError:
        return MasonError(
            f"{self.db_path} is not a usable MASON tracker database ({error})",
            hint="move the file away; MASON creates a new one on the next `mason run`",
        )

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ transactions

    @contextmanager
    def _write(self, run_id: str | None = None) -> Iterator[sqlite3.Connection]:
        """One write transaction, committed on exit (so other processes see it at once)."""
        if self.readonly:
            raise MasonError(f"the tracker at {self.db_path} was opened read-only")
        with self._lock:
            # IMMEDIATE takes the write lock up front: no deadlock upgrading a read lock later.
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except sqlite3.IntegrityError as e:
                self._rollback()
                if run_id is not None and "FOREIGN KEY" in str(e):
                    raise MasonError(f"no run {run_id!r} in {self.db_path}") from None
                raise
            except BaseException:
                self._rollback()
                raise

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: several SELECTs see one consistent state under a live writer."""
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                yield self._conn
            finally:
                self._rollback()

    # ------------------------------------------------------------------ runs

    def start_run(self, *, pipeline_path: str, config: Mapping[str, Any],
                  name: str | None = None, mason_version: str) -> str:
        """Record a new run with status `running`; its config is redacted and flattened to params.

        Returns:
            the new run id (`YYYYMMDD-HHMMSS-xxxx`, UTC, sortable).
        Raises:
            MasonError: the tracker is read-only.
        """
        if hasattr(config, "model_dump"):  # a pydantic config object
            config = config.model_dump(mode="json")
        safe = redact(dict(config))
        params = flatten_params(safe)
        with self._write() as conn:
            run_id = new_run_id()
            # Two runs started in the same second share the timestamp part; redraw the suffix.
            while conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone():
                run_id = new_run_id()
            conn.execute(
                "INSERT INTO runs (id, name, pipeline_path, status, started_at, mason_version,"
                " config_json) VALUES (?, ?, ?, 'running', ?, ?, ?)",
                (run_id, name, str(pipeline_path), utc_now(), mason_version, _json(safe)),
            )
            conn.executemany(
                "INSERT INTO params (run_id, key, value) VALUES (?, ?, ?)",
                [(run_id, key, _json(value)) for key, value in params.items()],
            )
        return run_id

    def end_run(self, run_id: str, status: str, error: str | None = None) -> None:
        """Mark a run finished with `status` (success, failed or interrupted).

        Task executions still `running` are marked `failed`: they never finished.

        Raises:
            ValueError: an unknown status.
            MasonError: no such run.
        """
        _check_status(status, RUN_STATUSES[1:], "run")
        now = utc_now()
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE runs SET status = ?, ended_at = ?, error = ? WHERE id = ?",
                (status, now, None if error is None else redact_text(error), run_id),
            )
            if cur.rowcount == 0:
                raise MasonError(f"no run {run_id!r} in {self.db_path}")
            conn.execute(
                "UPDATE task_executions SET status = 'failed', ended_at = ?,"
                " error = COALESCE(error, ?) WHERE run_id = ? AND status = 'running'",
                (now, f"run ended ({status}) before the task finished", run_id),
            )

    def end_stale_runs(self) -> list[str]:
        """Mark every run still `running` as `interrupted`; returns their ids.

        Call it only while holding the workspace lock: then no other process can be running,
        so a `running` run is one whose process died (kill -9, power loss).
        """
        with self._snapshot() as conn:
            stale = [r["id"] for r in conn.execute("SELECT id FROM runs WHERE status = 'running'")]
        for run_id in stale:
            self.end_run(run_id, "interrupted", "the process ended without finishing the run")
        return stale

    # ------------------------------------------------------------------ tasks

    def start_task(self, run_id: str, task: str, key: str, artifact_dir: str | Path | None) -> int:
        """Record that `task` (artifact key `key`) starts in run `run_id`.

        Returns:
            the task execution id, for `end_task`.
        Raises:
            MasonError: no such run, or the tracker is read-only.
        """
        with self._write(run_id) as conn:
            cur = conn.execute(
                "INSERT INTO task_executions (run_id, task, key, status, started_at, artifact_dir)"
                " VALUES (?, ?, ?, 'running', ?, ?)",
                (run_id, task, key, utc_now(), None if artifact_dir is None else str(artifact_dir)),
            )
            return int(cur.lastrowid)

    def end_task(self, exec_id: int, status: str, counts: Mapping[str, Any] | None = None,
                 error: str | None = None) -> None:
        """Mark a task execution finished: `done`, `cached` or `failed`, with its counts.

        Raises:
            ValueError: an unknown status.
            MasonError: no such task execution.
        """
        _check_status(status, TASK_STATUSES[1:], "task")
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE task_executions SET status = ?, ended_at = ?, counts_json = ?, error = ?"
                " WHERE id = ?",
                (status, utc_now(), None if counts is None else _json(dict(counts)),
                 None if error is None else redact_text(error), exec_id),
            )
            if cur.rowcount == 0:
                raise MasonError(f"no task execution {exec_id} in {self.db_path}")

    # ------------------------------------------------------------------ metrics, artifacts

    def log_metric(
        self, run_id: str, task: str, name: str, value: float, step: int | None = None
    ) -> None:
        """Record one metric value (committed at once: `mason runs show` sees it live).

        Raises:
            InputError: `value` is not a number.
            MasonError: no such run.
        """
        self.log_metrics(run_id, task, {name: value}, step=step)

    def log_metrics(
        self, run_id: str, task: str, metrics: Mapping[str, float], step: int | None = None
    ) -> None:
        """Record several metric values at the same step and time, in one transaction.

        NaN is stored as NULL and read back as NaN.

        Raises:
            InputError: a value is not a number.
            MasonError: no such run.
        """
        now = time.time()
        rows = [
            (run_id, task, step, name, _to_float(task, name, value), now)
            for name, value in metrics.items()
        ]
        if not rows:
            return
        with self._write(run_id) as conn:
            conn.executemany("INSERT INTO metrics (run_id, task, step, name, value, time)"
                             " VALUES (?, ?, ?, ?, ?, ?)", rows)

    def add_artifact(self, run_id: str, task: str, key: str, path: str | Path, kind: str) -> int:
        """Record an artifact (a file or folder) that `task` produced.

        Returns:
            the artifact id.
        Raises:
            MasonError: no such run.
        """
        with self._write(run_id) as conn:
            cur = conn.execute(
                "INSERT INTO artifacts (run_id, task, key, path, kind, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, task, key, str(path), kind, utc_now()),
            )
            return int(cur.lastrowid)

    def add_lineage(self, child_key: str, parent_key: str) -> None:
        """Record that artifact `child_key` was made from `parent_key` (recorded once)."""
        self.add_lineages([(child_key, parent_key)])

    def add_lineages(self, pairs: list[tuple[str, str]]) -> None:
        """`add_lineage` for many (child, parent) pairs in one transaction (per-sample lineage)."""
        with self._write() as conn:
            conn.executemany("INSERT OR IGNORE INTO lineage (child_key, parent_key) VALUES (?, ?)", pairs)

    # ------------------------------------------------------------------ reads

    def list_runs(self, limit: int | None = 20) -> list[dict[str, Any]]:
        """The most recent runs first, each with a `tasks` count per status.

        Args:
            limit: at most this many runs; None or <= 0 for all.
        """
        limit = limit if limit and limit > 0 else -1  # SQLite: LIMIT -1 is no limit
        with self._snapshot() as conn:
            rows = conn.execute(f"SELECT * FROM runs {_RECENT_FIRST} LIMIT ?", (limit,))
            runs = [{**_run_summary(row), "tasks": {}} for row in rows]
            by_id = {run["id"]: run for run in runs}
            for run_id, status, n in conn.execute(
                "SELECT run_id, status, COUNT(*) FROM task_executions WHERE run_id IN"
                f" (SELECT id FROM runs {_RECENT_FIRST} LIMIT ?) GROUP BY run_id, status",
                (limit,),
            ):
                by_id[run_id]["tasks"][status] = n
        return runs

    def resolve_run(self, ref: str) -> str:
        """The full id of the run `ref` names.

        `ref` is a full id, a unique id prefix, a run name, `latest`, or `-N` (-1 the most
        recent run, -2 the one before...).

        Raises:
            MasonError: no run matches, or several do (the message lists them).
        """
        ref = ref.strip()
        if not ref:
            raise MasonError("empty run reference", hint=_RUN_REF_HINT)
        with self._snapshot() as conn:
            if ref == "latest" or re.fullmatch(r"-\d+", ref):
                return self._resolve_relative(conn, 1 if ref == "latest" else int(ref[1:]), ref)
            if conn.execute("SELECT 1 FROM runs WHERE id = ?", (ref,)).fetchone():
                return ref
            # 11 rows: enough to list 10 candidates and say there are more.
            by_prefix = conn.execute(
                f"SELECT * FROM runs WHERE substr(id, 1, ?) = ? {_RECENT_FIRST} LIMIT 11",
                (len(ref), ref),
            ).fetchall()
            rows = by_prefix or conn.execute(
                f"SELECT * FROM runs WHERE name = ? {_RECENT_FIRST} LIMIT 11", (ref,)
            ).fetchall()
            if len(rows) == 1:
                return rows[0]["id"]
            if rows:
                raise MasonError(
                    f"{ref!r} matches several runs:\n{_format_candidates(rows)}",
                    hint="use more characters of the id (names can repeat: use the id)",
                )
            recent = conn.execute(f"SELECT * FROM runs {_RECENT_FIRST} LIMIT 5").fetchall()
        listing = f"; recent runs:\n{_format_candidates(recent)}" if recent else ""
        raise MasonError(
            f"no run matches {ref!r} in {self.db_path.parent}{listing}", hint=_RUN_REF_HINT
        )

    def _resolve_relative(self, conn: sqlite3.Connection, n: int, ref: str) -> str:
        if n < 1:
            raise MasonError(f"invalid run reference {ref!r}", hint=_RUN_REF_HINT)
        row = conn.execute(
            f"SELECT id FROM runs {_RECENT_FIRST} LIMIT 1 OFFSET ?", (n - 1,)
        ).fetchone()
        if row is None:
            total = conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
            raise MasonError(
                f"run {ref!r} does not exist: {self.db_path.parent} has {total} "
                f"run{'s' if total != 1 else ''}"
            )
        return row["id"]

    def get_run(self, ref: str) -> dict[str, Any]:
        """Everything about one run.

        Returns:
            the run's fields (id, name, status, started_at, ended_at, duration_s...) plus
            `config` (redacted), `params` (dotted key -> value), `tasks` (executions in start
            order, with `counts` and `duration_s`), `metrics` (the last value logged per
            task and name), `artifacts`, and `lineage` (parent keys of this run's task keys).
        Raises:
            MasonError: `ref` names no run, or several (see `resolve_run`).
        """
        run_id = self.resolve_run(ref)
        with self._snapshot() as conn:
            row = conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
            parts = {
                part: [dict(r) for r in conn.execute(sql, (run_id,))]
                for part, sql in _RUN_PART_QUERIES.items()
            }
        run = _run_summary(row)
        run["config"] = json.loads(row["config_json"])
        run["params"] = {p["key"]: json.loads(p["value"]) for p in parts["params"]}
        run["tasks"] = [_task_row(t) for t in parts["tasks"]]
        run["metrics"] = [{**m, "value": _metric_value(m["value"])} for m in parts["metrics"]]
        run["artifacts"] = parts["artifacts"]
        run["lineage"] = parts["lineage"]
        return run

    def metric_history(self, ref: str, task: str, name: str) -> list[dict[str, Any]]:
        """Every value logged for one metric of one run, in logging order (for curves).

        Returns:
            dicts with step, value, time.
        Raises:
            MasonError: `ref` names no run, or several.
        """
        run_id = self.resolve_run(ref)
        with self._lock:
            rows = self._conn.execute(
                "SELECT step, value, time FROM metrics WHERE run_id = ? AND task = ? AND name = ?"
                " ORDER BY id",
                (run_id, task, name),
            ).fetchall()
        return [{**dict(r), "value": _metric_value(r["value"])} for r in rows]

    def compare(self, refs: list[str]) -> dict[str, Any]:
        """Params and final metrics of several runs side by side.

        Returns:
            {"runs": [run summaries], "params": [{"key", "values", "differs"}],
             "metrics": [{"task", "name", "values", "differs"}]}, where `values` has one
            entry per run, in the order of `refs`, None where that run lacks the row, and
            `differs` is true when the values (or their presence) are not all equal.
        Raises:
            MasonError: fewer than two refs, or a ref names no run or several.
        """
        if len(refs) < 2:
            raise MasonError("compare needs at least two runs", hint=_RUN_REF_HINT)
        runs = [self.get_run(ref) for ref in refs]
        param_keys = sorted({key for run in runs for key in run["params"]})
        params = [
            _compare_row({"key": key}, [run["params"].get(key, _MISSING) for run in runs])
            for key in param_keys
        ]
        finals = [{(m["task"], m["name"]): m["value"] for m in run["metrics"]} for run in runs]
        metric_keys = sorted({key for final in finals for key in final})
        metrics = [
            _compare_row({"task": task, "name": name},
                         [final.get((task, name), _MISSING) for final in finals])
            for task, name in metric_keys
        ]
        summaries = [
            {k: run[k] for k in ("id", "name", "status", "started_at", "ended_at", "duration_s",
                                 "pipeline_path")}
            for run in runs
        ]
        return {"runs": summaries, "params": params, "metrics": metrics}


def _compare_row(head: dict[str, Any], values: list[Any]) -> dict[str, Any]:
    plain = [None if v is _MISSING else v for v in values]
    # Presence is compared too: a missing row differs from every value, None included.
    return {
        **head,
        "values": plain,
        "differs": not _same([[v is _MISSING, p] for v, p in zip(values, plain)]),
    }


def _task_row(task: dict[str, Any]) -> dict[str, Any]:
    task = dict(task)
    task["counts"] = json.loads(task.pop("counts_json") or "null")
    task["duration_s"] = duration_s(task["started_at"], task["ended_at"])
    task.pop("run_id", None)
    return task


def _format_candidates(rows: list[sqlite3.Row]) -> str:
    lines = [
        f"  {r['id']}  {r['status']:<11} {r['started_at'][:19].replace('T', ' ')}"
        + (f"  {r['name']}" if r["name"] else "")
        for r in rows[:10]
    ]
    if len(rows) > 10:
        lines.append("  ...")
    return "\n".join(lines)
