"""Direct preference optimization with TRL's `DPOTrainer`.

LoRA first: the policy is a PeftModel and no reference model is loaded. TRL then computes the
reference log-probabilities with a frozen copy of the starting adapter (a fresh adapter is a
no-op, so the reference is the base model): one set of base weights in memory, not two.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mason.train.config import TrainingConfig
from mason.train.sft import trainer_kwargs


def build_dpo_trainer(model: Any, tokenizer: Any, train_rows: list[dict], eval_rows: list[dict],
                      cfg: TrainingConfig, out_dir: Path, callbacks: list[Any]) -> Any:
    """A TRL `DPOTrainer` on conversational preference rows ({prompt, chosen, rejected}).

    For `method: full` a frozen copy of the starting model is the reference (twice the memory).

    Returns:
        the trainer; call `.train(resume_from_checkpoint=...)` on it.
    """
    from datasets import Dataset
    from transformers import EarlyStoppingCallback
    from trl import DPOConfig, DPOTrainer

    from mason.train.hardware import pin_device
    from mason.train.modeling import apply_checkpointing

    kwargs = trainer_kwargs(cfg, out_dir, has_eval=bool(eval_rows), n_rows=len(train_rows))
    # chosen and rejected go through the model together: twice the rows, at up to max_length tokens
    apply_checkpointing(model, cfg, 2 * cfg.batch_size, cfg.max_length, bool(kwargs.get("bf16")))
    args = pin_device(DPOConfig(**kwargs, beta=cfg.dpo_beta, max_length=cfg.max_length, dataset_num_proc=None))
    callbacks = list(callbacks)
    if args.load_best_model_at_end:
        callbacks.append(EarlyStoppingCallback(cfg.early_stopping_patience, cfg.early_stopping_threshold))
    ref_model = None
    if cfg.method == "full":
        import copy

        ref_model = copy.deepcopy(model).eval().requires_grad_(False)
    return DPOTrainer(
        model=model,
        ref_model=ref_model,
        args=args,
        train_dataset=Dataset.from_list(train_rows),
        eval_dataset=Dataset.from_list(eval_rows) if eval_rows else None,
        processing_class=tokenizer,
        callbacks=callbacks,
    )
