"""What the GGUF writer and its check both read from a Hugging Face model folder: config.json, the
architecture's shape (the allow-list lives here) and the texts whose tokenization must agree."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mason.core.errors import MasonError

#: Hugging Face architecture -> (gguf MODEL_ARCH name, permute q/k for llama.cpp's rope layout)
SUPPORTED_ARCHITECTURES: dict[str, tuple[str, bool]] = {
    "LlamaForCausalLM": ("LLAMA", True),
    "MistralForCausalLM": ("LLAMA", True),
    "Qwen2ForCausalLM": ("QWEN2", False),
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
    rms_eps: float
    rope_theta: float
    rope: dict[str, Any]
    tied: bool


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
    n_head = int(config["num_attention_heads"])
    hidden = int(config["hidden_size"])
    rope = dict(config.get("rope_parameters") or config.get("rope_scaling") or {})
    theta = float(rope.get("rope_theta", config.get("rope_theta", 10000.0)))
    return ModelShape(
        hf_arch=hf_arch, arch=arch, permute=permute, n_layers=int(config["num_hidden_layers"]), hidden=hidden,
        ffn=int(config["intermediate_size"]), n_head=n_head,
        n_head_kv=int(config.get("num_key_value_heads") or n_head),
        head_dim=int(config.get("head_dim") or hidden // n_head),
        n_ctx=int(config.get("max_position_embeddings", 2048)), vocab_size=int(config["vocab_size"]),
        rms_eps=float(config.get("rms_norm_eps", 1e-6)), rope_theta=theta, rope=rope,
        tied=bool(config.get("tie_word_embeddings", False)),
    )
