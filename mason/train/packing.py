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

from mason.data.chat import IGNORE_INDEX

#: marks a packed batch for the trainer (removed before the forward pass)
PACKED = "mason_packed"


class PadCollator:
    """Pads token ids (with the pad id) and labels (with -100) to the longest row of the batch."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, rows: list[dict[str, list[int]]]) -> dict[str, Any]:
        import torch

        width = max(len(r["input_ids"]) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            n = len(r["input_ids"])
            ids[i, :n] = torch.tensor(r["input_ids"])
            labels[i, :n] = torch.tensor(r["labels"])
            mask[i, :n] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def pack_pays(lengths: list[int], config: Any, attention_weight: float = 2.0) -> bool:
    """Whether one packed row costs less compute than the padded batch for rows of `lengths` tokens.

    Per layer, a token costs its linear layers (q, k, v, o and the MLP: about `2h² + 2h·kv + 3h·i`
    multiply-adds) and each attended pair `2h` (scores and values). Padding computes `b·max` tokens
    and attends causally within each row (`b·max²/2` pairs, SDPA's causal kernel skips the rest);
    packing computes only the real tokens but, with a block-diagonal mask, the attention kernel
    computes all `T²` pairs of the joined row, at `attention_weight` times the cost per pair (the
    masked kernel measured about half as fast as the causal one on CPU, bench/train.py). So short
    rows of mixed lengths pack, long rows pad.
    """
    h = int(getattr(config, "hidden_size", 0) or 0)
    if not h or len(lengths) < 2:
        return len(lengths) > 1
    inter = int(getattr(config, "intermediate_size", 0) or 4 * h)
    heads = int(getattr(config, "num_attention_heads", 0) or 1)
    kv = h * int(getattr(config, "num_key_value_heads", 0) or heads) // heads
    per_token, per_pair = 2 * h * h + 2 * h * kv + 3 * h * inter, 2 * h
    total, longest = sum(lengths), max(lengths)
    padded = len(lengths) * longest * per_token + len(lengths) * longest * longest / 2 * per_pair
    packed = total * per_token + total * total * per_pair * attention_weight
    return packed < padded


class PackCollator:
    """Concatenates the batch's rows (input_ids + labels) into one unpadded row with restarting
    position ids; see the module docstring.

    With `fallback` (a `PadCollator`) and the model's `config`, each batch is packed only where
    `pack_pays` (`training.packing: auto`); the others are padded.
    """

    def __init__(self, fallback: PadCollator | None = None, config: Any = None):
        self.fallback, self.config = fallback, config
        self.packed = self.padded = 0  # batches of each kind so far (for the log)

    def __call__(self, rows: list[dict[str, list[int]]]) -> dict[str, Any]:
        import torch

        if self.fallback is not None and not pack_pays([len(r["input_ids"]) for r in rows], self.config):
            self.padded += 1
            return self.fallback(rows)
        self.packed += 1

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
