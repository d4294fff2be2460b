"""What the GGUF writer and its check both read from a Hugging Face model folder: config.json, the
architecture's shape (the allow-list lives here) and the texts whose tokenization must agree."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mason.core.errors import MasonError

#: Hugging Face architecture -> (gguf MODEL_ARCH name, permute q/k for llama.cpp's rope layout);
#: what each needs besides the name map is in `mason.export.gguf_arch`
SUPPORTED_ARCHITECTURES: dict[str, tuple[str, bool]] = {
    "LlamaForCausalLM": ("LLAMA", True),
    "MistralForCausalLM": ("LLAMA", True),
    "Qwen2ForCausalLM": ("QWEN2", False),
    "Qwen3ForCausalLM": ("QWEN3", False),
    "GPT2LMHeadModel": ("GPT2", False),
    "Phi3ForCausalLM": ("PHI3", False),
    "GemmaForCausalLM": ("GEMMA", False),
    "Gemma2ForCausalLM": ("GEMMA2", False),
    "Gemma3ForCausalLM": ("GEMMA3", False),
}

#: plain texts whose tokenization must agree between llama.cpp and Hugging Face
PARITY_TEXTS: list[str] = [
    "Hello world! It's 3.14159, isn't it?",
    "In 1850 a city employed 300 masons; 12,345 bricks cost $19.99 (5%).",
    "  two  spaces,\ttabs\nand\n\nnew lines   ",
    "I'll say we've DONE it: x = y + 1; {\"k\": [1, 2]}",
    "café naïve Ünïcode — 日本語 😀",
]


@dataclass(frozen=True)
class ModelShape:
    """The hyperparameters GGUF metadata needs, read from config.json."""

    hf_arch: str
    arch: str  # gguf MODEL_ARCH name
    permute: bool
    n_layers: int
    hidden: int
    ffn: int
    n_head: int
    n_head_kv: int
    head_dim: int
    n_ctx: int
    vocab_size: int
    rms_eps: float  # the norm epsilon (GPT-2's LayerNorm epsilon too)
    rope_theta: float
    rope: dict[str, Any]
    tied: bool
    rope_dims: int = 0  # rotary dimensions per head (Phi-3's partial rotary); 0: none (GPT-2)
    #: architecture-specific hyperparameters (sliding window, soft-capping, Phi-3's original
    #: context, Gemma 3's local rope base...), read by `gguf_arch.add_arch_hparams`
    extra: dict[str, Any] = field(default_factory=dict)


def read_config(model_dir: Path) -> dict[str, Any]:
    """config.json of a model folder. Raises MasonError when there is none."""
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        raise MasonError(f"{model_dir}: no config.json, not a Hugging Face model folder",
                         hint="export reads the merged model folder written by training")
    return json.loads(path.read_text(encoding="utf-8"))


def model_shape(config: dict[str, Any]) -> ModelShape:
    """The shape of a model from its config.json contents.

    Raises:
        MasonError: the architecture is not on the allow-list (the message lists it).
    """
    archs = config.get("architectures") or [str(config.get("model_type", "unknown"))]
    hf_arch = archs[0]
    if hf_arch not in SUPPORTED_ARCHITECTURES:
        raise MasonError(
            f"GGUF export does not support the architecture {hf_arch}",
            hint=f"supported: {', '.join(SUPPORTED_ARCHITECTURES)}; export this model as 'merged' instead",
        )
    arch, permute = SUPPORTED_ARCHITECTURES[hf_arch]
    if arch == "GPT2":
        return _gpt2_shape(config, hf_arch)
    n_head = int(config["num_attention_heads"])
    hidden = int(config["hidden_size"])
    rope = dict(config.get("rope_parameters") or config.get("rope_scaling") or {})
    extra: dict[str, Any] = {}
    if isinstance(rope.get("full_attention"), dict):  # Gemma 3: one rope per attention kind
        extra["rope_theta_swa"] = float(rope.get("sliding_attention", {}).get("rope_theta", 10000.0))
        rope = dict(rope["full_attention"])
    elif "rope_local_base_freq" in config:
        extra["rope_theta_swa"] = float(config["rope_local_base_freq"])
    theta = float(rope.get("rope_theta", config.get("rope_theta", 10000.0)))
    head_dim = int(config.get("head_dim") or hidden // n_head)
    partial = float(rope.get("partial_rotary_factor", config.get("partial_rotary_factor", 1.0)) or 1.0)
    for key in ("sliding_window", "attn_logit_softcapping", "final_logit_softcapping", "query_pre_attn_scalar",
                "original_max_position_embeddings", "layer_types"):
        if config.get(key) is not None:
            extra[key] = config[key]
    return ModelShape(
        hf_arch=hf_arch, arch=arch, permute=permute, n_layers=int(config["num_hidden_layers"]), hidden=hidden,
        ffn=int(config["intermediate_size"]), n_head=n_head,
        n_head_kv=int(config.get("num_key_value_heads") or n_head),
        head_dim=head_dim,
        n_ctx=int(config.get("max_position_embeddings", 2048)), vocab_size=int(config["vocab_size"]),
        rms_eps=float(config.get("rms_norm_eps", 1e-6)), rope_theta=theta, rope=rope,
        # Gemma always ties: llama.cpp reads its output layer from token_embd
        tied=bool(config.get("tie_word_embeddings", False)) or arch.startswith("GEMMA"),
        rope_dims=int(partial * hidden) // n_head if arch == "PHI3" else head_dim, extra=extra,
    )


def _gpt2_shape(config: dict[str, Any], hf_arch: str) -> ModelShape:
    # GPT-2's config names (n_embd, n_layer...): learned positions, LayerNorm, no rope, no GQA
    hidden, n_head = int(config["n_embd"]), int(config["n_head"])
    return ModelShape(
        hf_arch=hf_arch, arch="GPT2", permute=False, n_layers=int(config["n_layer"]), hidden=hidden,
        ffn=int(config.get("n_inner") or 4 * hidden), n_head=n_head, n_head_kv=n_head, head_dim=hidden // n_head,
        n_ctx=int(config.get("n_positions") or config.get("n_ctx") or 1024), vocab_size=int(config["vocab_size"]),
        rms_eps=float(config.get("layer_norm_epsilon", 1e-5)), rope_theta=0.0, rope={},
        tied=bool(config.get("tie_word_embeddings", True)), rope_dims=0,
    )
