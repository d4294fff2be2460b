"""The request cache: teacher and judge answers keyed by request hash, in SQLite.

A pipeline killed halfway through generation resumes without paying twice for what it already
received: every answer is committed as soon as it arrives (WAL journal, one transaction per
put), so `kill -9` loses at most the requests in flight. What is stored: the completion
(text, tool calls, token counts, finish reason, the model's name as the server gave it).
Never the API key, never HTTP headers: the key `ChatRequest.cache_key(model_id)` is a hash
of the model id (no secrets) and the request.

One `RequestCache` may be shared by several threads and coroutines of a process (a lock
serializes access to the connection) and by several processes (SQLite's own locking, with a
busy timeout).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Self

from mason.core.errors import MasonError
from mason.llm.teachers.base import Completion

_SCHEMA = """
CREATE TABLE IF NOT EXISTS completions (
    key        TEXT PRIMARY KEY,
    completion TEXT NOT NULL,
    created    REAL NOT NULL
)
"""


class RequestCache:
    """SQLite-backed map from request key to `Completion`.

    Args:
        path: the database file (created with its folder if missing), e.g.
            `.mason/cache/requests.sqlite`.

    Raises:
        MasonError: the file exists but is not a readable SQLite database.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            # check_same_thread=False: the lock below makes sharing across threads safe
            self._db = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: a commit survives the process being killed (not a power cut), without
            # an fsync per answer
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
        except sqlite3.DatabaseError as e:
            raise MasonError(
                f"request cache {self.path} is not a usable SQLite database: {e}",
                hint="delete the file (answers will be requested again) or point the cache elsewhere",
            ) from None

    def get(self, key: str) -> Completion | None:
        """The cached completion for `key` (with `cached=True`), or None."""
        with self._lock:
            row = self._db.execute("SELECT completion FROM completions WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        try:
            return Completion.from_dict(json.loads(row[0]), cached=True)
        except (ValueError, TypeError):
            return None  # an unreadable row is a miss: the request is simply sent again

    def put(self, key: str, completion: Completion) -> None:
        """Store `completion` under `key` (replacing any older answer), committed at once."""
        data = json.dumps(completion.to_dict(), ensure_ascii=False, sort_keys=True)
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO completions (key, completion, created) VALUES (?, ?, ?)",
                (key, data, time.time()),
            )

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM completions WHERE key = ?", (key,)).fetchone() is not None

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM completions").fetchone()[0])

    def close(self) -> None:
        """Close the connection (safe to call twice)."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None  # type: ignore[assignment]

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RequestCache({str(self.path)!r})"
