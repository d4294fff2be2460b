"""Generation and perplexity of the evaluation on the tiny model, checked against transformers itself."""

from __future__ import annotations

import math

import pytest

from mason.evaluate.data import to_eval_row
from mason.evaluate.generation import answer_rows, perplexity
from mason.runtime.base import GenerationParams

ROWS = [
    {"messages": [{"role": "user", "content": "What is a keystone?"},
                  {"role": "assistant", "content": "The keystone is the stone at the top of an arch."}]},
    {"messages": [{"role": "system", "content": "Answer briefly."},
                  {"role": "user", "content": "What holds bricks together?"},
                  {"role": "assistant", "content": "Mortar."}]},
    {"messages": [{"role": "user", "content": "Why does a wall need a foundation?"},
                  {"role": "assistant", "content": "It spreads the weight and keeps the wall from sinking, "
                                                   "even on soft ground."}]},
]


@pytest.fixture(scope="module")
def runtime(tiny_model_dir):
    from mason.runtime import open_runtime

    rt = open_runtime(tiny_model_dir, batch_size=4)
    yield rt
    rt.close()


def test_perplexity_is_the_token_weighted_loss_of_the_answers(runtime):
    """Padding three rows of different lengths into one batch must give what transformers computes row by row."""
    import torch

    from mason.data.chat import ChatRenderer, encode_chat

    from mason.data.samples import Sample

    rows = [to_eval_row(r) for r in ROWS]
    got = perplexity(runtime, rows, batch_size=3, max_length=512)
    renderer = ChatRenderer(runtime.tokenizer)
    nll, tokens = 0.0, 0
    for i, r in enumerate(rows):
        enc = encode_chat(Sample(r.sample, i, "t"), renderer, 512, False)
        labels = torch.tensor([enc["labels"]])
        with torch.no_grad():
            loss = runtime.model(input_ids=torch.tensor([enc["input_ids"]]), labels=labels).loss
        n = int((labels[0, 1:] != -100).sum())  # transformers shifts: the first token is never predicted
        nll, tokens = nll + float(loss) * n, tokens + n
    assert got["tokens"] == tokens and got["rows"] == 3 and got["skipped"] == 0
    assert got["value"] == pytest.approx(math.exp(nll / tokens), rel=1e-4)


def test_batched_answers_match_one_by_one_and_resume(runtime, tmp_path):
    rows = [to_eval_row(r) for r in ROWS]
    params = GenerationParams(max_tokens=10)
    batched = answer_rows(runtime, "tuned", rows, params, batch_size=3, path=tmp_path / "a.jsonl",
                          model_path="m", show_progress=False)
    single = answer_rows(runtime, "tuned", rows, params, batch_size=1, path=tmp_path / "b.jsonl",
                         model_path="m", show_progress=False)
    assert batched.predictions == single.predictions  # greedy decoding with left padding changes nothing
    assert batched.output_tokens == single.output_tokens and all(t <= 10 for t in batched.output_tokens)
    assert all(p > 0 for p in batched.prompt_tokens) and all(s > 0 for s in batched.seconds)
    again = answer_rows(runtime, "tuned", rows, params, batch_size=3, path=tmp_path / "a.jsonl",
                        model_path="m", show_progress=False)
    assert again.resumed == 3 and again.predictions == batched.predictions
    other = answer_rows(runtime, "tuned", rows, params, batch_size=3, path=tmp_path / "a.jsonl",
                        model_path="another/model", show_progress=False)
    assert other.resumed == 0  # answers of another model are never reused
