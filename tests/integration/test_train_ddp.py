"""2-process DDP on CPU (gloo): MASON's SFT trainer (`build_sft_trainer`, the fast path included)
under `torch.distributed.run --nproc_per_node 2` on the tiny model. Both ranks train, the loss goes
down, the adapters stay identical across ranks (gradients are synchronised), and only rank 0 writes
the checkpoints and the final adapter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent('''
    import json, os, sys
    from pathlib import Path

    import torch
    from peft import PeftModel
    from transformers import PreTrainedModel, Trainer

    from mason.models.config import BaseModelConfig
    from mason.train.config import TrainingConfig
    from mason.data.samples import load_samples
    from mason.train.data import tokenize_sft
    from mason.train.modeling import prepare
    from mason.train.sft import build_sft_trainer

    model_dir, data, out, log = sys.argv[1:5]
    rank = int(os.environ["RANK"])
    saves = []  # what this process wrote: every save path goes through one of these
    for cls, name in ((PeftModel, "save_pretrained"), (PreTrainedModel, "save_pretrained"),
                      (Trainer, "_save_checkpoint")):
        def wrap(f, label=f"{cls.__name__}.{name}"):
            def inner(*a, **k):
                saves.append(label)
                return f(*a, **k)
            return inner
        setattr(cls, name, wrap(getattr(cls, name)))

    cfg = TrainingConfig(max_steps=6, batch_size=4, lora_r=8, learning_rate=1e-2, save_steps=3, max_length=128)
    model, tok = prepare(BaseModelConfig(name=model_dir), Path(out), cfg, None)
    rows = tokenize_sft(load_samples(Path(data)), tok, cfg.max_length, False)
    trainer = build_sft_trainer(model, tok, rows, [], cfg, Path(out) / "checkpoints", [])
    trainer.train()
    trainer.save_model(str(Path(out) / "adapter"))
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    weights = sum(float(p.detach().double().sum()) for p in trainer.model.parameters() if p.requires_grad)
    Path(log, f"rank{rank}.json").write_text(json.dumps({
        "rank": rank, "world": int(os.environ["WORLD_SIZE"]), "losses": losses, "weights": weights,
        "saves": saves, "trainer": type(trainer).__name__, "ddp": torch.distributed.is_initialized(),
    }))
''')

QA = [
    ("What is a keystone?", "The keystone is the stone at the top of an arch."),
    ("What holds bricks together?", "Mortar holds them together."),
    ("How thick is a mortar joint?", "A typical joint is about 10 mm thick."),
    ("Why does a wall need a foundation?", "It spreads the weight and keeps the wall from sinking."),
]


@pytest.mark.slow
def test_two_process_ddp_on_cpu(tmp_path: Path, tiny_model_dir: Path) -> None:
    script, data, out, log = tmp_path / "train.py", tmp_path / "data.jsonl", tmp_path / "out", tmp_path / "log"
    script.write_text(SCRIPT)
    log.mkdir()
    data.write_text("".join(
        json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}) + "\n"
        for q, a in QA * 8
    ))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(script), str(tiny_model_dir), str(data), str(out), str(log)]
    proc = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-4000:]

    ranks = [json.loads((log / f"rank{r}.json").read_text()) for r in (0, 1)]
    for r in ranks:
        assert r["world"] == 2 and r["ddp"] and r["trainer"] == "FastSFTTrainer"
        assert len(r["losses"]) == 6
        assert r["losses"][-1] < r["losses"][0], r["losses"]
    # gradients were all-reduced: both ranks end with the same adapter
    assert ranks[0]["weights"] == pytest.approx(ranks[1]["weights"], rel=1e-6)
    # only rank 0 saved weights (2 checkpoints + the final adapter); every rank enters the
    # checkpoint step, where rank 1 writes only its own RNG state (rng_state_1.pth, for resume)
    assert [s for s in ranks[1]["saves"] if s.endswith("save_pretrained")] == []
    assert ranks[0]["saves"].count("PeftModel.save_pretrained") == 3
    assert sorted(p.name for p in (out / "checkpoints" / "checkpoint-6").glob("rng_state*")) == [
        "rng_state_0.pth", "rng_state_1.pth"]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["checkpoint-3", "checkpoint-6"]
    assert (out / "adapter" / "adapter_model.safetensors").is_file()


@pytest.mark.slow
def test_mason_run_under_a_two_process_launch(tmp_path: Path, tiny_model_dir: Path) -> None:
    """`torchrun --nproc_per_node 2 -m mason run pipeline.yaml training`: both processes train
    (a 2-stage curriculum: the barrier between stages holds), only the main one writes the
    workspace (one tracker run, one copy of each metric row), and a second launch is cached."""
    import sqlite3

    import yaml

    (tmp_path / "data.jsonl").write_text("".join(
        json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}) + "\n"
        for q, a in QA * 4
    ))
    (tmp_path / "pipeline.yaml").write_text(yaml.safe_dump({
        "base_model": str(tiny_model_dir),
        "training": {"data": "data.jsonl", "batch_size": 4, "lora_r": 8, "learning_rate": 1e-2, "max_length": 128,
                     "stages": [{"name": "one", "max_steps": 2}, {"name": "two", "max_steps": 2}]},
    }))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "mason", "run", str(tmp_path / "pipeline.yaml"), "training", "--no-progress"]
    proc = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]

    (task_dir,) = (tmp_path / ".mason/artifacts/training").iterdir()
    assert json.loads((task_dir / "manifest.json").read_text())["status"] == "complete"
    for stage in ("one", "two"):
        assert (task_dir / "stages" / stage / "adapter" / "adapter_model.safetensors").is_file()
    rows = [json.loads(ln) for ln in (task_dir / "metrics.jsonl").read_text().splitlines()]
    losses = [(r["stage"], r["step"]) for r in rows if r["name"] == "loss"]
    assert sorted(losses) == [("one", 1), ("one", 2), ("two", 1), ("two", 2)]  # written once, by rank 0
    with sqlite3.connect(tmp_path / ".mason/mason.db") as db:
        assert db.execute("SELECT count(*) FROM runs").fetchone()[0] == 1

    again = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "cached" in again.stdout + again.stderr
