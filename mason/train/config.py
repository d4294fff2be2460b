"""Config of the training stage: the `training` section of pipeline.yaml."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mason.core.config import Section


class TrainingConfig(Section):
    """How the base model is fine-tuned on the dataset."""

    type: Literal["sft", "dpo"] = Field("sft", description="Supervised fine-tuning or preference optimization.")
    method: Literal["lora", "qlora", "full"] = Field("lora", description="Which weights are trained.")
    lora_r: int = Field(16, ge=1, description="LoRA rank.")
    lora_alpha: int = Field(32, ge=1, description="LoRA scaling numerator (scale = alpha / r).")
    lora_dropout: float = Field(0.05, ge=0.0, lt=1.0, description="Dropout on the LoRA path.")
    target_modules: list[str] | Literal["all-linear"] = Field(
        "all-linear", description="Modules that get LoRA adapters; `all-linear` for every linear layer."
    )
    learning_rate: float = Field(2e-4, gt=0, description="Peak learning rate.")
    epochs: float = Field(1.0, gt=0, description="Passes over the training set (ignored when max_steps is set).")
    max_steps: int | None = Field(None, ge=1, description="Stop after this many optimizer steps.")
    batch_size: int = Field(8, ge=1, description="Samples per device per step.")
    gradient_accumulation_steps: int = Field(1, ge=1, description="Steps accumulated before an optimizer update.")
    max_length: int = Field(1024, ge=16, description="Longest tokenized sample; longer ones are truncated.")
    seed: int = Field(0, description="Random seed (weights init of adapters, data order).")
