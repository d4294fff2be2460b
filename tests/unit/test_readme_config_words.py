"""The config words the MASON README uses: `type: peft`, `llm_judge.judge_llm`, `synthetic_data.judge_llm`
without a teacher, an export `path` naming a .gguf file, `use_unsloth: true` meaning "if installed"."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mason.core.errors import MasonError
from mason.evaluate.config import LLMJudgeConfig
from mason.export.config import ExportConfig
from mason.generate.config import GenerateConfig
from mason.train.config import TrainingConfig
from mason.train.unsloth_backend import wants_unsloth


def test_type_peft_is_sft_with_adapters():
    assert TrainingConfig(type="peft", method="qlora").type == "sft"
    assert TrainingConfig.model_validate({"type": "peft"}).method == "lora"
    with pytest.raises(ValidationError, match="`type: peft` trains adapters"):
        TrainingConfig(type="peft", method="full")
    assert TrainingConfig(type="dpo").type == "dpo"


def test_judge_llm_names_the_judge_model():
    assert LLMJudgeConfig.model_validate({"judge_llm": "openai/gpt-4o"}).model == "openai/gpt-4o"
    assert LLMJudgeConfig.model_validate("openai/gpt-4o").model == "openai/gpt-4o"
    with pytest.raises(ValidationError, match="not both"):
        LLMJudgeConfig.model_validate({"judge_llm": "a/b", "model": "c/d"})


def test_generation_judge_generates_when_no_teacher_is_named():
    alone = GenerateConfig.model_validate({"judge_llm": "openai/gpt-4-turbo"})
    assert alone.teacher.model == alone.judge_llm.model == "openai/gpt-4-turbo"
    both = GenerateConfig.model_validate({"judge_llm": "openai/gpt-4o", "teacher": "extractive"})
    assert (both.teacher.model, both.judge_llm.model) == ("extractive", "openai/gpt-4o")
    assert GenerateConfig().teacher.model == "extractive"


def test_an_export_path_ending_in_gguf_is_the_file():
    assert ExportConfig(format="gguf", path="exports/m.gguf").file_target() == "gguf"
    assert ExportConfig(format=["gguf", "onnx"], path="exports").file_target() is None
    with pytest.raises(ValidationError, match="names a gguf file"):
        ExportConfig(format=["gguf", "onnx"], path="exports/m.gguf")


def test_use_unsloth_true_means_if_it_can_run_here(monkeypatch, capsys):
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    assert wants_unsloth(True, "cpu") is False
    assert "training on the standard transformers path" in capsys.readouterr().err
    with pytest.raises(MasonError, match="needs unsloth, which is not installed"):
        wants_unsloth("require", "cuda")
    assert wants_unsloth(False, "cuda") is False


def test_a_gguf_file_path_gets_the_file_and_its_modelfile(tmp_path):
    from mason.export.stage import _publish_file

    src = tmp_path / "artifact" / "gguf"
    src.mkdir(parents=True)
    (src / "model.gguf").write_bytes(b"GGUF" + bytes(range(200)))
    (src / "Modelfile").write_text('FROM ./model.gguf\nTEMPLATE """{{ .Prompt }}"""\nPARAMETER stop "</s>"\n')
    dest = _publish_file(src / "model.gguf", tmp_path / "exports" / "my_expert_model.gguf")
    assert dest.read_bytes() == (src / "model.gguf").read_bytes()
    modelfile = (tmp_path / "exports" / "my_expert_model.Modelfile").read_text()
    assert modelfile.splitlines()[0] == "FROM ./my_expert_model.gguf" and 'PARAMETER stop "</s>"' in modelfile
    assert sorted(p.name for p in dest.parent.iterdir()) == ["my_expert_model.Modelfile", "my_expert_model.gguf"]
