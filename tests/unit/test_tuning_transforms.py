"""mason.tuning transforms: exact outputs for chat SFT samples, text rows, preference pairs from scores
and explicit pairs, tool-call trajectories, DSPy examples; dataset rows read as records."""

from __future__ import annotations

import json

import pytest

from mason.core.errors import InputError
from mason.data.formats import to_contract
from mason.tuning import to_dspy_examples, to_preferences, to_sft, to_trajectories
from mason.tuning.records import make_record, record_from_row, text_of, trace_ids

URI = "trace://langfuse/support/qa"
SYSTEM = {"role": "system", "content": "Be brief."}
CALL = {"id": "call_w1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}
TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


def qa(tid: str, question: str, answer: str | None, score: float | None = None) -> dict:
    messages = [SYSTEM, {"role": "user", "content": question}]
    if answer is not None:
        messages.append({"role": "assistant", "content": answer})
    return make_record(tid, input={"question": question}, output=answer, messages=messages,
                       scores={} if score is None else {"helpfulness": score},
                       metadata={"source": {"uri": URI, "trace": tid}})


def agent() -> dict:
    messages = [SYSTEM, {"role": "user", "content": "Can I lay bricks in Paris today?"},
                {"role": "assistant", "content": "", "tool_calls": [CALL]},
                {"role": "tool", "tool_call_id": "call_w1", "content": "{\"temp_c\": 21}"},
                {"role": "assistant", "content": "Yes: 21 °C."}]
    rec = make_record("t3", input={"question": "Can I lay bricks in Paris today?"}, output="Yes: 21 °C.",
                      messages=messages, scores={"helpfulness": 1.0, "resolved": True},
                      metadata={"source": {"uri": URI, "trace": "t3"}})
    rec["tools"] = [TOOL]
    return rec


def test_to_sft_gives_contract_samples_and_keeps_each_conversation_once():
    records = [qa("t1", "What holds bricks?", "Mortar.", 0.9), qa("t9", "What holds bricks?", "Mortar.", 0.8),
               qa("t2", "Unanswered?", None), qa("t4", "Empty?", "  ")]
    assert to_sft(records) == [{
        "id": "c7ce70bb2abb7587e1d7cc890ea238bee86e223d",
        "messages": [SYSTEM, {"role": "user", "content": "What holds bricks?"},
                     {"role": "assistant", "content": "Mortar."}],
        "meta": {"source": {"uri": URI, "trace": "t1", "traces": ["t1", "t9"]}, "scores": {"helpfulness": 0.9}},
    }]


def test_to_sft_keeps_tool_calls_tools_and_filters_by_score():
    rows = to_sft([qa("t1", "Q?", "Low.", 0.2), agent()], score="helpfulness", min_score=0.5,
                  system="Answer in English.")
    assert rows == [{
        "id": rows[0]["id"],
        "messages": [{"role": "system", "content": "Answer in English."},
                     {"role": "user", "content": "Can I lay bricks in Paris today?"},
                     {"role": "assistant", "content": "", "tool_calls": [CALL]},
                     {"role": "tool", "content": "{\"temp_c\": 21}", "tool_call_id": "call_w1"},
                     {"role": "assistant", "content": "Yes: 21 °C."}],
        "tools": [TOOL],
        "meta": {"source": {"uri": URI, "trace": "t3"}, "scores": {"helpfulness": 1.0, "resolved": True}},
    }]
    # the data contract reads it as it is (what TRL_SFT hands the training stage)
    assert to_contract(rows[0])["messages"] == rows[0]["messages"]


def test_to_sft_text_rows():
    assert to_sft([qa("t1", "What holds bricks?", "Mortar.")], format="text") == [{
        "id": "c6c12a5df3c91a71e0480e20f2268023725c9aa9", "text": "What holds bricks?\n\nMortar.",
        "meta": {"source": {"uri": URI, "trace": "t1"}, "scores": {}}}]
    with pytest.raises(InputError, match="'chat' or 'text'"):
        to_sft([], format="sharegpt")


def test_to_preferences_pairs_the_best_against_the_worst_answer_to_the_same_prompt():
    records = [qa("t1", "What holds bricks?", "Mortar.", 0.9), qa("t2", "What holds bricks?", "Glue.", 0.2),
               qa("t3", "What holds bricks?", "Cement paste.", 0.5), qa("t4", "Alone?", "Yes.", 1.0),
               qa("t5", "Unscored?", "Maybe.")]
    prompt = [SYSTEM, {"role": "user", "content": "What holds bricks?"}]
    assert to_preferences(records) == [{
        "id": "26843a9fd6bdb60500536afa9d081357bfe6f977", "prompt": prompt,
        "chosen": [{"role": "assistant", "content": "Mortar."}],
        "rejected": [{"role": "assistant", "content": "Glue."}],
        "meta": {"source": {"uri": URI, "chosen_trace": "t1", "rejected_trace": "t2"},
                 "scores": {"chosen": 0.9, "rejected": 0.2}},
    }]
    every = to_preferences(records, pairs="all", margin=0.3, score="helpfulness")
    assert [(r["meta"]["source"]["chosen_trace"], r["meta"]["source"]["rejected_trace"]) for r in every] == [
        ("t1", "t3"), ("t1", "t2")]  # 0.5 vs 0.2 is not more than the margin
    assert every[0]["meta"]["score"] == "helpfulness"
    # the training stage reads the rows as preference samples
    sample = to_contract(every[0])
    assert sample["chosen"] == {"role": "assistant", "content": "Mortar."} and sample["messages"] == prompt


def test_to_preferences_one_turn_prompts_are_plain_strings_and_explicit_pairs_pass_through():
    plain = [make_record("a", input="2+2?", output="4", scores={"s": 1}),
             make_record("b", input="2+2?", output="5", scores={"s": 0})]
    assert to_preferences(plain) == [{"id": "1e3d7d450bbe2e37589e4633cf17d34aae4035cf", "prompt": "2+2?",
                                      "chosen": "4", "rejected": "5",
                                      "meta": {"source": {"chosen_trace": "a", "rejected_trace": "b"},
                                               "scores": {"chosen": 1.0, "rejected": 0.0}}}]
    row = record_from_row({"prompt": "Capital of France?", "chosen": "Paris", "rejected": "Lyon"},
                          source="pairs.jsonl", line=3)
    assert to_preferences([row]) == [{"id": row["id"], "prompt": "Capital of France?", "chosen": "Paris",
                                      "rejected": "Lyon",
                                      "meta": {"source": {"dataset": "pairs.jsonl", "line": 3}}}]


def test_to_trajectories_keeps_tool_calls_and_results_in_order():
    rows = to_trajectories([qa("t1", "Q?", "A."), agent()], tools_only=True, score="helpfulness")
    assert rows == [{
        "id": "t3", "messages": agent()["messages"], "tools": [TOOL],
        "steps": [{"call_id": "call_w1", "tool": "get_weather", "arguments": "{\"city\": \"Paris\"}",
                   "result": "{\"temp_c\": 21}"}],
        "reward": 1.0,
        "meta": {"source": {"uri": URI, "trace": "t3"}, "scores": {"helpfulness": 1.0, "resolved": True}},
    }]
    assert len(to_trajectories([qa("t1", "Q?", "A.")])) == 1


def test_to_dspy_examples_maps_fields_and_marks_inputs():
    dspy = pytest.importorskip("dspy")
    records = [qa("t1", "What holds bricks?", "Mortar."), make_record("t2", input="Plain question?", output={"answer": "Yes."}),
               qa("t3", "No answer?", None)]
    examples = to_dspy_examples(records, signature="question -> answer")
    assert [e.toDict() for e in examples] == [{"question": "What holds bricks?", "answer": "Mortar."},
                                              {"question": "Plain question?", "answer": "Yes."}]
    assert all(isinstance(e, dspy.Example) and set(e.inputs().keys()) == {"question"} for e in examples)
    two = to_dspy_examples([make_record("t", input={"context": "c", "question": "q"}, output="a")],
                           input_fields=["context", "question"], output_field="answer")
    assert two[0].toDict() == {"context": "c", "question": "q", "answer": "a"}
    with pytest.raises(InputError, match="no record has the fields"):
        to_dspy_examples(records, input_fields=["context", "question"], output_field="answer")


def test_dataset_rows_become_records():
    row = {"messages": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello."}],
           "meta": {"scores": {"q": 0.5}}}
    rec = record_from_row(row, source="d.jsonl", line=1)
    assert rec == {"id": rec["id"], "input": "Hi?", "output": "Hello.", "messages": row["messages"], "tool_calls": [],
                   "scores": {"q": 0.5}, "metadata": {"source": {"dataset": "d.jsonl", "line": 1}}}
    again = record_from_row(json.loads(json.dumps(rec)), source="records.jsonl", line=7)  # a saved record: kept
    assert again == rec
    assert trace_ids({"meta": {"source": {"trace": "t1", "traces": ["t1", "t2"]}}}) == ["t1", "t2"]


@pytest.mark.parametrize(("value", "text"), [
    ("plain", "plain"), ({"question": "q?"}, "q?"), ({"role": "assistant", "content": "hi"}, "hi"),
    ([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "b"), ({"x": 1, "y": 2}, '{"x": 1, "y": 2}'),
    (None, ""),
])
def test_text_of(value, text):
    assert text_of(value) == text
