"""The architectures people fine-tune small, besides Llama/Mistral/Qwen2: GPT-2 (DistilGPT2),
Phi-3, Gemma 1/2/3 and Qwen3, each a tiny random model built from a config with the tiny kit's
trained tokenizer (GPT-2: a GPT-2 style one without chat template).

- GGUF export of "sharp" variants (weights and norms re-drawn large, so a wrong tensor shows)
  verified in llama.cpp: logits, greedy continuations, tokenization; a missing per-architecture
  rewrite (GPT-2's Conv1D transpose, Gemma's norm offset) fails verification.
- GPT-2's ONNX export (torch.onnx, KV cache) verified in onnxruntime and onnxruntime-genai.
- End to end (slow): LoRA training through the pipeline (2 steps, with a plain-text sample), the
  exports verified, and `open_runtime` chatting with the adapter and every export; GPT-2 trains with
  MASON's default chat template, which the adapter, the GGUF, the Modelfile and the ONNX folder carry.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest

from mason.core.errors import MasonError
from mason.data.chat import default_chat_template, ensure_chat_template
from mason.export.base import ExportJob, ExportOutput, ExportVerificationError, get_exporter
from mason.models.tiny import build_tiny_model
from mason.runtime import GenerationParams, open_runtime

gguf = pytest.importorskip("gguf")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

ARCHS = ["gpt2", "phi3", "gemma", "gemma2", "gemma3", "qwen3"]
#: gguf general.architecture and a tensor that only the arch's layout has
GGUF_FACTS = {"gpt2": ("gpt2", "position_embd.weight"), "phi3": ("phi3", "blk.0.attn_qkv.weight"),
              "gemma": ("gemma", "blk.1.ffn_gate.weight"), "gemma2": ("gemma2", "blk.0.post_ffw_norm.weight"),
              "gemma3": ("gemma3", "blk.0.attn_k_norm.weight"), "qwen3": ("qwen3", "blk.1.attn_q_norm.weight")}
PROMPTS = [[{"role": "user", "content": "What is a keystone?"}],
           [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "How thick is a joint?"}]]
QA = [("What is a keystone?", "The keystone is the stone at the top of an arch."),
      ("What holds bricks together?", "Mortar holds them together.")]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("archs")


def sharp_model(work: Path, arch: str) -> Path:
    """A tiny `arch` model with large random weights (norm weights moved off 1 too), saved with
    a chat template (MASON's default for GPT-2)."""
    out = work / f"sharp-{arch}"
    if (out / "config.json").is_file():
        return out
    build_tiny_model(out, arch=arch, tie_word_embeddings=arch != "phi3")  # phi3 untied: covers output.weight
    model = transformers.AutoModelForCausalLM.from_pretrained(out)
    tok = transformers.AutoTokenizer.from_pretrained(out)
    ensure_chat_template(tok)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or ".ln_" in name:
                p.add_(torch.randn(p.shape, generator=gen) * 0.2)
            elif "wpe" not in name:
                big = any(k in name for k in ("q_proj", "k_proj", "c_attn", "qkv_proj"))
                p.copy_(torch.randn(p.shape, generator=gen) * (0.35 if big else 0.12))
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def _gguf(model_dir: Path, out: Path, quantization: str = "f16") -> tuple[ExportJob, ExportOutput]:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    job = ExportJob(model_dir=model_dir, out_dir=out, options={"quantization": quantization}, verify_prompts=PROMPTS)
    return job, get_exporter("gguf").export(job)


def _fields(path: Path) -> dict[str, Any]:
    reader = gguf.GGUFReader(path)
    return {k: f.contents() for k, f in reader.fields.items() if not k.startswith("GGUF.")}


@pytest.mark.parametrize("arch", ARCHS)
def test_gguf_verifies_in_llama_cpp(work: Path, arch: str) -> None:
    pytest.importorskip("llama_cpp")
    model_dir = sharp_model(work, arch)
    job, output = _gguf(model_dir, work / f"{arch}-f16")
    name, special = GGUF_FACTS[arch]
    meta = _fields(output.path)
    assert meta["general.architecture"] == name and output.details["warnings"] == []
    assert special in {t.name for t in gguf.GGUFReader(output.path).tensors}
    tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    assert meta["tokenizer.chat_template"] == tok.chat_template
    result = get_exporter("gguf").verify(job, output)
    assert result["passed"] and result["runtime"] == "llama.cpp" and result["max_abs_diff"] < 5e-2
    assert result["top1_match"] and result["greedy_match"] == len(PROMPTS)
    parity = result["tokenizer_parity"]
    assert parity["matched"] == parity["texts"] and parity["pre"] == ("gpt-2" if arch == "gpt2" else "smollm")


def test_gpt2_gguf_carries_the_default_template_to_ollama(work: Path) -> None:
    from mason.export.modelfile import read_modelfile_template, render_chat_template, render_ollama_template

    model_dir = sharp_model(work, "gpt2")
    tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    assert tok.chat_template == default_chat_template(tok) and "<|endoftext|>" in tok.chat_template
    job, output = _gguf(model_dir, work / "gpt2-q8", "q8_0")
    meta = _fields(output.path)
    assert meta["gpt2.attention.layer_norm_epsilon"] == pytest.approx(1e-5)
    template, _ = read_modelfile_template(job.out_dir / "Modelfile")
    conversation = [*PROMPTS[1], {"role": "assistant", "content": "10 mm."}, {"role": "user", "content": "Why?"}]
    assert render_ollama_template(template, conversation) == render_chat_template(tok.chat_template, conversation)
    types = {t.name: t.tensor_type.name for t in gguf.GGUFReader(output.path).tensors}
    assert types["position_embd.weight"] == "F32" and types["blk.0.attn_qkv.weight"] == "Q8_0"


def test_gpt2_without_the_conv1d_transpose_fails_verification(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("llama_cpp")
    import mason.export.gguf as gguf_export

    real = gguf_export.rewrite_tensor

    def forget_one(shape: Any, hf_name: str, data: Any) -> Any:  # c_proj is square: it loads, but is wrong
        return data if hf_name.endswith("attn.c_proj.weight") else real(shape, hf_name, data)

    monkeypatch.setattr(gguf_export, "rewrite_tensor", forget_one)
    job, output = _gguf(sharp_model(work, "gpt2"), work / "gpt2-broken")
    with pytest.raises(ExportVerificationError, match=r"max \|logit diff\|"):
        get_exporter("gguf").verify(job, output)


def test_gemma_without_the_norm_offset_fails_verification(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("llama_cpp")
    import mason.export.gguf as gguf_export

    monkeypatch.setattr(gguf_export, "rewrite_tensor", lambda shape, hf_name, data: data)
    job, output = _gguf(sharp_model(work, "gemma2"), work / "gemma2-broken")
    with pytest.raises(ExportVerificationError, match=r"max \|logit diff\|"):
        get_exporter("gguf").verify(job, output)


def test_phi3_long_rope_factors_verify(work: Path) -> None:
    # Phi-3 128k style: per-dimension rope factors, short ones within the original context (llama.cpp
    # switches to the long ones when its context exceeds the original; the check's context does not)
    pytest.importorskip("llama_cpp")
    model_dir = work / "phi3-longrope"
    build_tiny_model(model_dir, arch="phi3")
    config = transformers.AutoConfig.from_pretrained(model_dir)
    config.max_position_embeddings, config.original_max_position_embeddings = 1024, 512
    config.rope_parameters = {"rope_type": "longrope", "rope_theta": 1e4, "partial_rotary_factor": 1.0,
                              "original_max_position_embeddings": 512,
                              "short_factor": [1.0 + 0.1 * i for i in range(8)],
                              "long_factor": [2.0 + 0.5 * i for i in range(8)]}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = transformers.AutoModelForCausalLM.from_config(config)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "norm" not in name:
                    p.copy_(torch.randn(p.shape) * (0.35 if "qkv" in name else 0.12))
    model.save_pretrained(model_dir)
    job, output = _gguf(model_dir, work / "phi3-longrope-f32", "f32")
    meta = _fields(output.path)
    assert meta["phi3.rope.scaling.attn_factor"] == pytest.approx((1 + math.log(2) / math.log(512)) ** 0.5)
    names = {t.name for t in gguf.GGUFReader(output.path).tensors}
    assert {"rope_factors_long.weight", "rope_factors_short.weight"} <= names
    result = get_exporter("gguf").verify(job, output)
    assert result["passed"] and result["max_abs_diff"] < 1e-3


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "int4", "fp32-external"])
def test_gpt2_onnx_with_kv_cache(work: Path, precision: str, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("onnxruntime_genai")
    from mason.export import onnx_torch
    from mason.export.onnx import OrtDecoder
    from mason.export.verify import reference_outputs

    if precision == "fp32-external":  # what a model past protobuf's 2 GB gets: weights in model.onnx.data
        monkeypatch.setattr(onnx_torch, "EXTERNAL_DATA_BYTES", 0)
        precision = "fp32"

    # the plain tiny model: its greedy text is valid UTF-8, which the tokenizer parity check decodes
    model_dir = build_tiny_model(work / "gpt2-plain", arch="gpt2")
    tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    ensure_chat_template(tok)
    tok.save_pretrained(model_dir)
    out = work / f"gpt2-onnx-{precision}-{onnx_torch.EXTERNAL_DATA_BYTES}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    job = ExportJob(model_dir=model_dir, out_dir=out, options={"onnx_precision": precision}, verify_prompts=PROMPTS)
    output = get_exporter("onnx").export(job)
    genai = json.loads((out / "genai_config.json").read_text())["model"]
    assert genai["type"] == "decoder" and output.details["tool"].startswith("torch.onnx")
    external = onnx_torch.EXTERNAL_DATA_BYTES == 0
    assert (out / "chat_template.jinja").is_file() and (out / "model.onnx.data").is_file() == external
    assert not (out / ".torch-onnx").exists() and len([f for f in output.files if ".onnx" in f]) == 1 + external
    result = get_exporter("onnx").verify(job, output)
    assert result["passed"] and result["tokenizer_match"] and result["greedy_match"] == len(PROMPTS)
    if precision == "fp32":
        assert result["max_abs_diff"] < 1e-4
        # the graph's cache: token by token equals the whole prompt at once
        ref = reference_outputs(model_dir, PROMPTS[:1], max_new_tokens=8)[0]
        assert OrtDecoder(out).greedy(ref.prompt_ids, 8) == ref.greedy_ids
    else:
        assert output.details["quantized_matmuls"] >= 9  # 4 per block + the output layer
    runtime = open_runtime(out)
    answer = runtime.generate(PROMPTS[0], GenerationParams(max_tokens=6))
    assert runtime.describe()["backend"] == "onnxruntime" and answer.output_tokens > 0


def test_unknown_tiny_arch(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown arch 'bert'"):
        build_tiny_model(tmp_path / "m", arch="bert")


def _pipeline(root: Path, model: Path, formats: list[str]) -> Any:
    from mason import Pipeline

    rows = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}],
             "meta": {"split": "train"}} for q, a in QA * 4]
    rows.append({"text": "A mason builds walls from stone, brick and mortar.", "meta": {"split": "train"}})
    (root / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return Pipeline.from_dict({
        "base_model": str(model),
        "training": {"data": "data.jsonl", "max_steps": 2, "batch_size": 4, "lora_r": 4, "learning_rate": 1e-2,
                     "max_length": 64},
        "export": {"format": formats, "quantization": "f16", "verify_prompts": ["What is a keystone?"]},
    }, base_dir=root)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHS)
def test_train_export_verify_chat(tmp_path: Path, arch: str) -> None:
    pytest.importorskip("llama_cpp")
    formats = ["gguf", "onnx"] if arch == "gpt2" else ["gguf"]
    if arch == "gpt2":
        pytest.importorskip("onnxruntime_genai")
    model = build_tiny_model(tmp_path / "base", arch=arch)
    summary = _pipeline(tmp_path, model, formats).run(["export"], show_progress=False)
    export = summary.outcome("export")
    assert export.status == "done" and export.counts == {"formats": len(formats), "verified": len(formats)}
    report = json.loads((export.out_dir / "export_report.json").read_text())
    adapter = summary.outcome("training").out_dir / "adapter"
    template = transformers.AutoTokenizer.from_pretrained(adapter).chat_template
    if arch == "gpt2":  # trained with the default template, which every export carries
        assert template == default_chat_template(transformers.AutoTokenizer.from_pretrained(adapter))
        gguf_file = Path(report["formats"]["gguf"]["path"])
        assert _fields(gguf_file)["tokenizer.chat_template"] == template
        assert "<|endoftext|>" in (gguf_file.parent / "Modelfile").read_text()
        onnx_dir = Path(report["formats"]["onnx"]["path"])
        assert transformers.AutoTokenizer.from_pretrained(onnx_dir).chat_template == template
    answers = {}
    for path in [adapter, *(Path(report["formats"][f]["path"]) for f in formats)]:
        runtime = open_runtime(path)
        try:
            answer = runtime.generate(PROMPTS[0], GenerationParams(max_tokens=5))
        finally:
            runtime.close()
        assert answer.prompt_tokens > 0 and answer.output_tokens > 0
        answers[runtime.backend] = answer.text
    # greedy decoding: every runtime gives the tuned model's answer
    assert len(set(answers.values())) == 1, answers


def test_a_tokenizer_without_eos_or_template_cannot_chat(work: Path) -> None:
    tok = transformers.AutoTokenizer.from_pretrained(sharp_model(work, "gpt2"))
    tok.chat_template, tok.eos_token = None, None
    with pytest.raises(MasonError, match="no chat template and no end-of-sequence token"):
        ensure_chat_template(tok)
