"""GGUF export pieces that need no model: outtypes, tensor plans, q/k permutation, pre-tokenizers,
the architecture allow-list, and the crash-safe llama.cpp child process."""

from __future__ import annotations

import numpy as np
import pytest

from mason.core.errors import MasonError
from mason.export import gguf_quant
from mason.export.gguf import llama3_rope_factors, permute_qk
from mason.export.gguf_shape import SUPPORTED_ARCHITECTURES, model_shape
from mason.export.gguf_vocab import LLAMA3_SPLIT, QWEN2_SPLIT, pre_from_structure

pytest.importorskip("gguf")

LLAMA_CONFIG = {
    "architectures": ["LlamaForCausalLM"], "hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2,
    "num_hidden_layers": 2, "intermediate_size": 128, "vocab_size": 512, "max_position_embeddings": 512,
    "rms_norm_eps": 1e-6, "rope_parameters": {"rope_theta": 10000.0, "rope_type": "default"},
    "tie_word_embeddings": True,
}


def test_outtypes_normalize_and_unknown_ones_list_the_choices() -> None:
    assert gguf_quant.normalize_outtype("Q8_0") == "q8_0"
    assert gguf_quant.normalize_outtype("fp16") == "f16"
    assert gguf_quant.normalize_outtype("Q4-K-M") == "q4_k_m"
    assert gguf_quant.normalize_outtype(None) == "q8_0"
    with pytest.raises(MasonError) as e:
        gguf_quant.normalize_outtype("q9_9")
    assert "q9_9" in e.value.message and "q4_k_m" in (e.value.hint or "") and "bf16" in (e.value.hint or "")


def test_tensor_plans() -> None:
    assert gguf_quant.plan_tensor("blk.0.attn_norm.weight", (64,), "q8_0", False).qtype == "F32"
    assert gguf_quant.plan_tensor("blk.0.attn_q.weight", (64, 64), "q8_0", False) == gguf_quant.TensorPlan("Q8_0")
    assert gguf_quant.plan_tensor("blk.0.attn_q.weight", (64, 64), "bf16", False).qtype == "BF16"
    odd = gguf_quant.plan_tensor("blk.0.ffn_down.weight", (64, 100), "q4_0", False)
    assert odd.qtype == "F16" and "not a multiple" in (odd.reason or "")
    out = gguf_quant.plan_tensor("token_embd.weight", (512, 64), "q4_0", True)
    assert out.qtype == "Q8_0" and out.reason
    assert gguf_quant.file_type("q8_0") == 7 and gguf_quant.ftype_of_quant("q4_k_m") == 15


def test_convert_round_trips_within_quant_error() -> None:
    import gguf

    rng = np.random.default_rng(0)
    w = rng.normal(size=(8, 64)).astype(np.float32)
    for qtype, tol in (("F16", 1e-3), ("BF16", 1e-2), ("Q8_0", 2e-2), ("Q4_0", 0.3)):
        data, raw = gguf_quant.convert(w, qtype)
        back = gguf.quants.dequantize(data, raw) if raw is not None else data.astype(np.float32)
        assert back.shape == w.shape and np.max(np.abs(back - w)) < tol * np.abs(w).max()


def test_permute_interleaves_rotary_halves() -> None:
    # one head of dim 4, rows (x0, x1 | y0, y1): HF rotates x_i with y_i, llama.cpp rows 2i with 2i+1
    w = np.arange(4, dtype=np.float32)[:, None] * np.ones((1, 3), dtype=np.float32)
    assert permute_qk(w, 1)[:, 0].tolist() == [0, 2, 1, 3]
    # GQA: k uses the kv head count
    k = np.arange(16, dtype=np.float32)[:, None]
    assert permute_qk(k, 8, 2)[:8, 0].tolist() == [0, 4, 1, 5, 2, 6, 3, 7]
    bias = np.arange(8, dtype=np.float32)
    assert permute_qk(bias, 2).tolist() == [0, 2, 1, 3, 4, 6, 5, 7]


def test_model_shape_reads_transformers5_and_older_configs() -> None:
    shape = model_shape(LLAMA_CONFIG)
    assert (shape.arch, shape.permute, shape.n_head_kv, shape.head_dim, shape.rope_theta) == ("LLAMA", True, 2, 16, 1e4)
    old = {k: v for k, v in LLAMA_CONFIG.items() if k != "rope_parameters"} | {"rope_theta": 5e5}
    assert model_shape(old).rope_theta == 5e5
    qwen = LLAMA_CONFIG | {"architectures": ["Qwen2ForCausalLM"]}
    assert (model_shape(qwen).arch, model_shape(qwen).permute) == ("QWEN2", False)


def test_unsupported_architecture_is_named_with_the_supported_ones() -> None:
    with pytest.raises(MasonError) as e:
        model_shape(LLAMA_CONFIG | {"architectures": ["BloomForCausalLM"]})
    assert "BloomForCausalLM" in e.value.message
    assert all(a in (e.value.hint or "") for a in SUPPORTED_ARCHITECTURES)


def test_llama3_rope_factors() -> None:
    cfg = LLAMA_CONFIG | {"hidden_size": 256, "num_attention_heads": 2, "rope_parameters": {
        "rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0, "low_freq_factor": 1.0,
        "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}}
    f = llama3_rope_factors(model_shape(cfg))
    assert f.shape == (64,) and f.dtype == np.float32
    assert f[0] == 1.0 and f[-1] == 32.0 and np.all(np.diff(f) >= 0)


def _bpe_json(*steps: dict, normalizer: dict | None = None) -> dict:
    pre = steps[0] if len(steps) == 1 else {"type": "Sequence", "pretokenizers": list(steps)}
    return {"normalizer": normalizer, "pre_tokenizer": pre}


BYTE_LEVEL = {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}
BYTE_LEVEL_NO_REGEX = {"type": "ByteLevel", "add_prefix_space": False, "use_regex": False}


@pytest.mark.parametrize(("tokenizer_json", "name"), [
    (_bpe_json(BYTE_LEVEL), "gpt-2"),
    (_bpe_json({"type": "Digits", "individual_digits": True}, BYTE_LEVEL), "smollm"),
    (_bpe_json({"type": "Split", "pattern": {"Regex": LLAMA3_SPLIT}}, BYTE_LEVEL_NO_REGEX), "llama-bpe"),
    (_bpe_json({"type": "Split", "pattern": {"Regex": QWEN2_SPLIT}}, BYTE_LEVEL_NO_REGEX), "qwen2"),
    (_bpe_json({"type": "Split", "pattern": {"Regex": "\\s+"}}, BYTE_LEVEL_NO_REGEX), None),
    (_bpe_json(BYTE_LEVEL, normalizer={"type": "NFC"}), None),
    (_bpe_json({"type": "ByteLevel", "add_prefix_space": True}), None),
])
def test_pre_tokenizer_from_structure(tokenizer_json: dict, name: str | None) -> None:
    assert pre_from_structure(tokenizer_json) == name


def test_k_quant_without_llama_cpp_says_what_to_do(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from mason.export.base import ExportJob
    from mason.export.gguf import GGUFExporter
    from mason.runtime import llamacpp

    monkeypatch.setattr(llamacpp, "llama_cpp_available", lambda: False)
    job = ExportJob(tmp_path / "model", tmp_path / "out", {"quantization": "q4_k_m"})
    with pytest.raises(MasonError) as e:
        GGUFExporter().export(job)
    assert "q4_k_m" in e.value.message and "llama-cpp-python" in e.value.message
    assert "mason[llama]" in (e.value.hint or "") and "q8_0" in (e.value.hint or "")


def test_runtime_without_llama_cpp(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from mason.runtime import llamacpp

    monkeypatch.setattr(llamacpp, "llama_cpp_available", lambda: False)
    with pytest.raises(MasonError) as e:
        llamacpp.LlamaCppRuntime(tmp_path / "m.gguf", format="gguf", base_model=None)
    assert 'pip install "mason[llama]"' in (e.value.hint or "") and "GGML_AMX_TILE=OFF" in (e.value.hint or "")


def test_a_native_crash_in_the_child_becomes_a_clear_error() -> None:
    from mason.runtime.llamacpp import run_isolated

    # ctypes.string_at(0) reads address 0: a segfault, as an AMX llama.cpp build gives
    with pytest.raises(MasonError) as e:
        run_isolated("ctypes:string_at", 0, what="llama.cpp check")
    assert "crashed (signal 11)" in e.value.message and "AMX" in (e.value.hint or "")
    assert run_isolated("math:sqrt", 16.0, what="sqrt") == 4.0
    with pytest.raises(MasonError, match="failed"):
        run_isolated("math:sqrt", -1.0, what="sqrt")


def test_unknown_pre_tokenizer_falls_back_to_default_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    import mason.export.gguf_vocab as vocab
    from mason.export.gguf_vocab import (
        KNOWN_PRE_HASHES,
        check_hash,
        detect_pre_tokenizer,
    )

    class Fake:
        def __init__(self, ids: list[int]):
            self.ids = ids

        def encode(self, text: str) -> list[int]:
            return self.ids

    name, source, warning = detect_pre_tokenizer(Fake([1, 2, 3]), {"pre_tokenizer": {"type": "Whitespace"}})
    assert (name, source) == ("default", "fallback") and "unknown BPE pre-tokenizer" in (warning or "")
    name, source, _ = detect_pre_tokenizer(Fake([1, 2, 3]), {"pre_tokenizer": BYTE_LEVEL})
    assert (name, source) == ("gpt-2", "structure")
    # a known check-text hash wins over the structure
    smollm = next(h for h, n in KNOWN_PRE_HASHES.items() if n == "smollm")
    fake = Fake([9])
    assert check_hash(fake) != smollm
    monkeypatch.setattr(vocab, "check_hash", lambda tok: smollm)
    assert detect_pre_tokenizer(fake, {"pre_tokenizer": BYTE_LEVEL})[:2] == ("smollm", "hash")
