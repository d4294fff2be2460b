"""The optional unsloth path (`training.use_unsloth: true | require`): unsloth's fused kernels on NVIDIA GPUs.

unsloth loads the model and puts the LoRA adapters on it with its own `FastLanguageModel`; the
result is a PEFT model that MASON's trainers, checkpoints and outputs handle like any other. It
cannot run on the development machines (no NVIDIA GPU): its tests check the calls against a
stand-in module, and this path is documented as untested on real hardware.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import Any

from mason.core.errors import MasonError
from mason.models.config import BaseModelConfig
from mason.train.config import TrainingConfig

#: what `target_modules: all-linear` means for unsloth (it wants names)
ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def unsloth_unavailable(device: str) -> str | None:
    """Why unsloth cannot train here (not installed, no NVIDIA GPU), or None when it can."""
    if importlib.util.find_spec("unsloth") is None:
        return "needs unsloth, which is not installed"
    if device != "cuda":
        return f"needs an NVIDIA GPU; this machine trains on {device}"
    return None


def check_unsloth(device: str) -> None:
    """Fail early, with the fix, when unsloth cannot run here (`use_unsloth: require`).

    Raises:
        MasonError: not installed, or no NVIDIA GPU.
    """
    why = unsloth_unavailable(device)
    if why is None:
        return
    hint = ("pip install unsloth (NVIDIA GPUs only), or remove use_unsloth" if "installed" in why
            else "remove use_unsloth: the transformers path trains the same adapter here")
    raise MasonError(f"use_unsloth {why}", hint=hint)


def wants_unsloth(setting: bool | str, device: str) -> bool:
    """Whether to train through unsloth: `true` means "if it can run here" (else a notice and the standard
    path), `require` insists (a clear error where it cannot).

    Raises:
        MasonError: `require` where unsloth cannot run.
    """
    if not setting:
        return False
    if setting == "require":
        check_unsloth(device)
        return True
    why = unsloth_unavailable(device)
    if why is not None:
        from mason.core.console import info

        info(f"use_unsloth: true {why}: training on the standard transformers path instead "
             "(`use_unsloth: require` makes this an error)")
        return False
    return True


def load_with_unsloth(source: str, base: BaseModelConfig, cfg: TrainingConfig,
                      init_from: Path | None) -> tuple[Any, Any]:
    """(model, tokenizer) through unsloth: 4-bit for qlora, LoRA adapters (fresh, or continued from
    `init_from`, the previous stage's adapter), or full fine-tuning."""
    fast = importlib.import_module("unsloth").FastLanguageModel
    continuing = init_from is not None
    model, tokenizer = fast.from_pretrained(
        model_name=str(init_from) if continuing else source,  # an adapter folder loads with its base
        max_seq_length=cfg.max_length,
        dtype=None,  # unsloth picks bf16 where the GPU has it
        load_in_4bit=cfg.method == "qlora",
        full_finetuning=cfg.method == "full",
        trust_remote_code=base.trust_remote_code,
        revision=base.revision,
    )
    if cfg.method != "full":
        if continuing:
            fast.for_training(model)
            for name, param in model.named_parameters():
                if "lora_" in name:
                    param.requires_grad_(True)
        else:
            model = fast.get_peft_model(
                model,
                r=cfg.lora_r,
                lora_alpha=cfg.lora_alpha,
                lora_dropout=cfg.lora_dropout,
                target_modules=ALL_LINEAR if cfg.target_modules == "all-linear" else list(cfg.target_modules),
                bias="none",
                use_gradient_checkpointing="unsloth" if cfg.gradient_checkpointing is not False else False,
                random_state=cfg.seed,
            )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    return model, tokenizer
