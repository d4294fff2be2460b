"""The fast SFT path (mason.train.fast): its loss is the stock causal-LM loss to 1e-4 in fp32 (the
LM head run on trainable positions only), the hook is inert outside the loss, and a few steps of
`build_sft_trainer` lower the loss."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from mason.train.config import TrainingConfig
from mason.train.fast import (
    fast_trainer_class,
    install_head_hook,
    positions_loss,
    shifted_mask,
)
from mason.train.packing import PadCollator

PAD, VOCAB = 0, 96


def tiny_llama(seed: int = 0, tie: bool = True):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                      tie_word_embeddings=tie, pad_token_id=PAD)
    return LlamaForCausalLM(cfg).eval()


def rows(n: int = 6, seed: int = 1) -> list[dict]:
    """Rows of different lengths; the first part of each is a prompt (label -100)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        length = 5 + 3 * i
        ids = torch.randint(3, VOCAB, (length,), generator=g).tolist()
        prompt = 2 + i % 3
        out.append({"input_ids": ids, "labels": [-100] * prompt + ids[prompt:]})
    return out


def batch(n: int = 6) -> dict:
    return PadCollator(PAD)(rows(n))


def fast_loss(model, b: dict, num_items=None):
    hook = install_head_hook(model)
    hook.mask = shifted_mask(b["labels"])
    try:
        out = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"])
    finally:
        hook.mask = None
    return positions_loss(out, b["labels"], num_items), out.logits


@pytest.mark.parametrize("tie", [True, False])
def test_fast_loss_equals_stock_loss_fp32(tie):
    model, b = tiny_llama(tie=tie), batch()
    with torch.no_grad():
        stock = model(**b).loss
        fast, logits = fast_loss(model, b)
    n_trained = int((b["labels"][:, 1:] != -100).sum())
    assert logits.shape == (n_trained, VOCAB)  # the head ran on trainable positions only
    assert abs(float(fast) - float(stock)) < 1e-4


def test_fast_loss_with_num_items_and_lora_and_gradients():
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    model = get_peft_model(tiny_llama(), LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0,
                                                    target_modules="all-linear", task_type="CAUSAL_LM"))
    # make the adapters non-zero, so their gradients flow through both paths alike
    for n, p in model.named_parameters():
        if "lora_B" in n:
            p.data.normal_(0, 0.02)
    b = batch()
    n_items = int((b["labels"][:, 1:] != -100).sum()) + 7  # as if another micro-batch had 7 more labels
    stock = model(**b, num_items_in_batch=n_items).loss
    stock.backward()
    stock_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad()
    fast, _ = fast_loss(model, b, n_items)
    fast.backward()
    assert abs(float(fast) - float(stock)) < 1e-4
    for n, p in model.named_parameters():
        if p.requires_grad:
            assert torch.allclose(p.grad, stock_grads[n], atol=1e-5), n


def test_hook_is_inert_outside_the_loss():
    model, b = tiny_llama(), batch()
    install_head_hook(model)
    assert install_head_hook(model) is install_head_hook(model)  # registered once
    with torch.no_grad():
        out = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"])
    assert out.logits.shape == (*b["input_ids"].shape, VOCAB)


def test_fast_trainer_compute_loss_equals_stock_trainer(tmp_path):
    from transformers import Trainer, TrainingArguments

    model, b = tiny_llama(), batch()
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none", bf16=False)
    with torch.no_grad():
        stock = Trainer(model=model, args=args).compute_loss(model, dict(b))
        fast = fast_trainer_class()(model=model, args=args).compute_loss(model, dict(b))
    assert abs(float(fast) - float(stock)) < 1e-4


@pytest.mark.parametrize("packing", [True, False])
def test_build_sft_trainer_fast_path_lowers_the_loss(tmp_path, packing):
    from mason.train.packing import PackCollator
    from mason.train.sft import build_sft_trainer

    model = tiny_llama()
    model.train()
    train_rows = rows(8) * 2
    tok = SimpleNamespace(pad_token_id=PAD, model_input_names=["input_ids", "attention_mask"],
                          save_pretrained=lambda *a, **k: None)
    cfg = TrainingConfig(method="full", max_steps=10, batch_size=4, learning_rate=3e-3, save_steps=1000)
    cfg = cfg.model_copy(update={"group_by_length": True, "packing": packing})
    trainer = build_sft_trainer(model, tok, train_rows, [], cfg, tmp_path / "out", [])
    assert type(trainer).__name__ == "FastSFTTrainer"
    assert isinstance(trainer.data_collator, PackCollator) is packing
    # length grouping only matters where batches are padded
    assert trainer.args.train_sampling_strategy == ("random" if packing else "group_by_length")
    first = float(trainer.evaluate(eval_dataset=train_rows)["eval_loss"])
    trainer.train()
    last = float(trainer.evaluate(eval_dataset=train_rows)["eval_loss"])
    assert last < first - 0.1, (first, last)
