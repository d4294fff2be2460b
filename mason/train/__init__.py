"""Fine-tuning (SFT, DPO; LoRA, QLoRA, full). Config only in this version."""

from mason.train.config import TrainingConfig

__all__ = ["TrainingConfig"]
