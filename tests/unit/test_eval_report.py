"""The evaluation report from synthetic results: JSON content, Markdown tables, HTML with inline charts."""

from __future__ import annotations

import base64
import json
import random
import re

from mason.evaluate.report import build_report, metric_order, write_report

N = 40


def synthetic_report(**overrides) -> dict:
    rng = random.Random(0)
    base = [round(rng.uniform(0.0, 0.5), 3) for _ in range(N)]
    tuned = [round(min(1.0, b + rng.uniform(-0.1, 0.45)), 3) for b in base]
    judge = {"tuned": [rng.choice([3, 4, 4, 5, None]) for _ in range(N)], "base": [rng.choice([1, 2, 3]) for _ in range(N)]}
    def metrics(rouge, ppl, p95, judge_mean):
        return {"rougeL": rouge, "bleu": rouge * 0.6, "chrf": rouge * 1.2, "exact_match": 0.05, "char_f1": rouge * 1.5,
                "keyword_hit": 0.7, "judge.faithfulness": judge_mean, "perplexity": ppl, "latency_p50": p95 / 2,
                "latency_p95": p95, "latency_mean": p95 / 1.8, "tokens_per_second": 41.5}
    models = {
        "base": {"model": {"format": "merged", "path": "/m/base"}, "metrics": metrics(0.24, 31.2, 1.9, 2.1),
                 "perplexity": {"value": 31.2}, "error": None},
        "tuned": {"model": {"format": "adapter", "path": "/m/adapter"}, "metrics": metrics(0.46, 9.8, 2.1, 4.1),
                  "perplexity": {"value": 9.8}, "error": None},
        "gguf": {"model": {"format": "gguf", "path": "/m/model.gguf"}, "metrics": metrics(0.45, None, 0.8, None),
                 "perplexity": None, "error": None},
        "onnx": {"model": {"path": "/m/onnx"}, "metrics": {}, "perplexity": None, "error": "onnxruntime is missing"},
    }
    delta = {"base": {k: v - models["base"]["metrics"][k] for k, v in models["tuned"]["metrics"].items()},
             "gguf": {"rougeL": -0.01, "latency_p95": -1.3}}
    names = metric_order(["rougeL", "bleu", "chrf", "exact_match", "char_f1"], list(models["tuned"]["metrics"]))
    latency = {m: [rng.uniform(lo, hi) for _ in range(N)] for m, lo, hi in
               (("base", 0.5, 2.0), ("tuned", 0.6, 2.2), ("gguf", 0.2, 0.9))}
    kwargs = {
        "summary": {"name": "masonry", "base_model": "tiny", "primary_metric": "rougeL"},
        "data": {"origin": "samples.jsonl", "evaluated": N, "available": N, "train_rows": 360,
                 "split": {"train": 360, "eval": 40, "train_documents": 9, "eval_documents": 1},
                 "contamination": {"n": 8, "eval_questions": N, "contaminated": 2, "share": 0.05, "worst": []}},
        "decoding": {"temperature": 0.0, "greedy": True, "seed": 0, "max_new_tokens": 128, "batch_size": 8},
        "models": models,
        "metric_names": names,
        "comparison": {"primary": "rougeL", "tuned_vs_base": {"wins": 30, "losses": 6, "ties": 4, "compared": N}},
        "delta": delta,
        "distributions": {
            "base": {"rougeL": base, "latency": latency["base"], "judge.faithfulness": judge["base"]},
            "tuned": {"rougeL": tuned, "latency": latency["tuned"], "judge.faithfulness": judge["tuned"]},
            "gguf": {"rougeL": tuned, "latency": latency["gguf"]},
        },
        "guards": [{"metric": "rougeL", "model": "tuned", "min": 0.3, "max": None, "value": 0.46, "passed": True,
                    "skipped": False, "text": "rougeL (tuned) = 0.46, >= min 0.3"}],
        "worst_rows": [{"index": 3, "id": "a", "question": "What is a <keystone>?", "reference": "The top stone.",
                        "tuned": "A | stone.", "tuned_rougeL": 0.0, "base": "Hmm.", "base_rougeL": 0.0}],
        "judge": {"model": "vllm/judge", "models": ["tuned", "base"],
                  "unscored": {"tuned": {"faithfulness": 8}, "base": {"faithfulness": 0}}, "errors": [], "usage": {},
                  "rubrics": [{"name": "faithfulness", "criteria": "c", "scale": [1, 5]}]},
    }
    kwargs.update(overrides)
    return build_report(**kwargs)


def test_build_report_status_and_findings():
    report = synthetic_report()
    assert report["status"] == "pass"
    texts = [f["text"] for f in report["findings"]]
    assert texts[0].startswith("Tuned beats base on rougeL: 0.46 vs 0.24 (+0.22); 30 wins, 6 losses, 4 ties")
    assert any("2 of 40 eval questions" in t for t in texts)
    assert any("judge left 8 answer(s) unscored" in t for t in texts)
    assert any("onnx could not be evaluated: onnxruntime is missing" in t for t in texts)
    assert report["metric_names"][-5:] == ["perplexity", "latency_p50", "latency_p95", "latency_mean",
                                           "tokens_per_second"]
    failed = synthetic_report(guards=[{"metric": "rougeL", "model": "tuned", "min": 0.5, "max": None, "value": 0.46,
                                       "passed": False, "skipped": False, "text": "rougeL (tuned) = 0.46, below min 0.5"}])
    assert failed["status"] == "fail" and any(f["level"] == "fail" for f in failed["findings"])


def test_write_report_files_markdown_and_inline_charts(tmp_path):
    paths = write_report(synthetic_report(), tmp_path)
    assert {"json", "markdown", "html"} <= set(paths)
    charts = sorted(p.name for p in (tmp_path / "charts").glob("*.png"))
    assert charts == ["judge.png", "latency.png", "metrics.png", "primary.png"]
    for png in (tmp_path / "charts").glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    report = json.loads(paths["json"].read_text())
    assert report["charts"] == [f"charts/{n}.png" for n in ("metrics", "primary", "judge", "latency")]

    md = paths["markdown"].read_text()
    assert "| metric | base | tuned | Δ tuned−base | gguf |" in md
    assert "| rougeL | 0.24 | 0.46 | +0.22 | 0.45 (-0.01) |" in md
    assert "| faithfulness (1-5) | 4.1 (8 unscored) | 2.1 |" in md
    assert "A \\| stone." in md  # a pipe inside a cell does not break the table
    assert "![Metrics per model](charts/metrics.png)" in md

    page = paths["html"].read_text()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 4 and all(base64.b64decode(i)[:4] == b"\x89PNG" for i in images)
    assert "What is a &lt;keystone&gt;?" in page  # escaped
    assert 'class="n delta-pos">+0.22<' in page
    assert 'class="n delta-pos">-21.4<' in page  # perplexity went down: that is the good direction
    assert "<script" not in page and "http://" not in page and "https://" not in page  # self-contained


def test_report_without_base_or_judge(tmp_path):
    report = synthetic_report(
        models={"tuned": {"model": {}, "metrics": {"rougeL": 0.4, "latency_p95": 1.0}, "perplexity": None,
                          "error": None}},
        metric_names=["rougeL", "latency_p95"], comparison={"primary": "rougeL"}, delta={},
        distributions={"tuned": {"rougeL": [0.4, 0.4], "latency": [1.0, 1.0]}}, judge=None, worst_rows=[])
    paths = write_report(report, tmp_path)
    md = paths["markdown"].read_text()
    assert "| metric | tuned |" in md and "LLM judge" not in md
    assert sorted(p.name for p in (tmp_path / "charts").glob("*.png")) == ["latency.png", "metrics.png",
                                                                           "primary.png"]
