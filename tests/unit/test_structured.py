"""JSON out of model answers: extraction, repairs, shape validation, ask-and-repair loop."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel, Field

from mason.llm.structured import (
    StructuredOutputError,
    ask_json,
    extract_json,
    validate_shape,
)
from mason.llm.teachers.base import ChatRequest, Completion


class ScriptedClient:
    """A teacher that answers from a script and records every request it gets."""

    model_id = "test/scripted"

    def __init__(self, answers: list[str]):
        self.answers = list(answers)
        self.requests: list[ChatRequest] = []

    async def complete(self, request: ChatRequest) -> Completion:
        self.requests.append(request)
        return Completion(text=self.answers.pop(0), model=self.model_id)


class Pair(BaseModel):
    question: str = Field(min_length=3)
    answer: str = Field(min_length=1)


class Pairs(BaseModel):
    pairs: list[Pair] = Field(min_length=1)


GOOD = '{"pairs": [{"question": "What is X?", "answer": "X is a thing."}]}'


# ---------------------------------------------------------------- extract_json


def test_plain_json_object():
    assert extract_json(GOOD) == {"pairs": [{"question": "What is X?", "answer": "X is a thing."}]}


def test_fenced_json_with_prose_around():
    text = "Sure! Here are the pairs:\n```json\n" + GOOD + "\n```\nLet me know if you need more."
    assert extract_json(text)["pairs"][0]["answer"] == "X is a thing."


def test_prose_before_and_after_without_fence():
    assert extract_json("The JSON is " + GOOD + " and that is all.")["pairs"][0]["question"] == "What is X?"


def test_prose_with_braces_before_the_json():
    # the first "{" is prose; the parser must move on to the real object
    text = "I used the {question, answer} format: " + GOOD
    assert extract_json(text)["pairs"][0]["question"] == "What is X?"


def test_trailing_commas_are_removed():
    # true/null: only the JSON repair can parse this (it is not a Python literal)
    text = '{"pairs": [{"question": "What is X?", "answer": "A, B, and C.", "ok": true,},], "x": null,}'
    assert extract_json(text) == {"pairs": [{"question": "What is X?", "answer": "A, B, and C.", "ok": True}],
                                  "x": None}


def test_smart_quotes_as_delimiters():
    text = ("{\u201cpairs\u201d: [{\u201cquestion\u201d: \u201cWhat is X?\u201d, "
            "\u201canswer\u201d: \u201cIt\u2019s Y.\u201d}]}")
    assert extract_json(text) == {"pairs": [{"question": "What is X?", "answer": "It's Y."}]}


def test_smart_quotes_inside_strings_are_kept():
    text = '{"answer": "He said \u201chello\u201d to me."}'
    assert extract_json(text) == {"answer": "He said \u201chello\u201d to me."}


def test_raw_newline_inside_a_string():
    assert extract_json('{"answer": "line one\nline two"}') == {"answer": "line one\nline two"}


def test_braces_inside_strings_do_not_confuse_matching():
    text = 'x {"answer": "use {{ name }} and }]", "n": 2} y'
    assert extract_json(text) == {"answer": "use {{ name }} and }]", "n": 2}


def test_python_literal_answer():
    assert extract_json("{'pairs': [{'question': 'Q?', 'answer': 'A.'}]}") == {
        "pairs": [{"question": "Q?", "answer": "A."}]}


def test_bare_list():
    assert extract_json('[{"question": "Q?", "answer": "A."}]') == [{"question": "Q?", "answer": "A."}]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("I cannot help with that.", "no JSON object found"),
        ('{"pairs": [{"question": "Q?", "answer": "A."', "cut off"),
        ('{"pairs": [{"question": "Q?" "answer": "A."}]}', "invalid JSON"),
    ],
)
def test_unusable_answers_raise_with_a_specific_message(text, message):
    with pytest.raises(StructuredOutputError, match=message):
        extract_json(text)


# ---------------------------------------------------------------- validate_shape


def test_validate_shape_returns_the_model():
    result = validate_shape(extract_json(GOOD), Pairs)
    assert isinstance(result, Pairs) and result.pairs[0].answer == "X is a thing."


def test_validate_shape_names_the_missing_field():
    with pytest.raises(StructuredOutputError) as e:
        validate_shape({"pairs": [{"question": "What is X?"}]}, Pairs)
    assert "pairs.0.answer" in str(e.value) and "required" in str(e.value).lower()
    assert "\n" not in str(e.value)  # one short line: it is shown to the model


def test_validate_shape_wraps_a_bare_list_into_the_only_field():
    assert validate_shape([{"question": "What is X?", "answer": "Y."}], Pairs).pairs[0].answer == "Y."


def test_validate_shape_rejects_a_scalar():
    with pytest.raises(StructuredOutputError, match="expected a JSON object with keys pairs"):
        validate_shape("just text", Pairs)


# ---------------------------------------------------------------- ask_json


def run(coro):
    return asyncio.run(coro)


MESSAGES = [{"role": "user", "content": "Write one pair as JSON."}]


def test_ask_json_first_answer_good():
    client = ScriptedClient([GOOD])
    result, hashes = run(ask_json(client, MESSAGES, Pairs, temperature=0.2, max_tokens=100))
    assert result.pairs[0].question == "What is X?"
    assert len(client.requests) == 1
    request = client.requests[0]
    assert request.json_mode and request.temperature == 0.2 and request.max_tokens == 100
    assert hashes == [request.cache_key("test/scripted")]


def test_ask_json_retries_with_the_bad_answer_and_the_error():
    bad = '{"pairs": [{"question": "What is X?"}]}'
    client = ScriptedClient(["not json at all", bad, GOOD])
    result, hashes = run(ask_json(client, MESSAGES, Pairs, retries=2))
    assert result.pairs[0].answer == "X is a thing."
    assert len(client.requests) == 3 and len(set(hashes)) == 3
    second = list(client.requests[1].messages)
    assert second[:1] == MESSAGES
    assert second[1] == {"role": "assistant", "content": "not json at all"}
    assert second[2]["role"] == "user" and "no JSON object found" in second[2]["content"]
    third = list(client.requests[2].messages)
    assert third[3] == {"role": "assistant", "content": bad}
    assert "pairs.0.answer" in third[4]["content"]
    assert MESSAGES == [{"role": "user", "content": "Write one pair as JSON."}]  # caller's list untouched


def test_ask_json_gives_up_after_the_retries():
    client = ScriptedClient(["nope", "still nope", "never"])
    with pytest.raises(StructuredOutputError, match="3 attempts; last error: no JSON"):
        run(ask_json(client, MESSAGES, Pairs, retries=2))
    assert len(client.requests) == 3


def test_ask_json_check_errors_are_shown_to_the_model():
    def check(value: Pairs) -> None:
        if value.pairs[0].answer.startswith("X"):
            raise ValueError("the answer must not start with X")

    client = ScriptedClient([GOOD, '{"pairs": [{"question": "What is X?", "answer": "It is a thing."}]}'])
    result, _ = run(ask_json(client, MESSAGES, Pairs, check=check))
    assert result.pairs[0].answer == "It is a thing."
    assert "must not start with X" in client.requests[1].messages[-1]["content"]


def test_ask_json_uses_the_given_model_id_for_hashes():
    client = ScriptedClient([GOOD])
    _, hashes = run(ask_json(client, MESSAGES, Pairs, model_id="other/model"))
    assert hashes == [client.requests[0].cache_key("other/model")]
