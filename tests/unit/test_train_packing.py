"""Packing (mason.train.packing): a packed batch's loss and gradients equal the padded batch's
(no sample attends to another), the check that guards it fails on a model that does not build its
mask from position ids, and the MASON trainer trains on packed batches."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from mason.train.packing import PACKED, PackCollator, drop_packed_mask, packing_matches
from mason.train.packing import PadCollator
from tests.unit.test_train_fast import PAD, rows, tiny_llama


def _loss(model, batch: dict) -> torch.Tensor:
    batch = drop_packed_mask(dict(batch))
    labels = batch.pop("labels")
    logits = model(**batch).logits.float()
    return torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1),
                                             ignore_index=-100, reduction="sum") / (labels[:, 1:] != -100).sum()


def test_packed_rows_restart_positions_and_leave_each_first_token_unlabelled():
    b = PackCollator()([{"input_ids": [5, 6, 7], "labels": [5, 6, 7]}, {"input_ids": [8, 9], "labels": [-100, 9]}])
    assert b["input_ids"].tolist() == [[5, 6, 7, 8, 9]] and b["position_ids"].tolist() == [[0, 1, 2, 0, 1]]
    assert b["labels"].tolist() == [[-100, 6, 7, -100, 9]] and b["attention_mask"].sum() == 5 and b[PACKED]
    model_inputs = drop_packed_mask(b)
    assert "attention_mask" not in model_inputs and model_inputs["use_cache"] is False and PACKED not in model_inputs


def test_packed_loss_and_gradients_equal_the_padded_ones():
    model = tiny_llama().train()
    for p in model.parameters():
        p.requires_grad_(True)
    data = rows(6)
    padded = PadCollator(PAD)(data)
    padded["use_cache"] = False
    loss_padded = _loss(model, padded)
    loss_padded.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    loss_packed = _loss(model, PackCollator()(data))
    loss_packed.backward()
    assert abs(float(loss_packed) - float(loss_padded)) < 1e-4
    worst = max(float((p.grad - grads[n]).abs().max()) for n, p in model.named_parameters())
    assert worst < 1e-4
    assert packing_matches(model, data, PAD)


def test_the_check_catches_a_model_that_ignores_position_restarts(monkeypatch):
    """Where the mask builder would not look for packed sequences, the samples see each other and
    the check says so."""
    import transformers.masking_utils as mu

    model = tiny_llama()
    monkeypatch.setattr(mu, "find_packed_sequence_indices", lambda position_ids: None)
    assert not packing_matches(model, rows(4), PAD)


def test_pack_pays_for_short_mixed_rows_not_for_long_ones():
    from types import SimpleNamespace

    from mason.train.packing import pack_pays

    smollm2 = SimpleNamespace(hidden_size=576, intermediate_size=1536, num_attention_heads=9, num_key_value_heads=3)
    assert pack_pays([40, 60, 90, 150, 160, 200, 300, 400], smollm2)  # bench/train.py's mix: packing measured faster
    assert not pack_pays([1000, 1010, 1020, 990, 1024, 1000, 1015, 1005], smollm2)  # T² attention dominates
    assert not pack_pays([100], smollm2)  # one row: nothing to pack


def test_auto_collator_packs_only_where_it_pays():
    from types import SimpleNamespace

    config = SimpleNamespace(hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=4)
    collate = PackCollator(PadCollator(PAD), config)
    short = [{"input_ids": [5] * n, "labels": [5] * n} for n in (3, 9, 4, 20)]
    long = [{"input_ids": [5] * 500, "labels": [5] * 500} for _ in range(4)]
    assert collate(short).get(PACKED) and collate(short)["input_ids"].shape == (1, 36)
    assert PACKED not in collate(long) and collate(long)["input_ids"].shape == (4, 500)
    assert (collate.packed, collate.padded) == (2, 2)
