"""Eval contamination: how much of the eval questions' text the training samples already contain.

Used where a split is made (generate) and where it is scored (evaluation), so both report the same number.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from mason.data.quality import message_text, question_text, words


def _sample_text(sample: dict[str, Any]) -> str:
    parts = [message_text(m) for m in sample.get("messages", []) if m.get("role") != "system"]
    if sample.get("chosen") is not None:
        parts.append(message_text(sample["chosen"]))
    return "\n".join(parts)


def _ngrams(tokens: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)}


def contamination(train: list[dict[str, Any]], eval: list[dict[str, Any]], n: int = 8,
                  worst: int = 5) -> dict[str, Any]:
    """How much of the eval questions' text already appears in the training samples.

    An eval question is contaminated when it shares at least one word n-gram (case-folded,
    punctuation ignored) with any training sample's text (user, assistant and `chosen` turns),
    or when its whole normalized text equals a training question (this catches copied questions
    shorter than n words).

    Args:
        train, eval: samples of the two splits.
        n: n-gram length in words.
        worst: how many of the most overlapping eval questions to report.

    Returns:
        {"n", "eval_questions", "contaminated", "share", "unchecked" (questions shorter than n
        words, checked only for a whole-question match), "worst": [{"id", "question", "overlap"
        (share of the question's n-grams found in train), "train_id"}]}.

    Raises:
        ValueError: n < 1.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    owner: dict[tuple[str, ...], str] = {}
    questions: dict[str, str] = {}
    for sample in train:
        sid = str(sample.get("id"))
        for gram in _ngrams(words(_sample_text(sample)), n):
            owner.setdefault(gram, sid)
        questions.setdefault(" ".join(words(question_text(sample))), sid)
    hits: list[dict[str, Any]] = []
    unchecked = 0
    for sample in eval:
        question = question_text(sample)
        toks = words(question)
        grams = _ngrams(toks, n)
        unchecked += not grams
        found = [owner[g] for g in sorted(grams) if g in owner]
        whole = questions.get(" ".join(toks)) if toks else None
        if found or whole:
            overlap = len(found) / len(grams) if grams else 1.0
            hits.append({"id": sample.get("id"), "question": question[:200],
                         "overlap": round(1.0 if whole else overlap, 4),
                         "train_id": whole or Counter(found).most_common(1)[0][0]})
    hits.sort(key=lambda h: (-h["overlap"], str(h["id"])))
    return {
        "n": n,
        "eval_questions": len(eval),
        "contaminated": len(hits),
        "share": round(len(hits) / len(eval), 4) if eval else 0.0,
        "unchecked": unchecked,
        "worst": hits[:worst],
    }
