"""Deduplication: exact (normalized) and near (MinHash LSH) duplicate questions."""

from __future__ import annotations

import pytest

from mason.generate.dedup import Deduplicator, normalize


def sample(sid: str, *user_turns: str) -> dict:
    messages = [{"role": "system", "content": "You are a helpful assistant."}]
    for turn in user_turns:
        messages += [{"role": "user", "content": turn}, {"role": "assistant", "content": "An answer of words."}]
    return {"id": sid, "messages": messages, "meta": {"task": "question_answering"}}


QUESTIONS = [
    "What is the maximum operating temperature of the X200 hydraulic pump in continuous duty?",
    "How do I replace the air filter on the Model 7 compressor without special tools?",
    "Which safety certifications does the warehouse forklift fleet need before the annual inspection?",
    "Why does the conveyor belt slip when the ambient humidity rises above eighty percent?",
]


def test_exact_duplicates_ignore_case_whitespace_and_punctuation():
    dedup = Deduplicator(threshold=0.85)
    assert dedup.check_and_add(sample("a", "What is the X200's max temperature?")) is None
    assert dedup.check_and_add(sample("b", "what is the  x200s max temperature")) == "duplicate"
    assert normalize("  Hello,   WORLD!! ") == "hello world"
    assert dedup.counts == {"kept": 1, "duplicate": 1, "near_duplicate": 0}


def test_near_duplicates_name_the_kept_sample():
    dedup = Deduplicator(threshold=0.7)
    assert dedup.check_and_add(sample("first", QUESTIONS[0])) is None
    reworded = "What is the maximum operating temperature of the X200 hydraulic pump during continuous duty?"
    assert dedup.check_and_add(sample("second", reworded)) == "near_duplicate:first"
    assert len(dedup) == 1


def test_different_enough_questions_are_kept():
    dedup = Deduplicator(threshold=0.85)
    assert [dedup.check_and_add(sample(str(i), q)) for i, q in enumerate(QUESTIONS)] == [None] * 4
    # same words, other subject: below the threshold
    other = "What is the maximum operating temperature of the X300 electric motor in continuous duty?"
    assert dedup.check_and_add(sample("other", other)) is None
    # one word in ten changed is a near duplicate at 0.7, not at 0.85
    edited = QUESTIONS[1].replace("replace", "change")
    assert dedup.check_and_add(sample("edited", edited)) is None
    lenient = Deduplicator(threshold=0.6)
    lenient.check_and_add(sample("orig", QUESTIONS[1]))
    assert lenient.check_and_add(sample("edited", edited)) == "near_duplicate:orig"


def test_lsh_candidates_are_verified_against_the_threshold():
    # One word in nineteen changed: Jaccard 0.84. The LSH at 0.85 still returns the first
    # question as a candidate (with this seed); the exact check must turn it down.
    base = ("What is the maximum operating temperature of the X200 hydraulic pump in continuous duty "
            "mode at sea level")
    edited = base.replace("operating", "lambda")
    dedup = Deduplicator(threshold=0.85, seed=1)
    assert dedup.check_and_add(sample("a", base)) is None
    assert dedup.check_and_add(sample("b", edited)) is None
    assert Deduplicator(threshold=0.8, seed=1).check(sample("b", edited)) is None  # nothing kept yet


def test_multi_turn_uses_the_whole_user_side():
    dedup = Deduplicator(threshold=0.85)
    assert dedup.check_and_add(sample("a", QUESTIONS[0], "And in intermittent duty?")) is None
    assert dedup.check_and_add(sample("b", QUESTIONS[0], "What about the warranty?")) is None
    assert dedup.check_and_add(sample("c", QUESTIONS[0], "and in intermittent duty")) == "duplicate"


def test_check_does_not_add():
    dedup = Deduplicator(threshold=0.85)
    assert dedup.check(sample("a", QUESTIONS[0])) is None
    assert dedup.check(sample("a", QUESTIONS[0])) is None
    dedup.check_and_add(sample("a", QUESTIONS[0]))
    assert dedup.check(sample("b", QUESTIONS[0])) == "duplicate"


def _run(seed: int) -> list[str | None]:
    dedup = Deduplicator(threshold=0.6, seed=seed)
    stream = [sample(f"s{i}", q) for i, q in enumerate(QUESTIONS)]
    stream += [sample(f"v{i}", q.replace("the ", "a ", 1)) for i, q in enumerate(QUESTIONS)]
    stream += [sample(f"w{i}", q.upper()) for i, q in enumerate(QUESTIONS)]
    return [dedup.check_and_add(s) for s in stream]


def test_deterministic():
    first = _run(seed=7)
    assert first == _run(seed=7)
    assert first[:4] == [None] * 4
    assert first[4:8] == [f"near_duplicate:s{i}" for i in range(4)]
    assert first[8:] == ["duplicate"] * 4


def test_bad_arguments():
    with pytest.raises(ValueError):
        Deduplicator(threshold=0)
    with pytest.raises(ValueError):
        Deduplicator(threshold=1.5)
