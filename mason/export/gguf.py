"""GGUF export in pure Python (the `gguf` package), for llama.cpp, Ollama and LM Studio.

Reads a merged Hugging Face folder and writes `<name>.gguf` plus an Ollama `Modelfile`. The
architectures are an explicit allow-list (Llama, Mistral, Qwen2, Qwen3, GPT-2, Phi-3, Gemma 1/2/3:
`gguf_shape.SUPPORTED_ARCHITECTURES`); the tensor layout follows llama.cpp's converter: names
from gguf's tensor name map, q/k projections of the LLAMA arch permuted from Hugging Face's
rotate-half rotary layout to the interleaved one llama.cpp applies, the per-architecture
rewrites of `gguf_arch` (GPT-2's Conv1D transposes, Gemma's norm offset...), tied embeddings
write no `output.weight` (llama.cpp then reuses `token_embd`), 1-D tensors stay f32.

`verify` runs the file in llama.cpp (in a child process, see `mason.runtime.llamacpp`) on the
same token ids as the PyTorch model and compares next-token logits, greedy continuations and
the tokenization of the rendered prompts; without llama-cpp-python it reads the file back with
`gguf.GGUFReader` and transformers' GGUF loader instead.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from mason.core.errors import MasonError
from mason.export import gguf_quant
from mason.export.base import ExportJob, ExportOutput, ExportVerificationError
from mason.export.gguf_arch import add_arch_hparams, rewrite_tensor, skip_tensor
from mason.export.gguf_shape import ModelShape, model_shape, read_config
from mason.export.gguf_vocab import add_vocab, read_vocab

#: verification conversations when the job brings none
DEFAULT_VERIFY_PROMPTS: list[list[dict[str, str]]] = [
    [{"role": "user", "content": "What holds bricks together?"}],
    [{"role": "system", "content": "You are a helpful assistant."},
     {"role": "user", "content": "Name 3 tools a mason uses, in 2024."}],
]


def hf_tensors(model_dir: Path) -> Iterator[tuple[str, np.ndarray]]:
    """(name, float32 array) for every tensor of the safetensors checkpoint(s) in `model_dir`,
    one at a time (peak memory: one tensor plus what the writer already holds).

    Raises:
        MasonError: no *.safetensors file (a pytorch_model.bin folder must be re-saved first).
    """
    from safetensors import safe_open

    files = sorted(Path(model_dir).glob("*.safetensors"))
    if not files:
        raise MasonError(f"{model_dir}: no *.safetensors weights",
                         hint="re-save the model with save_pretrained(..., safe_serialization=True)")
    for file in files:
        with safe_open(str(file), framework="pt") as f:
            for name in f.keys():  # noqa: SIM118 (a safetensors handle, not a dict)
                yield name, f.get_tensor(name).float().numpy()


def permute_qk(weights: np.ndarray, n_head: int, n_head_kv: int | None = None) -> np.ndarray:
    """Reorder q/k projection rows from Hugging Face's rotate-half rotary layout to the
    interleaved pairs llama.cpp's LLAMA arch rotates (as llama.cpp's converter does)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def llama3_rope_factors(shape: ModelShape) -> np.ndarray:
    """The `rope_freqs` tensor of Llama 3.1-style rope scaling (frequency divisors per pair)."""
    p = shape.rope
    factor, low, high = float(p["factor"]), float(p.get("low_freq_factor", 1.0)), float(p.get("high_freq_factor", 4.0))
    old_ctx = float(p.get("original_max_position_embeddings", 8192))
    freqs = 1.0 / (shape.rope_theta ** (np.arange(0, shape.head_dim, 2, dtype=np.float32) / shape.head_dim))
    out = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < old_ctx / high:
            out.append(1.0)
        elif wavelen > old_ctx / low:
            out.append(factor)
        else:
            smooth = (old_ctx / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.asarray(out, dtype=np.float32)


def _add_hparams(writer: Any, shape: ModelShape, warnings: list[str]) -> list[tuple[str, np.ndarray]]:
    # returns extra tensors the metadata needs (rope_freqs, Phi-3's long-context factors)
    import gguf

    writer.add_context_length(shape.n_ctx)
    writer.add_embedding_length(shape.hidden)
    writer.add_block_count(shape.n_layers)
    writer.add_feed_forward_length(shape.ffn)
    writer.add_head_count(shape.n_head)
    writer.add_head_count_kv(shape.n_head_kv)
    writer.add_vocab_size(shape.vocab_size)
    if shape.arch == "GPT2":  # LayerNorm and learned positions: no rope at all
        writer.add_layer_norm_eps(shape.rms_eps)
        return []
    writer.add_rope_freq_base(shape.rope_theta)
    writer.add_layer_norm_rms_eps(shape.rms_eps)
    writer.add_rope_dimension_count(shape.rope_dims)
    if shape.head_dim != shape.hidden // shape.n_head and not shape.arch.startswith("GEMMA"):
        writer.add_key_length(shape.head_dim)
        writer.add_value_length(shape.head_dim)
    extra = add_arch_hparams(writer, shape, warnings)
    kind = str(shape.rope.get("rope_type") or shape.rope.get("type") or "default").lower()
    factor = shape.rope.get("factor")
    if kind == "linear" and factor:
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(float(factor))
    elif kind == "yarn" and factor:
        writer.add_rope_scaling_type(gguf.RopeScalingType.YARN)
        writer.add_rope_scaling_factor(float(factor))
        if shape.arch != "PHI3":  # add_arch_hparams wrote Phi-3's
            writer.add_rope_scaling_orig_ctx_len(int(shape.rope["original_max_position_embeddings"]))
    elif kind == "llama3":
        extra.append((gguf.TENSOR_NAMES[gguf.MODEL_TENSOR.ROPE_FREQS] + ".weight", llama3_rope_factors(shape)))
    elif kind in ("longrope", "su") and shape.arch == "PHI3":
        pass  # add_arch_hparams wrote the factors
    elif kind != "default":
        warnings.append(f"rope scaling {kind!r} is not written to GGUF: long contexts may differ from PyTorch")
    return extra


def _gguf_tensors(model_dir: Path, shape: ModelShape) -> Iterator[tuple[str, np.ndarray]]:
    # HF tensors under their GGUF names, rewritten where the arch needs it (gguf_arch)
    import gguf

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH[shape.arch], shape.n_layers)
    for hf_name, data in hf_tensors(model_dir):
        if skip_tensor(shape, hf_name):
            continue
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise MasonError(f"{shape.hf_arch} tensor {hf_name!r} has no GGUF counterpart",
                             hint="the checkpoint has layers this exporter does not know; export as 'merged'")
        if shape.permute and hf_name.endswith(("q_proj.weight", "q_proj.bias")):
            data = permute_qk(data, shape.n_head, shape.n_head)
        elif shape.permute and hf_name.endswith(("k_proj.weight", "k_proj.bias")):
            data = permute_qk(data, shape.n_head, shape.n_head_kv)
        yield name, rewrite_tensor(shape, hf_name, data)


def write_gguf(model_dir: Path, path: Path, outtype: str, name: str) -> dict[str, Any]:
    """Write the GGUF of `model_dir` to `path` in a direct outtype (f32/f16/bf16/q8_0/q4_0).

    Returns:
        details: architecture, tensor count, tokenizer facts, per-tensor fallbacks, warnings.
    Raises:
        MasonError: unsupported architecture or tokenizer, missing weights.
    """
    import gguf

    model_dir = Path(model_dir)
    shape = model_shape(read_config(model_dir))
    vocab = read_vocab(model_dir, shape.vocab_size)
    warnings = list(vocab.warnings)
    writer = gguf.GGUFWriter(path, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH[shape.arch]])
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(name)
    extra_tensors = _add_hparams(writer, shape, warnings)
    writer.add_file_type(gguf_quant.file_type(outtype))
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    add_vocab(writer, vocab)
    fallbacks: dict[str, str] = {}
    types: dict[str, int] = {}
    tensors = _gguf_tensors(model_dir, shape)
    if extra_tensors:
        tensors = iter([*extra_tensors, *tensors])
    seen = set()
    for tname, data in tensors:
        is_output = tname == "output.weight" or (shape.tied and tname == "token_embd.weight")
        plan = gguf_quant.plan_tensor(tname, tuple(data.shape), outtype, is_output)
        if plan.reason:
            fallbacks[tname] = plan.reason
        array, raw = gguf_quant.convert(data, plan.qtype)
        writer.add_tensor(tname, array, raw_dtype=raw)
        types[plan.qtype] = types.get(plan.qtype, 0) + 1
        seen.add(tname)
    if not shape.tied and "output.weight" not in seen:
        raise MasonError(f"{model_dir}: no lm_head.weight and tie_word_embeddings is false",
                         hint="the checkpoint is incomplete; re-save the merged model")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return {"architecture": shape.arch.lower(), "hf_architecture": shape.hf_arch, "tensors": len(seen),
            "tensor_types": types, "tied_embeddings": shape.tied, "fallbacks": fallbacks,
            "tokenizer": {"model": vocab.model, "pre": vocab.pre, "pre_source": vocab.pre_source,
                          "add_bos": vocab.add_bos, "tokens": len(vocab.tokens)},
            "warnings": warnings}


def _tensor_types(path: Path) -> dict[str, int]:
    import gguf

    counts: dict[str, int] = {}
    for t in gguf.GGUFReader(path).tensors:
        counts[t.tensor_type.name] = counts.get(t.tensor_type.name, 0) + 1
    return counts


def _versions(*packages: str) -> dict[str, str]:
    out = {}
    for p in packages:
        try:
            out[p] = version(p)
        except PackageNotFoundError:
            pass
    return out


class GGUFExporter:
    """The `gguf` export format: `<name>.gguf` and an Ollama `Modelfile` beside it.

    Options (job.options): `quantization` (default q8_0), `name` (file stem, default "model"),
    `system_prompt` (the Modelfile's SYSTEM), `verify_tolerance` (overrides the max |logit diff|
    allowed, default `gguf_check.tolerance(quantization, arch)`).
    """

    name = "gguf"

    def export(self, job: ExportJob) -> ExportOutput:
        """Write `<name>.gguf` and `Modelfile` into `job.out_dir`.

        Raises:
            MasonError: unsupported architecture/tokenizer/quantization, or a K-quant without
                llama-cpp-python. Nothing is left half-written.
        """
        from mason.export.modelfile import write_modelfile
        from mason.runtime.llamacpp import require_llama_cpp

        started = time.perf_counter()
        outtype = gguf_quant.normalize_outtype(job.options.get("quantization", "q8_0"))
        stem = str(job.options.get("name") or "model")
        if not stem or Path(stem).name != stem:
            raise MasonError(f"invalid GGUF file name {stem!r}", hint="use a plain name such as 'mason-expert'")
        direct = outtype if outtype in gguf_quant.DIRECT else "f16"
        if direct != outtype:
            require_llama_cpp(purpose=f"GGUF quantization {outtype}",
                              alternative="or choose quantization q8_0 or q4_0, which need no llama.cpp")
        model_shape(read_config(job.model_dir))  # an unsupported architecture fails before any work
        final = Path(job.out_dir) / f"{stem}.gguf"
        # the Modelfile first: a system prompt its template cannot carry fails before the long part
        modelfile = write_modelfile(final, job.model_dir, Path(job.out_dir) / "Modelfile",
                                    system_prompt=job.options.get("system_prompt"), strict=False)
        partial = final.with_name(final.name + ".partial")
        try:
            details = write_gguf(job.model_dir, partial, direct, stem)
            if direct != outtype:
                f16 = final.with_name(final.name + ".f16.partial")
                os.replace(partial, f16)
                try:
                    gguf_quant.llama_quantize(f16, partial, outtype, nthread=os.cpu_count() or 1)
                finally:
                    f16.unlink(missing_ok=True)
                details["quantized_by"] = "llama.cpp"
                details["tensor_types"] = _tensor_types(partial)
            os.replace(partial, final)
        except BaseException:
            modelfile.path.unlink(missing_ok=True)
            raise
        finally:
            partial.unlink(missing_ok=True)
        files = [final.name, modelfile.path.name]
        if modelfile.warning:
            details["warnings"].append(modelfile.warning)
        details.update(outtype=outtype, file=final.name, bytes=final.stat().st_size,
                       seconds=round(time.perf_counter() - started, 2), modelfile=modelfile.path.name,
                       ollama_template=modelfile.family, versions=_versions("gguf", "llama_cpp_python"))
        return ExportOutput(path=final, files=files, details=details)

    def verify(self, job: ExportJob, output: ExportOutput) -> dict[str, Any]:
        """Compare the GGUF with the PyTorch model (llama.cpp, else transformers' GGUF loader).

        Returns:
            `verify.summarize`'s verdict plus `structure` and `tokenizer_parity`.
        Raises:
            ExportVerificationError: logits, top-1 or tokenization disagree beyond tolerance.
            MasonError: llama.cpp crashed (likely an AMX build).
        """
        from mason.export.gguf_check import (
            check_structure,
            verify_llama_cpp,
            verify_transformers,
        )
        from mason.runtime.llamacpp import llama_cpp_available

        outtype = gguf_quant.normalize_outtype(output.details.get("outtype") or job.options.get("quantization"))
        structure = check_structure(output.path, job.model_dir)
        prompts = job.verify_prompts or DEFAULT_VERIFY_PROMPTS
        tol = float(job.options["verify_tolerance"]) if job.options.get("verify_tolerance") else None
        check = verify_llama_cpp if llama_cpp_available() else verify_transformers
        result = check(job.model_dir, output.path, prompts, outtype, tol)
        result["structure"] = structure
        if not result["passed"]:
            raise ExportVerificationError(_failure_message(result), hint=(
                "the exported file does not compute what the PyTorch model computes; "
                "try a higher-precision quantization (q8_0, f16) or report the model"))
        return result


def _failure_message(result: dict[str, Any]) -> str:
    parts = [(f"GGUF export ({result['dtype']}) failed verification in {result['runtime']}: "
              f"max |logit diff| {result['max_abs_diff']:.4g} (tolerance {result['tolerance']:g}), "
              f"top-1 match {result['top1_match']}, greedy match {result['greedy_match']}/{result['prompts']}")]
    parity = result.get("tokenizer_parity") or {}
    for bad in parity.get("mismatches", [])[:3]:
        parts.append(f"tokenization differs for {bad['text']!r}: "
                     f"HF {bad['hf'][:12]}... llama.cpp {bad['gguf'][:12]}...")
    return "\n".join(parts)
