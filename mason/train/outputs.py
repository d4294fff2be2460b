"""What a finished stage leaves behind: the adapter (or full model), the merged model, the test
prompts' answers. Folders are written beside their final name and renamed into place, so a kill
never leaves a half-written `adapter/` that looks complete."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mason.core.io import atomic_write_text, write_folder


def save_weights(model: Any, tokenizer: Any, folder: Path) -> Path:
    """Save the trained weights with the tokenizer: the PEFT adapter for LoRA, the model for full."""
    def fill(tmp: Path) -> None:
        if hasattr(model, "peft_config"):
            # DPO adds a frozen "ref" adapter (the reference policy): it is not part of the result
            model.save_pretrained(tmp, selected_adapters=["default"])
        else:
            model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)

    return write_folder(folder, fill)


def save_merged(model: Any, tokenizer: Any, folder: Path) -> Path:
    """Save the base model with the LoRA adapter folded in (a plain HF model folder).

    The merge runs on a copy: the in-memory PeftModel stays usable.
    """
    import copy

    def fill(tmp: Path) -> None:
        merged = copy.deepcopy(model)
        if hasattr(merged, "merge_and_unload"):
            if "ref" in merged.peft_config:
                merged.delete_adapter("ref")
            merged = merged.merge_and_unload()
        merged.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)

    return write_folder(folder, fill)


def answer_prompts(model: Any, tokenizer: Any, prompts: list[str] | list[list[dict[str, Any]]],
                   max_new_tokens: int, batch_size: int = 16) -> list[dict[str, Any]]:
    """Greedy answers of the model to each prompt (a user message, or a whole conversation to
    continue: `[{"role", "content"}, ...]`), rendered with the chat template, `batch_size` prompts
    at a time (left-padded). The model is left in eval mode.

    Returns:
        [{"prompt", "answer"}] in order.
    """
    import torch

    model.eval()
    out = []
    device = next(model.parameters()).device
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # generation continues every row from its last real token
    try:
        for start in range(0, len(prompts), batch_size):
            batch = prompts[start:start + batch_size]
            texts = [tokenizer.apply_chat_template([{"role": "user", "content": p}] if isinstance(p, str) else p,
                                                   tokenize=False, add_generation_prompt=True) for p in batch]
            enc = tokenizer(texts, add_special_tokens=False, return_tensors="pt", padding=True).to(device)
            with torch.no_grad():
                ids = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                     pad_token_id=tokenizer.pad_token_id)
            for prompt, row in zip(batch, ids[:, enc["input_ids"].shape[1]:], strict=True):
                out.append({"prompt": prompt, "answer": tokenizer.decode(row, skip_special_tokens=True).strip()})
    finally:
        tokenizer.padding_side = side
    return out


def write_answers(path: Path, answers: list[dict[str, str]]) -> None:
    """The test prompts' answers as JSONL (atomically)."""
    atomic_write_text(path, "".join(json.dumps(a, ensure_ascii=False) + "\n" for a in answers))
