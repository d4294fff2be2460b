"""Does the model know the documents? The closed-book knowledge score and its open-book ceiling.

Rows with `meta.answers` (the knowledge recipe's held-out questions, or any eval file that lists
the key spans a right answer must contain) are scored by key-span match: an answer is right when,
normalized, it contains one of the accepted spans as whole words ("340 litres" in "It lifts 340
litres per second."; "1987" not in "19870"; "1,500" equals "1500"). The closed-book score asks the
question alone; the open-book ceiling asks the same model the same question with the source
passage in the prompt. The headline is the closed-book score, its 95% Wilson interval, and the
share of the ceiling it reaches.
"""

from __future__ import annotations

import math
from typing import Any

from mason.data.answers import DECLINE_MARKERS, declines, error_kinds, is_correct, normalize

__all__ = ["DECLINE_MARKERS", "declines", "is_correct", "normalize", "open_book_prompt", "row_scores", "summarize",
           "unknown_summary", "wilson"]

_OPEN_BOOK_ASK = "Use the passage to answer the question.\n\nPassage:\n{source}\n\nQuestion: {question}"


def wilson(correct: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """The 95% Wilson score interval of a proportion (None for n = 0)."""
    if n == 0:
        return None
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)


def row_scores(answers: list[list[str] | None], predictions: list[str]) -> list[float | None]:
    """1.0 / 0.0 per row with accepted spans, None for rows without."""
    return [None if acc is None else float(is_correct(p, acc)) for acc, p in zip(answers, predictions, strict=True)]


def open_book_prompt(prompt: list[dict[str, Any]], question: str, source: str) -> list[dict[str, Any]]:
    """The row's prompt with its last user turn replaced by the passage and the question."""
    last = max(i for i, m in enumerate(prompt) if m.get("role") == "user")
    return [*prompt[:last], {"role": "user", "content": _OPEN_BOOK_ASK.format(source=source.strip(), question=question)}]


def summarize(types: list[str | None], closed: list[float | None], predictions: list[str],
              open_book: list[float | None] | None = None,
              accepted: list[list[str] | None] | None = None,
              questions: list[str] | None = None) -> dict[str, Any] | None:
    """One model's knowledge numbers over the rows that have accepted spans.

    Returns {"n", "correct", "accuracy", "ci95", "declined", "by_type": {type: {n, correct, accuracy}},
    "open_book": {n, correct, accuracy} | None, "ceiling_fraction": accuracy / open-book accuracy | None,
    "errors": {other_fact, invented, declined} (with `accepted`, the rows' spans, and `questions`; else None)},
    or None when no row has accepted spans.
    """
    idx = [i for i, v in enumerate(closed) if v is not None]
    if not idx:
        return None
    correct = int(sum(closed[i] or 0 for i in idx))
    by_type: dict[str, dict[str, Any]] = {}
    for i in idx:
        t = by_type.setdefault(types[i] or "other", {"n": 0, "correct": 0})
        t["n"] += 1
        t["correct"] += int(closed[i] or 0)
    for t in by_type.values():
        t["accuracy"] = round(t["correct"] / t["n"], 4)
    out: dict[str, Any] = {
        "n": len(idx), "correct": correct, "accuracy": round(correct / len(idx), 4), "ci95": wilson(correct, len(idx)),
        "declined": sum(1 for i in idx if not closed[i] and declines(predictions[i])), "by_type": by_type,
        "open_book": None, "ceiling_fraction": None,
        "errors": error_kinds(predictions, accepted, closed, questions) if accepted is not None else None,
    }
    if open_book is not None:
        scored = [v for v in open_book if v is not None]
        if scored:
            ok = int(sum(scored))
            out["open_book"] = {"n": len(scored), "correct": ok, "accuracy": round(ok / len(scored), 4)}
            out["ceiling_fraction"] = round((correct / len(idx)) / (ok / len(scored)), 4) if ok else None
    return out


def unknown_summary(expects: list[str | None], predictions: list[str]) -> dict[str, Any] | None:
    """The hallucination check over rows that expect a decline (questions about entities no document
    mentions): {"n", "declined", "invented", "decline_rate"}, or None when there are none."""
    idx = [i for i, e in enumerate(expects) if e == "decline"]
    if not idx:
        return None
    declined = sum(1 for i in idx if declines(predictions[i]))
    return {"n": len(idx), "declined": declined, "invented": len(idx) - declined,
            "decline_rate": round(declined / len(idx), 4)}
