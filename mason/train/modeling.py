"""Load the base model and tokenizer for training, and put LoRA adapters on it.

The base model is resolved through `mason.models` (local folder, GGUF file, built-in name or hub
id), so the offline built-ins work here exactly as everywhere else. torch, transformers and peft
are imported inside the functions.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from mason.core.errors import MasonError
from mason.models import model_source
from mason.models.config import BaseModelConfig
from mason.models.device import device_kind
from mason.train.config import TrainingConfig


def _dtype(base: BaseModelConfig, method: str) -> Any:
    import torch

    if base.dtype != "auto":
        return getattr(torch, base.dtype)
    # fp32 master weights on CPU: fp16/bf16 weights with an fp32 optimizer are a GPU trade-off
    if device_kind().startswith("cuda") and method != "full" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def compute_dtype(setting: str) -> Any:
    """The torch dtype of `training.bnb_4bit_compute_dtype`: `auto` is bfloat16 where the GPU has it
    (Ampere and newer), else float16 (bf16 is emulated, or missing, on older GPUs)."""
    import torch

    if setting != "auto":
        return getattr(torch, setting)
    return torch.bfloat16 if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else torch.float16


def check_method(cfg: TrainingConfig) -> None:
    """Fail early, with the fix, when the chosen method or backend cannot run on this machine.

    Raises:
        MasonError: qlora without CUDA or bitsandbytes; unsloth without unsloth or an NVIDIA GPU.
    """
    if cfg.method == "qlora":
        if not device_kind().startswith("cuda"):
            raise MasonError(
                "method: qlora needs an NVIDIA GPU (bitsandbytes 4-bit kernels); this machine has none",
                hint="use `method: lora` on CPU/MPS",
            )
        if importlib.util.find_spec("bitsandbytes") is None:
            raise MasonError("method: qlora needs bitsandbytes, which is not installed", hint="pip install bitsandbytes")
    if cfg.use_unsloth == "require":
        from mason.train.unsloth_backend import check_unsloth

        check_unsloth(device_kind().split(":")[0])


def load_tokenizer(source: str, base: BaseModelConfig) -> Any:
    """The tokenizer, with a pad token (eos when the model has none), right padding, and a chat
    template (MASON's default when the model has none: `mason.data.chat.ensure_chat_template`;
    it is saved with the adapter and the merged model)."""
    from transformers import AutoTokenizer

    from mason.data.chat import ensure_chat_template

    tok = AutoTokenizer.from_pretrained(source, revision=base.revision, trust_remote_code=base.trust_remote_code)
    ensure_chat_template(tok)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "right"
    return tok


def load_model(source: str, base: BaseModelConfig, cfg: TrainingConfig) -> Any:
    """The base causal LM (4-bit for qlora), ready for training.

    Raises:
        MasonError: the weights cannot be loaded (message from transformers, with the source).
    """
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"revision": base.revision, "trust_remote_code": base.trust_remote_code,
                              "dtype": _dtype(base, cfg.method)}
    if cfg.method == "qlora":
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=compute_dtype(cfg.bnb_4bit_compute_dtype),
        )
    try:
        model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as e:
        raise MasonError(f"cannot load the base model from {source}: {e}") from None
    if cfg.method == "qlora":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    return model


def apply_checkpointing(model: Any, cfg: TrainingConfig, batch: int, length: int, bf16: bool) -> bool:
    """Turn gradient checkpointing on where `training.gradient_checkpointing` (`auto`: only when memory
    is short for `batch` rows of up to `length` tokens, see `mason.train.hardware.choose_checkpointing`)
    asks for it; logs the decision. The trainer builders call it once the rows are known.

    Returns:
        whether it is on.
    """
    from mason.core.console import info
    from mason.train.hardware import choose_checkpointing

    choice = choose_checkpointing(cfg.gradient_checkpointing, model, batch, length, bf16)
    info(f"  {choice.reason}")
    if choice.on:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
        if hasattr(model, "enable_input_require_grads") and cfg.method != "full":
            # inputs must require grad for checkpointed blocks to backprop into the adapters
            model.enable_input_require_grads()
    return choice.on


def add_lora(model: Any, cfg: TrainingConfig, init_from: Path | None = None) -> Any:
    """The model wrapped with trainable LoRA adapters: fresh ones, or those saved in `init_from`.

    Fresh adapters are initialised under `cfg.seed` (the caller's RNG state is left alone).
    """
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model

    if init_from is not None:
        return PeftModel.from_pretrained(model, str(init_from), is_trainable=True)
    lora = LoraConfig(
        r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
        target_modules=cfg.target_modules, bias="none", task_type="CAUSAL_LM",
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        peft_model = get_peft_model(model, lora)
    return peft_model


def prepare(base: BaseModelConfig, base_dir: Path, cfg: TrainingConfig, init_from: Path | None) -> tuple[Any, Any]:
    """(model, tokenizer) for one stage: LoRA methods get adapters (from `init_from` when given);
    `full` loads `init_from` (a previous stage's full model) instead of the base when given.

    Raises:
        ModelNotFoundError, MasonError: see `model_source`, `check_method`, `load_model`.
    """
    check_method(cfg)
    source = model_source(base, base_dir)
    from mason.train.unsloth_backend import wants_unsloth

    if wants_unsloth(cfg.use_unsloth, device_kind().split(":")[0]):
        from mason.train.unsloth_backend import load_with_unsloth

        return load_with_unsloth(source, base, cfg, init_from)
    tokenizer = load_tokenizer(source, base)
    if cfg.method == "full":
        model = load_model(str(init_from) if init_from else source, base, cfg)
    else:
        model = add_lora(load_model(source, base, cfg), cfg, init_from)
    return model, tokenizer


def trainable_state(model: Any) -> dict[str, Any]:
    """A CPU copy of the trainable parameters (to measure what training changed)."""
    return {n: p.detach().float().cpu().clone() for n, p in model.named_parameters() if p.requires_grad}
