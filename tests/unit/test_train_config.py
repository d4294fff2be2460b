"""TrainingConfig: defaults, documentation, cross-field checks, stages and their overrides."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from mason.train.config import DataFilter, StageConfig, TrainingConfig


def test_defaults_are_lora_sft_on_assistant_tokens():
    cfg = TrainingConfig()
    assert (cfg.type, cfg.method, cfg.target_modules, cfg.train_on_prompt) == ("sft", "lora", "all-linear", False)
    assert cfg.data is None and cfg.stages is None and cfg.report_to == []
    assert [s.name for s in cfg.stage_list()] == ["main"]


@pytest.mark.parametrize("model", [TrainingConfig, StageConfig, DataFilter])
def test_every_field_is_documented(model):
    undocumented = [name for name, f in model.model_fields.items() if not f.description]
    assert not undocumented


def test_unknown_keys_are_errors():
    with pytest.raises(ValidationError, match="lora_rank"):
        TrainingConfig.model_validate({"lora_rank": 8})
    with pytest.raises(ValidationError, match="epoch"):
        StageConfig.model_validate({"name": "a", "epoch": 1})


def test_early_stopping_needs_eval_steps_and_aligned_saves():
    with pytest.raises(ValidationError, match="early_stopping_patience needs eval_steps"):
        TrainingConfig(early_stopping_patience=2)
    with pytest.raises(ValidationError, match="multiple of eval_steps"):
        TrainingConfig(early_stopping_patience=2, eval_steps=10, save_steps=15)
    ok = TrainingConfig(early_stopping_patience=2, eval_steps=10, save_steps=20)
    assert ok.early_stopping_threshold == 0.0


def test_select_by_knowledge_and_epoch_evaluation(tmp_path):
    from mason.train.sft import trainer_kwargs

    with pytest.raises(ValidationError, match="select_by: knowledge needs eval_steps"):
        TrainingConfig(select_by="knowledge")
    with pytest.raises(ValidationError, match="eval_steps"):
        TrainingConfig(eval_steps="weekly")
    cfg = TrainingConfig(eval_steps="epoch", early_stopping_patience=1, epochs=3)
    args = trainer_kwargs(cfg, tmp_path, has_eval=True, n_rows=16, select="eval_knowledge")
    assert (args["eval_strategy"], args["save_strategy"], args["eval_steps"]) == ("epoch", "epoch", None)
    assert args["metric_for_best_model"] == "eval_knowledge" and args["greater_is_better"] is True
    assert args["load_best_model_at_end"] is True
    loss = trainer_kwargs(TrainingConfig(eval_steps=4, early_stopping_patience=1), tmp_path, has_eval=True, n_rows=16)
    assert (loss["metric_for_best_model"], loss["greater_is_better"], loss["save_steps"]) == ("eval_loss", False, 4)
    plain = trainer_kwargs(TrainingConfig(eval_steps="epoch"), tmp_path, has_eval=True, n_rows=16)
    assert (plain["eval_strategy"], plain["save_strategy"], plain["save_steps"]) == ("epoch", "steps", 50)


def test_stage_rules():
    with pytest.raises(ValidationError, match="unique"):
        TrainingConfig(stages=[{"name": "a"}, {"name": "a"}])
    with pytest.raises(ValidationError, match="stages is empty"):
        TrainingConfig(stages=[])
    with pytest.raises(ValidationError, match="not both"):
        StageConfig(name="a", epochs=1, max_steps=3)
    with pytest.raises(ValidationError, match="must be letters"):
        StageConfig(name="../escape")
    with pytest.raises(ValidationError, match="needs `path` or `task`"):
        StageConfig(name="a", data={})


def test_stage_data_is_a_path_or_a_filter():
    cfg = TrainingConfig(stages=[{"name": "a", "data": {"task": "question_answering"}},
                                 {"name": "b", "data": "more.jsonl"}])
    first, second = cfg.stage_list()
    assert isinstance(first.data, DataFilter) and first.data.task == ["question_answering"]
    assert second.data == "more.jsonl"


def test_stage_overrides_apply_and_max_steps_and_epochs_replace_each_other():
    cfg = TrainingConfig(learning_rate=2e-4, max_steps=100, batch_size=8, stages=[
        {"name": "a", "epochs": 2, "learning_rate": 1e-4},
        {"name": "b", "batch_size": 2},
    ])
    a, b = (cfg.for_stage(s) for s in cfg.stage_list())
    assert (a.epochs, a.max_steps, a.learning_rate, a.batch_size) == (2, None, 1e-4, 8)
    assert (b.epochs, b.max_steps, b.learning_rate, b.batch_size) == (1.0, 100, 2e-4, 2)


def test_report_to_accepts_a_string_or_none():
    assert TrainingConfig(report_to="tensorboard").report_to == ["tensorboard"]
    assert TrainingConfig(report_to="none").report_to == []


def test_fingerprint_follows_external_data_files(tmp_path):
    from mason.train.stage import fingerprint

    (tmp_path / "d.jsonl").write_text("{}\n")
    cfg = TrainingConfig(data="d.jsonl", stages=[{"name": "s", "data": {"path": "e.jsonl", "task": "qa"}}])
    first = fingerprint(cfg, tmp_path)
    assert first["e.jsonl"] == "missing"
    (tmp_path / "d.jsonl").write_text("{}\n{}\n")
    assert fingerprint(cfg, tmp_path)["d.jsonl"] != first["d.jsonl"]


def test_importing_the_training_stage_does_not_import_torch():
    code = ("import sys, mason.train, mason.train.stage, mason.train.data, mason.train.callbacks, "
            "mason.train.sft, mason.train.dpo, mason.train.modeling, mason.train.outputs\n"
            "print([m for m in ('torch', 'transformers', 'peft', 'trl') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
