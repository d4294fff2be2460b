"""Curation decisions: durable at once (kill -9 loses none), undoable, keyed by sample id; the session's
filter language and the curated dataset it writes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mason.core.errors import InputError
from mason.curate.session import CurationSession
from mason.curate.store import DecisionStore


def _row(sid: str, doc: str, q: str, a: str, *, task: str = "question_answering", score: float | None = None,
         split: str = "train", rejected: str | None = None) -> dict:
    meta = {"source": {"doc": doc, "chunk": f"c-{doc}", "span": [0, 10]}, "task": task, "split": split,
            "scores": {"judge": score} if score is not None else {"quality": 0.5}}
    if rejected:
        meta["rejected"] = {"reason": rejected, "stage": "heuristics"}
    return {"id": sid, "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}], "meta": meta}


@pytest.fixture()
def folders(tmp_path: Path) -> tuple[Path, Path]:
    gen, ing = tmp_path / "generate", tmp_path / "ingest"
    gen.mkdir()
    ing.mkdir()
    rows = [
        _row("s1", "manual.pdf", "How tall is the tower?", "The tower is 80 metres tall.", score=9),
        _row("s2", "manual.pdf", "When was it built?", "It was built in 1889.", score=4),
        _row("s3", "faq.txt", "Who runs it?", "The city runs it.", task="multi_turn", score=7),
        _row("s4", "faq.txt", "Is it open at night?", "Yes, until midnight.", score=8, split="eval"),
    ]
    (gen / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (gen / "rejected.jsonl").write_text(json.dumps(_row("r1", "faq.txt", "What?", "Yes.", rejected="too_short")) + "\n")
    chunks = [{"id": "c-manual.pdf", "text": "The tower is 80 metres tall. It was built in 1889."},
              {"id": "c-faq.txt", "text": "The city runs it. It is open until midnight."}]
    (ing / "chunks.jsonl").write_text("".join(json.dumps(c) + "\n" for c in chunks))
    return gen, ing


def _session(tmp_path: Path, folders: tuple[Path, Path]) -> CurationSession:
    return CurationSession.load(folders[0], folders[1], DecisionStore.open(tmp_path / "d.sqlite", who="ana"),
                                tmp_path / "seeds.jsonl")


def test_decisions_edits_and_undo_are_durable_and_keyed_by_id(tmp_path):
    with DecisionStore.open(tmp_path / "d.sqlite", who="ana") as store:
        empty = store.digest()
        store.decide("a", "approved")
        store.decide("b", "rejected", reason="wrong year")
        store.edit("b", {"id": "b", "messages": []}, {"id": "b", "messages": [{"role": "user", "content": "x"}]})
        store.edit("b", {"id": "b", "messages": [{"role": "user", "content": "y"}]}, {"id": "b", "messages": []})
        assert store.digest() != empty
    with DecisionStore.open(tmp_path / "d.sqlite") as store:  # a fresh connection sees everything
        b = store.get("b")
        assert (b.decision, b.reason, b.who) == ("rejected", "wrong year", "ana")
        assert b.original == {"id": "b", "messages": [{"role": "user", "content": "x"}]}  # the first original stays
        assert b.edited["messages"][0]["content"] == "y"
        assert store.undo() == "b" and store.get("b").edited == {"id": "b", "messages": []}
        assert store.undo() == "b" and store.get("b").edited is None and store.get("b").decision == "rejected"
        assert store.undo() == "b" and store.get("b") is None
        assert store.undo() == "a" and store.get("a") is None
        assert store.undo() is None and store.digest() == empty
        with pytest.raises(ValueError, match="decision must be"):
            store.decide("a", "maybe")


def test_a_file_that_is_not_a_decisions_store_is_a_clear_error(tmp_path):
    (tmp_path / "d.sqlite").write_text("not a database, just text " * 100)
    with pytest.raises(InputError, match="not a curation decisions file"):
        DecisionStore.open(tmp_path / "d.sqlite")


def test_kill_9_between_two_decisions_loses_neither(tmp_path):
    code = (
        "import sys, time\n"
        "from mason.curate.store import DecisionStore\n"
        f"s = DecisionStore.open({str(tmp_path / 'd.sqlite')!r})\n"
        "s.decide('one', 'approved')\n"
        "s.edit('two', {'id': 'two', 'messages': [{'role': 'user', 'content': 'edited'}]}, {'id': 'two'})\n"
        "s.decide('two', 'rejected', reason='bad')\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    with DecisionStore.open(tmp_path / "d.sqlite") as store:
        assert store.get("one").decision == "approved"
        two = store.get("two")
        assert (two.decision, two.reason, two.edited["messages"][0]["content"]) == ("rejected", "bad", "edited")


def test_filter_language(tmp_path, folders):
    s = _session(tmp_path, folders)
    ids = lambda q: [it.id for it in s.filter(q)]  # noqa: E731
    assert ids("doc:manual") == ["s1", "s2"]
    assert ids("task:multi") == ["s3"]
    assert ids("score>=7") == ["s1", "s3", "s4"] and ids("score<5") == ["s2"] and ids("score<=5") == ["s2", "r1"]
    assert ids("pool:rejected") == ["r1"] and ids("reason:too_short") == ["r1"]
    assert ids("split:eval") == ["s4"]
    assert ids("tower 80") == ["s1"]
    s.approve("s1")
    s.reject("s2", "wrong year")
    assert ids("approved") == ["s1"] and ids("rejected") == ["s2"] and ids("reason:wrong") == ["s2"]
    assert ids("undecided doc:faq") == ["s3", "s4", "r1"]
    s.edit("s3", "Who operates the tower?", "The city operates it.")
    assert ids("edited") == ["s3"] and ids("operates") == ["s3"]


def test_curated_dataset_is_exactly_what_was_decided(tmp_path, folders):
    s = _session(tmp_path, folders)
    s.approve("s1")
    s.reject("s2", "wrong year")
    s.edit("s3", "Who operates the tower?", "The city operates it.")
    s.approve("s3")
    s.approve("r1")  # rescued from generation's rejects
    s.add_seed("What colour is the tower?", "It is painted bronze.")
    kept, dropped, counts = s.curated("drop")
    assert [r["id"] for r in kept] == ["s1", "s3", "r1"]
    assert kept[1]["messages"][0]["content"] == "Who operates the tower?" and kept[1]["meta"]["curation"]["edited"]
    assert kept[1]["meta"]["curation"]["by"] == "ana"
    assert "rejected" not in kept[2]["meta"] and kept[2]["meta"]["curation"]["rescued"]
    assert {r["id"]: r["meta"]["rejected"]["reason"] for r in dropped} == {"s2": "wrong year", "s4": "curation: undecided"}
    expected = {"approved": 2, "rejected": 1, "undecided": 1, "edited": 1, "rescued": 1, "kept": 3, "dropped": 2}
    assert {k: counts[k] for k in expected} == expected
    seeds = [json.loads(line) for line in (tmp_path / "seeds.jsonl").read_text().splitlines()]
    assert seeds[0]["messages"][1]["content"] == "It is painted bronze."
    kept_all, _, _ = s.curated("keep")
    assert [r["id"] for r in kept_all] == ["s1", "s3", "s4", "r1"]
    with pytest.raises(InputError, match="1 samples are undecided"):
        s.curated("fail")


def test_bulk_actions_and_stale_decisions(tmp_path, folders):
    s = _session(tmp_path, folders)
    s.store.decide("gone", "approved")  # a sample a later generate run no longer makes
    assert s.approve_above(7) == 3  # s1 (9), s3 (7), s4 (8); never the rejected pool
    assert s.reject_document("manual.pdf") == 2
    s = _session(tmp_path, folders)  # reloaded: decisions kept by id
    assert [s.state(it) for it in s.items] == ["rejected", "rejected", "approved", "approved", "undecided"]
    assert s.counts()["stale"] == 1
