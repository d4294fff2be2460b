"""Curation decisions, durable: one SQLite file, each decision or edit committed the moment it is made.

    store = DecisionStore.open(Path("curation.sqlite"))
    store.decide("b9d32b46...", "approved")
    store.decide("db29a060...", "rejected", reason="wrong number")
    store.edit("95d8edfd...", edited_row, original_row)
    store.undo()                       # back to before the last change
    store.get("b9d32b46...")           # Decision(...) or None

Keyed by sample id (a content hash of the generated sample, see `mason.data.formats.sample_id`), so a
re-run of the generate task keeps every decision on samples whose ids did not change; decisions on
samples that are gone stay in the file (reported as stale) in case they come back. Every change is
also written to an event log, which is what `undo` walks back. `synchronous=FULL` with a rollback
journal: a `kill -9` at any moment leaves every committed decision in place and nothing half-written.
"""

from __future__ import annotations

import getpass
import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Self

from mason.core.errors import InputError
from mason.core.hashing import stable_hash

DecisionKind = Literal["approved", "rejected", "undecided"]
DECISIONS: tuple[str, ...] = ("approved", "rejected", "undecided")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    sample_id TEXT PRIMARY KEY,
    decision  TEXT NOT NULL CHECK (decision IN ('approved', 'rejected', 'undecided')),
    reason    TEXT,
    edited    TEXT,   -- JSON of the sample as edited (NULL: not edited)
    original  TEXT,   -- JSON of the sample as generated, kept when it was edited
    who       TEXT NOT NULL,
    at        TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    sample_id TEXT NOT NULL,
    before    TEXT,   -- JSON of the decisions row before the change (NULL: there was none)
    after     TEXT,
    who       TEXT NOT NULL,
    at        TEXT NOT NULL
);
"""


def current_user() -> str:
    """Who decides: `MASON_USER`, else the login name."""
    try:
        return os.environ.get("MASON_USER") or getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "unknown"


@dataclass(frozen=True)
class Decision:
    """What a person decided about one sample.

    Attributes:
        decision: approved, rejected or undecided (an edit without a verdict yet).
        reason: why it was rejected (free text), or None.
        edited: the sample as edited (the whole row), or None.
        original: the sample as generated, when it was edited.
        who, at: the person and the UTC time of the last change.
    """

    sample_id: str
    decision: DecisionKind
    reason: str | None = None
    edited: dict[str, Any] | None = None
    original: dict[str, Any] | None = None
    who: str = ""
    at: str = ""

    def as_row(self) -> dict[str, Any]:
        return {"sample_id": self.sample_id, "decision": self.decision, "reason": self.reason,
                "edited": self.edited, "original": self.original, "who": self.who, "at": self.at}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class DecisionStore:
    """The decisions of one pipeline, in one SQLite file (see the module docstring)."""

    def __init__(self, conn: sqlite3.Connection, path: Path, who: str):
        self._conn = conn
        self.path = path
        self.who = who

    @classmethod
    def open(cls, path: str | Path, *, who: str | None = None) -> Self:
        """Open (or create) the store at `path`.

        Raises:
            InputError: the file is not a decisions database.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
        try:
            conn.execute("PRAGMA synchronous=FULL")
            conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError as e:
            conn.close()
            raise InputError(f"{path}: not a curation decisions file ({e})",
                             hint="point `curation.decisions` at another file, or move this one away") from None
        return cls(conn, path, who or current_user())

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ reading

    @staticmethod
    def _decision(row: tuple) -> Decision:
        sid, decision, reason, edited, original, who, at = row
        return Decision(sid, decision, reason, json.loads(edited) if edited else None,
                        json.loads(original) if original else None, who, at)

    def get(self, sample_id: str) -> Decision | None:
        row = self._conn.execute("SELECT sample_id, decision, reason, edited, original, who, at FROM decisions "
                                 "WHERE sample_id = ?", (sample_id,)).fetchone()
        return self._decision(row) if row else None

    def all(self) -> dict[str, Decision]:
        """Every decision, by sample id."""
        rows = self._conn.execute("SELECT sample_id, decision, reason, edited, original, who, at FROM decisions")
        return {r[0]: self._decision(r) for r in rows}

    def __iter__(self) -> Iterator[Decision]:
        return iter(self.all().values())

    def digest(self) -> str:
        """A hash of every decision (not of who/when): what the curated dataset depends on."""
        rows = self._conn.execute("SELECT sample_id, decision, reason, edited FROM decisions ORDER BY sample_id")
        return stable_hash([list(r) for r in rows])

    def can_undo(self) -> bool:
        return self._conn.execute("SELECT 1 FROM events LIMIT 1").fetchone() is not None

    # ------------------------------------------------------------------ writing

    def _put(self, sample_id: str, row: dict[str, Any] | None) -> None:
        """Set the sample's decisions row to `row` (a `Decision.as_row()`; None deletes it), in the open transaction."""
        if row is None:
            self._conn.execute("DELETE FROM decisions WHERE sample_id = ?", (sample_id,))
            return
        as_json = {k: json.dumps(row[k], ensure_ascii=False) if row[k] is not None else None for k in ("edited", "original")}
        self._conn.execute(
            "INSERT OR REPLACE INTO decisions (sample_id, decision, reason, edited, original, who, at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (sample_id, row["decision"], row["reason"], as_json["edited"], as_json["original"], row["who"], row["at"]))

    def _write(self, sample_id: str, after: Decision | None) -> None:
        """Replace the sample's decision with `after` (None deletes it) and log the change, atomically."""
        before = self.get(sample_id)
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            self._put(sample_id, after.as_row() if after is not None else None)
            conn.execute("INSERT INTO events (sample_id, before, after, who, at) VALUES (?, ?, ?, ?, ?)",
                         (sample_id, json.dumps(before.as_row(), ensure_ascii=False) if before else None,
                          json.dumps(after.as_row(), ensure_ascii=False) if after else None, self.who, _now()))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def decide(self, sample_id: str, decision: DecisionKind, *, reason: str | None = None) -> Decision:
        """Approve, reject (with an optional reason) or reset a sample; an edit made before is kept.

        Raises:
            ValueError: an unknown decision.
        """
        if decision not in DECISIONS:
            raise ValueError(f"decision must be one of {', '.join(DECISIONS)}, got {decision!r}")
        before = self.get(sample_id)
        after = Decision(sample_id, decision, reason if decision == "rejected" else None,
                         before.edited if before else None, before.original if before else None, self.who, _now())
        self._write(sample_id, after)
        return after

    def decide_many(self, sample_ids: list[str], decision: DecisionKind, *, reason: str | None = None) -> int:
        """The same decision on several samples (bulk actions); each is committed and undoable on its own."""
        for sid in sample_ids:
            self.decide(sid, decision, reason=reason)
        return len(sample_ids)

    def edit(self, sample_id: str, edited: dict[str, Any], original: dict[str, Any]) -> Decision:
        """Record an edited version of a sample; the generated original is kept beside it (the first
        original stays when a sample is edited twice). The decision is unchanged (undecided if none)."""
        before = self.get(sample_id)
        first = before.original if before and before.original is not None else original
        after = Decision(sample_id, before.decision if before else "undecided", before.reason if before else None,
                         edited, first, self.who, _now())
        self._write(sample_id, after)
        return after

    def undo(self) -> str | None:
        """Undo the last change (whoever made it); returns the sample id it touched, None when none is left."""
        row = self._conn.execute("SELECT seq, sample_id, before FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        if row is None:
            return None
        seq, sample_id, before = row
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            self._put(sample_id, json.loads(before) if before is not None else None)
            conn.execute("DELETE FROM events WHERE seq = ?", (seq,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return sample_id
