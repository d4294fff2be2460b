"""What a curation works on: the generated samples, the ones generation rejected, their source chunks,
the person's decisions (`store.DecisionStore`) and the seeds — with the filter language of the UI and
the rules that turn all of it into the curated dataset.

    session = CurationSession.load(samples_dir, chunks_dir, store, seeds_path)
    items = session.filter("doc:manual score>=7 undecided")
    session.approve(items[0].id)
    kept, dropped, counts = session.curated("keep")

Filter terms (all must hold; words without a colon search the question and answer text):
`doc:TEXT` `task:TEXT` `reason:TEXT` (generation's or the reviewer's reject reason) `split:train|eval`
`pool:dataset|rejected` `approved` `rejected` `undecided` `edited` `score>=N` `score<N` (also `>`,
`<=`, `=`; the judge's 0-10 score, or 10 x the quality heuristic when no judge ran).
"""

from __future__ import annotations

import copy
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from mason.core.errors import InputError
from mason.core.io import read_jsonl
from mason.curate.store import Decision, DecisionKind, DecisionStore
from mason.data.seeds import append_seeds, seed_row

SAMPLES, REJECTED, CHUNKS = "samples.jsonl", "rejected.jsonl", "chunks.jsonl"
UNDECIDED_POLICIES = ("keep", "drop", "fail")
_SCORE = re.compile(r"^score(>=|<=|>|<|=)(-?\d+(?:\.\d+)?)$")
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, "<": lambda a, b: a < b,
    "=": lambda a, b: abs(a - b) < 1e-9,
}


def _text(message: Any) -> str:
    content = (message or {}).get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


@dataclass
class Item:
    """One sample under review, as generated (`row`), with where it came from.

    Attributes:
        pool: `dataset` (kept by generation) or `rejected` (from rejected.jsonl, can be rescued).
        chunk: the text of its source chunk, when the ingest artifact has it.
    """

    row: dict[str, Any]
    pool: Literal["dataset", "rejected"]
    chunk: str | None = None

    @property
    def id(self) -> str:
        return str(self.row.get("id"))

    @property
    def meta(self) -> dict[str, Any]:
        return self.row.get("meta") or {}

    @property
    def doc(self) -> str:
        return str((self.meta.get("source") or {}).get("doc") or "")

    @property
    def task(self) -> str:
        return str(self.meta.get("task") or "")

    @property
    def split(self) -> str:
        return str(self.meta.get("split") or "train")

    @property
    def generation_reason(self) -> str | None:
        rejected = self.meta.get("rejected")
        return str(rejected.get("reason")) if isinstance(rejected, dict) and rejected.get("reason") else None

    @property
    def score(self) -> float | None:
        """The judge's 0-10 score; without a judge, 10 x the quality heuristic (0-1); None if neither."""
        scores = self.meta.get("scores") or {}
        if isinstance(scores.get("judge"), int | float):
            return float(scores["judge"])
        if isinstance(scores.get("quality"), int | float):
            return round(10.0 * float(scores["quality"]), 2)
        return None


def question_of(row: dict[str, Any]) -> str:
    """The first user turn (or the plain text's start)."""
    if isinstance(row.get("text"), str):
        return row["text"][:200]
    return next((_text(m) for m in row.get("messages", []) if m.get("role") == "user"), "")


def answer_of(row: dict[str, Any]) -> str:
    """The last assistant turn, or `chosen` of a preference pair."""
    if isinstance(row.get("chosen"), dict):
        return _text(row["chosen"])
    answers = [_text(m) for m in row.get("messages", []) if m.get("role") == "assistant"]
    return answers[-1] if answers else ""


def with_question_answer(row: dict[str, Any], question: str, answer: str) -> dict[str, Any]:
    """A copy of `row` with its first user turn and its answer (last assistant turn, or `chosen`) replaced."""
    out = copy.deepcopy(row)
    messages = out.get("messages") or []
    user = next((m for m in messages if m.get("role") == "user"), None)
    if user is not None:
        user["content"] = question
    if isinstance(out.get("chosen"), dict):
        out["chosen"]["content"] = answer
    else:
        assistants = [m for m in messages if m.get("role") == "assistant"]
        if assistants:
            assistants[-1]["content"] = answer
    return out


class CurationSession:
    """The samples of one generate artifact under review, and the decisions about them."""

    def __init__(self, items: list[Item], store: DecisionStore, seeds_path: Path | None = None):
        self.items = items
        self.by_id = {it.id: it for it in items}
        self.store = store
        self.seeds_path = seeds_path
        self._decisions = store.all()

    @classmethod
    def load(cls, samples_dir: Path, chunks_dir: Path | None, store: DecisionStore,
             seeds_path: Path | None = None) -> CurationSession:
        """Read `samples.jsonl` and `rejected.jsonl` of a generate artifact, and the chunks they cite.

        Raises:
            InputError: the folder has no samples.jsonl.
        """
        path = samples_dir / SAMPLES
        if not path.is_file():
            raise InputError(f"the generate artifact {samples_dir} has no {SAMPLES}",
                             hint="run `mason run PIPELINE generate` first")
        chunks: dict[str, str] = {}
        if chunks_dir is not None and (chunks_dir / CHUNKS).is_file():
            chunks = {str(c.get("id")): str(c.get("text", "")) for c in read_jsonl(chunks_dir / CHUNKS)}
        items: list[Item] = []
        seen: set[str] = set()
        for pool, name in (("dataset", SAMPLES), ("rejected", REJECTED)):
            if not (samples_dir / name).is_file():
                continue
            for row in read_jsonl(samples_dir / name):
                if str(row.get("id")) in seen:
                    continue
                seen.add(str(row.get("id")))
                chunk_id = ((row.get("meta") or {}).get("source") or {}).get("chunk")
                items.append(Item(row, pool, chunks.get(str(chunk_id)) if chunk_id else None))
        return cls(items, store, seeds_path)

    # ------------------------------------------------------------------ reading

    def decision(self, sample_id: str) -> Decision | None:
        return self._decisions.get(sample_id)

    def state(self, item: Item) -> DecisionKind:
        d = self._decisions.get(item.id)
        return d.decision if d else "undecided"

    def current(self, item: Item) -> dict[str, Any]:
        """The sample as it will be trained on: the edited version if there is one."""
        d = self._decisions.get(item.id)
        return d.edited if d and d.edited is not None else item.row

    def counts(self) -> dict[str, int]:
        """approved / rejected / undecided over the dataset pool (what trains unless decided otherwise),
        plus edited, rescued (approved from the rejected pool), seeded (seed samples) and stale
        (decisions on samples that are no longer generated)."""
        c = Counter(self.state(it) for it in self.items if it.pool == "dataset")
        decided = self._decisions
        return {
            "approved": c["approved"], "rejected": c["rejected"], "undecided": c["undecided"],
            "edited": sum(1 for sid, d in decided.items() if d.edited is not None and sid in self.by_id),
            "rescued": sum(1 for it in self.items if it.pool == "rejected" and self.state(it) == "approved"),
            "seeded": sum(1 for it in self.items if it.meta.get("seed")),
            "stale": sum(1 for sid in decided if sid not in self.by_id),
        }

    def documents(self) -> list[str]:
        return sorted({it.doc for it in self.items})

    def matches(self, item: Item, query: str) -> bool:
        """Whether `item` passes the filter `query` (see the module docstring)."""
        for term in query.split():
            t = term.lower()
            if t in ("approved", "rejected", "undecided"):
                ok = self.state(item) == t
            elif t == "edited":
                d = self._decisions.get(item.id)
                ok = d is not None and d.edited is not None
            elif m := _SCORE.match(t):
                ok = item.score is not None and _OPS[m.group(1)](item.score, float(m.group(2)))
            elif ":" in t:
                key, _, value = t.partition(":")
                if key == "doc":
                    ok = value in item.doc.lower()
                elif key == "task":
                    ok = value in item.task.lower()
                elif key == "split":
                    ok = item.split == value
                elif key == "pool":
                    ok = item.pool == value
                elif key == "reason":
                    d = self._decisions.get(item.id)
                    ok = value in (item.generation_reason or "").lower() or value in ((d.reason or "") if d else "").lower()
                else:
                    ok = t in self._haystack(item)
            else:
                ok = t in self._haystack(item)
            if not ok:
                return False
        return True

    def _haystack(self, item: Item) -> str:
        row = self.current(item)
        return f"{question_of(row)}\n{answer_of(row)}".lower()

    def filter(self, query: str = "") -> list[Item]:
        return [it for it in self.items if self.matches(it, query)]

    # ------------------------------------------------------------------ deciding (each one durable at once)

    def _refresh(self, sample_id: str | None) -> None:
        if sample_id is None:
            return
        d = self.store.get(sample_id)
        if d is None:
            self._decisions.pop(sample_id, None)
        else:
            self._decisions[sample_id] = d

    def approve(self, sample_id: str) -> None:
        self.store.decide(sample_id, "approved")
        self._refresh(sample_id)

    def reject(self, sample_id: str, reason: str | None = None) -> None:
        self.store.decide(sample_id, "rejected", reason=reason or None)
        self._refresh(sample_id)

    def reset(self, sample_id: str) -> None:
        self.store.decide(sample_id, "undecided")
        self._refresh(sample_id)

    def edit(self, sample_id: str, question: str, answer: str) -> None:
        """Replace the question and the answer of a sample (the original is kept in the store)."""
        item = self.by_id[sample_id]
        edited = with_question_answer(self.current(item), question, answer)
        self.store.edit(sample_id, edited, item.row)
        self._refresh(sample_id)

    def undo(self) -> str | None:
        sample_id = self.store.undo()
        self._refresh(sample_id)
        return sample_id

    def approve_above(self, threshold: float, items: list[Item] | None = None) -> int:
        """Approve every undecided sample (of `items`, default all of the dataset pool) scoring >= threshold."""
        pick = [it.id for it in (items if items is not None else self.items)
                if it.pool == "dataset" and self.state(it) == "undecided" and it.score is not None
                and it.score >= threshold]
        for sid in pick:
            self.approve(sid)
        return len(pick)

    def reject_document(self, doc: str, reason: str | None = None) -> int:
        """Reject every sample of the dataset pool that comes from `doc`."""
        pick = [it.id for it in self.items if it.pool == "dataset" and it.doc == doc and self.state(it) != "rejected"]
        for sid in pick:
            self.reject(sid, reason or f"document {doc} rejected")
        return len(pick)

    def add_seed(self, question: str, answer: str) -> dict[str, Any]:
        """Write a seed instruction to the seeds file (the next generate run uses it and re-runs).

        Raises:
            InputError: no seeds file is configured, or the question or answer is empty.
        """
        if self.seeds_path is None:
            raise InputError("no seeds file: set `synthetic_data.seeds`")
        row = seed_row(question, answer)
        append_seeds(self.seeds_path, [row])
        return row

    # ------------------------------------------------------------------ the result

    def curated(self, undecided: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, int]]:
        """(kept samples, dropped samples, counts) after the decisions and the `undecided` policy.

        Kept: approved (edited version if edited), rescued (approved from the rejected pool), and
        undecided ones under `keep`. Every kept sample carries `meta.curation` (decision, who, when,
        edited, rescued); dropped ones carry `meta.rejected` with `stage: curation`.

        Raises:
            InputError: `undecided: fail` with undecided samples left (how many, and how to decide them).
        """
        if undecided not in UNDECIDED_POLICIES:
            raise ValueError(f"undecided must be one of {UNDECIDED_POLICIES}, got {undecided!r}")
        counts = self.counts()
        if undecided == "fail" and counts["undecided"]:
            raise InputError(f"curation: {counts['undecided']} samples are undecided and `curation.undecided` is fail",
                             hint="decide them with `mason curate PIPELINE`, or set `curation.undecided: keep|drop`")
        kept, dropped = [], []
        for item in self.items:
            d = self._decisions.get(item.id)
            state = d.decision if d else "undecided"
            row = copy.deepcopy(self.current(item))
            meta = row.setdefault("meta", {})
            if item.pool == "rejected":
                if state != "approved":
                    continue  # still rejected by generation: it stays in generate's rejected.jsonl
                meta.pop("rejected", None)
            note = {"decision": state, "edited": bool(d and d.edited is not None), "rescued": item.pool == "rejected"}
            if d is not None:
                note.update(by=d.who, at=d.at)
            if state == "rejected" or (state == "undecided" and undecided == "drop"):
                meta["rejected"] = {"reason": (d.reason if d and d.reason else f"curation: {state}"), "stage": "curation"}
                dropped.append(row)
                continue
            meta["curation"] = note
            kept.append(row)
        counts["kept"], counts["dropped"] = len(kept), len(dropped)
        counts["undecided_" + ("kept" if undecided == "keep" else "dropped")] = counts["undecided"]
        return kept, dropped, counts
