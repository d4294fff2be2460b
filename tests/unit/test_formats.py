"""Dataset formats at the edges: detection, conversion to the data contract and back, files."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from mason.core.errors import InputError
from mason.data.files import DatasetFileError, load_dataset, write_dataset
from mason.data.formats import FORMATS, detect_format, from_contract, sample_id, to_contract

Q, A = "What colour is the AquaSense S3 buoy?", "The AquaSense S3 buoy is painted bright yellow."
QA_MESSAGES = [{"role": "user", "content": Q}, {"role": "assistant", "content": A}]

SITE_SCHEMA = {"type": "object", "properties": {"site": {"type": "string"}}}
TOOLS = [{"type": "function",
          "function": {"name": "get_depth", "description": "Buoy depth", "parameters": SITE_SCHEMA}}]
TOOL_MESSAGES = [
    {"role": "system", "content": "You operate buoys."},
    {"role": "user", "content": "How deep is the buoy at site A?"},
    {"role": "assistant", "content": "", "tool_calls": [
        {"id": "call_0", "type": "function", "function": {"name": "get_depth", "arguments": '{"site": "A"}'}}]},
    {"role": "tool", "content": "12.5", "tool_call_id": "call_0"},
    {"role": "assistant", "content": "The buoy at site A is 12.5 m deep."},
]

# one canonical row per format: each must come back unchanged (plus its id) after a round trip
ROWS = {
    "openai": {"messages": TOOL_MESSAGES, "tools": TOOLS},
    "sharegpt": {
        "conversations": [
            {"from": "system", "value": "You operate buoys."},
            {"from": "human", "value": "How deep is the buoy at site A?"},
            {"from": "function_call", "value": json.dumps({"name": "get_depth", "arguments": {"site": "A"}})},
            {"from": "observation", "value": "12.5"},
            {"from": "gpt", "value": "The buoy at site A is 12.5 m deep."},
        ],
        "tools": json.dumps([TOOLS[0]["function"]]),
    },
    "alpaca": {"instruction": "Translate to French: good morning", "input": "", "output": "Bonjour",
               "system": "You translate.", "history": [["Translate: yes", "Oui"]]},
    "preference": {"prompt": Q, "chosen": A, "rejected": "It is blue, I think."},
    "prompt_completion": {"prompt": Q, "completion": A},
    "text": {"text": "The AquaSense S3 samples the water every ten minutes."},
    "input_output": {"input": Q, "output": A},
}


@pytest.mark.parametrize("fmt", list(ROWS))
def test_each_format_round_trips_row_to_contract_to_row(fmt):
    row = ROWS[fmt]
    sample = to_contract(row)
    assert set(sample) >= {"id", "messages", "meta"}
    back = from_contract(sample, fmt)
    assert back.pop("id") == sample["id"]
    if fmt == "openai":
        assert back.pop("meta") == {}
    assert back == row
    # and the contract survives the trip through the format
    assert to_contract(back | {"id": sample["id"]}, fmt) == sample


def test_tool_calling_conversation_is_the_same_sample_from_openai_and_sharegpt():
    from_openai, from_sharegpt = to_contract(ROWS["openai"]), to_contract(ROWS["sharegpt"])
    assert from_sharegpt["messages"] == TOOL_MESSAGES
    assert from_sharegpt["tools"] == TOOLS
    assert from_sharegpt["id"] == from_openai["id"] == sample_id({"messages": TOOL_MESSAGES})


def test_same_conversation_in_any_single_turn_format_gets_the_same_stable_id():
    ids = {to_contract(row)["id"] for row in (
        {"messages": QA_MESSAGES}, {"prompt": Q, "completion": A}, {"input": Q, "output": A},
        {"instruction": Q, "output": A},
        {"conversations": [{"from": "human", "value": Q}, {"from": "gpt", "value": A}]},
    )}
    assert len(ids) == 1
    other = to_contract({"prompt": Q, "completion": A + " Really."})["id"]
    assert ids != {other} and len(other) == 40


@pytest.mark.parametrize("row, fmt", [
    ({"messages": QA_MESSAGES}, "openai"),
    ({"messages": QA_MESSAGES[:1], "chosen": {"role": "assistant", "content": A}, "rejected": "no"}, "openai"),
    ({"conversations": []}, "sharegpt"),
    ({"instruction": Q, "input": "x", "output": A}, "alpaca"),
    ({"instruction": Q, "chosen": A, "rejected": "no"}, "alpaca"),
    ({"prompt": Q, "chosen": A, "rejected": "no"}, "preference"),
    ({"chosen": QA_MESSAGES, "rejected": QA_MESSAGES}, "preference"),
    ({"prompt": Q, "chosen": A}, "preference"),
    ({"prompt": Q, "completion": A}, "prompt_completion"),
    ({"text": "x", "label": 3}, "text"),
    ({"input": Q, "output": A}, "input_output"),
])
def test_detect_format(row, fmt):
    assert detect_format(row) == fmt


def test_unknown_shape_names_the_keys_found_and_the_keys_each_format_expects():
    with pytest.raises(InputError) as exc:
        detect_format({"question": Q, "answer": A})
    message = exc.value.message
    assert "`answer`, `question`" in message
    for expected in ("`messages`", "`conversations`", "`instruction` + `output`", "`prompt` + `completion`",
                     "`prompt` + `chosen` + `rejected`", "`text`", "`input` + `output`"):
        assert expected in message
    # a half-present format is not guessed: {prompt} alone is not prompt/completion
    with pytest.raises(InputError, match="unknown row shape"):
        to_contract({"prompt": Q})


def test_forced_format_that_does_not_fit_the_row_says_what_it_expected():
    expected = r"the row is not in sharegpt format: expected `conversations` \(found: `text`\)"
    with pytest.raises(InputError, match=expected):
        to_contract({"text": "x"}, "sharegpt")
    with pytest.raises(InputError, match="unknown dataset format 'csv'"):
        to_contract({"text": "x"}, "csv")


def test_id_meta_and_unknown_keys_are_kept_and_restored():
    row = {"id": 7, "prompt": Q, "completion": A, "meta": {"split": "train"}, "category": "buoys"}
    sample = to_contract(row)
    assert sample["id"] == "7"
    assert sample["meta"] == {"split": "train", "extra": {"category": "buoys"}}
    assert from_contract(sample, "prompt_completion") == {
        "id": "7", "prompt": Q, "completion": A, "category": "buoys", "meta": {"split": "train"}}


def test_preference_rows_in_string_and_message_forms_give_the_same_sample():
    as_strings = to_contract(ROWS["preference"])
    as_messages = to_contract({"prompt": [{"role": "user", "content": Q}],
                               "chosen": [{"role": "assistant", "content": A}],
                               "rejected": [{"role": "assistant", "content": "It is blue, I think."}]})
    implicit = to_contract({"chosen": [{"role": "user", "content": Q}, {"role": "assistant", "content": A}],
                            "rejected": [{"role": "user", "content": Q},
                                         {"role": "assistant", "content": "It is blue, I think."}]})
    assert as_strings == as_messages == implicit
    assert as_strings["messages"] == [{"role": "user", "content": Q}]
    assert as_strings["chosen"] == {"role": "assistant", "content": A}
    # a different rejected answer is a different sample
    assert to_contract({**ROWS["preference"], "rejected": "Green."})["id"] != as_strings["id"]


def test_preference_with_a_system_prompt_is_written_in_the_conversational_form():
    sample = to_contract({"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": Q}],
                          "chosen": A, "rejected": "Blue."})
    row = from_contract(sample, "preference")
    assert row["prompt"][0] == {"role": "system", "content": "Be brief."}
    assert row["chosen"] == [{"role": "assistant", "content": A}]
    assert to_contract(row) == sample


@pytest.mark.parametrize("fmt", ["sharegpt", "alpaca"])
def test_preference_samples_round_trip_through_sharegpt_and_alpaca(fmt):
    sample = to_contract(ROWS["preference"])
    row = from_contract(sample, fmt)
    assert "chosen" in row and "rejected" in row
    assert to_contract(row) == sample


def test_missing_rejected_is_kept_as_none_for_validation_to_report():
    sample = to_contract({"prompt": Q, "chosen": A, "rejected": None})
    assert sample["rejected"] is None and sample["chosen"]["content"] == A


@pytest.mark.parametrize("fmt, reason", [
    ("alpaca", "tool calls"),
    ("text", "one plain assistant message"),
    ("input_output", "one plain user turn"),
    ("preference", "not a preference sample"),
])
def test_formats_that_cannot_hold_a_sample_say_why(fmt, reason):
    sample = to_contract(ROWS["openai"])
    with pytest.raises(InputError, match=f"cannot be written as {fmt}: .*{reason}"):
        from_contract(sample, fmt)


def test_any_conversation_can_be_written_as_prompt_completion_in_the_conversational_form():
    sample = to_contract(ROWS["openai"])
    row = from_contract(sample, "prompt_completion")
    assert row["prompt"] == TOOL_MESSAGES[:2] and row["completion"] == TOOL_MESSAGES[2:]
    assert to_contract(row)["messages"] == TOOL_MESSAGES


def test_sharegpt_function_call_that_is_not_json_is_an_input_error():
    row = {"conversations": [{"from": "human", "value": Q}, {"from": "function_call", "value": "get_depth(A)"}]}
    with pytest.raises(InputError, match=r"conversations\[1\].*not valid JSON"):
        to_contract(row)


def test_sharegpt_parallel_calls_and_gpt_text_before_a_call_stay_one_assistant_message():
    row = {"conversations": [
        {"from": "human", "value": "Depth at A and B?"},
        {"from": "gpt", "value": "Let me check both."},
        {"from": "function_call", "value": json.dumps([{"name": "get_depth", "arguments": {"site": "A"}},
                                                        {"name": "get_depth", "arguments": {"site": "B"}}])},
        {"from": "observation", "value": "12"},
        {"from": "observation", "value": "9"},
        {"from": "gpt", "value": "A is 12 m, B is 9 m."},
    ]}
    messages = to_contract(row)["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "tool", "assistant"]
    assert messages[1]["content"] == "Let me check both."
    assert [c["id"] for c in messages[1]["tool_calls"]] == ["call_0", "call_1"]
    assert [m["tool_call_id"] for m in messages[2:4]] == ["call_0", "call_1"]
    assert from_contract(to_contract(row), "sharegpt")["conversations"] == row["conversations"]


def test_alpaca_input_is_joined_to_the_instruction():
    sample = to_contract({"instruction": "Summarize:", "input": "Long text.", "output": "Short."})
    assert sample["messages"][0] == {"role": "user", "content": "Summarize:\n\nLong text."}


# --------------------------------------------------------------------------- files


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_load_jsonl_with_mixed_formats_gives_contract_samples_with_line_numbers(tmp_path):
    path = _write(tmp_path / "d.jsonl", [json.dumps(ROWS["alpaca"]), "", json.dumps(ROWS["sharegpt"])])
    loaded = list(load_dataset(path))
    assert [line for line, _ in loaded] == [1, 3]
    assert loaded[1][1]["messages"] == TOOL_MESSAGES


def test_load_json_array_file_with_the_line_each_row_starts_on(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps([ROWS["text"], ROWS["input_output"], ROWS["preference"]], indent=2), encoding="utf-8")
    loaded = list(load_dataset(path))
    assert [line for line, _ in loaded] == [2, 5, 9]
    assert loaded[1][1]["messages"] == QA_MESSAGES
    # and compact: every row on line 1
    path.write_text(json.dumps([ROWS["text"], ROWS["text"]]), encoding="utf-8")
    assert [line for line, _ in load_dataset(path)] == [1, 1]


def test_bad_json_line_is_an_input_error_with_file_and_line(tmp_path):
    path = _write(tmp_path / "d.jsonl", [json.dumps(ROWS["text"]), json.dumps(ROWS["text"]), '{"text": "oops'])
    rows = load_dataset(path)
    assert next(rows)[0] == 1
    with pytest.raises(InputError, match=rf"^{path}:3: not valid JSON"):
        list(rows)


def test_bad_json_in_an_array_file_names_its_line(tmp_path):
    path = tmp_path / "d.json"
    path.write_text('[\n  {"text": "a"},\n  {"text": "b",}\n]\n', encoding="utf-8")
    with pytest.raises(InputError, match=rf"^{path}:3: not valid JSON"):
        list(load_dataset(path))


def test_unknown_shape_in_a_file_names_the_line_and_the_expected_keys(tmp_path):
    path = _write(tmp_path / "d.jsonl", [json.dumps(ROWS["text"]), json.dumps({"question": Q, "answer": A})])
    with pytest.raises(InputError) as exc:
        list(load_dataset(path))
    assert exc.value.message.startswith(f"{path}:2: unknown row shape (keys: `answer`, `question`)")
    assert "`instruction` + `output`" in exc.value.message


def test_missing_file_is_a_dataset_file_error_with_exit_code_2(tmp_path):
    with pytest.raises(DatasetFileError, match="no such file") as exc:
        load_dataset(tmp_path / "nope.jsonl")
    assert exc.value.exit_code == 2
    with pytest.raises(DatasetFileError, match="is a folder"):
        load_dataset(tmp_path)


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_write_then_load_gives_the_same_samples(tmp_path, fmt):
    sample = to_contract(ROWS[fmt])
    for name in ("out.jsonl", "out.json"):
        assert write_dataset([sample, sample], tmp_path / name, fmt=fmt) == 2
        assert [s for _, s in load_dataset(tmp_path / name, fmt=fmt)] == [sample, sample]
    assert isinstance(json.loads((tmp_path / "out.json").read_text()), list)


def test_write_dataset_writes_nothing_when_a_sample_does_not_fit(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text("keep me\n")
    samples = [to_contract(ROWS["text"]), to_contract(ROWS["openai"])]
    before = copy.deepcopy(samples)
    with pytest.raises(InputError, match="cannot be written as text"):
        write_dataset(samples, path, fmt="text")
    assert path.read_text() == "keep me\n"
    assert samples == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]  # no temp file left behind
