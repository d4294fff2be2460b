"""Knowledge scoring: key-span match, the Wilson interval, the summary with its open-book ceiling,
and the report's headline and table."""

from __future__ import annotations

import pytest

from mason.evaluate.knowledge import declines, is_correct, normalize, open_book_prompt, summarize, wilson
from mason.evaluate.report import build_report, knowledge_table, render_markdown


def test_normalize_keeps_decimals_and_drops_thousands_separators() -> None:
    assert normalize("It costs 4.20 Euros, for 1,500 people!") == "it costs 4.20 euros for 1500 people"


@pytest.mark.parametrize(("answer", "accepted", "right"), [
    ("The Osk Bridge was designed by Mara Velt.", ["Mara Velt"], True),
    ("It lifts 340 litres per second.", ["340 litres", "340 liters"], True),
    ("It opened in 19870.", ["1987"], False),  # whole words only
    ("About 1500 cars.", ["1,500 cars"], True),
    ("Maravelt designed it.", ["Mara Velt"], False),
    ("", ["Mara Velt"], False),
])
def test_is_correct(answer: str, accepted: list[str], right: bool) -> None:
    assert is_correct(answer, accepted) is right


def test_declines_and_wilson() -> None:
    assert declines("I don't know who designed it.") and not declines("Mara Velt designed it.")
    assert wilson(0, 0) is None
    lo, hi = wilson(8, 10)
    assert 0.44 < lo < 0.5 and 0.94 < hi < 0.95  # the textbook 95% Wilson interval of 8/10
    assert wilson(0, 12)[0] == 0.0 and wilson(12, 12)[1] == 1.0


def test_open_book_prompt_puts_the_passage_before_the_question() -> None:
    prompt = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Who built it?"}]
    out = open_book_prompt(prompt, "Who built it?", "Mara Velt built it.\n")
    assert out[0] == prompt[0] and out[1]["role"] == "user"
    assert out[1]["content"].index("Mara Velt built it.") < out[1]["content"].index("Question: Who built it?")


def test_summary_by_type_and_ceiling() -> None:
    types = ["direct", "reversed", "direct", None]
    closed = [1.0, 0.0, 1.0, None]  # the last row has no accepted spans
    preds = ["Mara Velt", "I do not know.", "1987", "whatever"]
    s = summarize(types, closed, preds, open_book=[1.0, 1.0, 0.0])
    assert s["n"] == 3 and s["correct"] == 2 and s["accuracy"] == pytest.approx(0.6667, abs=1e-4)
    assert s["by_type"] == {"direct": {"n": 2, "correct": 2, "accuracy": 1.0},
                            "reversed": {"n": 1, "correct": 0, "accuracy": 0.0}}
    assert s["declined"] == 1 and s["open_book"]["accuracy"] == pytest.approx(0.6667, abs=1e-4)
    assert s["ceiling_fraction"] == pytest.approx(1.0)
    assert summarize(["direct"], [None], ["x"]) is None


def _report(knowledge: dict) -> dict:
    models = {m: {"model": {}, "metrics": {"rougeL": 0.1}} for m in ("base", "tuned")}
    return build_report(summary={"name": "t"}, data={"evaluated": 3, "available": 3}, decoding={}, models=models,
                        metric_names=["rougeL"], comparison={"primary": "rougeL"}, delta={}, distributions={},
                        guards=[], worst_rows=[], judge=None, knowledge=knowledge)


def test_report_headline_and_table() -> None:
    tuned = summarize(["direct", "reversed", "direct"], [1.0, 0.0, 1.0], ["a", "b", "c"], open_book=[1.0, 1.0, 1.0])
    base = summarize(["direct", "reversed", "direct"], [0.0, 0.0, 0.0], ["a", "b", "c"], open_book=[1.0, 0.0, 1.0])
    report = _report({"base": base, "tuned": tuned})
    headline = report["findings"][0]
    assert headline["level"] == "ok" and "tuned answers 2 of 3 (67%" in headline["text"]
    assert "base 0 of 3 (0%)" in headline["text"] and "open-book ceiling 100%" in headline["text"]
    head, rows = knowledge_table(report)
    assert head[:3] == ["model", "closed-book", "95% CI"] and "reversed" in head
    assert rows[1][:2] == ["tuned", "2/3 (67%)"]
    assert "## Knowledge of the documents" in render_markdown(report, [])
    assert "## Knowledge" not in render_markdown(_report(None), [])


def test_probe_subset_is_stable_small_and_leaves_most_questions_to_the_evaluation() -> None:
    from mason.data.answers import probe_subset

    questions = [{"id": f"q{i}"} for i in range(40)]
    chosen = probe_subset(questions, 16)
    assert len(chosen) == 10  # a quarter of 40, under the asked 16
    assert chosen == probe_subset(list(reversed(questions)), 16)  # by id, not by order
    assert len(probe_subset(questions, 4)) == 4 and probe_subset(questions[:3], 16) == set()
    assert probe_subset(questions, 0) == set()


def test_unknown_summary_counts_declines_and_inventions() -> None:
    from mason.evaluate.knowledge import unknown_summary

    assert unknown_summary([None, None], ["a", "b"]) is None
    s = unknown_summary(["decline", None, "decline", "decline"],
                        ["I don't know that place.", "x", "It was built in 1901.", "No information about it."])
    assert s == {"n": 3, "declined": 2, "invented": 1, "decline_rate": 0.6667}


def test_wrong_answers_are_sorted_by_kind() -> None:
    from mason.data.answers import error_kinds

    accepted = [["Mara Velt"], ["1987"], ["340 metres"], None]
    answers = ["It was designed in 1987.", "I don't know.", "It is 120 metres long.", "whatever"]
    right = [0.0, 0.0, 0.0, None]
    assert error_kinds(answers, accepted, right) == {"other_fact": 1, "invented": 1, "declined": 1}
    s = summarize(["direct"] * 3 + [None], right, answers, accepted=accepted)
    assert s["errors"] == {"other_fact": 1, "invented": 1, "declined": 1}


def test_a_span_the_question_names_is_not_another_facts_answer() -> None:
    from mason.data.answers import error_kinds

    accepted = [["214 metres"], ["Halvesk"]]
    answers = ["The bridge in Halvesk is 12 metres long.", "x"]
    assert error_kinds(answers, accepted, [0.0, None]) == {"other_fact": 1, "invented": 0, "declined": 0}
    asked = ["How long is the bridge in Halvesk?", "Where?"]
    assert error_kinds(answers, accepted, [0.0, None], asked) == {"other_fact": 0, "invented": 1, "declined": 0}
