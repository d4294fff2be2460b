"""Config of the training stage: the `training` section of pipeline.yaml.

    training:
      type: sft                 # or dpo
      method: lora              # or qlora, full
      epochs: 2
      eval_steps: 50
      early_stopping_patience: 3
      stages:                   # optional curriculum; each stage continues from the previous one
        - {name: facts, data: {task: question_answering}, epochs: 1}
        - {name: tools, data: data/tools.jsonl, max_steps: 200, learning_rate: 1e-4}

Cross-field rules live in the validators below, so `mason validate` reports them before any
model is loaded.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from mason.core.config import Section

Scheduler = Literal["linear", "cosine", "constant", "constant_with_warmup", "cosine_with_restarts", "polynomial"]


class DataFilter(Section):
    """A subset of a dataset: samples whose `meta` values match."""

    path: str | None = Field(
        None, description="Dataset file to filter (any supported format); default: the training dataset."
    )
    task: list[str] | None = Field(
        None, description="Keep samples whose `meta.task` is one of these (`task: qa` is shorthand for `[qa]`)."
    )

    @field_validator("task", mode="before")
    @classmethod
    def _one_task(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _not_empty(self) -> DataFilter:
        if self.path is None and not self.task:
            raise ValueError("a data filter needs `path` or `task`")
        return self


class StageConfig(Section):
    """One stage of a training curriculum. Fields left out take the `training` section's values."""

    name: str = Field(description="Stage name: its output folder `stages/<name>/` and how to run it alone.")
    data: str | DataFilter | None = Field(
        None,
        description="A dataset file (any supported format) or a filter such as `{task: question_answering}`; "
        "default: the whole training dataset.",
    )
    epochs: float | None = Field(None, gt=0, description="Passes over this stage's data.")
    max_steps: int | None = Field(None, ge=1, description="Optimizer steps of this stage (overrides epochs).")
    learning_rate: float | None = Field(None, gt=0, description="Peak learning rate of this stage.")
    lr_scheduler: Scheduler | None = Field(None, description="Learning-rate schedule of this stage.")
    warmup_ratio: float | None = Field(None, ge=0, lt=1, description="Warmup fraction of this stage's steps.")
    batch_size: int | None = Field(None, ge=1, description="Samples per device per step in this stage.")
    gradient_accumulation_steps: int | None = Field(None, ge=1, description="Accumulated steps in this stage.")
    max_length: int | None = Field(None, ge=16, description="Longest tokenized sample in this stage.")
    train_on_prompt: bool | None = Field(None, description="Also train on prompt tokens in this stage.")
    type: Literal["sft", "dpo"] | None = Field(None, description="SFT or DPO for this stage.")
    dpo_beta: float | None = Field(None, gt=0, description="DPO beta of this stage.")

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        # the name becomes a folder name: keep it portable
        if not value or not all(c.isalnum() or c in "-_." for c in value) or value.startswith("."):
            raise ValueError(f"stage name {value!r} must be letters, digits, '-', '_' or '.' (not starting with '.')")
        return value

    @model_validator(mode="after")
    def _one_length(self) -> StageConfig:
        if self.epochs is not None and self.max_steps is not None:
            raise ValueError("give a stage `epochs` or `max_steps`, not both")
        return self


#: Fields of a stage that override the training section's value of the same name.
STAGE_OVERRIDES = (
    "epochs", "max_steps", "learning_rate", "lr_scheduler", "warmup_ratio", "batch_size",
    "gradient_accumulation_steps", "max_length", "train_on_prompt", "type", "dpo_beta",
)


class TrainingConfig(Section):
    """How the base model is fine-tuned on the dataset."""

    type: Literal["sft", "dpo"] = Field(
        "sft", description="Supervised fine-tuning (`sft`) or preference optimization (`dpo`). `peft` (a method "
                           "family: SFT with LoRA or QLoRA) is read as `sft`.")
    method: Literal["lora", "qlora", "full"] = Field("lora", description="Which weights are trained.")
    lora_r: int = Field(16, ge=1, description="LoRA rank.")
    lora_alpha: int = Field(32, ge=1, description="LoRA scaling numerator (scale = alpha / r).")
    lora_dropout: float = Field(
        0.0, ge=0.0, lt=1.0, description="Dropout on the LoRA path. 0 by default: dropout copies every adapted "
        "layer's input, which cost 20% of the step on CPU (bench/train.py); raise it to regularize small datasets.")
    target_modules: list[str] | Literal["all-linear"] = Field(
        "all-linear", description="Modules that get LoRA adapters; `all-linear` for every linear layer."
    )
    learning_rate: float = Field(2e-4, gt=0, description="Peak learning rate.")
    lr_scheduler: Scheduler = Field("linear", description="Learning-rate schedule after warmup.")
    warmup_ratio: float = Field(0.0, ge=0, lt=1, description="Fraction of the steps spent warming the rate up.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    epochs: float = Field(1.0, gt=0, description="Passes over the training set (ignored when max_steps is set).")
    max_steps: int | None = Field(None, ge=1, description="Stop after this many optimizer steps.")
    batch_size: int = Field(8, ge=1, description="Samples per device per step.")
    gradient_accumulation_steps: int = Field(1, ge=1, description="Steps accumulated before an optimizer update.")
    gradient_checkpointing: Literal["auto"] | bool = Field(
        "auto", description="Recompute activations in the backward pass: less memory, about 30% slower. `auto` turns "
        "it on only when one batch's activations would not fit in the free memory (the log says which)."
    )
    bf16: Literal["auto"] | bool = Field(
        "auto", description="bf16 autocast: `auto` turns it on where bf16 matmuls measure faster than fp32 here (CUDA "
        "with bf16; CPUs with AMX or AVX512-BF16, timed at start-up; never on AVX2-only CPUs, which emulate bf16)."
    )
    group_by_length: bool = Field(
        False, description="Without packing: batch samples of similar length together (less padding, faster; batch "
        "order is less random)."
    )
    packing: Literal["auto"] | bool = Field(
        "auto", description="Join a batch's samples into one unpadded sequence (per-sample position ids, no "
        "attention across samples): same loss, no compute spent on padding. `auto` packs each batch whose packed "
        "cost (the joined row's masked attention grows with its length squared) is lower than padding's: short "
        "samples of mixed lengths pack, long ones pad; `true` packs every batch. Checked on the model before "
        "training; padding is used where the architecture does not support it.")
    fast_loss: bool = Field(
        True, description="Compute the LM head and the loss only on trained (labelled) positions: same loss, less work."
    )
    max_length: int = Field(1024, ge=16, description="Longest tokenized sample; longer ones are truncated.")
    train_on_prompt: bool = Field(
        False, description="Train on every token (system, user, tool turns too), not only the assistant's."
    )
    seed: int = Field(0, description="Random seed (weights init of adapters, data order).")
    data: str | list[str] | None = Field(
        None,
        description="A dataset file in any supported format (JSONL/JSON: OpenAI chat, ShareGPT, Alpaca, ...), or a "
        "list of files and globs (`[data/old.jsonl, logs/*.jsonl]`), relative to the YAML's folder; default: the "
        "`generate` task's samples.jsonl. Rows with `meta.split: eval` form the eval set. Conversation logs "
        "(`mason chat --log`) are collapsed: a row whose messages begin another row's is dropped.",
    )
    train_eval_split: float | None = Field(
        None, ge=0, lt=1,
        description="Hold out this share of the rows (e.g. 0.1) as the eval set, for `data` files whose rows have no "
                    "`meta.split`; which rows is fixed by `seed` and the rows' ids. 0 or unset: every row trains.")
    allow_low_quality: bool = Field(
        False, description="Train on `data` even when under 50% of its rows pass `mason validate`'s checks "
                           "(below 70% warns either way).")
    device: str = Field(
        "auto", description="Where training runs: `auto` (CUDA, else Apple MPS, else the CPU), `cpu`, `cuda`, "
                            "`cuda:N` (one GPU of several) or `mps`. Ignored under torchrun (a GPU per process).")
    bnb_4bit_compute_dtype: Literal["auto", "bfloat16", "float16", "float32"] = Field(
        "auto", description="`method: qlora`: the dtype the 4-bit layers compute in; `auto`: bfloat16 where the GPU "
                            "supports it, else float16.")
    eval_steps: int | Literal["epoch"] | None = Field(
        None, description="Evaluate (eval loss, perplexity, knowledge probe) every N steps, or `epoch`: after each "
                          "epoch; default: at the end only."
    )
    select_by: Literal["auto", "eval_loss", "knowledge"] = Field(
        "auto", description="What picks the best checkpoint and drives early stopping: `knowledge` (the share of the "
        "probe's held-out questions answered right, closed-book), `eval_loss`, or `auto` (knowledge when the eval "
        "set has probe questions, see `synthetic_data.knowledge.probe_questions`).")
    probe_max_new_tokens: int = Field(40, ge=1, description="Longest answer generated for a knowledge-probe question.")
    save_steps: int | None = Field(
        None, ge=1, description="Save a resumable checkpoint every N steps; default: eval_steps, else 50."
    )
    save_total_limit: int | None = Field(2, ge=1, description="Checkpoints kept (the best one is always kept).")
    early_stopping_patience: int | None = Field(
        None, ge=1, description="Stop after this many evaluations without improvement; needs eval_steps."
    )
    early_stopping_threshold: float = Field(
        0.0, ge=0, description="Smallest improvement of the selection metric (eval loss or knowledge) that counts."
    )
    stages: list[StageConfig] | None = Field(
        None, description="A curriculum: stages run in order, each starting from the previous stage's weights."
    )
    merge: bool = Field(
        False, description="Also write `merged/`: the base model with the adapter folded in (always for `full`)."
    )
    dpo_beta: float = Field(0.1, gt=0, description="DPO temperature: how far the policy may move from the reference.")
    backend: Literal["auto", "transformers", "mlx"] = Field(
        "auto", description="Who trains: `transformers` (+ peft/trl), or `mlx` (mlx-lm LoRA: Apple silicon's fast path, "
                            "`mlx[cpu]` on Linux). `auto` = MLX on Apple silicon when mlx-lm is installed and the run "
                            "is SFT with LoRA, else transformers.")
    use_unsloth: bool | Literal["require"] = Field(
        False, description="Train through unsloth's kernels if installed (NVIDIA GPUs): without unsloth or an NVIDIA "
                           "GPU, a notice and the standard path. `require` fails instead.")
    report_to: list[str] = Field(
        default_factory=list,
        description="Also send metrics to these trackers (`tensorboard`, `mlflow`, `wandb`); the SQLite "
        "tracker always gets them.",
    )
    replay: int = Field(
        0, ge=0, le=1000,
        description="General prompts the model answers itself before training, mixed into the training data "
                    "(self-distillation replay: limits forgetting of what it knew); 0 turns it off.")
    test_prompts: list[str] = Field(
        default_factory=list, description="Prompts answered after each stage, saved into the stage's folder."
    )
    test_max_new_tokens: int = Field(64, ge=1, description="Longest answer generated for a test prompt.")
    trainer_args: dict[str, Any] = Field(
        default_factory=dict,
        description="Extra `transformers.TrainingArguments` fields, passed through as they are (e.g. `fsdp`, "
        "`fsdp_config`, `deepspeed`, `ddp_find_unused_parameters`, `optim`); they override MASON's values.",
    )

    @model_validator(mode="before")
    @classmethod
    def _peft_is_sft(cls, data: Any) -> Any:
        # `type: peft` (the MASON README's word) names the method family: SFT through LoRA/QLoRA adapters
        if isinstance(data, dict) and data.get("type") == "peft":
            if data.get("method") == "full":
                raise ValueError("`type: peft` trains adapters: use `method: lora` or `qlora` with it, or `type: sft` "
                                 "for `method: full`")
            data = {**data, "type": "sft"}
        return data

    @field_validator("data")
    @classmethod
    def _data_files(cls, value: Any) -> Any:
        if isinstance(value, list):
            if not value:
                raise ValueError("data is an empty list; give at least one file or glob, or remove it")
            if not all(isinstance(v, str) and v.strip() for v in value):
                raise ValueError("every entry of data must be a file path or glob")
        return value

    @field_validator("device")
    @classmethod
    def _device_name(cls, value: str) -> str:
        from mason.models.device import check_device_name

        return check_device_name(value)

    @field_validator("report_to", mode="before")
    @classmethod
    def _report_to_list(cls, value: Any) -> Any:
        if value in (None, "none"):
            return []
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _cross_checks(self) -> TrainingConfig:
        problems = []
        if self.early_stopping_patience is not None and self.eval_steps is None:
            problems.append("early_stopping_patience needs eval_steps (how often to evaluate)")
        if self.select_by == "knowledge" and self.eval_steps is None:
            problems.append("select_by: knowledge needs eval_steps (N steps, or `epoch`)")
        if isinstance(self.eval_steps, int) and self.eval_steps < 1:
            problems.append("eval_steps must be at least 1 (or `epoch`)")
        if (isinstance(self.eval_steps, int) and self.save_steps and self.early_stopping_patience
                and self.save_steps % self.eval_steps):
            problems.append("with early stopping, save_steps must be a multiple of eval_steps (the best one is kept)")
        if self.stages is not None:
            if not self.stages:
                problems.append("stages is empty; remove it to train in one stage")
            names = [s.name for s in self.stages]
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                problems.append(f"stage names must be unique: {', '.join(dupes)}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def stage_names(self) -> list[str]:
        """Names of the stages, in order (`main` for a single-stage run)."""
        return [s.name for s in self.stage_list()]

    def stage_list(self) -> list[StageConfig]:
        """The stages to run: the configured ones, or one stage named `main` with the section's values."""
        return list(self.stages) if self.stages else [StageConfig(name="main")]

    def for_stage(self, stage: StageConfig) -> TrainingConfig:
        """This config with the stage's overrides applied (a stage's max_steps replaces epochs and back)."""
        updates = {k: getattr(stage, k) for k in STAGE_OVERRIDES if getattr(stage, k) is not None}
        if stage.epochs is not None and stage.max_steps is None:
            updates["max_steps"] = None
        return self.model_copy(update=updates)
