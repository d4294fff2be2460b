"""The export task through the pipeline on the tiny model: the adapter is merged, `merged` and
`adapter` exports are verified with transformers and published to `export.path`; a corrupted
source is caught and kept as `<format>.failed/`, and nothing is published."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

QA = [("What is a keystone?", "The keystone is the stone at the top of an arch."),
      ("What holds bricks together?", "Mortar holds them together.")]


def _pipeline(tmp_path: Path, model: Path, export: dict):
    from mason import Pipeline

    (tmp_path / "data.jsonl").write_text("".join(
        json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}],
                    "meta": {"split": "train"}}) + "\n" for q, a in QA * 4))
    return Pipeline.from_dict({
        "base_model": str(model),
        "training": {"data": "data.jsonl", "max_steps": 2, "batch_size": 4, "lora_r": 4, "learning_rate": 1e-2,
                     "max_length": 64},
        "export": export,
    }, base_dir=tmp_path)


def test_merged_and_adapter_exports_are_verified_and_published(tmp_path, tiny_model_dir):
    pipe = _pipeline(tmp_path, tiny_model_dir, {"format": ["merged", "adapter"], "verify_prompts": ["Hi there"]})
    summary = pipe.run(["export"], show_progress=False)
    export = summary.outcome("export")
    assert export.status == "done" and export.counts == {"formats": 2, "verified": 2}
    report = json.loads((export.out_dir / "export_report.json").read_text())
    for fmt in ("merged", "adapter"):
        v = report["formats"][fmt]["verification"]
        assert v["passed"] and v["runtime"] == "transformers" and v["max_abs_diff"] < 1e-3
    assert (tmp_path / "exports/merged/model.safetensors").is_file()
    assert (tmp_path / "exports/adapter/adapter_config.json").is_file()
    assert pipe.run(["export"], show_progress=False).outcome("export").status == "cached"


def test_a_broken_export_fails_verification_and_is_not_published(tmp_path, tiny_model_dir, monkeypatch):
    import torch

    from mason.core.errors import MasonError
    from mason.export import merged

    real = merged.MergedExporter.export

    def corrupt(self, job):  # flip the sign of one weight matrix in the written copy
        out = real(self, job)
        from safetensors.torch import load_file, save_file

        path = job.out_dir / "model.safetensors"
        tensors = load_file(str(path))
        name = next(k for k in tensors if k.endswith("mlp.down_proj.weight"))
        tensors[name] = -tensors[name] * 3 + torch.randn_like(tensors[name])
        save_file(tensors, str(path), metadata={"format": "pt"})
        return out

    monkeypatch.setattr(merged.MergedExporter, "export", corrupt)
    pipe = _pipeline(tmp_path, tiny_model_dir, {"format": "merged", "verify_prompts": ["Hi there"]})
    with pytest.raises(MasonError, match=r"disagrees with the trained one: max \|logit diff\|"):
        pipe.run(["export"], show_progress=False)
    (task_dir,) = (tmp_path / ".mason/artifacts/export").iterdir()
    assert (task_dir / "merged.failed" / "model.safetensors").is_file() and not (task_dir / "merged").exists()
    assert not (tmp_path / "exports").exists()
