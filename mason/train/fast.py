"""The fast SFT path: packed batches (no padding, `mason.train.packing`), the LM head and the loss
only on trainable positions, and length-grouped batches where packing is off (little padding).
Whether bf16 autocast pays is decided in `mason.train.hardware`.

Measured with `bench/train.py` (2 cores, AVX512-BF16); the numbers and the CPU are in that file's docstring.

How the LM-head trick works: a causal LM computes `lm_head(hidden)` on every position, then the
loss throws away every position whose label is -100 (prompt, padding) — on a 49k vocabulary that
is a large share of the step. `TrainablePositions` is a forward pre-hook on the output embedding
that keeps only the positions whose *next* token is a label, so `outputs.logits` comes back as
`[n_trainable, vocab]` and `positions_loss` scores it. The model is still called through its own
`forward` (and through DDP's, under `accelerate launch`), so gradient synchronisation, PEFT and
autocast behave as usual. Outside `compute_loss` (generation, evaluation by other code) the hook
passes everything through.
"""

from __future__ import annotations

from typing import Any

from mason.data.chat import IGNORE_INDEX


class TrainablePositions:
    """Forward pre-hook on the output embedding: keeps only the positions `mask` selects.

    `mask` is `[batch, seq-1]` (labels shifted by one); while it is None the hook is a no-op.
    """

    def __init__(self) -> None:
        self.mask: Any = None

    def __call__(self, module: Any, args: tuple) -> tuple | None:
        if self.mask is None:
            return None
        hidden = args[0]
        if hidden.dim() != 3 or hidden.shape[1] != self.mask.shape[1] + 1:
            return None  # not the training forward (e.g. logits_to_keep slicing): leave it
        return (hidden[:, :-1][self.mask],) + tuple(args[1:])


def shifted_mask(labels: Any) -> Any:
    """Which positions predict a label: `labels[:, 1:] != -100` (position t predicts token t+1)."""
    return labels[:, 1:] != IGNORE_INDEX


def positions_loss(outputs: Any, labels: Any, num_items_in_batch: Any = None) -> Any:
    """Cross-entropy of the `[n_trainable, vocab]` logits in `outputs` (a model output or the
    logits tensor) against the shifted labels they were kept for.

    Sums and divides by `num_items_in_batch` (the accumulated batch's label count, as the stock
    causal-LM loss does), or takes the mean when it is not given.
    """
    import torch.nn.functional as F

    logits = outputs if hasattr(outputs, "float") else outputs["logits"]
    targets = labels[:, 1:][shifted_mask(labels)]
    loss = F.cross_entropy(logits.float(), targets, reduction="sum")
    if num_items_in_batch is None:
        return loss / max(1, targets.numel())
    return loss / num_items_in_batch


def install_head_hook(model: Any) -> TrainablePositions:
    """Register (once) the trainable-positions hook on the model's output embedding."""
    head = model.get_output_embeddings()
    hook = getattr(head, "_mason_positions", None)
    if hook is None:
        hook = TrainablePositions()
        head.register_forward_pre_hook(hook)
        head._mason_positions = hook
    return hook


def fast_trainer_class(positions: bool = True) -> type:
    """The Trainer subclass of the SFT stage (built lazily: importing this module stays cheap):
    packed batches (`mason.train.packing`) lose their attention mask before the forward pass, and
    with `positions` the LM head runs on trainable positions only."""
    from transformers import Trainer

    from mason.train.packing import drop_packed_mask

    class FastSFTTrainer(Trainer):
        """A `Trainer` for packed batches whose loss runs the LM head on trainable positions only."""

        def __init__(self, *args: Any, **kwargs: Any):
            if positions:
                kwargs.setdefault("compute_loss_func", positions_loss)
            super().__init__(*args, **kwargs)
            self._positions = install_head_hook(self.model) if positions else None

        def compute_loss(self, model: Any, inputs: dict, return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            inputs = drop_packed_mask(inputs)
            if self._positions is None:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            self._positions.mask = shifted_mask(inputs["labels"])
            try:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            finally:
                self._positions.mask = None

    return FastSFTTrainer
