"""Evaluation (metrics, LLM-as-judge, guards, reports). Config only in this version."""

from mason.evaluate.config import EvaluationConfig

__all__ = ["EvaluationConfig"]
