"""Self-distillation replay: keep what the model knew while it learns the documents.

Training hard on new facts (a high-rank LoRA at a high learning rate) teaches a small model to answer
*every* question with a sentence from the documents ("The capital of the Observatory is Halvesk.").
Mixing in general prompts answered by the model itself *before* training anchors its old behaviour:
the answers are its own, so they teach nothing new and pull against the drift (replay of general
data, without any data set to download). The prompts ship in `replay_prompts.txt`.
"""

from __future__ import annotations

import random
from importlib import resources
from typing import Any

from mason.data.samples import Sample

TASK = "replay"


def replay_prompts() -> list[str]:
    """The shipped general prompts, in file order."""
    text = resources.files("mason.train").joinpath("replay_prompts.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def replay_samples(model: Any, tokenizer: Any, n: int, *, max_new_tokens: int = 64, seed: int = 0) -> list[Sample]:
    """`n` prompts (a seeded choice, all of them when n is larger) answered greedily by `model` as it is
    now (before training; a fresh LoRA changes nothing yet), as training samples with `meta.task =
    "replay"`. Answers that are empty are left out."""
    from mason.train.outputs import answer_prompts

    prompts = replay_prompts()
    if n < len(prompts):
        prompts = random.Random(seed).sample(prompts, n)
    samples = []
    for i, qa in enumerate(answer_prompts(model, tokenizer, prompts, max_new_tokens)):
        if qa["answer"]:
            row = {"messages": [{"role": "user", "content": qa["prompt"]}, {"role": "assistant", "content": qa["answer"]}],
                   "meta": {"task": TASK, "split": "train"}}
            samples.append(Sample(row, i + 1, "replay"))
    return samples
