"""Supervised fine-tuning: the arguments every trainer shares, the padding collator, and the
function that builds the SFT `Trainer`.

`build_sft_trainer` is the one place the SFT training loop is assembled: a faster loop (bf16
autocast, packing, token-budget batches) replaces this function and keeps its signature.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from mason.train.config import TrainingConfig


def steps_per_epoch(n_rows: int, cfg: TrainingConfig) -> int:
    """Optimizer steps in one pass over `n_rows` samples (single process)."""
    return max(1, math.ceil(math.ceil(n_rows / cfg.batch_size) / cfg.gradient_accumulation_steps))


def total_steps(n_rows: int, cfg: TrainingConfig) -> int:
    """Optimizer steps the stage will run: max_steps, or epochs over the data."""
    if cfg.max_steps is not None:
        return cfg.max_steps
    return max(1, math.ceil(steps_per_epoch(n_rows, cfg) * cfg.epochs))


def trainer_kwargs(cfg: TrainingConfig, out_dir: Path, *, has_eval: bool, n_rows: int,
                   select: str = "eval_loss") -> dict[str, Any]:
    """TrainingArguments fields shared by SFT and DPO (DPOConfig subclasses TrainingArguments).

    Checkpoints go to `out_dir/checkpoint-N` every `save_steps`; evaluation runs every
    `eval_steps` (or each epoch) when there is an eval set; with early stopping the checkpoint with
    the best `select` metric (`eval_loss`, lower is better; `eval_knowledge`, higher is better) is
    kept and loaded at the end.
    """
    from mason.train.modeling import device_kind

    steps = total_steps(n_rows, cfg)
    evaluate = has_eval and cfg.eval_steps is not None
    early = evaluate and cfg.early_stopping_patience is not None
    per_epoch = cfg.eval_steps == "epoch"
    # the best checkpoint must be a saved one: with early stopping, saves follow the evaluations
    save_every = cfg.save_steps or (cfg.eval_steps if evaluate and not per_epoch else None) or 50
    kwargs: dict[str, Any] = {
        "output_dir": str(out_dir),
        "per_device_train_batch_size": cfg.batch_size,
        "per_device_eval_batch_size": cfg.batch_size,
        "gradient_accumulation_steps": cfg.gradient_accumulation_steps,
        "learning_rate": cfg.learning_rate,
        "lr_scheduler_type": cfg.lr_scheduler,
        "warmup_steps": cfg.warmup_ratio,  # a float in [0, 1) is a ratio of the total steps
        "weight_decay": cfg.weight_decay,
        "num_train_epochs": cfg.epochs,
        "max_steps": cfg.max_steps if cfg.max_steps is not None else -1,
        "seed": cfg.seed,
        "data_seed": cfg.seed,
        "logging_steps": max(1, steps // 100),
        "eval_strategy": ("epoch" if per_epoch else "steps") if evaluate else "no",
        "eval_steps": cfg.eval_steps if evaluate and not per_epoch else None,
        "save_strategy": "epoch" if early and per_epoch else "steps",
        "save_steps": save_every,
        "save_total_limit": cfg.save_total_limit,
        "load_best_model_at_end": early,
        "metric_for_best_model": select if early else None,
        "greater_is_better": (select != "eval_loss") if early else None,
        "report_to": list(cfg.report_to) or "none",
        "include_num_input_tokens_seen": "non_padding",
        "remove_unused_columns": False,
        # fp32 unless a later speed pass shows bf16 autocast measurably helps on this device
        "bf16": False,
        "fp16": False,
        "use_cpu": device_kind() == "cpu",
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
    }
    return _pass_through(kwargs, cfg.trainer_args)


def _pass_through(kwargs: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """MASON's arguments updated with the user's `trainer_args` (unknown names fail with the list)."""
    if not extra:
        return kwargs
    import dataclasses

    from transformers import TrainingArguments

    known = {f.name for f in dataclasses.fields(TrainingArguments)}
    unknown = sorted(set(extra) - known)
    if unknown:
        from mason.core.errors import ConfigError, Problem

        raise ConfigError([Problem(f"training.trainer_args.{k}", "not a transformers TrainingArguments field")
                           for k in unknown])
    return {**kwargs, **extra}


def _packing_works(model: Any, rows: list[dict], pad_id: int, cfg_auto: bool) -> bool:
    """Check packing on the first few rows (see `mason.train.packing`); warn and pad when it differs."""
    from mason.core.console import info, warn
    from mason.train.packing import packing_matches

    sample = [r for r in rows[:4] if r["input_ids"]]
    if len(sample) < 2 or packing_matches(model, sample, pad_id):
        return True
    (info if cfg_auto else warn)(f"packing changes this model's loss ({type(model).__name__} does not build its attention mask from "
         "position ids): training on padded batches instead (set training.packing: false to skip this check)")
    return False


def _log_speed(bf16: bool, cfg: TrainingConfig, packed: bool) -> None:
    """One log line with the speed choices this run made, and why bf16 is on or off."""
    import torch

    from mason.core.console import info
    from mason.models.device import device_kind
    from mason.train.hardware import cpu_bf16_speedup

    why = ""
    if cfg.bf16 == "auto" and device_kind() == "cpu":
        why = f" (bf16 matmul measured {cpu_bf16_speedup():.1f}x fp32 on this CPU)"
    padded = "length-grouped" if cfg.group_by_length else "padded"
    batches = ((f"packed where cheaper than {padded}" if cfg.packing == "auto" else "packed") if packed
               else padded)
    info(f"  speed: bf16 autocast {'on' if bf16 else 'off'}{why}; {batches} batches; "
         f"{torch.get_num_threads()} CPU threads")


def build_sft_trainer(model: Any, tokenizer: Any, train_rows: list[dict], eval_rows: list[dict],
                      cfg: TrainingConfig, out_dir: Path, callbacks: list[Any]) -> Any:
    """A transformers `Trainer` for SFT on pre-tokenized rows (input_ids + labels).

    Returns:
        the Trainer; call `.train(resume_from_checkpoint=...)` on it.
    """
    from transformers import EarlyStoppingCallback, Trainer, TrainingArguments

    from mason.train.fast import fast_trainer_class
    from mason.train.hardware import pin_device, use_bf16
    from mason.train.modeling import apply_checkpointing
    from mason.train.packing import PackCollator, PadCollator

    probe = next((c for c in callbacks if getattr(c, "is_knowledge_probe", False)), None)
    kwargs = trainer_kwargs(cfg, out_dir, has_eval=bool(eval_rows), n_rows=len(train_rows),
                            select="eval_knowledge" if probe is not None else "eval_loss")
    # speed levers measured by bench/train.py (bf16 autocast, length-grouped batches, LM head on
    # trained positions only); group_by_length is off by default: it changes the batch order
    kwargs["bf16"] = use_bf16(cfg.bf16)
    pad = PadCollator(tokenizer.pad_token_id)
    packed = cfg.packing is not False and _packing_works(model, train_rows, tokenizer.pad_token_id,
                                                                 cfg.packing == "auto")
    if cfg.group_by_length and (not packed or cfg.packing == "auto"):
        kwargs["train_sampling_strategy"] = "group_by_length"  # batches of similar lengths: little padding
    _log_speed(kwargs["bf16"], cfg, packed)
    longest = max((len(r["input_ids"]) for r in train_rows), default=cfg.max_length)
    apply_checkpointing(model, cfg, cfg.batch_size, min(longest, cfg.max_length), kwargs["bf16"])
    args = pin_device(TrainingArguments(**kwargs))
    callbacks = list(callbacks)
    if args.load_best_model_at_end:
        callbacks.append(EarlyStoppingCallback(cfg.early_stopping_patience, cfg.early_stopping_threshold))
    trainer_cls = fast_trainer_class(cfg.fast_loss) if cfg.fast_loss or packed else Trainer
    return trainer_cls(
        model=model,
        args=args,
        data_collator=(PackCollator(pad if cfg.packing == "auto" else None, model.config) if packed else pad),
        train_dataset=train_rows,
        eval_dataset=eval_rows or None,
        processing_class=tokenizer,
        callbacks=callbacks,
    )
