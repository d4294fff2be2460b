"""Fine-tuning (SFT, DPO; LoRA, QLoRA, full; multi-stage curricula; resumable).

The `training` task is `mason.train.stage.run(ctx)`; its config is `TrainingConfig`. Importing
this package does not import torch, transformers, peft or trl.
"""

from mason.train.config import DataFilter, StageConfig, TrainingConfig

__all__ = ["DataFilter", "StageConfig", "TrainingConfig"]
