"""Seed instructions: a few examples a person wrote (or imported), kept in a JSONL file beside the
pipeline (`synthetic_data.seeds`, default `seeds.jsonl`).

The generate task shows them to an LLM teacher as examples of the questions and answers wanted, and
puts them into the dataset themselves (`meta.seed: true`, train split). The curation UI appends to the
file; `mason curate --import-seeds FILE` copies the samples of any dataset file `mason validate` reads.
Every line is appended and fsynced on its own: a kill loses at most the line being written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mason.core.errors import InputError
from mason.data.formats import sample_id

#: how many seeds an LLM teacher sees in each prompt (the rest still go into the dataset)
MAX_EXAMPLES = 4
SOURCE = {"doc": "seeds", "chunk": None, "span": None}


def seed_row(question: str, answer: str) -> dict[str, Any]:
    """A seed as a contract sample: one user turn, one assistant turn.

    Raises:
        InputError: an empty question or answer.
    """
    question, answer = question.strip(), answer.strip()
    if not question or not answer:
        raise InputError("a seed needs both a question and an answer")
    messages = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    return {"id": sample_id({"messages": messages}), "messages": messages}


def read_seeds(path: Path) -> list[dict[str, Any]]:
    """The seeds in `path` as dataset samples (`meta.seed`, `meta.task: seed`, train split); [] without the file.

    Raises:
        InputError: a malformed line (file and line named).
    """
    if not path.is_file():
        return []
    from mason.data.files import load_dataset

    out = []
    for _, row in load_dataset(path):
        row = dict(row)
        row["id"] = row.get("id") or sample_id(row)
        row["meta"] = {**(row.get("meta") or {}), "seed": True, "task": "seed", "split": "train", "source": SOURCE}
        out.append(row)
    return out


def append_seeds(path: Path, rows: list[dict[str, Any]]) -> int:
    """Append contract samples to the seeds file (created if missing), each line fsynced; returns how many.

    Rows already in the file (same id) are not written twice.
    """
    have = {r["id"] for r in read_seeds(path)}
    new = []
    for row in rows:
        rid = row.get("id") or sample_id(row)
        if rid not in have:
            have.add(rid)
            new.append({"id": rid, **{k: v for k, v in row.items() if k in ("messages", "chosen", "rejected", "text")}})
    if not new:
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as f:
        if f.tell() and not _ends_with_newline(path):
            f.write(b"\n")  # a line a crash cut short stays apart from ours
        for row in new:
            f.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
    return len(new)


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def examples_block(seeds: list[dict[str, Any]]) -> str:
    """The part of a teacher prompt that shows the seeds as examples of style (not of content)."""
    pairs = []
    for row in seeds[:MAX_EXAMPLES]:
        user = next((m["content"] for m in row.get("messages", []) if m.get("role") == "user"), None)
        answer = next((m["content"] for m in row.get("messages", []) if m.get("role") == "assistant"), None)
        if isinstance(user, str) and isinstance(answer, str):
            pairs.append(json.dumps({"question": user, "answer": answer}, ensure_ascii=False))
    if not pairs:
        return ""
    return ("\n\nExamples of the questions and answers wanted (their style and depth, not their content; "
            "write about the passage above):\n" + "\n".join(pairs))
