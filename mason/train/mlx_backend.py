"""`training.backend: mlx`: LoRA with mlx-lm's trainer (Apple silicon's fast path; `mlx[cpu]` on Linux).

The same config fields and the same data as the transformers path: samples are tokenized by MASON
(`mason.train.data.tokenize_sft`, with the tokenizer's chat template), so the loss covers exactly the
tokens the transformers path trains on (the assistant turns, tool calls included; the prompt masked)
— mlx-lm's own datasets mask only one prompt prefix. mlx-lm runs the loop (`mlx_lm.tuner.trainer.train`)
with MASON's batches and masked loss, the learning-rate schedule and warm-up of the config, and
metrics go to the tracker and `metrics.jsonl` (the train report reads them as for any run).

Each stage ends with the adapter fused into the model and saved as a Hugging Face folder
(`merged/`, safetensors + config + tokenizer): the next curriculum stage starts from it, evaluation
loads it, and export converts it (MLX as is, GGUF, ONNX, merged). The mlx-lm adapter itself is kept
in `adapter_mlx/` (`mlx_lm.load(base, adapter_path=...)` reads it).

Left out on this path (the transformers path has them): DPO, QLoRA and full fine-tuning, resuming
inside a stage, the knowledge probe, replay, packing.
"""

from __future__ import annotations

import importlib.util
import json
import math
import platform
from pathlib import Path
from typing import Any

from mason.core.console import warn
from mason.core.errors import MasonError
from mason.train.config import TrainingConfig

IGNORE = -100


def mlx_available() -> bool:
    return importlib.util.find_spec("mlx") is not None and importlib.util.find_spec("mlx_lm") is not None


def resolve_backend(cfg: TrainingConfig) -> str:
    """`transformers` or `mlx` for this run: `auto` picks MLX on Apple silicon when mlx-lm is installed.

    Raises:
        MasonError: `backend: mlx` without mlx-lm, or with a method/type the MLX path does not train.
    """
    backend = cfg.backend
    if backend == "auto":
        apple = platform.system() == "Darwin" and platform.machine() == "arm64"
        backend = "mlx" if apple and mlx_available() and cfg.type == "sft" and cfg.method == "lora" else "transformers"
    if backend != "mlx":
        return "transformers"
    if not mlx_available():
        raise MasonError("training.backend: mlx needs mlx-lm, which is not installed",
                         hint='pip install "mason[mlx]" (on Linux it installs mlx[cpu]), or `backend: transformers`')
    if cfg.type != "sft" or cfg.method != "lora":
        raise MasonError(f"training.backend: mlx trains SFT with LoRA; got type {cfg.type}, method {cfg.method}",
                         hint="use `backend: transformers` for DPO, QLoRA and full fine-tuning")
    return "mlx"


def _schedule(cfg: TrainingConfig, steps: int) -> Any:
    import mlx.optimizers as optim

    lr = cfg.learning_rate
    warm = int(round(cfg.warmup_ratio * steps))
    rest = max(1, steps - warm)
    if cfg.lr_scheduler in ("cosine", "cosine_with_restarts"):
        main = optim.cosine_decay(lr, rest)
    elif cfg.lr_scheduler in ("linear", "polynomial"):
        main = optim.linear_schedule(lr, 0.0, rest)
    else:
        main = lr
    if not warm:
        return main
    return optim.join_schedules([optim.linear_schedule(0.0, lr, warm), main], [warm])


def _batches(pad_id: int) -> Any:
    """An mlx-lm `iterate_batches`: MASON's rows (input_ids + labels) padded per batch into
    (tokens, loss mask), shortest first then shuffled by batch, looping when asked."""
    import mlx.core as mx
    import numpy as np

    def iterate(dataset, batch_size, max_seq_length, loop=False, seed=None, comm_group=None):
        order = sorted(range(len(dataset)), key=lambda i: len(dataset[i]["input_ids"]))
        if len(order) < batch_size:
            raise MasonError(f"the MLX trainer needs at least batch_size={batch_size} samples, got {len(order)}",
                             hint="lower training.batch_size")
        groups = [order[i:i + batch_size] for i in range(0, len(order) - batch_size + 1, batch_size)]
        rng = np.random.default_rng(seed)
        while True:
            for g in rng.permutation(len(groups)):
                picked = [dataset[i] for i in groups[g]]
                width = min(max(len(r["input_ids"]) for r in picked), max_seq_length)
                tokens = np.full((len(picked), width), pad_id, dtype=np.int32)
                mask = np.zeros((len(picked), width), dtype=np.float32)
                for j, r in enumerate(picked):
                    ids, labels = r["input_ids"][:width], r["labels"][:width]
                    tokens[j, :len(ids)] = ids
                    mask[j, :len(labels)] = [0.0 if t == IGNORE else 1.0 for t in labels]
                yield mx.array(tokens), mx.array(mask)
            if not loop:
                break

    return iterate


def _loss(model: Any, tokens: Any, mask: Any) -> tuple[Any, Any]:
    """Cross-entropy over the trained positions only (labels as the transformers path shifts them)."""
    import mlx.core as mx
    import mlx.nn as nn

    logits = model(tokens[:, :-1]).astype(mx.float32)
    weights = mask[:, 1:]
    ce = nn.losses.cross_entropy(logits, tokens[:, 1:]) * weights
    ntoks = mx.maximum(weights.sum(), 1)
    return ce.sum() / ntoks, ntoks


def train_lora(source: Path, cfg: TrainingConfig, train: list[Any], evals: list[Any], stage_dir: Path,
               sink: Any) -> dict[str, Any]:
    """Train one stage with mlx-lm from the HF model folder `source`; write `merged/` and `adapter_mlx/`.

    Returns:
        {"steps", "tokens", "metrics"} of the stage.
    Raises:
        InputError: samples that leave nothing to train on (as on the transformers path).
    """
    import mlx.core as mx
    import mlx.optimizers as optim
    from mlx.utils import tree_flatten, tree_unflatten
    from mlx_lm import load
    from mlx_lm.tuner.trainer import TrainingArgs, TrainingCallback
    from mlx_lm.tuner.trainer import train as mlx_train
    from mlx_lm.tuner.utils import linear_to_lora_layers
    from mlx_lm.utils import save

    from mason.core.io import write_folder
    from mason.train.data import tokenize_sft
    from mason.train.sft import total_steps

    mx.random.seed(cfg.seed)
    model, tokenizer, config = load(str(source), return_config=True)
    hf_tokenizer = tokenizer._tokenizer
    rows = tokenize_sft(train, hf_tokenizer, cfg.max_length, cfg.train_on_prompt)
    eval_rows = tokenize_sft(evals, hf_tokenizer, cfg.max_length, cfg.train_on_prompt) if evals else []
    pad = hf_tokenizer.pad_token_id if hf_tokenizer.pad_token_id is not None else (hf_tokenizer.eos_token_id or 0)
    model.freeze()
    lora = {"rank": cfg.lora_r, "scale": cfg.lora_alpha / cfg.lora_r, "dropout": cfg.lora_dropout}
    linear_to_lora_layers(model, len(model.layers), lora)
    accum = cfg.gradient_accumulation_steps
    steps = total_steps(len(rows), cfg)
    iters = steps * accum  # mlx-lm counts micro-batches
    adapter_dir = stage_dir / "adapter_mlx"
    adapter_dir.mkdir(parents=True, exist_ok=True)
    every_eval = (math.ceil(len(rows) / cfg.batch_size) if cfg.eval_steps == "epoch" else cfg.eval_steps) or iters
    args = TrainingArgs(batch_size=min(cfg.batch_size, len(rows)), iters=iters,
                        val_batches=-1, steps_per_report=max(1, min(10, iters)), steps_per_eval=every_eval * accum,
                        steps_per_save=iters, max_seq_length=cfg.max_length,
                        adapter_file=str(adapter_dir / "adapters.safetensors"), grad_accumulation_steps=accum)
    tokens_seen = [0]

    class Metrics(TrainingCallback):
        def on_train_loss_report(self, info: dict) -> None:
            tokens_seen[0] = int(info["trained_tokens"])
            sink.emit(info["iteration"] // accum, {"loss": info["train_loss"], "learning_rate": info["learning_rate"],
                                                  "tokens_per_second": info["tokens_per_second"]})

        def on_val_loss_report(self, info: dict) -> None:
            sink.emit(info["iteration"] // accum, {"eval_loss": info["val_loss"]})

    optimizer = optim.AdamW(learning_rate=_schedule(cfg, steps), weight_decay=cfg.weight_decay)
    if eval_rows and len(eval_rows) < args.batch_size:
        warn(f"  {len(eval_rows)} eval samples, fewer than a batch ({args.batch_size}): no eval loss on the MLX path")
        eval_rows = []
    mlx_train(model, optimizer, rows, eval_rows or None, args=args, loss=_loss, iterate_batches=_batches(pad),
              training_callback=Metrics())
    trained = float(sum(v.size for _, v in tree_flatten(model.trainable_parameters())))
    (adapter_dir / "adapter_config.json").write_text(json.dumps(
        {"fine_tune_type": "lora", "num_layers": len(model.layers), "lora_parameters": lora}, indent=2))
    fused = [(n, m.fuse(dequantize=False)) for n, m in model.named_modules() if hasattr(m, "fuse")]
    if fused:
        model.update_modules(tree_unflatten(fused))
    write_folder(stage_dir / "merged", lambda tmp: save(tmp, str(source), model, tokenizer, config))
    losses = [r["loss"] for r in sink.rows if "loss" in r]
    evals_seen = [r["eval_loss"] for r in sink.rows if "eval_loss" in r]
    metrics: dict[str, float] = {"adapter_parameters": trained}
    if losses:
        metrics.update(first_loss=losses[0], final_loss=losses[-1])
    if evals_seen:
        metrics.update(best_eval_loss=min(evals_seen), final_eval_loss=evals_seen[-1],
                       perplexity=math.exp(min(min(evals_seen), 50.0)))
    return {"steps": steps, "tokens": tokens_seen[0], "metrics": metrics}
