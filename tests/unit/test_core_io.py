"""Durable I/O: atomic writes, JSONL tails cut after a crash, line numbers in errors."""

from __future__ import annotations

import json
import os

import pytest

from mason.core.errors import InputError
from mason.core.hashing import stable_hash
from mason.core.io import (
    JsonlWriter,
    atomic_write_json,
    atomic_write_text,
    iter_jsonl,
    read_jsonl,
    repair_jsonl_tail,
)


def test_atomic_write_leaves_no_temp_files(tmp_path):
    target = tmp_path / "sub" / "a.json"
    atomic_write_json(target, {"x": 1})
    atomic_write_text(target, "replaced")
    assert target.read_text() == "replaced"
    assert os.listdir(target.parent) == ["a.json"]


def test_atomic_write_failure_keeps_old_content(tmp_path, monkeypatch):
    target = tmp_path / "a.json"
    atomic_write_json(target, {"x": 1})

    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_json(target, {"x": 2})
    monkeypatch.undo()
    assert json.loads(target.read_text()) == {"x": 1}
    assert os.listdir(tmp_path) == ["a.json"]


def test_repair_cuts_partial_last_line(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": 2}\n{"a": 3')
    assert repair_jsonl_tail(path) == len(b'{"a": 3')
    assert read_jsonl(path) == [{"a": 1}, {"a": 2}]
    assert repair_jsonl_tail(path) == 0


def test_repair_cuts_a_complete_but_broken_line(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": \n')
    repair_jsonl_tail(path)
    assert path.read_bytes() == b'{"a": 1}\n'


def test_repair_single_partial_line_and_missing_file(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"a": 1')
    repair_jsonl_tail(path)
    assert path.read_bytes() == b""
    assert repair_jsonl_tail(tmp_path / "missing.jsonl") == 0


def test_repair_long_lines(tmp_path):
    path = tmp_path / "a.jsonl"
    big = {"t": "x" * 200_000}
    path.write_text(json.dumps(big) + "\n" + json.dumps(big)[:150_000])
    repair_jsonl_tail(path)
    assert read_jsonl(path) == [big]


def test_writer_resume_appends_after_repair(tmp_path):
    path = tmp_path / "a.jsonl"
    with JsonlWriter(path) as w:
        w.write({"i": 0})
        w.write({"i": 1})
    with open(path, "ab") as f:
        f.write(b'{"i": 2')  # what a kill -9 mid-write leaves
    with JsonlWriter(path, resume=True) as w:
        w.write({"i": 2})
    assert [r["i"] for r in read_jsonl(path)] == [0, 1, 2]
    with JsonlWriter(path, resume=False) as w:
        w.write({"i": 9})
    assert read_jsonl(path) == [{"i": 9}]


def test_iter_jsonl_reports_line_numbers(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"a": 1}\n\n{"a": oops}\n')
    with pytest.raises(InputError, match=r"a\.jsonl:3: not valid JSON"):
        list(iter_jsonl(path))
    path.write_text('{"a": 1}\n[1, 2]\n')
    with pytest.raises(InputError, match=r":2: expected a JSON object"):
        list(iter_jsonl(path))


def test_stable_hash_ignores_key_order():
    assert stable_hash({"a": 1, "b": [1, 2]}) == stable_hash({"b": [1, 2], "a": 1})
    assert stable_hash({"a": 1}) != stable_hash({"a": 2})
