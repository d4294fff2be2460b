"""LLM task generators with a scripted teacher: sample shape, provenance, retries, validation."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from mason.core.errors import ConfigError
from mason.core.hashing import canonical_json, text_sha1
from mason.generate.config import GenerateConfig
from mason.generate.extractive import ExtractiveGenerator
from mason.generate.generators import GENERATORS, get_generator
from mason.generate.prompts import PromptError, PromptLibrary
from mason.llm.structured import StructuredOutputError
from mason.generate.tasks.base import GenContext, TaskGenerator, chunk_variables
from mason.generate.tasks.tool_calling import argument_errors
from mason.llm.teachers.base import ChatRequest, Completion

MODEL = "openai/gpt-4o-mini"
CHUNK = {
    "id": "c0ffee",
    "doc": "manual/aquasense.md",
    "doc_sha256": "ab" * 32,
    "span": [120, 980],
    "headings": ["AquaSense S3 User Manual", "Calibration"],
    "text": ("## Calibration\n\nCalibrate the pH sensor every 30 days. Rinse the electrode with clean water, then "
             "run a three-point calibration with the pH 7 buffer first. The S3 accepts a calibration only when "
             "the slope is between 92 and 102 percent."),
    "n_tokens": 60,
    "index": 4,
}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_station_reading",
        "description": "Latest reading of a station.",
        "parameters": {
            "type": "object",
            "properties": {"station_id": {"type": "string"},
                           "parameter": {"type": "string", "enum": ["ph", "temperature"]},
                           "hours": {"type": "integer"}},
            "required": ["station_id", "parameter"],
        },
    },
}


class ScriptedClient:
    """A teacher answering from a script (strings, or functions of the request); records requests."""

    model_id = MODEL

    def __init__(self, answers: list[str | Callable[[ChatRequest], str]]):
        self.answers = list(answers)
        self.requests: list[ChatRequest] = []

    async def complete(self, request: ChatRequest) -> Completion:
        self.requests.append(request)
        answer = self.answers.pop(0)
        return Completion(text=answer(request) if callable(answer) else answer, model=MODEL)


def make_ctx(answers: list, **cfg_kwargs) -> tuple[GenContext, ScriptedClient]:
    client = ScriptedClient(answers)
    cfg = GenerateConfig(teacher={"model": MODEL, "temperature": 0.3, "max_tokens": 700}, **cfg_kwargs)
    return GenContext(client=client, prompts=PromptLibrary(None), cfg=cfg, model_id=MODEL, seed=7), client


def generate(task: str, answers: list, n: int = 3, **cfg_kwargs) -> tuple[list[dict], ScriptedClient]:
    ctx, client = make_ctx(answers, **cfg_kwargs)
    return asyncio.run(GENERATORS[task]().generate(CHUNK, n, ctx)), client


def check_provenance(sample: dict, task: str, client: ScriptedClient) -> None:
    assert sample["meta"]["source"] == {"doc": CHUNK["doc"], "chunk": CHUNK["id"], "span": CHUNK["span"]}
    assert sample["meta"]["task"] == task and sample["meta"]["teacher"] == MODEL
    assert sample["meta"]["prompt_hash"] == ",".join(r.cache_key(MODEL) for r in client.requests)
    if "chosen" in sample:
        expected = {"messages": sample["messages"], "chosen": sample["chosen"], "rejected": sample["rejected"]}
        assert sample["id"] == text_sha1(canonical_json(expected))
    else:
        assert sample["id"] == text_sha1(canonical_json(sample["messages"]))


# ---------------------------------------------------------------- question_answering


QA_ANSWER = json.dumps({"pairs": [
    {"question": "How often should the pH sensor be calibrated?", "answer": "Every 30 days."},
    {"question": "What slope does the S3 accept?", "answer": "Between 92 and 102 percent."},
    {"question": "How often should the pH sensor be calibrated?", "answer": "Every thirty days."},
]})


def test_question_answering_samples_and_provenance():
    samples, client = generate("question_answering", [QA_ANSWER])
    assert len(samples) == 2  # the repeated question is dropped
    assert [m["role"] for m in samples[0]["messages"]] == ["user", "assistant"]
    assert samples[0]["messages"][1]["content"] == "Every 30 days."
    for s in samples:
        check_provenance(s, "question_answering", client)
    request = client.requests[0]
    assert request.json_mode and request.temperature == 0.3 and request.max_tokens == 700 and request.seed == 7
    prompt = request.messages[-1]["content"]
    assert CHUNK["text"] in prompt and "AquaSense S3 User Manual > Calibration" in prompt and "Write 3 " in prompt


def test_system_prompt_goes_first():
    samples, _ = generate("question_answering", [QA_ANSWER], system_prompt="You are AquaSense support.")
    assert samples[0]["messages"][0] == {"role": "system", "content": "You are AquaSense support."}
    assert [m["role"] for m in samples[0]["messages"]] == ["system", "user", "assistant"]


def test_at_most_n_samples():
    samples, _ = generate("question_answering", [QA_ANSWER], n=1)
    assert len(samples) == 1


def test_malformed_json_is_retried_with_the_error_in_the_follow_up():
    samples, client = generate("question_answering", ['{"pairs": [{"question": "How often?" "answer": "x"}]}',
                                                      QA_ANSWER])
    assert len(samples) == 2 and len(client.requests) == 2
    follow_up = client.requests[1].messages
    assert follow_up[-2] == {"role": "assistant", "content": '{"pairs": [{"question": "How often?" "answer": "x"}]}'}
    assert "invalid JSON" in follow_up[-1]["content"]
    # both requests made the samples: provenance names both
    assert samples[0]["meta"]["prompt_hash"].count(",") == 1
    check_provenance(samples[0], "question_answering", client)


def test_no_usable_answer_raises_after_retries():
    with pytest.raises(StructuredOutputError):
        generate("question_answering", ["no", "still no", "nope"])


# ---------------------------------------------------------------- multi_turn, reasoning, summarization


def test_multi_turn_alternates_and_caps_at_four_exchanges():
    turns = [{"user": f"Question {i}?", "assistant": f"Answer {i}."} for i in range(5)]
    answer = json.dumps({"conversations": [{"turns": turns}, {"turns": turns[:2][::-1]}]})
    samples, client = generate("multi_turn", [answer])
    assert len(samples) == 2
    roles = [m["role"] for m in samples[0]["messages"]]
    assert roles == ["user", "assistant"] * 4 and samples[0]["meta"]["turns"] == 4
    assert len(samples[1]["messages"]) == 4
    check_provenance(samples[0], "multi_turn", client)


def test_multi_turn_with_one_exchange_is_retried():
    one = json.dumps({"conversations": [{"turns": [{"user": "Q?", "assistant": "A."}]}]})
    turns = [{"user": "Q?", "assistant": "A."}, {"user": "R?", "assistant": "B."}]
    two = json.dumps({"conversations": [{"turns": turns}]})
    samples, client = generate("multi_turn", [one, two])
    assert len(client.requests) == 2 and "conversations.0.turns" in client.requests[1].messages[-1]["content"]
    assert len(samples) == 1


def test_reasoning_rationale_then_final_answer():
    answer = json.dumps({"problems": [{"question": "If calibrated on 1 May, when is the next pH calibration due?",
                                       "steps": ["The pH sensor is calibrated every 30 days.",
                                                 "1 May plus 30 days is 31 May."],
                                       "final_answer": "On 31 May."}]})
    samples, client = generate("reasoning", [answer])
    content = samples[0]["messages"][1]["content"]
    assert content == ("1. The pH sensor is calibrated every 30 days.\n2. 1 May plus 30 days is 31 May.\n\n"
                       "Final answer: On 31 May.")
    check_provenance(samples[0], "reasoning", client)


def test_summarization_puts_the_passage_in_the_user_turn_and_drops_copies():
    answer = json.dumps({"summaries": [
        {"instruction": "Summarize the following text in one sentence.",
         "summary": "Calibrate the pH sensor monthly within a 92-102 percent slope."},
        {"instruction": "Copy it.", "summary": CHUNK["text"] + " And more words."},
    ]})
    samples, client = generate("summarization", [answer])
    assert len(samples) == 1
    user = samples[0]["messages"][0]["content"]
    assert user.startswith("Summarize the following text in one sentence.\n\n") and CHUNK["text"] in user
    check_provenance(samples[0], "summarization", client)


# ---------------------------------------------------------------- preference


def test_preference_chosen_differs_from_rejected():
    answer = json.dumps({"items": [
        {"question": "How often is the pH sensor calibrated?", "good_answer": "Every 30 days.",
         "flawed_answer": "Every 60 days.", "flaw": "Wrong detail"},
        {"question": "What slope is accepted?", "good_answer": "92 to 102 percent.",
         "flawed_answer": "92 to 102 percent!", "flaw": "incomplete"},
    ]})
    samples, client = generate("preference", [answer])
    assert len(samples) == 1  # the item whose two answers are the same is dropped
    s = samples[0]
    assert s["messages"][-1]["role"] == "user"
    assert s["chosen"] == {"role": "assistant", "content": "Every 30 days."}
    assert s["rejected"] == {"role": "assistant", "content": "Every 60 days."}
    assert s["meta"]["flaw"] == "wrong_detail"
    check_provenance(s, "preference", client)


def test_preference_all_identical_is_retried_with_the_reason():
    same = json.dumps({"items": [{"question": "Q about pH?", "good_answer": "A.", "flawed_answer": "a",
                                  "flaw": "incomplete"}]})
    good = json.dumps({"items": [{"question": "Q about pH?", "good_answer": "A.", "flawed_answer": "B.",
                                  "flaw": "ungrounded"}]})
    samples, client = generate("preference", [same, good])
    assert "are the same" in client.requests[1].messages[-1]["content"]
    assert samples[0]["chosen"]["content"] != samples[0]["rejected"]["content"]


# ---------------------------------------------------------------- tool_calling


def tool_answer(arguments, tool: str = "get_station_reading") -> str:
    return json.dumps({"conversations": [{
        "user": "What is the pH at station S3-001 right now?", "tool": tool, "arguments": arguments,
        "result": {"station_id": "S3-001", "ph": 7.2}, "answer": "The pH at station S3-001 is 7.2."}]})


def test_tool_calling_sample_is_openai_format_with_matching_ids():
    samples, client = generate("tool_calling", [tool_answer({"station_id": "S3-001", "parameter": "ph"})],
                               task_type=["tool_calling"], tools=[WEATHER_TOOL])
    s = samples[0]
    roles = [m["role"] for m in s["messages"]]
    assert roles == ["user", "assistant", "tool", "assistant"]
    call = s["messages"][1]["tool_calls"][0]
    assert call["type"] == "function" and call["function"]["name"] == "get_station_reading"
    assert isinstance(call["function"]["arguments"], str)
    assert json.loads(call["function"]["arguments"]) == {"station_id": "S3-001", "parameter": "ph"}
    assert s["messages"][2]["tool_call_id"] == call["id"] and call["id"].startswith("call_")
    assert json.loads(s["messages"][2]["content"]) == {"station_id": "S3-001", "ph": 7.2}
    assert s["messages"][3]["content"] == "The pH at station S3-001 is 7.2."
    assert s["tools"] == [WEATHER_TOOL] and s["meta"]["tool"] == "get_station_reading"
    assert "get_station_reading" in client.requests[0].messages[-1]["content"]  # schemas are in the prompt
    check_provenance(s, "tool_calling", client)


def test_tool_arguments_as_a_json_string_are_accepted():
    samples, _ = generate("tool_calling", [tool_answer('{"station_id": "S3-001", "parameter": "temperature"}')],
                          task_type=["tool_calling"], tools=[WEATHER_TOOL])
    args = json.loads(samples[0]["messages"][1]["tool_calls"][0]["function"]["arguments"])
    assert args["parameter"] == "temperature"


def test_invalid_tool_arguments_are_retried_with_the_errors():
    bad = tool_answer({"station": "S3-001", "parameter": "ph"})
    good = tool_answer({"station_id": "S3-001", "parameter": "ph", "hours": 2})
    samples, client = generate("tool_calling", [bad, good], task_type=["tool_calling"], tools=[WEATHER_TOOL])
    feedback = client.requests[1].messages[-1]["content"]
    assert "required argument `station_id` is missing" in feedback and "unknown argument `station`" in feedback
    assert len(samples) == 1 and json.loads(samples[0]["messages"][1]["tool_calls"][0]["function"]["arguments"])[
        "hours"] == 2


def test_unknown_tool_is_rejected():
    with pytest.raises(StructuredOutputError, match="does not exist"):
        generate("tool_calling", [tool_answer({"x": 1}, tool="delete_everything")] * 3,
                 task_type=["tool_calling"], tools=[WEATHER_TOOL])


def test_argument_errors_checks_types_and_enums():
    fn = WEATHER_TOOL["function"]
    assert argument_errors({"station_id": "a", "parameter": "ph"}, fn) == []
    errors = argument_errors({"station_id": 5, "parameter": "salinity", "hours": True}, fn)
    assert any("`station_id` must be of type string" in e for e in errors)
    assert any("`parameter` must be one of" in e for e in errors)
    assert any("`hours` must be of type integer" in e for e in errors)  # a bool is not an integer


# ---------------------------------------------------------------- registry and prompts


def test_registry_has_every_task_type_and_protocol():
    assert set(GENERATORS) >= {"question_answering", "multi_turn", "reasoning", "summarization", "preference",
                               "tool_calling"}
    for name in GENERATORS:
        gen = get_generator(name)
        assert isinstance(gen, TaskGenerator) and gen.name == name


def test_extractive_teacher_gets_the_extractive_generator():
    gen = get_generator("question_answering", teacher="extractive")
    assert isinstance(gen, ExtractiveGenerator) and isinstance(gen, TaskGenerator)
    with pytest.raises(ConfigError, match="needs an LLM teacher"):
        get_generator("tool_calling", teacher="extractive")


def test_unknown_task_type():
    with pytest.raises(ConfigError, match="unknown task type `poetry`"):
        get_generator("poetry")


def test_every_builtin_template_renders():
    lib = PromptLibrary(None)
    names = lib.builtin_names()
    for name in ("question_answering", "multi_turn", "reasoning", "summarization", "preference", "tool_calling"):
        assert name in names
        text = lib.render(name, **chunk_variables(CHUNK, 4), tools=[WEATHER_TOOL],
                          tools_json=json.dumps([WEATHER_TOOL]))
        assert CHUNK["text"] in text and "JSON" in text and "4" in text


def test_user_prompts_dir_overrides_and_missing_variables_are_named(tmp_path: Path):
    (tmp_path / "question_answering.j2").write_text("Ask {{ n }} questions about: {{ text }} for {{ audience }}")
    lib = PromptLibrary(tmp_path)
    with pytest.raises(PromptError) as e:
        lib.render("question_answering", **chunk_variables(CHUNK, 2))
    message = str(e.value)
    assert "question_answering.j2" in message and str(tmp_path) in message and "`audience`" in message
    assert lib.render("question_answering.j2", **chunk_variables(CHUNK, 2), audience="divers").startswith(
        "Ask 2 questions about: ## Calibration")
    # templates not in the user's folder still come from the package
    assert "conversations" in lib.render("multi_turn", **chunk_variables(CHUNK, 2))


def test_user_template_is_used_by_the_generator(tmp_path: Path):
    (tmp_path / "question_answering.j2").write_text("CUSTOM {{ n }} :: {{ heading_path }}")
    ctx, client = make_ctx([QA_ANSWER])
    ctx.prompts = PromptLibrary(tmp_path)
    asyncio.run(get_generator("question_answering").generate(CHUNK, 2, ctx))
    assert client.requests[0].messages[-1]["content"] == "CUSTOM 2 :: AquaSense S3 User Manual > Calibration"


def test_missing_template_and_bad_prompts_dir(tmp_path: Path):
    with pytest.raises(PromptError, match="no prompt template nope.j2"):
        PromptLibrary(None).render("nope")
    with pytest.raises(PromptError, match="not a folder"):
        PromptLibrary(tmp_path / "missing")
    (tmp_path / "reasoning.j2").write_text("{% if %}")
    with pytest.raises(PromptError, match=r"reasoning.j2, line 1"):
        PromptLibrary(tmp_path).render("reasoning", **chunk_variables(CHUNK, 1))
