"""The conversation log of `mason chat --log FILE`: one data-contract row per exchange.

Each row is the whole conversation so far (system prompt, every user and assistant turn), so any
row can be trained on by itself and the last row of a conversation holds all of it:

    {"id": sha1 of the messages, "messages": [...],
     "meta": {"source": {"chat": MODEL}, "task": "chat", "model": MODEL, "runtime": {...},
              "created": ISO time, "params": {...}, "tokens": {"prompt", "output"}, "seconds": ...}}

Writing happens on a background thread fed by a queue, so a reply is never slowed by the disk.
The thread appends each row in one write, flushes and fsyncs it. `close()` drains the queue; it
runs at interpreter exit too (atexit), and `mason chat` turns SIGTERM into a normal exit so it
runs then. A `kill -9` loses at most the row being written; a torn last line is cut off the next
time the file is opened for logging (`JsonlWriter(resume=True)`).
"""

from __future__ import annotations

import atexit
import queue
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

from mason.core.io import JsonlWriter
from mason.data.formats import sample_id

_STOP = object()


def chat_row(messages: list[dict[str, Any]], *, model: str, runtime: dict[str, Any] | None = None,
             params: dict[str, Any] | None = None, tokens: tuple[int, int] = (0, 0),
             seconds: float = 0.0, created: datetime | None = None) -> dict[str, Any]:
    """One data-contract row for the conversation `messages` (ending with the assistant's answer).

    Returns:
        `{"id", "messages", "meta"}`; `id` is the contract's sample id (sha1 of the messages).
    """
    msgs = [{"role": m["role"], "content": m["content"]} for m in messages]
    when = (created or datetime.now(UTC)).isoformat(timespec="seconds")
    return {
        "id": sample_id({"messages": msgs}),
        "messages": msgs,
        "meta": {"source": {"chat": model}, "task": "chat", "model": model, "runtime": runtime or {},
                 "created": when, "params": params or {},
                 "tokens": {"prompt": tokens[0], "output": tokens[1]}, "seconds": round(seconds, 4)},
    }


class ChatLogger:
    """Append rows to a JSONL file from a background thread (see the module docstring).

    Args:
        path: the JSONL file (created, with its folder, if missing; appended to otherwise).
    Raises:
        OSError: the file cannot be opened.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.written = 0
        self.error: OSError | None = None
        self._writer = JsonlWriter(self.path, resume=True)  # resume cuts a torn tail from a killed run
        self._queue: queue.Queue[Any] = queue.Queue()
        self._closed = False
        self._lock = threading.Lock()
        # daemon: a forgotten close() never hangs the exit; the atexit hook still drains the queue
        self._thread = threading.Thread(target=self._run, name="mason-chat-log", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def log(self, row: dict[str, Any]) -> None:
        """Queue `row` for writing; returns at once."""
        if self._closed:
            raise RuntimeError("the chat log is closed")
        self._queue.put(row)

    def _run(self) -> None:
        while True:
            row = self._queue.get()
            if row is _STOP:
                return
            if isinstance(row, _Marker):
                row.event.set()
                continue
            try:
                self._writer.write(row)
                self._writer.sync()
                self.written += 1
            except OSError as e:  # disk full, file gone...: keep chatting, report once at close
                self.error = self.error or e

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every queued row is written (for tests and callers that read the file)."""
        done = threading.Event()
        self._queue.put(_Marker(done))
        done.wait(timeout)

    def close(self, timeout: float | None = 30.0) -> None:
        """Write every queued row, then close the file. Safe to call twice (and from atexit)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._queue.put(_STOP)
        self._thread.join(timeout)
        self._writer.close()
        atexit.unregister(self.close)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Marker:
    """A queue item that signals an event instead of being written (see `ChatLogger.flush`)."""

    def __init__(self, event: threading.Event):
        self.event = event
