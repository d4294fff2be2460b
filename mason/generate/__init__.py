"""Synthetic data generation: the `generate` task turns chunks into the training dataset.

Owns the generators (extractive rules, the knowledge recipe, teacher tasks, record distillation), the
judge and the filters (dedup, refine, balance, split). Model calls go through `mason.llm`; sample-level
checks (quality, grounding, contamination) live in `mason.data`. Importing this package is cheap.
"""

from __future__ import annotations

from mason.core.task import TaskContext, TaskResult
from mason.generate.config import GenerateConfig

__all__ = ["run", "GenerateConfig"]


def run(ctx: TaskContext) -> TaskResult:
    """Run the `generate` task: chunks -> samples.jsonl, judged, filtered, balanced and split.

    The code is `mason.generate.stage`, imported on first run (importing the package stays cheap).
    """
    from mason.generate.stage import run as run_stage

    return run_stage(ctx)
