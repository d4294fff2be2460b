"""The LLM judge: prompt, tolerant parsing, one repair attempt, thresholds.

The judge model is replaced by `ScriptedJudge`, a fake client that returns scripted texts in
order and records the requests it got (a unit-test double for an LLM).
"""

from __future__ import annotations

import asyncio

import pytest

from mason.generate.config import JudgeConfig
from mason.generate.judge import (
    DEFAULT_CRITERIA,
    JudgeParseError,
    JudgeResult,
    judge_messages,
    judge_sample,
    parse_judgement,
    passes,
)
from mason.generate.prompts import PromptError
from mason.llm.teachers.base import (
    ChatRequest,
    Completion,
    RetryableTeacherError,
    TeacherError,
)

SOURCE = "The X200 drill weighs 1.5 kg and comes with a two-year warranty."
SAMPLE = {"id": "s1", "messages": [{"role": "user", "content": "How long is the X200 warranty?"},
                                   {"role": "assistant", "content": "The X200 has a two-year warranty."}],
          "meta": {"task": "question_answering"}}
GOOD = ('{"scores": {"faithfulness": 9, "relevance": 8, "clarity": 8, "usefulness": 7}, '
        '"overall": 8, "grounded": true, "reason": "Accurate and concise."}')


class ScriptedJudge:
    """Returns the scripted answers in order; an exception in the script is raised instead."""

    def __init__(self, *answers: str | Exception):
        self.answers = list(answers)
        self.requests: list[ChatRequest] = []

    async def complete(self, request: ChatRequest) -> Completion:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return Completion(text=answer, model="fake-judge")


def run(client, cfg=None, sample=SAMPLE, **kwargs) -> JudgeResult:
    return asyncio.run(judge_sample(client, sample, SOURCE, cfg or JudgeConfig(), **kwargs))


def test_good_answer():
    client = ScriptedJudge(GOOD)
    result = run(client)
    assert result.overall == 8.0
    assert result.scores == {"faithfulness": 9.0, "relevance": 8.0, "clarity": 8.0, "usefulness": 7.0}
    assert result.grounded is True
    assert result.reason == "Accurate and concise."
    assert result.raw == GOOD and result.attempts == 1 and not result.unparsable
    request = client.requests[0]
    assert request.temperature == 0.0
    assert request.json_mode is True
    assert result.as_scores()["judge"] == 8.0


@pytest.mark.parametrize("text, overall, scores", [
    ("```json\n" + GOOD + "\n```", 8.0, None),
    ("Here is my evaluation:\n" + GOOD + "\nLet me know if you need more.", 8.0, None),
    ("{'scores': {'faithfulness': 9, 'clarity': 7}, 'overall': 8, 'grounded': true, 'reason': 'ok',}", 8.0,
     {"faithfulness": 9.0, "clarity": 7.0}),
    ('{"scores": {"faithfulness": "8/10", "clarity": "3 out of 5"}, "overall": "7/10"}', 7.0,
     {"faithfulness": 8.0, "clarity": 6.0}),
    ('{"scale": "1-5", "scores": {"faithfulness": 4, "clarity": 5}, "overall": 4}', 8.0,
     {"faithfulness": 8.0, "clarity": 10.0}),
    ('On a 1-5 scale: {"scores": {"faithfulness": 3}, "overall": 3}', 6.0, {"faithfulness": 6.0}),
    ('{"scores": {"faithfulness (1-5)": 5, "clarity": 7}, "overall": 7}', 7.0,
     {"faithfulness": 10.0, "clarity": 7.0}),
    ('{"scores": {"faithfulness": 8, "clarity": 6}}', 7.0, {"faithfulness": 8.0, "clarity": 6.0}),
    ('{"faithfulness": 85, "overall": "80%"}', 8.0, {"faithfulness": 8.5}),
    ("Faithfulness: 8/10\n**Relevance**: 6\nOverall: 7\nGrounded: no", 7.0, {"faithfulness": 8.0, "relevance": 6.0}),
])
def test_tolerant_parsing(text, overall, scores):
    result = parse_judgement(text)
    assert result.overall == pytest.approx(overall)
    if scores is not None:
        assert result.scores == pytest.approx(scores)


def test_parsed_grounded_and_reason():
    assert parse_judgement("Faithfulness: 8\nOverall: 7\nGrounded: no").grounded is False
    assert parse_judgement('{"overall": 7, "grounded": "yes", "explanation": "fine"}').reason == "fine"
    assert parse_judgement('{"overall": 7}').grounded is None


@pytest.mark.parametrize("text", [
    "", "I cannot evaluate this conversation.", '{"overall": "excellent"}', '{"scores": {"clarity": 8',
    '{"overall": 42000}', '{"reason": "looks fine"}',
])
def test_malformed_answers_raise(text):
    with pytest.raises(JudgeParseError):
        parse_judgement(text)


def test_retry_once_with_the_error():
    client = ScriptedJudge("I think this answer is pretty good!", GOOD)
    result = run(client)
    assert result.overall == 8.0 and result.attempts == 2
    retry = client.requests[1].messages
    assert retry[:2] == client.requests[0].messages
    assert retry[2] == {"role": "assistant", "content": "I think this answer is pretty good!"}
    assert retry[3]["role"] == "user" and "no JSON object found" in retry[3]["content"]


def test_unparsable_twice_gives_a_flagged_result():
    client = ScriptedJudge("no idea", '{"overall": "great"}')
    result = run(client)
    assert result.unparsable and result.overall is None
    assert result.attempts == 2 and len(client.requests) == 2
    assert "great" in result.error and result.raw == '{"overall": "great"}'
    assert not passes(result, 0.0)


def test_request_failures():
    result = run(ScriptedJudge(RetryableTeacherError("503 from server")))
    assert result.unparsable and "503" in result.error
    with pytest.raises(TeacherError):
        run(ScriptedJudge(TeacherError("401: check your API key")))


def test_prompt_has_source_conversation_and_default_rubric():
    messages = judge_messages(SAMPLE, SOURCE, JudgeConfig())
    assert [m["role"] for m in messages] == ["system", "user"]
    user = messages[1]["content"]
    assert SOURCE in user
    assert "How long is the X200 warranty?" in user and "The X200 has a two-year warranty." in user
    for name in DEFAULT_CRITERIA:
        assert name in user
    assert '"grounded"' in user


def test_rubric_override_and_no_grounding():
    cfg = JudgeConfig(rubric="- politeness (0-10): the answer is courteous.", grounding=False)
    client = ScriptedJudge('{"scores": {"politeness": 9}, "overall": 9, "grounded": false}')
    result = run(client, cfg)
    user = client.requests[0].messages[1]["content"]
    assert "politeness (0-10): the answer is courteous." in user
    assert "faithfulness (0-10)" not in user
    assert '"grounded"' not in user
    assert result.grounded is None  # not asked for: ignored
    assert passes(result, 8.0)


def test_preference_samples_show_the_chosen_answer():
    pref = {"id": "p", "messages": [{"role": "user", "content": "How heavy is the X200?"}],
            "chosen": {"role": "assistant", "content": "It weighs 1.5 kg."},
            "rejected": {"role": "assistant", "content": "It weighs 15 kg."}}
    user = judge_messages(pref, SOURCE, JudgeConfig())[1]["content"]
    assert "It weighs 1.5 kg." in user and "15 kg" not in user


def test_prompts_dir_override(tmp_path):
    (tmp_path / "judge.j2").write_text(
        "{% macro system() %}SYS{% endmacro %}"
        "{% macro user(source, conversation, rubric, criteria, grounding) %}SRC={{ source }}{% endmacro %}"
        "{% macro fix(error) %}FIX {{ error }}{% endmacro %}")
    messages = judge_messages(SAMPLE, SOURCE, JudgeConfig(), prompts_dir=tmp_path)
    assert messages == [{"role": "system", "content": "SYS"}, {"role": "user", "content": f"SRC={SOURCE}"}]


def test_broken_prompts_dir_template_names_the_variable(tmp_path):
    (tmp_path / "judge.j2").write_text(
        "{% macro system() %}S{% endmacro %}"
        "{% macro user(source, conversation, rubric, criteria, grounding) %}{{ chunk }}{% endmacro %}")
    with pytest.raises(PromptError, match="`chunk`, which is not defined"):
        judge_messages(SAMPLE, SOURCE, JudgeConfig(), prompts_dir=tmp_path)


def test_passes_threshold_and_grounding():
    assert passes(JudgeResult(overall=6.0), 6.0)
    assert not passes(JudgeResult(overall=5.9), 6.0)
    assert not passes(JudgeResult(overall=9.0, grounded=False), 6.0)
    assert passes(JudgeResult(overall=9.0, grounded=False), 6.0, require_grounded=False)
    assert not passes(JudgeResult(overall=None), 0.0)


def test_through_the_real_teacher_client():
    """The judge only needs `complete`; check it against the real TeacherClient (retries, stats)."""
    from mason.llm.client import TeacherClient

    class Backend:
        model_id = "scripted/judge"

        def __init__(self):
            self.script: list[str | Exception] = [RetryableTeacherError("503"), "not json", GOOD]

        async def complete(self, request: ChatRequest) -> Completion:
            answer = self.script.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return Completion(text=answer, model=self.model_id)

        async def aclose(self) -> None:
            pass

    client = TeacherClient(Backend(), max_retries=2, backoff_base=0.0, backoff_cap=0.0)
    result = run(client)
    assert result.overall == 8.0 and result.attempts == 2
    assert client.stats.retries == 1
