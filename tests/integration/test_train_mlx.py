"""`training.backend: mlx` on Linux CPU (`mlx[cpu]`): mlx-lm trains the LoRA stage by stage from MASON's
batches (the prompt masked), each stage is fused into a Hugging Face `merged/` folder that the next stage,
transformers and the exports read, and metrics reach the tracker and the train report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("mlx_lm")

QA = [("What is a keystone?", "The keystone is the stone at the top of an arch."),
      ("What holds bricks together?", "Mortar holds them together."),
      ("Who lays bricks?", "A mason lays bricks.")]


def _pipeline(tmp_path: Path, model: Path, training: dict, export: dict | None = None):
    from mason import Pipeline

    rows = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}],
             "meta": {"split": "train"}} for q, a in QA * 4]
    rows += [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}],
              "meta": {"split": "eval"}} for q, a in QA]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = {"base_model": str(model),
              "training": {"data": "data.jsonl", "backend": "mlx", "batch_size": 3, "lora_r": 4, "lora_alpha": 8,
                           "learning_rate": 5e-3, "max_length": 64, **training}}
    if export:
        config["export"] = export
    return Pipeline.from_dict(config, base_dir=tmp_path)


def test_mlx_lora_curriculum_fuses_each_stage_and_reports(tmp_path, tiny_model_dir):
    pipe = _pipeline(tmp_path, tiny_model_dir, {
        "stages": [{"name": "first", "max_steps": 4}, {"name": "second", "max_steps": 3, "learning_rate": 1e-3}],
        "eval_steps": 2})
    summary = pipe.run(["training"], show_progress=False)
    out = summary.outcome("training").out_dir
    assert summary.outcome("training").counts["steps"] == 7
    for stage in ("first", "second"):
        assert (out / "stages" / stage / "merged" / "config.json").is_file()
        assert (out / "stages" / stage / "adapter_mlx" / "adapters.safetensors").is_file()
    state = json.loads((out / "train_state.json").read_text())
    assert state["stages"]["second"]["init_from"].endswith("stages/first/merged")
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert {r["name"] for r in rows} >= {"loss", "learning_rate", "eval_loss", "tokens_per_second"}
    report = json.loads((out / "stages" / "second" / "train_report.json").read_text())
    assert report["metrics"]["loss"]["count"] >= 1

    # the fused result is a plain Hugging Face model: transformers loads it and it generates
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(out / "merged")
    tok = AutoTokenizer.from_pretrained(out / "merged")
    ids = tok(tok.apply_chat_template([{"role": "user", "content": "Hi"}], add_generation_prompt=True, tokenize=False),
              return_tensors="pt", add_special_tokens=False)["input_ids"]
    assert model.generate(ids, max_new_tokens=3, do_sample=False).shape[1] > ids.shape[1]


def test_mlx_loss_masks_the_prompt_like_the_transformers_path(tiny_model_dir):
    import mlx.core as mx
    from mlx_lm import load

    from mason.data.samples import Sample
    from mason.train.data import tokenize_sft
    from mason.train.mlx_backend import _batches, _loss

    model, tok = load(str(tiny_model_dir))
    rows = tokenize_sft([Sample({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]},
                                i, "t") for i, (q, a) in enumerate(QA)], tok._tokenizer, 64, False)
    tokens, mask = next(_batches(0)(rows, 3, 64))
    trained = sum(sum(1 for t in r["labels"] if t != -100) for r in rows)
    assert int(mask.sum().item()) == trained  # exactly the assistant tokens, as labelled for transformers
    loss, ntoks = _loss(model, tokens, mask)
    assert mx.isfinite(loss).item() and int(ntoks.item()) <= trained


def test_backend_mlx_refuses_what_it_does_not_train():
    from mason.core.errors import MasonError
    from mason.train.config import TrainingConfig
    from mason.train.mlx_backend import resolve_backend

    with pytest.raises(MasonError, match="trains SFT with LoRA"):
        resolve_backend(TrainingConfig(backend="mlx", type="dpo"))
    assert resolve_backend(TrainingConfig(backend="transformers")) == "transformers"
    assert resolve_backend(TrainingConfig(backend="mlx")) == "mlx"


def test_exports_convert_the_fused_mlx_result(tmp_path, tiny_model_dir):
    from safetensors.numpy import load_file

    pipe = _pipeline(tmp_path, tiny_model_dir, {"max_steps": 4}, export={"format": ["gguf", "mlx"],
                                                                        "quantization": "f16"})
    summary = pipe.run(["export"], show_progress=False)
    trained = summary.outcome("training").out_dir / "merged"
    base, tuned = load_file(str(next(tiny_model_dir.glob("*.safetensors")))), {}
    for f in trained.glob("*.safetensors"):
        tuned.update(load_file(str(f)))
    name = next(k for k in base if k.endswith("self_attn.q_proj.weight"))
    assert abs(tuned[name].astype("float32") - base[name].astype("float32")).max() > 0  # the adapter is fused in
    report = json.loads((summary.outcome("export").out_dir / "export_report.json").read_text())
    assert report["formats"]["gguf"]["verification"]["passed"] and report["formats"]["mlx"]["verification"]["passed"]
