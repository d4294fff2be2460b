"""Fine-tuning (SFT, DPO; LoRA, QLoRA, full; multi-stage curricula; resumable).

The `training` task is `run(ctx)` below (code in `stage.py`); its config is `TrainingConfig`. Owns model
loading and LoRA (`modeling`), the SFT/DPO trainers (`sft`, `dpo`, `fast`, `packing`), hardware choices
(`hardware`), the knowledge probe, replay, outputs and the train report. Importing this package does
not import torch, transformers, peft or trl.
"""

from __future__ import annotations

from mason.core.task import TaskContext, TaskResult
from mason.train.config import DataFilter, StageConfig, TrainingConfig

__all__ = ["run", "DataFilter", "StageConfig", "TrainingConfig"]


def run(ctx: TaskContext) -> TaskResult:
    """Run the `training` task: samples -> adapter or full model, merged model, train report.

    The code is `mason.train.stage`, imported on first run (importing the package stays cheap).
    """
    from mason.train.stage import run as run_stage

    return run_stage(ctx)
