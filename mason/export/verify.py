"""Reference outputs of the PyTorch model, and how an export's outputs are compared with them.

Exporters verify with the same token ids on both sides (rendered here with the HF tokenizer's
chat template), so a weight or graph error shows as a logit difference; tokenizer parity is a
separate check each exporter runs on its runtime's own tokenizer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: default max |logit difference| (after centering on the mean logit) per exported dtype.
#: Quantized types are measured on SmolLM2-135M (max over prompts): GGUF in llama.cpp (which also
#: quantizes activations in its quantized matmuls) q8_0 0.83, q6_k 1.61, q5_k_m 3.70, q4_k_m 2.92,
#: q4_0 7.92 — llama.cpp's own quantizer gives the same q8_0 and q4_0 numbers from the same f32 file;
#: ONNX int8 1.12, int4 9.3; MLX 8-bit 0.55, 4-bit 8.1. The whole-vocabulary max is dominated by
#: the noisy tail of unlikely tokens, hence the margins; top-1 agreement is checked besides.
TOLERANCES: dict[str, float] = {
    "f32": 1e-3, "fp32": 1e-3, "float32": 1e-3,
    "f16": 5e-2, "fp16": 5e-2, "float16": 5e-2, "bf16": 2e-1, "bfloat16": 2e-1,
    "q8_0": 1.5, "int8": 1.5, "q6_k": 2.5,
    "q5_k_m": 5.0, "q5_k_s": 5.0, "q5_0": 5.0, "q5_1": 5.0, "q4_k_m": 5.0, "q4_k_s": 6.0,
    "q4_0": 10.0, "q4_1": 10.0, "int4": 12.0,
    "q3_k_s": 12.0, "q3_k_m": 12.0, "q3_k_l": 12.0, "q2_k": 15.0,
}


@dataclass
class Reference:
    """The PyTorch model's view of one prompt."""

    prompt_ids: list[int]
    logits: np.ndarray  # next-token logits after the prompt, float32 [vocab]
    greedy_ids: list[int]  # greedy continuation (without the prompt)


def render_ids(tokenizer: Any, messages: list[dict[str, Any]]) -> list[int]:
    """Token ids of the conversation with the generation prompt, as the chat template renders it."""
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def reference_outputs(model_dir: Path, prompts: list[list[dict[str, Any]]], max_new_tokens: int = 16) -> list[Reference]:
    """Next-token logits and greedy continuations of the merged model for each prompt (fp32, CPU)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model.eval()
    out = []
    with torch.no_grad():
        for messages in prompts:
            ids = render_ids(tok, messages)
            x = torch.tensor([ids])
            logits = model(input_ids=x).logits[0, -1].float().numpy()
            gen = model.generate(input_ids=x, attention_mask=torch.ones_like(x), max_new_tokens=max_new_tokens,
                                 do_sample=False, pad_token_id=tok.pad_token_id or tok.eos_token_id)
            out.append(Reference(ids, logits, gen[0, len(ids):].tolist()))
    return out


def compare(reference: Reference, logits: np.ndarray, greedy_ids: list[int]) -> dict[str, Any]:
    """Differences between the reference and an export's outputs for one prompt.

    Logits are compared after subtracting each side's mean (runtimes may shift logits by a
    constant, which changes no probability).
    """
    a = reference.logits.astype(np.float64)
    b = np.asarray(logits, dtype=np.float64)[: a.shape[0]]
    a, b = a - a.mean(), b - b.mean()
    n = min(len(reference.greedy_ids), len(greedy_ids))
    same = 0
    while same < n and reference.greedy_ids[same] == greedy_ids[same]:
        same += 1
    return {
        "max_abs_diff": float(np.max(np.abs(a - b))),
        "mean_abs_diff": float(np.mean(np.abs(a - b))),
        "top1_match": bool(int(np.argmax(a)) == int(np.argmax(b))),
        "greedy_prefix_match": same,
        "greedy_len": len(reference.greedy_ids),
    }


def summarize(rows: list[dict[str, Any]], tolerance: float, runtime: str, dtype: str,
              require_top1: bool = True) -> dict[str, Any]:
    """One verdict over every prompt: passed when every max |diff| <= tolerance and (unless
    `require_top1` is False, e.g. for 4-bit quants of near-flat tiny models) every top-1 matches."""
    worst = max((r["max_abs_diff"] for r in rows), default=0.0)
    top1 = all(r["top1_match"] for r in rows)
    return {
        "runtime": runtime,
        "dtype": dtype,
        "prompts": len(rows),
        "max_abs_diff": worst,
        "tolerance": tolerance,
        "top1_match": top1,
        "greedy_match": sum(r["greedy_prefix_match"] == r["greedy_len"] for r in rows),
        "passed": bool(worst <= tolerance and (top1 or not require_top1)),
        "rows": rows,
    }
