"""Schema of the run tracker: tables, migrations, row ids and timestamps, and how connections are opened.

The schema version lives in `PRAGMA user_version`; `MIGRATIONS[i]` takes a database from
version i to i + 1. A later MASON appends functions, never edits shipped ones.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mason.core.errors import MasonError

# A writer holding the lock (a migration, a burst of metrics) is waited for, not failed on.
BUSY_TIMEOUT_MS = 10_000

# --------------------------------------------------------------------------- schema

# Statuses are checked in Python, not with CHECK constraints: SQLite cannot alter a CHECK
# without rebuilding the table, and a later version may add a status.
_RUN_FK = "run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE"
_V1_STATEMENTS = (
    "CREATE TABLE runs (id TEXT PRIMARY KEY, name TEXT, pipeline_path TEXT NOT NULL,"
    " status TEXT NOT NULL, started_at TEXT NOT NULL, ended_at TEXT,"
    " mason_version TEXT NOT NULL, config_json TEXT NOT NULL, error TEXT)",
    "CREATE INDEX runs_started ON runs(started_at)",
    f"CREATE TABLE params ({_RUN_FK}, key TEXT NOT NULL, value TEXT NOT NULL,"
    " PRIMARY KEY (run_id, key))",
    f"CREATE TABLE task_executions (id INTEGER PRIMARY KEY AUTOINCREMENT, {_RUN_FK},"
    " task TEXT NOT NULL, key TEXT NOT NULL, status TEXT NOT NULL, started_at TEXT NOT NULL,"
    " ended_at TEXT, artifact_dir TEXT, counts_json TEXT, error TEXT)",
    "CREATE INDEX task_executions_run ON task_executions(run_id)",
    "CREATE INDEX task_executions_key ON task_executions(key)",
    # value is NULL for NaN (SQLite has no NaN); time is unix seconds, handy for plotting.
    f"CREATE TABLE metrics (id INTEGER PRIMARY KEY AUTOINCREMENT, {_RUN_FK},"
    " task TEXT NOT NULL, step INTEGER, name TEXT NOT NULL, value REAL, time REAL NOT NULL)",
    "CREATE INDEX metrics_run ON metrics(run_id, task, name)",
    f"CREATE TABLE artifacts (id INTEGER PRIMARY KEY AUTOINCREMENT, {_RUN_FK},"
    " task TEXT NOT NULL, key TEXT NOT NULL, path TEXT NOT NULL, kind TEXT NOT NULL,"
    " created_at TEXT NOT NULL)",
    "CREATE INDEX artifacts_run ON artifacts(run_id)",
    # Lineage links artifact keys, not runs: a cached task's key is shared by many runs.
    "CREATE TABLE lineage (child_key TEXT NOT NULL, parent_key TEXT NOT NULL,"
    " UNIQUE (child_key, parent_key))",
)


def _migrate_v1(conn: sqlite3.Connection) -> None:
    """Empty database -> version 1: all tables."""
    for statement in _V1_STATEMENTS:
        conn.execute(statement)


# MIGRATIONS[i] upgrades version i to i + 1. Append only.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_migrate_v1]


def schema_version() -> int:
    """The schema version this MASON writes (the number of migrations)."""
    return len(MIGRATIONS)


def _connect(target: str, *, uri: bool) -> sqlite3.Connection:
    # isolation_level=None: we issue BEGIN/COMMIT ourselves, so each write commits immediately.
    conn = sqlite3.connect(target, uri=uri, timeout=BUSY_TIMEOUT_MS / 1000,
                           isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _newer_schema_error(db_path: Path, version: int) -> MasonError:
    return MasonError(
        f"{db_path} was written by a newer MASON (schema version {version}, "
        f"this one knows up to {schema_version()})",
        hint="upgrade MASON (pip install -U mason) to read this workspace",
    )


def _migrate(conn: sqlite3.Connection, db_path: Path) -> None:
    """Apply the migrations a database lacks, all in one transaction."""
    target = schema_version()
    if conn.execute("PRAGMA user_version").fetchone()[0] == target:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Read again under the write lock: another process may have migrated meanwhile.
        current = conn.execute("PRAGMA user_version").fetchone()[0]
        if current > target:
            raise _newer_schema_error(db_path, current)
        for version in range(current, target):
            MIGRATIONS[version](conn)
        conn.execute(f"PRAGMA user_version = {int(target)}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def utc_now() -> str:
    """Current UTC time as ISO 8601 with microseconds (sorts as text)."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def new_run_id(now: datetime | None = None) -> str:
    """A sortable run id: UTC `YYYYMMDD-HHMMSS-xxxx` with 4 random hex digits."""
    now = now or datetime.now(timezone.utc)
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def flatten_params(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested mappings and lists into dotted keys: {"train": {"lr": 1}} -> {"train.lr": 1}.

    List items get their index as a key part (`train.stages.0.lr`), so two runs that differ in
    one stage compare row by row. Empty mappings and lists are kept as leaf values.
    """
    out: dict[str, Any] = {}
    items: Any = config.items() if isinstance(config, Mapping) else enumerate(config)
    for key, value in items:
        full = f"{prefix}{key}"
        if isinstance(value, (Mapping, list, tuple)) and len(value) > 0:
            out.update(flatten_params(value, prefix=f"{full}."))
        else:
            out[full] = list(value) if isinstance(value, tuple) else value
    return out
