"""Packing without cross-contamination: a batch's samples concatenated into one sequence, no padding.

`PackCollator` joins the batch's samples end to end into a single row with per-sample
`position_ids` (restarting at 0 for each sample). transformers' mask builder turns position ids
that restart into a block-diagonal causal mask when the model gets no `attention_mask` and no
cache (`masking_utils.find_packed_sequence_indices`), so no token attends to another sample, and
no padded position is computed. The first token of every sample is unlabelled: it would otherwise
be predicted from the previous sample's last token (in an unpacked batch that label is never
used either), so the loss is the unpacked batch's loss.

The batch still holds `batch_size` samples, so steps, learning-rate schedule and the loss's
normalisation are those of the padded run. The collator also returns an all-ones
`attention_mask` so the Trainer counts the real tokens; the MASON trainer drops it before the
forward pass (`drop_packed_mask`).

Not every architecture builds its mask through that path. `packing_matches` runs one batch both
ways before training and the stage falls back to padding when the losses differ.
"""

from __future__ import annotations

from typing import Any

from mason.train.data import IGNORE_INDEX

#: marks a packed batch for the trainer (removed before the forward pass)
PACKED = "mason_packed"


class PackCollator:
    """Concatenates the batch's rows (input_ids + labels) into one unpadded row with restarting
    position ids; see the module docstring."""

    def __call__(self, rows: list[dict[str, list[int]]]) -> dict[str, Any]:
        import torch

        ids: list[int] = []
        labels: list[int] = []
        positions: list[int] = []
        for r in rows:
            n = len(r["input_ids"])
            ids += r["input_ids"]
            labels += [IGNORE_INDEX, *r["labels"][1:]]
            positions += range(n)
        return {"input_ids": torch.tensor([ids]), "labels": torch.tensor([labels]),
                "position_ids": torch.tensor([positions]), "attention_mask": torch.ones(1, len(ids), dtype=torch.long),
                PACKED: True}


def drop_packed_mask(inputs: dict[str, Any]) -> dict[str, Any]:
    """The model's inputs for a packed batch: no attention mask (the position ids define the
    blocks) and no cache (with one, transformers would not look for packed sequences)."""
    if not inputs.pop(PACKED, False):
        return inputs
    inputs = dict(inputs)
    inputs.pop("attention_mask", None)
    inputs["use_cache"] = False
    return inputs


def packing_matches(model: Any, rows: list[dict[str, list[int]]], pad_id: int, tolerance: float = 1e-4) -> bool:
    """True when the model's mean loss on `rows` packed equals its loss on them padded, to a
    relative `tolerance` (eval mode, no gradient): the architecture builds its attention mask from
    restarting position ids."""
    import torch

    from mason.train.sft import PadCollator

    def loss(batch: dict[str, Any]) -> float:
        batch = {k: v.to(device) if hasattr(v, "to") else v for k, v in drop_packed_mask(batch).items()}
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits.float()
        labels = batch["labels"]
        return float(torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=IGNORE_INDEX,
            reduction="mean"))

    device = next(model.parameters()).device
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            padded = PadCollator(pad_id)(rows)
            padded["use_cache"] = False
            packed, unpacked = loss(PackCollator()(rows)), loss(padded)
    finally:
        model.train(training)
    return abs(packed - unpacked) <= tolerance * max(1.0, abs(unpacked))
