"""Train/eval split by document, balancing by task weights and caps, contamination."""

from __future__ import annotations

from collections import Counter

import pytest

from mason.data.contamination import contamination
from mason.generate.balance import balance, split_by_document


def sample(sid: str, doc: str, task: str = "question_answering", question: str | None = None,
           answer: str = "An answer with enough words in it.", judge: float | None = None) -> dict:
    question = question or f"Question number {sid} about document {doc}?"
    return {"id": sid,
            "messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
            "meta": {"source": {"doc": doc, "chunk": f"{doc}#0", "span": [0, 10]}, "task": task,
                     "teacher": "t", "scores": {} if judge is None else {"judge": judge}, "split": None}}


def corpus(n_docs: int = 40, per_doc: int = 5) -> list[dict]:
    return [sample(f"{d}-{i}", f"docs/{d}.md") for d in range(n_docs) for i in range(per_doc)]


def splits(samples):
    by_doc: dict[str, set[str]] = {}
    for s in samples:
        by_doc.setdefault(s["meta"]["source"]["doc"], set()).add(s["meta"]["split"])
    return by_doc


def test_split_keeps_documents_whole_and_fraction_right():
    samples = corpus()
    split_by_document(samples, eval_fraction=0.25, seed=3)
    by_doc = splits(samples)
    assert all(len(v) == 1 for v in by_doc.values())
    eval_docs = [d for d, v in by_doc.items() if v == {"eval"}]
    assert len(eval_docs) == 10


def test_split_is_deterministic_and_order_free():
    a, b = corpus(), list(reversed(corpus()))
    split_by_document(a, 0.2, seed=1)
    split_by_document(b, 0.2, seed=1)
    assert {s["id"]: s["meta"]["split"] for s in a} == {s["id"]: s["meta"]["split"] for s in b}
    c = corpus()
    split_by_document(c, 0.2, seed=2)
    assert {s["id"]: s["meta"]["split"] for s in a} != {s["id"]: s["meta"]["split"] for s in c}


def test_split_small_corpora():
    two = corpus(n_docs=2)
    split_by_document(two, 0.01, seed=0)
    assert sorted(v.pop() for v in splits(two).values()) == ["eval", "train"]
    one = corpus(n_docs=1)
    split_by_document(one, 0.5, seed=0)
    assert {s["meta"]["split"] for s in one} == {"train"}
    none = corpus(n_docs=5)
    split_by_document(none, 0.0, seed=0)
    assert {s["meta"]["split"] for s in none} == {"train"}
    with pytest.raises(ValueError):
        split_by_document(none, 1.0, seed=0)


def mixed() -> list[dict]:
    out = []
    for d in range(20):
        for i in range(5):
            out.append(sample(f"qa-{d}-{i}", f"d{d}", "question_answering", judge=float(i)))
            out.append(sample(f"sum-{d}-{i}", f"d{d}", "summarization", judge=float(i)))
    return out


def test_balance_follows_weights():
    kept, dropped = balance(mixed(), target=40, task_weights={"question_answering": 3, "summarization": 1}, seed=0)
    assert Counter(s["meta"]["task"] for s in kept) == {"question_answering": 30, "summarization": 10}
    assert len(kept) + len(dropped) == 200
    assert {reason for _, reason in dropped} == {"over_target"}


def test_balance_prefers_higher_scores():
    kept, _ = balance(mixed(), target=40, task_weights={"question_answering": 1, "summarization": 1}, seed=0)
    assert all(s["meta"]["scores"]["judge"] == 4.0 for s in kept)


def test_balance_caps_and_redistribution():
    kept, dropped = balance(mixed(), target=100, task_weights={"question_answering": 1, "summarization": 1},
                            max_per_document=2, max_per_task=30, seed=0)
    per_doc = Counter(s["meta"]["source"]["doc"] for s in kept)
    per_task = Counter(s["meta"]["task"] for s in kept)
    assert max(per_doc.values()) <= 2
    assert max(per_task.values()) <= 30
    assert len(kept) == 40  # 20 documents x 2
    reasons = Counter(reason for _, reason in dropped)
    assert reasons["max_per_document"] > 0
    # a task that runs out hands its share to the others
    few = mixed()[:10] + [s for s in mixed() if s["meta"]["task"] == "summarization"]
    kept, _ = balance(few, target=50, task_weights={"question_answering": 1, "summarization": 1}, seed=0)
    assert Counter(s["meta"]["task"] for s in kept) == {"question_answering": 5, "summarization": 45}


def test_balance_drops_unrequested_tasks_and_is_deterministic():
    samples = mixed() + [sample("r1", "d0", "reasoning")]
    kept, dropped = balance(samples, target=20, task_weights={"question_answering": 1}, seed=5)
    assert {s["meta"]["task"] for s in kept} == {"question_answering"}
    assert ("r1", "task_not_requested") in {(s["id"], r) for s, r in dropped}
    # 20 samples share the top judge score: which 10 are kept is decided by the seed
    kept, _ = balance(samples, target=10, task_weights={"question_answering": 1}, seed=5)
    again, _ = balance(samples, target=10, task_weights={"question_answering": 1}, seed=5)
    assert [s["id"] for s in kept] == [s["id"] for s in again]
    other, _ = balance(samples, target=10, task_weights={"question_answering": 1}, seed=6)
    assert [s["id"] for s in kept] != [s["id"] for s in other]  # ties broken by the seed


def test_contamination_detects_a_copied_question():
    train = [sample("t1", "a", question="How do I reset the X200 controller after a power failure in the night?"),
             sample("t2", "a", question="What is the torque of the Model 7?")]
    evals = [sample("e1", "b", question="How do I reset the X200 controller after a power failure in the night?"),
             sample("e2", "b", question="Which oil does the gearbox of the conveyor need in winter conditions?"),
             sample("e3", "b", question="What is the torque of the Model 7?")]
    report = contamination(train, evals, n=8)
    assert report["contaminated"] == 2
    assert report["share"] == pytest.approx(2 / 3, abs=1e-3)
    assert report["worst"][0]["overlap"] == 1.0
    assert {w["id"]: w["train_id"] for w in report["worst"]} == {"e1": "t1", "e3": "t2"}


def test_contamination_zero_for_disjoint_sets():
    train = [sample("t1", "a", question="How do I reset the X200 controller after a power failure?",
                    answer="Hold the reset button for ten seconds until the light blinks green.")]
    evals = [sample("e1", "b", question="Which oil does the gearbox of the conveyor need in winter?")]
    report = contamination(train, evals, n=8)
    assert report["contaminated"] == 0
    assert report["share"] == 0.0
    assert report["worst"] == []
    # an eval question copied from a training *answer* counts too
    leaked = [sample("e2", "b", question="Hold the reset button for ten seconds until the light blinks green?")]
    assert contamination(train, leaked, n=8)["contaminated"] == 1
