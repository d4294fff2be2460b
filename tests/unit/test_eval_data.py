"""The eval set: held-out rows only, prompts and references, source passages, split sizes, contamination."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mason.core.errors import InputError
from mason.core.task import TaskContext
from mason.evaluate.config import EvaluationConfig
from mason.evaluate.data import load_eval_set, to_eval_row
from mason.pipeline.config import PipelineConfig


def sample(i: int, split: str, question: str | None = None, chunk: str = "c1") -> dict:
    q = question or f"Question number {i} about walls?"
    return {"id": f"s{i}", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": q},
                                        {"role": "assistant", "content": f"Answer {i}."}],
            "meta": {"task": "question_answering", "split": split, "source": {"doc": f"d{i % 3}", "chunk": chunk}}}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def workspace(tmp: Path, rows: list[dict], manifest: dict | None = None) -> dict[str, Path]:
    art = tmp / "ws" / "artifacts"
    gen, ingest = art / "generate" / "g1", art / "ingest" / "i1"
    write_jsonl(gen / "samples.jsonl", rows)
    write_jsonl(ingest / "chunks.jsonl", [{"id": "c1", "text": "Walls stand on foundations."},
                                          {"id": "c2", "text": "Mortar binds bricks."}])
    (gen / "manifest.json").write_text(json.dumps(manifest or {"inputs": {"ingest": "i1"}}))
    return {"generate": gen}


def ctx(tmp: Path, inputs: dict, cfg: EvaluationConfig, training: dict | None = None) -> TaskContext:
    pipeline = PipelineConfig(training=training) if training else PipelineConfig()
    return TaskContext(task="evaluation", section=cfg, pipeline=pipeline, base_dir=tmp, out_dir=tmp / "out",
                       inputs=inputs, show_progress=False)


def test_default_is_the_eval_split_of_the_generated_samples(tmp_path):
    rows = [sample(i, "train") for i in range(6)] + [sample(i, "eval", chunk="c2") for i in range(6, 9)]
    manifest = {"inputs": {"ingest": "i1"}, "details": {
        "split": {"train": 6, "eval": 3}, "contamination": {"n": 8, "eval_questions": 3, "contaminated": 0}}}
    es = load_eval_set(EvaluationConfig(), ctx(tmp_path, workspace(tmp_path, rows, manifest), EvaluationConfig()))
    assert [r.id for r in es.rows] == ["s6", "s7", "s8"]  # never a training row
    assert es.train_rows == 6 and es.available == 3
    assert es.split == {"train": 6, "eval": 3} and es.contamination["contaminated"] == 0  # the generate task's check
    row = es.rows[0]
    assert row.prompt == [{"role": "system", "content": "Be brief."},
                          {"role": "user", "content": "Question number 6 about walls?"}]
    assert row.reference == "Answer 6." and row.question == "Question number 6 about walls?"
    assert row.chunk == "c2" and row.source == "Mortar binds bricks."  # found through the generate manifest


def test_probe_questions_that_chose_the_checkpoint_are_not_scored(tmp_path):
    rows = [sample(i, "train") for i in range(6)] + [sample(i, "eval") for i in range(6, 10)]
    rows[6]["meta"]["probe"] = True
    es = load_eval_set(EvaluationConfig(), ctx(tmp_path, workspace(tmp_path, rows), EvaluationConfig()))
    assert [r.id for r in es.rows] == ["s7", "s8", "s9"] and es.probe == 1


def test_max_samples_is_a_seeded_sample_in_file_order(tmp_path):
    rows = [sample(i, "train") for i in range(3)] + [sample(i, "eval") for i in range(3, 23)]
    inputs = workspace(tmp_path, rows)
    a = load_eval_set(EvaluationConfig(max_samples=5), ctx(tmp_path, inputs, EvaluationConfig()))
    b = load_eval_set(EvaluationConfig(max_samples=5), ctx(tmp_path, inputs, EvaluationConfig()))
    assert [r.id for r in a.rows] == [r.id for r in b.rows] and len(a.rows) == 5 and a.available == 20
    assert [r.id for r in a.rows] == sorted((r.id for r in a.rows), key=lambda s: int(s[1:]))


def test_user_eval_file_is_checked_for_contamination(tmp_path):
    train = [sample(i, "train", question=f"What is the load limit of wall type {i} in winter?") for i in range(4)]
    inputs = workspace(tmp_path, train + [sample(9, "eval")])
    own = [{"messages": [{"role": "user", "content": "What is the load limit of wall type 2 in winter?"},
                         {"role": "assistant", "content": "Ten tonnes."}]},
           {"instruction": "Name a binder for bricks.", "output": "Mortar."},  # alpaca: converted on import
           {"messages": [{"role": "user", "content": "No answer here"}]}]  # nothing to compare: skipped
    write_jsonl(tmp_path / "eval.jsonl", own)
    cfg = EvaluationConfig(data="eval.jsonl")
    es = load_eval_set(cfg, ctx(tmp_path, inputs, cfg))
    assert [r.reference for r in es.rows] == ["Ten tonnes.", "Mortar."] and es.skipped == 1
    assert es.train_rows == 4
    assert es.contamination["contaminated"] == 1 and es.contamination["eval_questions"] == 2
    assert es.origin.endswith("eval.jsonl")


def test_preference_and_multi_turn_rows():
    pref = to_eval_row({"messages": [{"role": "user", "content": "Q?"}],
                        "chosen": {"role": "assistant", "content": "Good."},
                        "rejected": {"role": "assistant", "content": "Bad."}})
    assert pref.reference == "Good." and pref.prompt == [{"role": "user", "content": "Q?"}]
    multi = to_eval_row({"messages": [{"role": "user", "content": "A?"}, {"role": "assistant", "content": "a"},
                                      {"role": "user", "content": "B?"}, {"role": "assistant", "content": "b"}]})
    assert multi.reference == "b" and multi.question == "B?" and len(multi.prompt) == 3
    assert multi.sample["messages"][-1] == {"role": "assistant", "content": "b"}


def test_no_eval_rows_says_how_to_get_them(tmp_path):
    inputs = workspace(tmp_path, [sample(i, "train") for i in range(3)])
    with pytest.raises(InputError, match="no sample of .* has meta.split = eval") as info:
        load_eval_set(EvaluationConfig(), ctx(tmp_path, inputs, EvaluationConfig()))
    assert "eval_fraction" in info.value.hint
    with pytest.raises(InputError, match="no `evaluation.data` file and no dataset upstream"):
        load_eval_set(EvaluationConfig(), ctx(tmp_path, {}, EvaluationConfig()))


def test_training_data_file_is_the_dataset_when_set(tmp_path):
    data = write_jsonl(tmp_path / "train.jsonl", [sample(i, "train") for i in range(4)] + [sample(5, "eval")])
    cfg = EvaluationConfig()
    es = load_eval_set(cfg, ctx(tmp_path, {}, cfg, training={"data": str(data)}))
    assert [r.id for r in es.rows] == ["s5"] and es.train_rows == 4 and es.contamination is not None


def test_fingerprint_follows_the_eval_file_and_custom_metric_files(tmp_path):
    from mason.evaluate.stage import fingerprint

    write_jsonl(tmp_path / "eval.jsonl", [sample(1, "eval")])
    (tmp_path / "m.py").write_text("def f(row):\n    return 1\n")
    cfg = EvaluationConfig(data="eval.jsonl", custom_metrics=["m.py:f", "pkg.mod:g"])
    before = fingerprint(cfg, tmp_path)
    assert set(before) == {"eval.jsonl", "m.py"}  # module paths are code, not files of the project
    (tmp_path / "m.py").write_text("def f(row):\n    return 2\n")
    assert fingerprint(cfg, tmp_path)["m.py"] != before["m.py"]
    assert fingerprint(EvaluationConfig(data="gone.jsonl"), tmp_path) == {"gone.jsonl": "missing"}
