"""The MASON README's own quickstart YAML (tests/fixtures/mason_readme_pipeline.yaml, byte for byte as the
README gives it) validates and means what its comments say. The plan only: no cloud call is made."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from mason.api import Pipeline

FIXTURE = Path(__file__).parents[1] / "fixtures" / "mason_readme_pipeline.yaml"


def _project(tmp_path: Path) -> Path:
    shutil.copyfile(FIXTURE, tmp_path / "pipeline.yaml")
    (tmp_path / "my_company_docs").mkdir()
    return tmp_path / "pipeline.yaml"


def test_the_readme_yaml_means_what_it_says(tmp_path):
    cfg = Pipeline.from_yaml(_project(tmp_path)).config
    assert cfg.base_model.name == "meta-llama/Llama-3-8B-Instruct"
    # "judge_llm: the LLM to generate data": with no teacher named it generates, and still judges
    assert cfg.synthetic_data.teacher.model == "openai/gpt-4-turbo"
    assert cfg.synthetic_data.judge_llm.model == "openai/gpt-4-turbo"
    assert cfg.curation.enabled
    # "PEFT/LoRA": SFT through a LoRA adapter; unsloth "if installed"
    assert (cfg.training.type, cfg.training.method, cfg.training.lora_r, cfg.training.use_unsloth) == ("sft", "lora", 16, True)
    assert cfg.evaluation.llm_judge.model == "openai/gpt-4o"
    assert cfg.evaluation.llm_judge.rubrics == ["faithfulness", "conciseness", "domain_accuracy"]
    assert cfg.export.format == ["gguf"] and cfg.export.file_target() == "gguf"


def test_the_readme_yaml_plans_every_task(tmp_path):
    pipeline = _project(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "mason", "run", str(pipeline), "--dry-run", "--json"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert '"task": "curate"' in proc.stdout and '"task": "export"' in proc.stdout
    assert not (tmp_path / ".mason").exists()  # a dry run writes nothing
