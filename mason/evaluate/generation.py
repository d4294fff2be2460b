"""Answer the eval prompts with one model (any `mason.runtime` runtime), durably and resumably.

Answers are appended to `answers/<model>.jsonl` batch by batch, so an evaluation killed halfway
re-answers only what is missing. Each answer keeps its token counts and seconds: with batched
generation a row's seconds are its batch's time shared between the batch's rows (the
transformers runtime's convention), so latency percentiles describe time per answer at that
batch size, and tokens/s the throughput.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mason.core.console import progress
from mason.core.io import JsonlWriter, iter_jsonl, repair_jsonl_tail
from mason.evaluate.data import EvalRow
from mason.runtime.base import GenerationParams, Runtime


@dataclass
class ModelAnswers:
    """One model's answers to the eval rows (in row order) and what was measured on it.

    Attributes:
        name: `tuned`, `base`, or an export format.
        model: what was loaded (`Runtime.describe()`), or {"path": ...} when loading failed.
        perplexity: {"value", "tokens", "rows", "skipped"} or None (not measured / not possible).
        error: why the model could not be evaluated (then the lists are empty).
        wall_seconds: time spent generating in this execution (resumed answers not included).
    """

    name: str
    model: dict[str, Any]
    predictions: list[str] = field(default_factory=list)
    prompt_tokens: list[int] = field(default_factory=list)
    output_tokens: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    perplexity: dict[str, Any] | None = None
    error: str | None = None
    resumed: int = 0
    wall_seconds: float = 0.0


def percentile(values: list[float], q: float) -> float | None:
    """The q-th quantile (0-1) with linear interpolation between the closest ranks (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def latency_summary(answers: ModelAnswers) -> dict[str, float | None]:
    """latency_p50, latency_p95, latency_mean (seconds per answer) and tokens_per_second (output tokens
    over generation seconds)."""
    s = answers.seconds
    total = sum(s)
    return {
        "latency_p50": percentile(s, 0.50),
        "latency_p95": percentile(s, 0.95),
        "latency_mean": total / len(s) if s else None,
        "tokens_per_second": sum(answers.output_tokens) / total if total > 0 else None,
    }


def _done(path: Path, model_path: str) -> dict[str, dict[str, Any]]:
    """Answers an interrupted execution already wrote, by row id (those of the same model only)."""
    if not path.is_file():
        return {}
    repair_jsonl_tail(path)
    return {r["id"]: r for _, r in iter_jsonl(path) if r.get("model_path") == model_path and "prediction" in r}


def answer_rows(runtime: Runtime, name: str, rows: list[EvalRow], params: GenerationParams, *, batch_size: int,
                path: Path, model_path: str, show_progress: bool = True) -> ModelAnswers:
    """Answer every row with `runtime`, `batch_size` prompts at a time, appending to `path`.

    Rows already in `path` for the same `model_path` are not answered again.

    Raises:
        MasonError: generation failed (the runtime's message).
    """
    done = _done(path, model_path)
    todo = [r for r in rows if r.id not in done]
    started = time.perf_counter()
    with JsonlWriter(path, resume=True) as writer, progress(disable=not show_progress) as bar:
        task = bar.add_task(f"answer ({name})", total=len(rows), completed=len(rows) - len(todo))
        for start in range(0, len(todo), batch_size):
            batch = todo[start:start + batch_size]
            results = runtime.generate_batch([r.prompt for r in batch], params)
            for row, res in zip(batch, results, strict=True):
                done[row.id] = {"id": row.id, "model_path": model_path, "prediction": res.text,
                                "prompt_tokens": res.prompt_tokens, "output_tokens": res.output_tokens,
                                "seconds": res.seconds}
                writer.write(done[row.id])
            writer.sync()  # a batch is the resume point
            bar.advance(task, len(batch))
    out = ModelAnswers(name, runtime.describe(), resumed=len(rows) - len(todo),
                       wall_seconds=time.perf_counter() - started)
    for r in rows:
        a = done[r.id]
        out.predictions.append(str(a["prediction"]))
        out.prompt_tokens.append(int(a.get("prompt_tokens") or 0))
        out.output_tokens.append(int(a.get("output_tokens") or 0))
        out.seconds.append(float(a.get("seconds") or 0.0))
    return out


def perplexity(runtime: Runtime, rows: list[EvalRow], *, batch_size: int, max_length: int) -> dict[str, Any] | None:
    """Perplexity of the reference answers under the model: exp(mean loss over the answer tokens).

    Teacher-forced on the prompt + reference, with the training stage's chat rendering and label
    mask (`mason.data.chat.encode_chat`): only the assistant's tokens count, as in training.

    Returns:
        {"value", "tokens", "rows", "skipped"}, or None when the runtime exposes no PyTorch model
        and tokenizer (GGUF, ONNX, MLX runtimes).
    """
    model, tokenizer = getattr(runtime, "model", None), getattr(runtime, "tokenizer", None)
    if model is None or tokenizer is None or not hasattr(model, "forward"):
        return None
    import torch

    from mason.core.errors import InputError
    from mason.data.chat import IGNORE_INDEX, ChatRenderer, encode_chat
    from mason.data.samples import Sample

    renderer = ChatRenderer(tokenizer)
    max_length = min(max_length, int(getattr(tokenizer, "model_max_length", max_length) or max_length))
    encoded, skipped = [], 0
    for i, r in enumerate(rows):
        try:
            encoded.append(encode_chat(Sample(r.sample, i + 1, "eval"), renderer, max_length, False))
        except InputError:
            skipped += 1  # no answer token left inside max_length
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    nll, count = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(encoded), batch_size):
            batch = encoded[start:start + batch_size]
            width = max(len(e["input_ids"]) for e in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for j, e in enumerate(batch):  # right padding: positions stay those of an unpadded row
                n = len(e["input_ids"])
                ids[j, :n], labels[j, :n], mask[j, :n] = torch.tensor(e["input_ids"]), torch.tensor(e["labels"]), 1
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
            shift_logits, shift_labels = logits[:, :-1], labels[:, 1:].to(device)
            loss = torch.nn.functional.cross_entropy(shift_logits.reshape(-1, shift_logits.shape[-1]),
                                                     shift_labels.reshape(-1), ignore_index=IGNORE_INDEX,
                                                     reduction="sum")
            nll += float(loss)
            count += int((shift_labels != IGNORE_INDEX).sum())
    value = math.exp(min(nll / count, 50.0)) if count else None
    return {"value": value, "tokens": count, "rows": len(encoded), "skipped": skipped}
