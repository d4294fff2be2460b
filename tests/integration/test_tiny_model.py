"""The tiny-model kit: the folder it writes is a real, loadable, trainable HF model."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from mason.models import build_tiny_model, materialize, resolve_model
from mason.models.tiny import ENDOFTEXT, IM_END, IM_START

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
AutoModelForCausalLM = transformers.AutoModelForCausalLM
AutoTokenizer = transformers.AutoTokenizer

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What holds bricks together?"}]


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_loads_with_auto_classes(tiny_model_dir: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert type(model).__name__ == "LlamaForCausalLM"
    cfg = model.config
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads, cfg.num_key_value_heads) == (2, 64, 4, 2)
    assert cfg.vocab_size == len(tok) == 512
    assert [tok.convert_tokens_to_ids(t) for t in (ENDOFTEXT, IM_START, IM_END)] == [0, 1, 2]
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == (IM_START, IM_END, ENDOFTEXT)
    assert (cfg.bos_token_id, cfg.eos_token_id, cfg.pad_token_id) == (1, 2, 0)
    assert model.generation_config.eos_token_id == 2 and model.generation_config.pad_token_id == 0
    # no token added implicitly: the chat template writes every marker itself
    assert tok("hello")["input_ids"] == tok.encode("hello", add_special_tokens=False)


def test_chat_template(tiny_model_dir: Path) -> None:
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    prompt = tok.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
    assert prompt == (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\nWhat holds bricks together?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    full = tok.apply_chat_template([*MESSAGES, {"role": "assistant", "content": "Mortar."}], tokenize=False)
    assert full.endswith("<|im_start|>assistant\nMortar.<|im_end|>\n")
    ids = tok(prompt)["input_ids"]
    assert ids.count(1) == 3 and ids.count(2) == 2  # markers are single special tokens
    assert tok.decode(ids) == prompt  # byte-level BPE round-trips exactly


def test_generate_produces_new_tokens(tiny_model_dir: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    inputs = tok.apply_chat_template(MESSAGES, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    n = inputs["input_ids"].shape[1]
    out = model.generate(**inputs, max_new_tokens=8, min_new_tokens=8, do_sample=False)
    assert out.shape[1] == n + 8
    assert torch.equal(out[0, :n], inputs["input_ids"][0])
    assert isinstance(tok.decode(out[0, n:]), str)


def test_a_few_steps_lower_the_loss(tiny_model_dir: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    batch = tok(["A mason builds walls from stone and mortar."], return_tensors="pt")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    model.train()
    for _ in range(15):
        loss = model(**batch, labels=batch["input_ids"]).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_build_is_deterministic(tiny_model_dir: Path, tmp_path: Path) -> None:
    started = time.perf_counter()
    again = build_tiny_model(tmp_path / "again")
    assert time.perf_counter() - started < 30
    assert _digests(again) == _digests(tiny_model_dir)
    other_seed = _digests(build_tiny_model(tmp_path / "seed1", seed=1))
    assert other_seed["model.safetensors"] != _digests(tiny_model_dir)["model.safetensors"]
    assert other_seed["tokenizer.json"] == _digests(tiny_model_dir)["tokenizer.json"]


def test_custom_texts_and_sizes(tmp_path: Path) -> None:
    texts = ["the quick brown fox jumps over the lazy dog\n"] * 20
    out = build_tiny_model(tmp_path / "m", texts, vocab_size=300, hidden_size=32, num_heads=2, num_kv_heads=1)
    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    # short text: fewer merges than asked; the model's vocabulary follows the tokenizer
    assert len(tok) <= 300 and model.config.vocab_size == len(tok)
    assert tok.tokenize(" quick") == ["Ġquick"]
    assert tok.decode(tok.encode("ünïcödé 123 🙂")) == "ünïcödé 123 🙂"  # any byte encodes


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"texts": []}, "needs some text"),
        ({"vocab_size": 100}, "vocab_size"),
        ({"hidden_size": 66}, "multiple of num_heads"),
        ({"num_kv_heads": 3}, "multiple of num_kv_heads"),
    ],
)
def test_bad_arguments(kwargs: dict, match: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=match):
        build_tiny_model(tmp_path / "m", **kwargs)


def test_builtin_tiny_materializes_the_kit_model(tiny_model_dir: Path, mason_home: Path) -> None:
    ref = resolve_model("tiny-llama-test")
    path = Path(materialize(ref))
    assert path == mason_home / "models" / "tiny-llama-test"
    assert _digests(path)["model.safetensors"] == _digests(tiny_model_dir)["model.safetensors"]
    started = time.perf_counter()
    assert materialize(ref) == str(path)
    assert time.perf_counter() - started < 0.5
    assert AutoModelForCausalLM.from_pretrained(path).config.num_hidden_layers == 2
