"""Evaluation: the `evaluation` task scores tuned vs base (closed-book knowledge against the open-book
ceiling, text metrics, LLM-as-judge with rubrics, custom metrics, latency), writes the report and applies
the guards. Importing this package is cheap.
"""

from __future__ import annotations

from mason.core.task import TaskContext, TaskResult
from mason.evaluate.config import EvaluationConfig, Guard, LLMJudgeConfig, Rubric
from mason.evaluate.guards import GuardFailed

__all__ = ["run", "EvaluationConfig", "Guard", "GuardFailed", "LLMJudgeConfig", "Rubric"]


def run(ctx: TaskContext) -> TaskResult:
    """Run the `evaluation` task: tuned vs base, closed-book knowledge vs the open-book ceiling, report and guards.

    The code is `mason.evaluate.stage`, imported on first run (importing the package stays cheap).
    """
    from mason.evaluate.stage import run as run_stage

    return run_stage(ctx)
