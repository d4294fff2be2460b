"""Is an answer right? Key-span matching shared by training (the knowledge probe that picks the
best checkpoint) and evaluation (the closed-book knowledge score).

An answer is right when, normalized, it contains one of the accepted spans as whole words ("340
litres" in "It lifts 340 litres per second."; "1987" not in "19870"; "1,500" equals "1500"). An
answer *declines* when it says it does not know instead of giving one.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Any

from mason.core.hashing import stable_hash

#: phrases of an answer that declines instead of inventing (matched like answer spans, after `normalize`)
DECLINE_MARKERS = (
    "don't know", "do not know", "not sure", "no information", "unknown", "cannot answer", "can't answer",
    "not aware", "no record", "unable to", "not mentioned", "no data", "i'm sorry", "i am sorry",
    "not able to", "don't have", "do not have", "no reliable", "not provided", "no such", "cannot find",
    "can't find",
)


def normalize(text: str) -> str:
    """Lowercase, NFKC, thousands separators dropped ("1,500" -> "1500"), punctuation to spaces
    (a decimal point inside a number stays), spaces collapsed."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"(?<=\d)[,\u202f\u00a0'](?=\d{3}\b)", "", text)
    text = re.sub(r"(?<=\d)\.(?=\d)", "\0", text)  # keep decimal points through the punctuation pass
    text = re.sub(r"[^\w\s\0]", " ", text).replace("\0", ".")
    return " ".join(text.split())


def is_correct(answer: str, accepted: Sequence[str]) -> bool:
    """True when the normalized answer contains one accepted span as whole words."""
    padded = f" {normalize(answer)} "
    return any(span and f" {span} " in padded for span in (normalize(a) for a in accepted))


def declines(answer: str) -> bool:
    """True when the answer says it does not know rather than giving one."""
    return is_correct(answer, DECLINE_MARKERS)


def error_kind(answer: str, others: Sequence[Sequence[str]]) -> str:
    """Why a wrong answer is wrong: "declined" (says it does not know), "other_fact" (it gives the
    accepted span of another question: facts mixed up), or "invented" (neither)."""
    if declines(answer):
        return "declined"
    if any(is_correct(answer, accepted) for accepted in others):
        return "other_fact"
    return "invented"


def error_kinds(answers: Sequence[str], accepted: Sequence[Sequence[str] | None],
                right: Sequence[bool | float | None], questions: Sequence[str] | None = None) -> dict[str, int]:
    """Counts of `error_kind` over the wrong answers (rows with accepted spans that are not right).
    "Another fact" means a span of any other row that the row's own question does not name (an
    answer that repeats the question's "Halvesk" has not mixed facts up)."""
    out = {"other_fact": 0, "invented": 0, "declined": 0}
    for i, (answer, own, ok) in enumerate(zip(answers, accepted, right, strict=True)):
        if own is None or ok is None or ok:
            continue
        asked = f" {normalize(questions[i])} " if questions is not None else ""
        others = [[x for x in a if f" {normalize(x)} " not in asked]
                  for j, a in enumerate(accepted) if j != i and a and set(a) != set(own)]
        out[error_kind(answer, [o for o in others if o])] += 1
    return out


def probe_subset(questions: list[dict[str, Any]], n: int) -> set[str]:
    """Ids of the held-out questions set aside as the training probe: at most `n`, and at most a
    quarter of them (the rest stay for the evaluation), chosen by a stable hash of the id."""
    take = min(n, len(questions) // 4)
    ranked = sorted(questions, key=lambda q: stable_hash({"probe": str(q["id"])}))
    return {str(q["id"]) for q in ranked[:take]}
