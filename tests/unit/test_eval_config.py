"""The `evaluation` section: defaults, shorthand forms and cross-field checks with clear messages."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mason.evaluate.config import EvaluationConfig, LLMJudgeConfig
from mason.pipeline.config import PipelineConfig


def error(**kwargs) -> str:
    with pytest.raises(ValidationError) as info:
        EvaluationConfig(**kwargs)
    return str(info.value)


def test_defaults():
    cfg = EvaluationConfig()
    assert cfg.metrics == ["rougeL", "bleu", "chrf", "exact_match", "char_f1"]
    assert cfg.compare_base and cfg.exported and cfg.perplexity and cfg.temperature == 0
    assert cfg.primary_metric == "rougeL" and cfg.llm_judge is None
    assert "latency_p95" in cfg.known_metric_names() and "perplexity" in cfg.known_metric_names()


def test_unknown_metric_says_did_you_mean():
    msg = error(metrics=["rougeL", "blue"])
    assert "unknown metric 'blue' (did you mean 'bleu'?)" in msg


def test_primary_metric_must_be_computed():
    assert "primary_metric 'bleu' is not in metrics" in error(metrics=["rougeL"], primary_metric="bleu")


def test_guards_are_checked_against_known_metrics_and_models():
    assert "guard on unknown metric 'rouge'" in error(guards=[{"metric": "rouge", "min": 0.3}])
    assert "needs `min` or `max`" in error(guards=[{"metric": "rougeL"}])
    assert "min 0.5 is above max 0.2" in error(guards=[{"metric": "rougeL", "min": 0.5, "max": 0.2}])
    assert "unknown model 'tunde' (did you mean 'tuned'?)" in error(
        guards=[{"metric": "rougeL", "min": 0.3, "model": "tunde"}])
    assert "compare_base is false" in error(compare_base=False, guards=[{"metric": "bleu", "min": 0.1, "model": "base"}])
    ok = EvaluationConfig(guards=[{"metric": "latency_p95", "max": 2.0}, {"metric": "rougeL", "min": 0.2,
                                                                          "model": "gguf"}])
    assert ok.guards[1].model == "gguf"


def test_guards_on_custom_metrics_are_checked_when_they_run():
    cfg = EvaluationConfig(custom_metrics=["metrics.py:keyword_hit"], guards=[{"metric": "keyword_hit", "min": 0.5}])
    assert cfg.guards[0].metric == "keyword_hit"
    assert "must be `module.path:function`" in error(custom_metrics=["metrics.py"])


def test_judge_shorthand_rubrics_and_scales():
    cfg = EvaluationConfig(llm_judge="openai/gpt-4o-mini")
    assert cfg.llm_judge.model == "openai/gpt-4o-mini" and cfg.llm_judge.temperature == 0.0
    assert [r.name for r in cfg.rubrics()] == ["faithfulness", "helpfulness"]
    cfg = EvaluationConfig(llm_judge={"model": "x", "rubrics": [
        "conciseness", {"name": "tone", "criteria": "Polite.", "scale": 10},
        {"name": "style", "criteria": "Plain words.", "scale": "0-3"}]},
        guards=[{"metric": "judge.tone", "min": 6}])
    assert [r.scale for r in cfg.rubrics()] == [(1, 5), (1, 10), (0, 3)]
    assert "judge.style" in cfg.known_metric_names()


def test_judge_config_errors():
    with pytest.raises(ValidationError, match="unknown rubric 'faithful' \\(did you mean 'faithfulness'\\?\\)"):
        LLMJudgeConfig(model="x", rubrics=["faithful"])
    with pytest.raises(ValidationError, match="named twice"):
        LLMJudgeConfig(model="x", rubrics=["conciseness", {"name": "conciseness", "criteria": "c"}])
    with pytest.raises(ValidationError, match="must go from low to high"):
        LLMJudgeConfig(model="x", rubrics=[{"name": "r", "criteria": "c", "scale": [5, 1]}])
    with pytest.raises(ValidationError, match="letters, digits and _"):
        LLMJudgeConfig(model="x", rubrics=[{"name": "my rubric", "criteria": "c"}])
    assert "the judge must be an LLM" in error(llm_judge="extractive")
    assert "llm_judge.models names `base`" in error(compare_base=False, llm_judge={"model": "x", "models": ["base"]})
    # the default (tuned and base) follows compare_base
    assert EvaluationConfig(compare_base=False, llm_judge="x").llm_judge.models == ["tuned"]


def test_pipeline_yaml_section():
    cfg = PipelineConfig.model_validate({"evaluation": {"metrics": ["rougeL", "sequence_ratio"], "max_samples": 50,
                                                        "guards": [{"metric": "rougeL", "min": 0.3}]}})
    assert cfg.evaluation.max_samples == 50
    with pytest.raises(ValidationError, match="unknown key|Extra inputs"):
        PipelineConfig.model_validate({"evaluation": {"metric": ["rougeL"]}})
