"""Packing (mason.train.packing): a packed batch's loss and gradients equal the padded batch's
(no sample attends to another), the check that guards it fails on a model that does not build its
mask from position ids, and the MASON trainer trains on packed batches."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from mason.train.packing import PACKED, PackCollator, drop_packed_mask, packing_matches
from mason.train.sft import PadCollator
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
