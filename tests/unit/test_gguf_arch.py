"""GGUF architectures beyond Llama: each one's config read into a shape, every checkpoint tensor
named by gguf's tensor name map (as llama.cpp's converter names it), and the per-architecture
rewrites (GPT-2's Conv1D transposes, Gemma's norm offset, Phi-3's long-rope factors)."""

from __future__ import annotations

import numpy as np
import pytest

from mason.export.gguf_arch import gemma_warnings, gguf_dims, rewrite_tensor, skip_tensor
from mason.export.gguf_shape import SUPPORTED_ARCHITECTURES, model_shape

gguf = pytest.importorskip("gguf")

COMMON = {"hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2, "num_hidden_layers": 2,
          "intermediate_size": 128, "vocab_size": 512, "max_position_embeddings": 512, "rms_norm_eps": 1e-6}
GPT2 = {"architectures": ["GPT2LMHeadModel"], "n_embd": 64, "n_head": 4, "n_layer": 2, "n_inner": None,
        "n_positions": 1024, "vocab_size": 512, "layer_norm_epsilon": 1e-5, "tie_word_embeddings": True}
GEMMA3 = COMMON | {"architectures": ["Gemma3ForCausalLM"], "head_dim": 32, "query_pre_attn_scalar": 32,
                   "sliding_window": 256, "layer_types": ["sliding_attention", "sliding_attention"],
                   "rope_parameters": {"full_attention": {"rope_type": "default", "rope_theta": 1e6},
                                       "sliding_attention": {"rope_type": "default", "rope_theta": 1e4}}}


def test_the_allow_list_names_every_new_architecture() -> None:
    assert {a for a, _ in SUPPORTED_ARCHITECTURES.values()} >= {"LLAMA", "QWEN2", "QWEN3", "GPT2", "PHI3", "GEMMA",
                                                                  "GEMMA2", "GEMMA3"}
    assert all(hasattr(gguf.MODEL_ARCH, a) for a, _ in SUPPORTED_ARCHITECTURES.values())


def test_gpt2_shape_reads_gpt2_names() -> None:
    shape = model_shape(GPT2)
    assert (shape.arch, shape.hidden, shape.n_layers, shape.n_head, shape.n_head_kv) == ("GPT2", 64, 2, 4, 4)
    assert (shape.ffn, shape.n_ctx, shape.rms_eps, shape.tied, shape.rope_dims) == (256, 1024, 1e-5, True, 0)
    assert model_shape(GPT2 | {"n_inner": 100}).ffn == 100


def test_phi3_partial_rotary_and_original_context() -> None:
    cfg = COMMON | {"architectures": ["Phi3ForCausalLM"], "original_max_position_embeddings": 256,
                    "rope_parameters": {"rope_theta": 1e4, "rope_type": "default", "partial_rotary_factor": 0.5}}
    shape = model_shape(cfg)
    assert (shape.arch, shape.permute, shape.rope_dims, shape.head_dim) == ("PHI3", False, 8, 16)
    assert shape.extra["original_max_position_embeddings"] == 256


def test_gemma3_reads_both_ropes_and_always_ties() -> None:
    shape = model_shape(GEMMA3 | {"tie_word_embeddings": False})
    assert (shape.rope_theta, shape.extra["rope_theta_swa"], shape.head_dim, shape.tied) == (1e6, 1e4, 32, True)
    assert gemma_warnings(shape) == []
    odd = model_shape(GEMMA3 | {"query_pre_attn_scalar": 100, "sliding_window": 8,
                                "layer_types": ["full_attention", "sliding_attention"]})
    warnings = gemma_warnings(odd)
    assert any("query_pre_attn_scalar" in w for w in warnings) and any("layer_types" in w for w in warnings)


def test_rewrites() -> None:
    gpt2, gemma = model_shape(GPT2), model_shape(GEMMA3)
    w = np.arange(6, dtype=np.float32).reshape(2, 3)  # Conv1D [in, out]
    assert rewrite_tensor(gpt2, "transformer.h.0.attn.c_attn.weight", w).shape == (3, 2)
    assert rewrite_tensor(gpt2, "transformer.h.0.attn.c_attn.bias", w[0]).shape == (3,)
    assert gguf_dims(gpt2, "transformer.h.0.mlp.c_fc.weight", [2, 3]) == [2, 3]  # innermost first after .T
    assert gguf_dims(gemma, "model.layers.0.mlp.up_proj.weight", [128, 64]) == [64, 128]
    norm = np.zeros(4, dtype=np.float32)
    assert rewrite_tensor(gemma, "model.layers.0.self_attn.q_norm.weight", norm).tolist() == [1.0] * 4
    assert rewrite_tensor(model_shape(GPT2), "transformer.ln_f.weight", norm).tolist() == [0.0] * 4
    assert skip_tensor(gpt2, "h.0.attn.bias") and skip_tensor(gpt2, "h.0.attn.masked_bias")
    assert not skip_tensor(gpt2, "h.0.attn.c_attn.bias")
    assert skip_tensor(gemma, "lm_head.weight")


def _hf_names(arch: str) -> list[str]:
    # the checkpoint tensor names of a tiny model of `arch`, without allocating it
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from mason.models.tiny import tiny_config

    ids = {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}
    shape = {"hidden_size": 64, "num_layers": 2, "num_heads": 4, "num_kv_heads": 2, "intermediate_size": 128,
             "max_position_embeddings": 512}
    config = tiny_config(arch, 512, ids, arch != "llama", shape)
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(config)
    return list(model.state_dict())


@pytest.mark.parametrize(("arch", "fused"), [("gpt2", "blk.0.attn_qkv.weight"), ("phi3", "blk.0.ffn_up.weight"),
                                            ("gemma", "blk.0.ffn_gate.weight"),
                                            ("gemma2", "blk.0.post_ffw_norm.weight"),
                                            ("gemma3", "blk.0.attn_q_norm.weight"),
                                            ("qwen3", "blk.1.attn_k_norm.weight")])
def test_every_checkpoint_tensor_has_a_gguf_name(arch: str, fused: str) -> None:
    names = _hf_names(arch)
    hf_arch = {"gpt2": "GPT2LMHeadModel", "phi3": "Phi3ForCausalLM", "gemma": "GemmaForCausalLM",
               "gemma2": "Gemma2ForCausalLM", "gemma3": "Gemma3ForCausalLM", "qwen3": "Qwen3ForCausalLM"}[arch]
    shape = model_shape((GPT2 if arch == "gpt2" else COMMON) | {"architectures": [hf_arch]})
    name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH[shape.arch], shape.n_layers)
    mapped = {n: name_map.get_name(n, try_suffixes=(".weight", ".bias")) for n in names if not skip_tensor(shape, n)}
    assert all(mapped.values()), [n for n, g in mapped.items() if g is None]
    assert fused in mapped.values() and "token_embd.weight" in mapped.values()
    assert len(set(mapped.values())) == len(mapped)  # no two checkpoint tensors land on one name
