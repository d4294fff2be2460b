"""The chat log: data-contract rows written by a background thread, drained on close, torn tails cut."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path

from mason.chat import ChatLogger, chat_row
from mason.core.io import read_jsonl
from mason.data.formats import sample_id
from mason.data.validate import validate_dataset
from mason.data.samples import load_samples

CONVERSATION = [
    {"role": "system", "content": "You answer questions about masonry."},
    {"role": "user", "content": "What holds the bricks of a wall together?"},
    {"role": "assistant", "content": "Mortar, a mix of sand, cement, lime and water, holds the bricks together."},
]


def row(i: int = 0) -> dict:
    msgs = [*CONVERSATION[:2], {"role": "assistant", "content": f"{CONVERSATION[2]['content']} ({i})"}]
    return chat_row(msgs, model="out/merged", runtime={"format": "merged"}, params={"temperature": 0.0},
                    tokens=(40, 17), seconds=0.123456)


def test_chat_row_is_a_contract_sample() -> None:
    when = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    r = chat_row(CONVERSATION, model="m", tokens=(3, 4), seconds=1.0, created=when)
    assert r["id"] == sample_id({"messages": CONVERSATION})
    assert r["messages"] == CONVERSATION
    assert r["meta"] == {"source": {"chat": "m"}, "task": "chat", "model": "m", "runtime": {},
                         "created": "2025-01-02T03:04:05+00:00", "params": {},
                         "tokens": {"prompt": 3, "output": 4}, "seconds": 1.0}


def test_rows_are_written_in_order_and_pass_validation_and_load(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "chat.jsonl"
    logger = ChatLogger(path)
    for i in range(20):
        logger.log(row(i))
    logger.close()
    rows = read_jsonl(path)
    assert [r["messages"][-1]["content"][-3:] for r in rows] == [f"({i})"[-3:] for i in range(20)]
    assert logger.written == 20 and logger.error is None
    report = validate_dataset(path)
    assert report.rows == 20 and report.format_error_rows == 0 and report.quality_issue_rows == 0
    samples = load_samples(path)
    assert len(samples) == 20 and samples[0].row["meta"]["task"] == "chat"


def test_log_returns_at_once_while_the_disk_is_slow(tmp_path: Path, monkeypatch) -> None:
    logger = ChatLogger(tmp_path / "chat.jsonl")
    gate = threading.Event()
    real_write = logger._writer.write

    def slow_write(obj: dict) -> None:
        gate.wait(10)
        real_write(obj)

    monkeypatch.setattr(logger._writer, "write", slow_write)
    logger.log(row(1))
    logger.log(row(2))  # the writer thread is blocked on the first: this must not wait
    assert logger.written == 0
    gate.set()
    logger.close()  # drains the queue
    assert len(read_jsonl(tmp_path / "chat.jsonl")) == 2


def test_flush_waits_for_queued_rows(tmp_path: Path) -> None:
    with ChatLogger(tmp_path / "chat.jsonl") as logger:
        logger.log(row())
        logger.flush(10)
        assert len(read_jsonl(tmp_path / "chat.jsonl")) == 1


def test_appends_and_cuts_a_torn_line_left_by_a_kill(tmp_path: Path) -> None:
    path = tmp_path / "chat.jsonl"
    with ChatLogger(path) as logger:
        logger.log(row(1))
    with open(path, "ab") as f:  # what kill -9 in the middle of a write could leave
        f.write(json.dumps(row(2)).encode()[:57])
    with ChatLogger(path) as logger:
        logger.log(row(3))
    rows = read_jsonl(path)
    assert [r["messages"][-1]["content"][-3:] for r in rows] == ["(1)", "(3)"]


def test_close_is_idempotent_and_log_after_close_fails(tmp_path: Path) -> None:
    logger = ChatLogger(tmp_path / "chat.jsonl")
    logger.close()
    logger.close()
    try:
        logger.log(row())
    except RuntimeError as e:
        assert "closed" in str(e)
    else:
        raise AssertionError("log after close must fail")


def test_a_write_error_is_kept_not_raised(tmp_path: Path, monkeypatch) -> None:
    logger = ChatLogger(tmp_path / "chat.jsonl")

    def broken(obj: dict) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(logger._writer, "write", broken)
    logger.log(row())
    logger.close()
    assert isinstance(logger.error, OSError) and logger.written == 0
