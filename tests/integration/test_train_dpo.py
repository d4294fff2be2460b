"""DPO with LoRA on the tiny model: the reward margin grows, the loss falls, the adapter changes,
and the reference is the adapter-free base (no second model loaded)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mason.core.errors import InputError
from mason.core.task import TaskContext
from mason.pipeline.config import PipelineConfig
from mason.train.config import TrainingConfig

PAIRS = [
    ("What is a keystone?", "The keystone is the stone at the top of an arch.", "A keystone is a kind of cheese."),
    ("What holds bricks together?", "Mortar holds them together.", "Nothing, they float."),
    ("How thick is a mortar joint?", "About 10 mm thick.", "Roughly 3 metres."),
    ("Why does a wall need a foundation?", "It spreads the weight.", "It does not need one."),
]


def preference_file(path: Path, n: int, n_eval: int = 0) -> Path:
    rows = []
    for i in range(n + n_eval):
        q, good, bad = PAIRS[i % len(PAIRS)]
        rows.append({"prompt": q, "chosen": good, "rejected": bad})
    # prompt/chosen/rejected rows are converted to the data contract on load; split via meta needs the contract form
    contract = [{"messages": [{"role": "user", "content": r["prompt"]}],
                 "chosen": {"role": "assistant", "content": r["chosen"]},
                 "rejected": {"role": "assistant", "content": r["rejected"]},
                 "meta": {"split": "eval" if i >= n else "train"}} for i, r in enumerate(rows)]
    path.write_text("".join(json.dumps(r) + "\n" for r in (contract if n_eval else rows)))
    return path


def ctx_for(tmp: Path, model: Path, cfg: TrainingConfig, logged: list) -> TaskContext:
    out = tmp / "out"
    out.mkdir(exist_ok=True)
    return TaskContext(task="training", section=cfg, pipeline=PipelineConfig(base_model={"name": str(model)}),
                       base_dir=tmp, out_dir=out, show_progress=False,
                       log_metric=lambda n, v, s=None: logged.append((n, v, s)))


def test_dpo_lora_margin_grows_and_adapter_changes(tmp_path, tiny_model_dir):
    from safetensors.torch import load_file

    from mason.train import stage

    data = preference_file(tmp_path / "prefs.jsonl", 16, n_eval=4)
    cfg = TrainingConfig(type="dpo", data=str(data), max_steps=10, batch_size=4, max_length=128, lora_r=8,
                         learning_rate=1e-2, dpo_beta=0.1)
    logged: list = []
    result = stage.run(ctx_for(tmp_path, tiny_model_dir, cfg, logged))

    m = result.metrics
    assert result.counts["train_samples"] == 16 and result.counts["eval_samples"] == 4
    assert result.counts["steps"] == 10
    assert m["final_reward_margin"] > m["first_reward_margin"], m
    assert m["final_loss"] < m["first_loss"], m
    assert m["adapter_change"] > 0 and "best_eval_loss" in m
    tensors = load_file(str(tmp_path / "out/adapter/adapter_model.safetensors"))
    assert any("lora_B" in k and float(v.abs().max()) > 1e-4 for k, v in tensors.items())
    names = {n for n, _, _ in logged}
    assert {"loss", "reward_margin", "reward_accuracy", "learning_rate", "grad_norm"} <= names


def test_dpo_needs_preference_samples(tmp_path, tiny_model_dir):
    from mason.train import stage

    data = tmp_path / "sft.jsonl"
    data.write_text(json.dumps({"messages": [{"role": "user", "content": "Hi"},
                                             {"role": "assistant", "content": "Hello."}]}) + "\n")
    # allow_low_quality: the one-word answer would stop the quality gate before the DPO check
    cfg = TrainingConfig(type="dpo", data=str(data), max_steps=1, batch_size=2, allow_low_quality=True)
    with pytest.raises(InputError, match=r"sft\.jsonl:1 .*needs preference samples"):
        stage.run(ctx_for(tmp_path, tiny_model_dir, cfg, []))
