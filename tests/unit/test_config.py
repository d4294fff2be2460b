"""Pipeline config: validation errors (with YAML paths and lines), env interpolation, shorthands."""

from __future__ import annotations

from pathlib import Path

import pytest

from mason.core.errors import ConfigError
from mason.pipeline.config import PipelineConfig
from mason.pipeline.loader import load_yaml_config, parse_config
from mason.pipeline.reference import END, START, render_reference

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(text)
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_yaml_config(path)
    return [p.format(str(path)) for p in info.value.problems]


def test_valid_config_with_shorthands(tmp_path):
    cfg = load_yaml_config(write(tmp_path, "workspace: ws\nbase_model: ./m\nknowledge_source:\n  path: docs\n"))
    assert cfg.workspace.path == "ws"
    assert cfg.base_model.name == "./m"
    assert cfg.knowledge_source.path == "docs"
    assert cfg.knowledge_source.chunk_size == 512
    assert cfg.training is None


def test_every_problem_reported_at_once_with_lines(tmp_path):
    path = write(
        tmp_path,
        "knowledge_source:\n"      # 1
        "  path: docs\n"           # 2
        "  chunk_sise: 10\n"       # 3
        "trainig:\n"               # 4
        "  lora_r: 3\n"            # 5
        "training:\n"              # 6
        "  lora_r: many\n",        # 7
    )
    found = problems(path)
    assert len(found) == 3
    assert f"{path}:3: knowledge_source.chunk_sise: unknown key 'chunk_sise' (did you mean 'chunk_size'?)" in found
    assert f"{path}:4: trainig: unknown key 'trainig' (did you mean 'training'?)" in found
    assert any(p.startswith(f"{path}:7: training.lora_r:") and "'many'" in p for p in found)


def test_missing_required_field_points_at_section(tmp_path):
    found = problems(write(tmp_path, "name: x\nknowledge_source:\n  glob: '*.md'\n"))
    assert found == [f"{tmp_path / 'pipeline.yaml'}:2: knowledge_source.path: required field is missing"]


def test_cross_field_validation(tmp_path):
    found = problems(write(tmp_path, "knowledge_source:\n  path: d\n  chunk_size: 100\n  chunk_overlap: 100\n"))
    assert len(found) == 1 and "chunk_overlap (100) must be at most half of chunk_size (50)" in found[0]


def test_nested_list_items_get_paths(tmp_path):
    found = problems(write(tmp_path, "evaluation:\n  guards:\n    - metric: rougeL\n      mn: 0.3\n"))
    assert found == [
        f"{tmp_path / 'pipeline.yaml'}:4: evaluation.guards[0].mn: unknown key 'mn' (did you mean 'min'?)"
    ]


def test_env_interpolation(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCS_DIR", "my docs")
    monkeypatch.setenv("CHUNK", "128")
    cfg = load_yaml_config(
        write(tmp_path, "knowledge_source:\n  path: ${DOCS_DIR}/x\n  chunk_size: ${CHUNK}\n  glob: ${GLOB:-*.md}\n")
    )
    assert cfg.knowledge_source.path == "my docs/x"
    assert cfg.knowledge_source.chunk_size == 128
    assert cfg.knowledge_source.glob == "*.md"


def test_undefined_env_var_is_a_problem(tmp_path, monkeypatch):
    monkeypatch.delenv("MASON_TEST_NOPE", raising=False)
    found = problems(write(tmp_path, "synthetic_data:\n  teacher:\n    model: openai/x\n    api_key: ${MASON_TEST_NOPE}\n"))
    assert len(found) == 1
    assert ":4: synthetic_data.teacher.api_key: environment variable ${MASON_TEST_NOPE} is not set" in found[0]


def test_yaml_syntax_error_and_missing_file(tmp_path):
    found = problems(write(tmp_path, "knowledge_source:\n  path: [docs\n"))
    assert len(found) == 1 and "not valid YAML" in found[0]
    with pytest.raises(ConfigError, match="no such file"):
        load_yaml_config(tmp_path / "nope.yaml")


def test_duplicate_key_is_a_problem(tmp_path):
    found = problems(write(tmp_path, "knowledge_source:\n  path: a\n  path: b\n"))
    assert found == [f"{tmp_path / 'pipeline.yaml'}:3: knowledge_source.path: key appears twice"]


def test_non_mapping_root(tmp_path):
    assert "mapping of sections" in problems(write(tmp_path, "- a\n- b\n"))[0]


def test_parse_config_from_python_objects():
    cfg = parse_config({"knowledge_source": {"path": "docs"}, "export": {"format": "gguf"}})
    assert cfg.export.format == ["gguf"]
    with pytest.raises(ConfigError):
        parse_config({"export": {"format": "zip"}})


def test_every_field_has_a_description():
    from pydantic import BaseModel

    from mason.pipeline.reference import _nested

    seen: set[type] = set()

    def walk(model: type[BaseModel]) -> None:
        if model in seen:
            return
        seen.add(model)
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"
            for sub in _nested(field.annotation):
                walk(sub)

    walk(PipelineConfig)
    assert len(seen) >= 9


def test_readme_yaml_reference_is_in_sync():
    readme = (ROOT / "README.md").read_text()
    block = readme.split(START, 1)[1].split(END, 1)[0]
    assert block.strip() == render_reference().strip(), (
        "README's YAML reference is stale: run `python -m mason.pipeline.reference --write README.md`"
    )


def test_shipped_init_template_validates():
    from mason.scaffold import pipeline_template
    from mason.pipeline.loader import _Doc
    import yaml

    doc = _Doc()
    cfg = parse_config(doc.build(yaml.compose(pipeline_template(), Loader=yaml.SafeLoader), ()), doc=doc)
    assert cfg.knowledge_source is not None
