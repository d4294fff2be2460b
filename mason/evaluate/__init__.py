"""Evaluation: metrics, LLM-as-judge, base-vs-tuned comparison, guards and reports (task `evaluation`)."""

from mason.evaluate.config import EvaluationConfig, Guard, LLMJudgeConfig, Rubric
from mason.evaluate.guards import GuardFailed

__all__ = ["EvaluationConfig", "Guard", "GuardFailed", "LLMJudgeConfig", "Rubric"]
