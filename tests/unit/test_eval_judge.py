"""The evaluation judge against a scripted OpenAI-compatible server: verdict parsing, the schema sent,
one repair attempt then unscored, the request cache, and what each rubric shows the judge."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from mason.evaluate.config import EvaluationConfig, LLMJudgeConfig
from mason.evaluate.judge import builtin_rubric, judge_answers, judge_messages
from tests.helpers.scripted_server import ScriptedServer, ok

ROW = {"question": "How thick is a mortar joint?", "prediction": "About 10 mm.",
       "reference": "A typical joint is about 10 mm thick.", "source": "Mortar joints are typically 10 mm thick."}
ROW2 = {**ROW, "prediction": "Ten millimetres."}


def judge_cfg(url: str, **kw) -> LLMJudgeConfig:
    return LLMJudgeConfig(model="vllm/judge", base_url=url, api_key="k", max_retries=0, max_concurrency=1, **kw)


def run(cfg: LLMJudgeConfig, rows_by_model: dict, cache_path=None, rubrics=None):
    rubrics = rubrics or EvaluationConfig(llm_judge=cfg).rubrics()
    return asyncio.run(judge_answers(cfg, rubrics, rows_by_model, base_dir=Path("."),
                                     cache_path=cache_path, backoff_base=0.01))


def by_criterion(body: dict) -> str:
    user = body["messages"][-1]["content"]
    if user.startswith("Criterion: faithfulness"):
        return json.dumps({"score": 5, "reason": "Supported by the source."})
    return '```json\n{"score": "4/5", "reason": "Addresses the question."}\n```'  # fenced, "4/5": still read


def test_scores_and_reasons_per_rubric_and_model(tmp_path):
    with ScriptedServer(responder=by_criterion) as srv:
        out = run(judge_cfg(srv.base_url), {"tuned": [ROW, ROW2], "base": [ROW]}, tmp_path / "requests.sqlite")
        # 3 answers x 2 rubrics, but base's answer is tuned's first one: an identical request is sent once
        assert srv.request_count == 4
    assert out.scores["tuned"] == {"faithfulness": [5.0, 5.0], "helpfulness": [4.0, 4.0]}
    assert out.scores["base"] == {"faithfulness": [5.0], "helpfulness": [4.0]}
    assert out.reasons["tuned"]["faithfulness"][0] == "Supported by the source."
    assert out.means("tuned") == {"judge.faithfulness": 5.0, "judge.helpfulness": 4.0}
    assert out.unscored == {"tuned": {"faithfulness": 0, "helpfulness": 0}, "base": {"faithfulness": 0,
                                                                                     "helpfulness": 0}}
    assert out.model.startswith("vllm/judge")


def test_the_verdict_schema_and_greedy_decoding_are_sent(tmp_path):
    with ScriptedServer(default=ok('{"score": 3, "reason": "ok"}')) as srv:
        run(judge_cfg(srv.base_url, rubrics=[{"name": "tone", "criteria": "Polite.", "scale": [0, 10]}]),
            {"tuned": [ROW]})
        body = srv.requests[0]
    schema = body["response_format"]["json_schema"]["schema"]
    assert schema["required"] == ["score", "reason"]
    assert schema["properties"]["score"]["minimum"] == 0 and schema["properties"]["score"]["maximum"] == 10
    assert body["temperature"] == 0.0


def test_malformed_verdict_is_retried_once_with_the_error(tmp_path):
    script = [ok("I think it is quite good."), ok('{"score": 2, "reason": "Vague."}')]
    with ScriptedServer(script=script) as srv:
        out = run(judge_cfg(srv.base_url, rubrics=["conciseness"]), {"tuned": [ROW]})
        assert srv.request_count == 2
        retry = srv.requests[1]["messages"]
    assert out.scores["tuned"]["conciseness"] == [2.0] and out.unscored["tuned"]["conciseness"] == 0
    assert retry[-2] == {"role": "assistant", "content": "I think it is quite good."}
    assert "could not be used" in retry[-1]["content"] and "no JSON object" in retry[-1]["content"]


def test_twice_unusable_is_unscored_and_counted(tmp_path):
    # ROW: out of the 1-5 scale, then not JSON: two attempts, then unscored; ROW2 is scored
    def responder(body: dict) -> str:
        if "About 10 mm." not in body["messages"][1]["content"]:
            return '{"score": 4, "reason": "fine"}'
        return '{"score": 9, "reason": "great"}' if len(body["messages"]) == 2 else "nine"

    with ScriptedServer(responder=responder) as srv:
        out = run(judge_cfg(srv.base_url, rubrics=["conciseness"]), {"tuned": [ROW, ROW2]})
        assert srv.request_count == 3
        retry = next(b for b in srv.requests if len(b["messages"]) == 4)
        assert "less than or equal to 5" in retry["messages"][-1]["content"]
    assert out.scores["tuned"]["conciseness"] == [None, 4.0]
    assert out.unscored["tuned"]["conciseness"] == 1
    assert out.means("tuned") == {"judge.conciseness": 4.0}  # the mean is over the scored answers
    assert len(out.errors) == 1 and "row 1" in out.errors[0]


def test_verdicts_come_from_the_request_cache_the_second_time(tmp_path):
    cache = tmp_path / "cache" / "requests.sqlite"
    with ScriptedServer(default=ok('{"score": 3, "reason": "ok"}')) as srv:
        first = run(judge_cfg(srv.base_url), {"tuned": [ROW]}, cache)
        sent = srv.request_count
        second = run(judge_cfg(srv.base_url), {"tuned": [ROW]}, cache)
        assert srv.request_count == sent == 2
    assert first.scores == second.scores and second.stats["cache_hits"] == 2


def test_what_each_rubric_shows_the_judge():
    faithful = judge_messages(builtin_rubric("faithfulness"), ROW, 6000)[1]["content"]
    assert "[Source passage]\nMortar joints are typically 10 mm thick." in faithful
    assert "[Reference answer" not in faithful and "[Answer to grade]\nAbout 10 mm." in faithful
    no_source = judge_messages(builtin_rubric("faithfulness"), {**ROW, "source": None}, 6000)[1]["content"]
    assert "treat the reference answer as the source" in no_source and "[Reference answer" in no_source
    accurate = judge_messages(builtin_rubric("domain_accuracy"), ROW, 6000)[1]["content"]
    assert "[Reference answer" in accurate and "[Source passage]" not in accurate
    concise = judge_messages(builtin_rubric("conciseness"), {**ROW, "prediction": ""}, 6000)[1]["content"]
    assert "(empty answer)" in concise and "Score from 1 (worst) to 5 (best)." in concise
    long = judge_messages(builtin_rubric("faithfulness"), {**ROW, "source": "x" * 500}, 200)[1]["content"]
    assert "x" * 200 + " […]" in long and "x" * 201 not in long
