"""Small trained models for tests: the tiny model taught a few exchanges (so greedy answers are
real text ending at the end-of-turn token), and LoRA adapters with non-zero weights."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

CHATS = [
    ("hi", "Hello! Ask me about masonry."),
    ("What is a keystone?", "The stone at the top of an arch."),
    ("What holds bricks together?", "Mortar holds them together."),
    ("How thick is a mortar joint?", "About 10 mm."),
]


def teach_model(src: Path, dst: Path, steps: int = 40) -> Path:
    """Copy the tiny model to `dst` and fine-tune it on `CHATS` (full model, AdamW, seed 0)."""
    import torch
    import transformers

    shutil.copytree(src, dst)
    tok = transformers.AutoTokenizer.from_pretrained(dst)
    model = transformers.AutoModelForCausalLM.from_pretrained(dst)
    torch.manual_seed(0)
    texts = [tok.apply_chat_template([{"role": "user", "content": q}, {"role": "assistant", "content": a}],
                                     tokenize=False) for q, a in CHATS]
    enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        model(**enc, labels=labels).loss.backward()
        opt.step()
        opt.zero_grad()
    model.save_pretrained(dst)
    return dst


def make_adapter(base: Path, dst: Path, *, with_tokenizer: bool) -> Path:
    """A LoRA adapter on `base` with random (non-zero) B matrices, so it changes the answers."""
    import peft
    import torch
    import transformers

    model = transformers.AutoModelForCausalLM.from_pretrained(base)
    cfg = peft.LoraConfig(r=4, lora_alpha=32, target_modules=["q_proj", "v_proj", "o_proj"],
                          init_lora_weights=False, task_type="CAUSAL_LM")
    torch.manual_seed(1)
    peft_model = peft.get_peft_model(model, cfg)
    peft_model.save_pretrained(dst)
    if with_tokenizer:
        transformers.AutoTokenizer.from_pretrained(base).save_pretrained(dst)
    assert json.loads((dst / "adapter_config.json").read_text())["base_model_name_or_path"] == str(base)
    return dst
