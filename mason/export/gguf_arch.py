"""What each GGUF architecture needs besides gguf's tensor name map (`gguf.get_tensor_name_map`,
the Hugging Face -> GGUF names of llama.cpp's convert_hf_to_gguf.py): the hyperparameters
llama.cpp reads for it, and the tensors that are rewritten or dropped on the way, as that
converter does.

- LLAMA (Llama, Mistral): q/k rows permuted to llama.cpp's interleaved rope (`gguf.permute_qk`).
- QWEN2, QWEN3: tensors as they are (Qwen3's q_norm/k_norm are `attn_q_norm`/`attn_k_norm`).
- GPT2: the Conv1D weights ([in, out]) transposed to [out, in]; learned positions
  (`position_embd`, kept f32); LayerNorm epsilon; the causal-mask buffers dropped.
- PHI3: qkv_proj and gate_up_proj stay fused (`attn_qkv`, `ffn_up`: llama.cpp splits them); the
  rope dimension count from `partial_rotary_factor`, the original context, the sliding window
  (0: none); long-context `longrope` factors as `rope_factors_long/short`.
- GEMMA, GEMMA2, GEMMA3: every `*norm.weight` plus 1 (Hugging Face's Gemma RMSNorm multiplies by
  1 + w, llama.cpp's by w); lm_head dropped (llama.cpp's output is token_embd); key/value length;
  Gemma 2's soft-capping; Gemma 2/3's sliding window. llama.cpp scales the embeddings by
  sqrt(hidden) itself and fixes what the config could change: the attention scale
  1/sqrt(head_dim), which layers slide (Gemma 2: every other one; Gemma 3: five of six) and
  Gemma 3's local rope base 10000; a config that differs gets a warning (verification decides).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mason.export.gguf_shape import ModelShape

#: GPT-2's Conv1D weights, stored [in, out]
_GPT2_CONV1D = (".c_attn.weight", ".c_proj.weight", ".c_fc.weight")
#: GPT-2 checkpoints saved by older transformers carry the causal mask as buffers
_GPT2_BUFFERS = (".attn.bias", ".attn.masked_bias")
#: llama.cpp's sliding-window layer pattern: layer i slides when i % n < n - 1
_SWA_PATTERN = {"GEMMA2": 2, "GEMMA3": 6}


def skip_tensor(shape: ModelShape, hf_name: str) -> bool:
    """Whether checkpoint tensor `hf_name` has no place in the GGUF file."""
    if hf_name.endswith("rotary_emb.inv_freq") or (shape.tied and hf_name == "lm_head.weight"):
        return True
    return shape.arch == "GPT2" and hf_name.endswith(_GPT2_BUFFERS)


def rewrite_tensor(shape: ModelShape, hf_name: str, data: np.ndarray) -> np.ndarray:
    """`data` as llama.cpp expects it for `hf_name` (q/k permutation aside, see gguf.py)."""
    if shape.arch == "GPT2" and hf_name.endswith(_GPT2_CONV1D):
        return np.ascontiguousarray(data.T)
    if shape.arch.startswith("GEMMA") and hf_name.endswith("norm.weight"):
        return data + 1.0
    return data


def gguf_dims(shape: ModelShape, hf_name: str, hf_dims: list[int]) -> list[int]:
    """The dims GGUF lists for a checkpoint tensor of `hf_dims` (innermost first)."""
    dims = list(hf_dims)
    if shape.arch == "GPT2" and hf_name.endswith(_GPT2_CONV1D):
        return dims  # transposed, then listed innermost first: the checkpoint's own order
    return list(reversed(dims))


def add_arch_hparams(writer: Any, shape: ModelShape, warnings: list[str]) -> list[tuple[str, np.ndarray]]:
    """Write the architecture-specific metadata of `shape`; returns extra tensors to write
    (Phi-3's long-context rope factors)."""
    extra = shape.extra
    if shape.arch == "PHI3":
        writer.add_rope_scaling_orig_ctx_len(int(extra.get("original_max_position_embeddings") or shape.n_ctx))
        writer.add_sliding_window(int(extra.get("sliding_window") or 0))
        return _phi3_long_rope(writer, shape)
    if not shape.arch.startswith("GEMMA"):
        return []
    writer.add_key_length(shape.head_dim)
    writer.add_value_length(shape.head_dim)
    if shape.arch == "GEMMA2":
        for key, add in (("attn_logit_softcapping", writer.add_attn_logit_softcapping),
                         ("final_logit_softcapping", writer.add_final_logit_softcapping)):
            if extra.get(key) is not None:
                add(float(extra[key]))
    if shape.arch in _SWA_PATTERN:
        writer.add_sliding_window(int(extra.get("sliding_window") or shape.n_ctx))
        warnings.extend(gemma_warnings(shape))
    return []


def gemma_warnings(shape: ModelShape) -> list[str]:
    """What llama.cpp fixes for Gemma 2/3 that this config sets otherwise."""
    out = []
    extra, name = shape.extra, shape.hf_arch
    scalar = extra.get("query_pre_attn_scalar")
    if scalar is not None and int(scalar) not in (shape.head_dim, shape.hidden // shape.n_head):
        out.append(f"{name}: query_pre_attn_scalar {scalar} differs from head_dim {shape.head_dim}; llama.cpp "
                   "scales attention by 1/sqrt(head_dim)")
    n = _SWA_PATTERN[shape.arch]
    types = extra.get("layer_types")
    expected = ["sliding_attention" if i % n < n - 1 else "full_attention" for i in range(shape.n_layers)]
    window = int(extra.get("sliding_window") or shape.n_ctx)
    if types and list(types) != expected and window < shape.n_ctx:
        out.append(f"{name}: layer_types differ from llama.cpp's fixed sliding-window pattern (every {n}th layer "
                   "global): contexts longer than the window may differ from PyTorch")
    local = extra.get("rope_theta_swa")
    if shape.arch == "GEMMA3" and local is not None and float(local) != 10000.0:
        out.append(f"{name}: local rope base {local}; llama.cpp uses 10000 on sliding layers")
    return out


def _phi3_long_rope(writer: Any, shape: ModelShape) -> list[tuple[str, np.ndarray]]:
    # Phi-3 128k ("longrope"/"su"): per-dimension frequency factors, as llama.cpp's converter writes them
    import gguf

    rope = shape.rope
    kind = str(rope.get("rope_type") or rope.get("type") or "default").lower()
    if kind not in ("longrope", "su"):
        return []
    orig = int(shape.extra.get("original_max_position_embeddings") or shape.n_ctx)
    scale = shape.n_ctx / orig
    attn_factor = math.sqrt(1 + math.log(scale) / math.log(orig)) if scale > 1.0 else 1.0
    writer.add_rope_scaling_attn_factors(float(rope.get("attention_factor") or attn_factor))
    names = gguf.TENSOR_NAMES
    return [(names[gguf.MODEL_TENSOR.ROPE_FACTORS_LONG] + ".weight", np.asarray(rope["long_factor"], np.float32)),
            (names[gguf.MODEL_TENSOR.ROPE_FACTORS_SHORT] + ".weight", np.asarray(rope["short_factor"], np.float32))]
