"""Record distillation: loading JSONL records, rendering prompt styles, the samples it makes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from mason.core.errors import InputError
from mason.core.hashing import canonical_json, text_sha1
from mason.generate.config import GenerateConfig
from mason.generate.prompts import PromptLibrary
from mason.generate.records import distill, load_records, template_index_for
from mason.generate.tasks.base import GenContext
from mason.llm.teachers.base import ChatRequest, Completion, TeacherError

MODEL = "ollama/llama3.1"
ROWS = [
    {"sku": "CC-100", "name": "City bike", "city": "Lyon", "price": 12},
    {"sku": "CC-200", "name": "Cargo bike", "city": "Ghent", "price": 20},
]
TEMPLATES = ["Describe the {{ name }} in {{ city }} for a tourist.",
             "Write a product card for {{ name }} ({{ price }} EUR per day)."]


class ScriptedClient:
    model_id = MODEL

    def __init__(self, answer: str = "A sturdy bike for the old town."):
        self.answer = answer
        self.requests: list[ChatRequest] = []

    async def complete(self, request: ChatRequest) -> Completion:
        self.requests.append(request)
        return Completion(text=self.answer, model=MODEL)


def write_records(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "data" / "records.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def make_ctx(records: dict, answer: str = "A sturdy bike for the old town.",
             **cfg) -> tuple[GenContext, ScriptedClient]:
    client = ScriptedClient(answer)
    config = GenerateConfig(teacher={"model": MODEL, "temperature": 0.5}, records=records, **cfg)
    return GenContext(client=client, prompts=PromptLibrary(None), cfg=config, model_id=MODEL, seed=1), client


# ---------------------------------------------------------------- load_records


def test_load_records_numbers_lines_and_skips_blank_ones(tmp_path: Path):
    write_records(tmp_path, [json.dumps(ROWS[0]), "", "   ", json.dumps(ROWS[1])])
    cfg = GenerateConfig(records={"path": "data/records.jsonl", "templates": TEMPLATES}).records
    assert load_records(cfg, tmp_path) == [(1, ROWS[0]), (4, ROWS[1])]


def test_bad_json_line_names_file_and_line(tmp_path: Path):
    path = write_records(tmp_path, [json.dumps(ROWS[0]), json.dumps(ROWS[1]), '{"sku": "CC-300", "name": }'])
    cfg = GenerateConfig(records={"path": "data/records.jsonl", "templates": TEMPLATES}).records
    with pytest.raises(InputError, match=f"{path}:3: not valid JSON"):
        load_records(cfg, tmp_path)


def test_non_object_line_and_missing_or_empty_file(tmp_path: Path):
    path = write_records(tmp_path, [json.dumps(ROWS[0]), "[1, 2]"])
    cfg = GenerateConfig(records={"path": str(path), "templates": TEMPLATES}).records
    with pytest.raises(InputError, match=r"records.jsonl:2: expected a JSON object, got list"):
        load_records(cfg, tmp_path / "elsewhere")  # an absolute path ignores base_dir
    with pytest.raises(InputError, match="does not exist"):
        load_records(GenerateConfig(records={"path": "nope.jsonl", "templates": TEMPLATES}).records, tmp_path)
    write_records(tmp_path, [""])
    with pytest.raises(InputError, match="holds no records"):
        load_records(GenerateConfig(records={"path": "data/records.jsonl", "templates": TEMPLATES}).records, tmp_path)


# ---------------------------------------------------------------- distill


def test_distill_renders_the_template_and_keeps_the_answer():
    ctx, client = make_ctx({"path": "r.jsonl", "templates": TEMPLATES, "system_prompt": "You are a bike expert."})
    sample = asyncio.run(distill(ROWS[0], 7, 0, ctx))
    assert sample["messages"] == [
        {"role": "system", "content": "You are a bike expert."},
        {"role": "user", "content": "Describe the City bike in Lyon for a tourist."},
        {"role": "assistant", "content": "A sturdy bike for the old town."},
    ]
    request = client.requests[0]
    assert list(request.messages) == sample["messages"][:2] and request.temperature == 0.5 and request.seed == 1
    meta = sample["meta"]
    assert meta["source"] == {"doc": "records:7", "record_line": 7}
    assert meta["task"] == "distillation" and meta["teacher"] == MODEL and meta["prompt_style"] == 0
    assert meta["prompt_hash"] == request.cache_key(MODEL)
    assert sample["id"] == text_sha1(canonical_json(sample["messages"]))


def test_prompt_styles_and_id_field():
    ctx, _ = make_ctx({"path": "r.jsonl", "templates": TEMPLATES, "id_field": "sku"},
                      system_prompt="Generated system prompt.")
    first = asyncio.run(distill(ROWS[1], 2, 0, ctx))
    second = asyncio.run(distill(ROWS[1], 2, 1, ctx))
    assert first["messages"][1]["content"] == "Describe the Cargo bike in Ghent for a tourist."
    assert second["messages"][1]["content"] == "Write a product card for Cargo bike (20 EUR per day)."
    assert second["meta"]["prompt_style"] == 1 and first["id"] != second["id"]
    assert first["meta"]["source"]["doc"] == "CC-200"
    # without records.system_prompt, the stage's generated system prompt is used
    assert first["messages"][0] == {"role": "system", "content": "Generated system prompt."}


def test_missing_field_names_template_field_and_line():
    ctx, client = make_ctx({"path": "data/r.jsonl", "templates": TEMPLATES})
    with pytest.raises(InputError) as e:
        asyncio.run(distill({"name": "City bike"}, 12, 0, ctx))
    message = str(e.value)
    assert "data/r.jsonl:12" in message and "records.templates[0]" in message and "`city`" in message
    assert "its fields: name" in message
    assert client.requests == []  # nothing is sent for a broken prompt


def test_missing_id_field_and_empty_answer():
    ctx, _ = make_ctx({"path": "r.jsonl", "templates": TEMPLATES, "id_field": "sku"})
    with pytest.raises(InputError, match="r.jsonl:3: record has no `sku`"):
        asyncio.run(distill({"name": "x", "city": "y"}, 3, 0, ctx))
    ctx, _ = make_ctx({"path": "r.jsonl", "templates": TEMPLATES}, answer="   ")
    with pytest.raises(TeacherError, match="empty answer"):
        asyncio.run(distill(ROWS[0], 1, 0, ctx))


def test_template_syntax_error_is_reported():
    ctx, _ = make_ctx({"path": "r.jsonl", "templates": ["Describe {{ name "]})
    with pytest.raises(InputError, match=r"records.templates\[0\], line 1"):
        asyncio.run(distill(ROWS[0], 1, 0, ctx))


def test_template_index_for_is_deterministic_and_spreads():
    picks = [template_index_for(line, 3, seed=5) for line in range(1, 301)]
    assert picks == [template_index_for(line, 3, seed=5) for line in range(1, 301)]
    assert set(picks) == {0, 1, 2} and min(picks.count(i) for i in range(3)) > 60
