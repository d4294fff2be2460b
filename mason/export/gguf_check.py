"""Verification of a written GGUF file against the PyTorch model it came from.

Three checks: the file's structure (every checkpoint tensor present with its shape, the key
metadata right), its numbers in llama.cpp (next-token logits and greedy continuations on the
same token ids as `mason.export.verify.reference_outputs`), and llama.cpp's tokenization of the
rendered prompts and of a few tricky texts against the Hugging Face tokenizer's. Without
llama-cpp-python the numbers come from transformers' GGUF loader (`runtime: transformers-gguf`).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from mason.core.errors import MasonError
from mason.export import gguf_quant
from mason.export.base import ExportVerificationError
from mason.export.gguf_arch import gguf_dims, skip_tensor
from mason.export.gguf_shape import PARITY_TEXTS, model_shape, read_config
from mason.export.verify import (
    TOLERANCES,
    Reference,
    compare,
    reference_outputs,
    summarize,
)

#: greedy tokens compared per prompt
MAX_NEW_TOKENS = 16


#: architectures whose MLP is a GELU: llama.cpp's CPU GELU reads an fp16 lookup table, which alone
#: moves f32 logits by 6.7e-4 (GPT-2) and 1.0e-3 (Gemma) on the sharp tiny models (5e-6 with the
#: MLP zeroed), so an f32 file is held to this tolerance instead of 1e-3
GELU_ARCHS = ("GPT2", "GEMMA", "GEMMA2", "GEMMA3")
GELU_F32_TOLERANCE = 1e-2


def tolerance(outtype: str, arch: str | None = None) -> float:
    """The max |logit difference| a GGUF export in `outtype` may show (`verify.TOLERANCES`,
    measured; `arch`, the gguf MODEL_ARCH name, raises the f32 one for GELU architectures)."""
    tol = TOLERANCES.get(outtype, 5.0)
    return max(tol, GELU_F32_TOLERANCE) if arch in GELU_ARCHS else tol


def check_structure(path: Path, model_dir: Path) -> dict[str, Any]:
    """Read `path` with gguf.GGUFReader and check it against the checkpoint in `model_dir`.

    Returns:
        counts of tensors and metadata keys, the architecture and tokenizer facts.
    Raises:
        ExportVerificationError: a tensor missing or misshapen, or key metadata wrong.
    """
    import gguf
    from safetensors import safe_open

    shape = model_shape(read_config(model_dir))
    reader = gguf.GGUFReader(path)
    tensors = {t.name: [int(x) for x in t.shape] for t in reader.tensors}
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH[shape.arch], shape.n_layers)
    problems: list[str] = []
    for file in sorted(Path(model_dir).glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as f:
            for hf_name in f.keys():  # noqa: SIM118 (a safetensors handle, not a dict)
                if skip_tensor(shape, hf_name):
                    continue
                name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
                want = gguf_dims(shape, hf_name, f.get_slice(hf_name).get_shape())  # innermost first
                if name not in tensors:
                    problems.append(f"tensor {name or hf_name} missing")
                elif tensors[name] != want:
                    problems.append(f"tensor {name} has shape {tensors[name]}, expected {want}")

    def field(key: str) -> Any:
        f = reader.get_field(key)
        return None if f is None else f.contents()

    arch = field("general.architecture")
    expected = {"general.architecture": gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH[shape.arch]],
                f"{arch}.block_count": shape.n_layers, f"{arch}.embedding_length": shape.hidden,
                f"{arch}.attention.head_count": shape.n_head, f"{arch}.attention.head_count_kv": shape.n_head_kv,
                f"{arch}.context_length": shape.n_ctx}
    for key, value in expected.items():
        if field(key) != value:
            problems.append(f"metadata {key} = {field(key)!r}, expected {value!r}")
    n_tokens = len(field("tokenizer.ggml.tokens") or [])
    if n_tokens != shape.vocab_size:
        problems.append(f"{n_tokens} tokens in the vocabulary, expected {shape.vocab_size}")
    if problems:
        raise ExportVerificationError(f"{Path(path).name} is malformed: " + "; ".join(problems[:5]))
    return {"tensors": len(tensors), "metadata_keys": len(reader.fields), "architecture": arch,
            "tokenizer_model": field("tokenizer.ggml.model"), "tokenizer_pre": field("tokenizer.ggml.pre")}


def _texts(model_dir: Path, prompts: list[list[dict[str, Any]]]) -> tuple[list[str], list[list[int]]]:
    # rendered prompts plus the parity texts, with the HF tokenizer's ids
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    texts = [tok.apply_chat_template(m, tokenize=False, add_generation_prompt=True) for m in prompts]
    texts += PARITY_TEXTS
    return texts, [list(tok(t, add_special_tokens=False)["input_ids"]) for t in texts]


def _verdict(refs: list[Reference], logits: list[np.ndarray], greedy: list[list[int]], runtime: str,
             outtype: str, tol: float | None, arch: str | None = None) -> dict[str, Any]:
    # top-1 must match, except where the reference itself nearly ties between its top token and
    # the export's (a quantized file may flip a 0.08-logit tie; SmolLM2 q8_0 does on one prompt);
    # 4-bit and lower outtypes are not held to top-1 at all (summarize's require_top1)
    tol = tol or tolerance(outtype, arch)
    near_tie = min(0.25, tol / 2)
    rows = []
    for ref, lg, g in zip(refs, logits, greedy, strict=True):
        row = compare(ref, lg, g)
        row["top1_gap"] = float(ref.logits.max() - ref.logits[int(np.argmax(lg))])
        rows.append(row)
    summary = summarize(rows, tol, runtime, outtype, require_top1=False)
    top1_ok = all(r["top1_match"] or r["top1_gap"] <= near_tie for r in rows)
    summary["top1_near_ties"] = sum(not r["top1_match"] and r["top1_gap"] <= near_tie for r in rows)
    summary["passed"] = bool(summary["passed"] and (top1_ok or outtype in gguf_quant.LOW_BIT))
    return summary


def verify_llama_cpp(model_dir: Path, path: Path, prompts: list[list[dict[str, Any]]], outtype: str,
                     tol: float | None = None) -> dict[str, Any]:
    """Run `path` in llama.cpp (child process) and compare with the PyTorch model (`tol`: the
    max |logit diff| allowed, default `tolerance(outtype, arch)`).

    Returns:
        the summary of `verify.summarize` with `tokenizer_parity` (its mismatches fail it).
    Raises:
        MasonError: llama.cpp crashed or failed to load the file.
    """
    from mason.runtime.llamacpp import run_isolated

    started = time.perf_counter()
    refs = reference_outputs(Path(model_dir), prompts, max_new_tokens=MAX_NEW_TOKENS)
    texts, hf_ids = _texts(Path(model_dir), prompts)
    n_ctx = max(256, max(len(r.prompt_ids) + len(r.greedy_ids) for r in refs) + 8)
    payload = {"path": str(path), "n_ctx": n_ctx, "n_threads": os.cpu_count() or 1, "texts": texts,
               "prompts": [(r.prompt_ids, len(r.greedy_ids)) for r in refs]}
    res = run_isolated("mason.export.gguf_check:llama_cpp_worker", payload, what=f"llama.cpp check of {path.name}")
    arch = model_shape(read_config(Path(model_dir))).arch
    summary = _verdict(refs, res["logits"], res["greedy"], "llama.cpp", outtype, tol, arch)
    mismatches = [{"text": t, "hf": h, "gguf": g} for t, h, g in zip(texts, hf_ids, res["tokens"], strict=True)
                  if h != g]
    summary["tokenizer_parity"] = {"texts": len(texts), "matched": len(texts) - len(mismatches),
                                   "mismatches": mismatches, "pre": res["metadata"].get("tokenizer.ggml.pre")}
    summary["passed"] = bool(summary["passed"] and not mismatches)
    summary["seconds"] = round(time.perf_counter() - started, 2)
    return summary


def llama_cpp_worker(payload: dict[str, Any]) -> dict[str, Any]:
    """Child-process side of `verify_llama_cpp`: logits, greedy ids, tokenizations, metadata."""
    from llama_cpp import Llama

    # an f32 KV cache (type 0): the default f16 cache alone moves SmolLM2's logits by ~0.01, and
    # the check is about the file's weights, not the runtime's cache precision
    llm = Llama(model_path=payload["path"], n_ctx=payload["n_ctx"], n_batch=min(512, payload["n_ctx"]),
                logits_all=True, verbose=False, n_threads=payload["n_threads"], type_k=0, type_v=0)
    logits, greedy = [], []
    for ids, n_gen in payload["prompts"]:
        llm.reset()
        llm.eval(ids)
        last = np.array(llm.scores[len(ids) - 1], dtype=np.float32)
        logits.append(last.copy())
        out: list[int] = []
        while len(out) < n_gen:
            out.append(int(np.argmax(last)))
            if len(out) < n_gen:
                llm.eval([out[-1]])
                last = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
        greedy.append(out)
    tokens = [llm.tokenize(t.encode("utf-8"), add_bos=False, special=True) for t in payload["texts"]]
    meta = {k: v for k, v in llm.metadata.items() if k.startswith(("general.", "tokenizer.ggml."))}
    llm.close()
    return {"logits": logits, "greedy": greedy, "tokens": tokens, "metadata": meta}


def verify_transformers(model_dir: Path, path: Path, prompts: list[list[dict[str, Any]]],
                        outtype: str, tol: float | None = None) -> dict[str, Any]:
    """Load `path` with transformers' GGUF loader (dequantized) and compare with the PyTorch model.

    Checks the weights and metadata as transformers reads them, not llama.cpp's kernels or
    tokenizer (`tokenizer_parity` says so). transformers reads only some architectures, and only
    some hyperparameters of them (not GPT-2's n_inner, Qwen3's head_dim or Gemma 2/3's attention
    scale): the real models load, odd shapes may not.

    Raises:
        MasonError: transformers cannot load the file (the hint names llama-cpp-python).
    """
    import torch
    from transformers import AutoModelForCausalLM

    from mason.runtime.llamacpp import INSTALL_HINT

    started = time.perf_counter()
    refs = reference_outputs(Path(model_dir), prompts, max_new_tokens=MAX_NEW_TOKENS)
    try:
        model = AutoModelForCausalLM.from_pretrained(str(Path(path).parent), gguf_file=Path(path).name,
                                                     dtype=torch.float32)
    except (ValueError, RuntimeError, KeyError) as e:
        raise MasonError(f"transformers' GGUF loader cannot read {Path(path).name} to verify it: "
                         f"{str(e).strip().splitlines()[-1][:200]}",
                         hint=f"verify it in llama.cpp instead: {INSTALL_HINT}; or set export.verify: false") from None
    model.eval()
    logits, greedy = [], []
    with torch.no_grad():
        for ref in refs:
            out = model(input_ids=torch.tensor([ref.prompt_ids]), use_cache=True)
            last = out.logits[0, -1]
            logits.append(last.float().numpy())
            ids: list[int] = []
            cache = out.past_key_values
            while len(ids) < len(ref.greedy_ids):
                ids.append(int(torch.argmax(last)))
                if len(ids) < len(ref.greedy_ids):
                    out = model(input_ids=torch.tensor([[ids[-1]]]), past_key_values=cache, use_cache=True)
                    cache, last = out.past_key_values, out.logits[0, -1]
            greedy.append(ids)
    summary = _verdict(refs, logits, greedy, "transformers-gguf", outtype, tol)
    summary["tokenizer_parity"] = {"checked": False, "reason": "llama-cpp-python is not installed"}
    summary["seconds"] = round(time.perf_counter() - started, 2)
    return summary
