"""The training report: verdicts on synthetic runs, the JSON/Markdown/HTML files, the PNG charts."""

from __future__ import annotations

import html
import json
import math
import re
import struct
import subprocess
import sys

import pytest

from mason.core.errors import InputError
from mason.core.io import JsonlWriter
from mason.train.history import read_history, series
from mason.train.report import (
    build_report,
    verdicts,
    write_report,
)
from mason.train.report_charts import render_charts

SUMMARY = {
    "run": "unit-sft",
    "model": "tiny-llama",
    "method": "lora",
    "train_samples": 1200,
    "eval_samples": 120,
    "steps": 200,
    "tokens": 1_234_567,
    "timings": {"train_s": 152.3, "eval_s": 11.2},
}


def healthy_loss(s):
    return 2.0 * math.exp(-s / 60) + 0.5 + 0.03 * math.sin(s * 1.7)


def healthy_eval_loss(s):
    return 2.0 * math.exp(-s / 60) + 0.7


def healthy_grad(s):
    return 1.0 + 0.2 * math.sin(s * 0.9)


def healthy_step_time(s):
    return 0.2 + 0.005 * math.sin(s * 2.3)


def make_history(n=200, *, loss=None, eval_loss=None, grad=None, step_time=None, lr=True, eval_every=40):
    """A run of `n` steps; each metric is a function of the step (None: the default, False: left out).

    Defaults are a healthy run: loss decays with a little deterministic noise, eval follows it, grad
    norm hovers around 1, step time is flat, the learning rate warms up and decays linearly.
    """
    loss = loss or healthy_loss
    eval_loss = healthy_eval_loss if eval_loss is None else eval_loss
    grad = healthy_grad if grad is None else grad
    step_time = healthy_step_time if step_time is None else step_time
    h = []
    for s in range(1, n + 1):
        t = 0.2 * s
        h.append({"step": s, "name": "loss", "value": loss(s), "time": t})
        if grad is not False:
            h.append({"step": s, "name": "grad_norm", "value": grad(s), "time": t})
        if step_time is not False:
            h.append({"step": s, "name": "step_time", "value": step_time(s), "time": t})
        if lr:
            h.append({"step": s, "name": "learning_rate", "value": 2e-4 * min(1.0, s / 20) * (1 - s / (n + 1)),
                      "time": t})
        if eval_loss is not False and s % eval_every == 0:
            h.append({"step": s, "name": "eval_loss", "value": eval_loss(s), "time": t})
    return h


def by_check(found):
    return {v.check: v for v in found}


# --------------------------------------------------------------------------- verdicts


def test_healthy_run_is_all_ok():
    found = verdicts(make_history())
    assert [v.check for v in found] == ["loss_reduction", "best_eval", "gradient_health", "step_time_drift"]
    assert {v.level for v in found} == {"ok"}, [v.text for v in found]
    loss = by_check(found)["loss_reduction"].text
    assert re.search(r"fell \d+\.\d% \(\d\.\d+ → \d\.\d+", loss), loss
    best = by_check(found)["best_eval"].text
    assert "at step 200" in best and "perplexity" in best

    report = build_report(make_history(), SUMMARY)
    assert report["status"] == "ok"
    best_eval = report["best"]["eval_loss"]
    assert best_eval["step"] == 200
    assert best_eval["perplexity"] == pytest.approx(math.exp(best_eval["value"]))
    assert report["final"]["eval_perplexity"] == pytest.approx(math.exp(report["final"]["eval_loss"]))
    assert report["metrics"]["loss"]["count"] == 200


def test_overfitting_warns_and_names_the_best_step():
    # eval loss falls until step 80, then climbs 30 % above that best by the end
    h = make_history(eval_loss=lambda s: 1.0 if s == 80 else 1.0 + abs(s - 80) / 400)
    v = by_check(verdicts(h))["best_eval"]
    assert v.level == "warn"
    assert "step 80" in v.text and "overfitting" in v.text and "stop early" in v.text
    assert "30.0% higher" in v.text


def test_small_eval_rise_is_ok():
    h = make_history(eval_loss=lambda s: 1.0 if s == 160 else 1.05 if s == 200 else 1.2)
    v = by_check(verdicts(h))["best_eval"]
    assert v.level == "ok" and "+5.0%" in v.text


def test_nan_grad_norm_fails_and_json_stays_strict():
    h = make_history(grad=lambda s: math.nan if s == 57 else 1.0)
    found = verdicts(h)
    fails = [v for v in found if v.level == "fail"]
    assert len(fails) == 1 and fails[0].check == "gradient_health"
    assert "NaN/inf" in fails[0].text and "step 57" in fails[0].text

    report = build_report(h, SUMMARY)
    assert report["status"] == "fail"
    grad = report["metrics"]["grad_norm"]
    assert grad["non_finite"] == 1 and grad["values"][56] is None
    # strict JSON: no bare NaN token anywhere
    json.loads(json.dumps(report, allow_nan=False))


def test_grad_spike_and_vanishing_gradients_warn():
    spiky = by_check(verdicts(make_history(grad=lambda s: 25.0 if s == 120 else 1.0)))["gradient_health"]
    assert spiky.level == "warn" and "step 120" in spiky.text and "25×" in spiky.text

    vanish = verdicts(make_history(grad=lambda s: 1.0 if s < 100 else 1e-9))
    texts = [v.text for v in vanish if v.check == "gradient_health"]
    assert any(t.startswith("Gradients vanished") for t in texts), texts


def test_slow_drift_warns_with_the_percentage():
    h = make_history(step_time=lambda s: 0.2 if s <= 100 else 0.3)
    v = by_check(verdicts(h))["step_time_drift"]
    assert v.level == "warn"
    assert "50.0% slower" in v.text and "0.2 s" in v.text and "0.3 s" in v.text


def test_mild_drift_is_ok():
    v = by_check(verdicts(make_history(step_time=lambda s: 0.2 + 0.0002 * s)))["step_time_drift"]
    assert v.level == "ok" and "%" in v.text


def test_loss_that_rose_or_barely_fell_warns():
    rose = by_check(verdicts(make_history(loss=lambda s: 1.0 + s / 1000)))["loss_reduction"]
    assert rose.level == "warn" and "rose" in rose.text
    flat = by_check(verdicts(make_history(loss=lambda s: 2.0 - s / 10000)))["loss_reduction"]
    assert flat.level == "warn" and "only" in flat.text and "under 5%" in flat.text


def test_nan_loss_fails():
    v = by_check(verdicts(make_history(loss=lambda s: math.inf if s > 150 else 1.0)))["loss_reduction"]
    assert v.level == "fail" and "step 151" in v.text


def test_missing_metrics_do_not_crash(tmp_path):
    h = make_history(eval_loss=False, grad=False, step_time=False, lr=False)
    found = verdicts(h)
    assert [v.check for v in found] == ["loss_reduction"]
    report = build_report(h, {})
    assert "eval_loss" not in report["best"] and "eval_perplexity" not in report["final"]

    empty = verdicts([])
    assert len(empty) == 1 and empty[0].level == "warn" and "No training loss" in empty[0].text
    paths = write_report([], {}, tmp_path / "empty")
    assert set(paths) == {"json", "markdown", "html"}
    assert "No training loss" in paths["html"].read_text()


def test_a_repeated_step_keeps_its_last_value():
    h = [{"step": 5, "name": "loss", "value": 2.0}, {"step": 5, "name": "loss", "value": 1.5},
         {"step": 3, "name": "loss", "value": 3.0}]
    assert series(h)["loss"] == [(3, 3.0), (5, 1.5)]


def test_bad_history_entry_is_named():
    with pytest.raises(InputError, match=r"history\[1\].*'value'"):
        verdicts([{"step": 1, "name": "loss", "value": 1.0}, {"step": 2, "name": "loss", "value": "x"}])


# --------------------------------------------------------------------------- metrics.jsonl


def test_read_history_round_trips_metrics_jsonl(tmp_path):
    path = tmp_path / "metrics.jsonl"
    with JsonlWriter(path, resume=False) as w:
        w.write({"step": 1, "name": "loss", "value": 2.5, "time": 0.1})
        w.write({"step": 1, "name": "grad_norm", "value": math.nan, "time": 0.1})  # written as NaN
        w.write({"step": 2, "name": "grad_norm", "value": None, "time": 0.2})  # a trainer that writes null
    h = read_history(path)
    assert h[0] == {"step": 1, "name": "loss", "value": 2.5, "time": 0.1}
    assert math.isnan(h[1]["value"]) and math.isnan(h[2]["value"])


def test_read_history_names_the_bad_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "name": "loss", "value": 2.5}\n{"step": 1.5, "name": "loss", "value": 2}\n')
    with pytest.raises(InputError, match=r"metrics\.jsonl:2: 'step' must be an integer"):
        read_history(path)
    with pytest.raises(InputError, match="no metrics file"):
        read_history(tmp_path / "missing.jsonl")


def test_wide_rows_as_the_trainer_writes_them(tmp_path):
    # the trainer's sink writes one row per log call, metrics as fields, tagged with the stage
    path = tmp_path / "metrics.jsonl"
    with JsonlWriter(path, resume=False) as w:
        w.write({"stage": "sft", "step": 10, "time": 1.0, "loss": 2.0, "grad_norm": 0.9, "tokens_per_s": 900.0})
        w.write({"stage": "sft", "step": 20, "time": 2.0, "eval_loss": 1.5, "eval_perplexity": 4.48})
        w.write({"stage": "dpo", "step": 10, "time": 3.0, "loss": 0.69, "reward_margin": 0.1})
    h = read_history(path, stage="sft")
    assert {e["name"] for e in h} == {"loss", "grad_norm", "tokens_per_second", "eval_loss", "eval_perplexity"}
    assert len(read_history(path)) == 7
    # the same wide rows given straight to the report (no file) work too
    assert series([{"stage": "sft", "step": 3, "time": 0.1, "loss": 1.0, "note": "x"}]) == {"loss": [(3, 1.0)]}

    md = write_report(h, SUMMARY, tmp_path / "out")["markdown"].read_text()
    # a logged perplexity is shown once, not again as one derived from the eval loss
    assert md.count("| eval perplexity |") == 1 and "| tokens / s |" in md


def test_importing_the_report_does_not_import_matplotlib_or_torch():
    code = ("import sys, mason.train.report\n"
            "print(sorted(m for m in ('matplotlib', 'torch', 'jinja2') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --------------------------------------------------------------------------- files


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_write_report_writes_json_markdown_html_and_charts(tmp_path):
    pytest.importorskip("matplotlib")
    h = make_history(eval_loss=lambda s: 1.0 if s == 80 else 1.0 + abs(s - 80) / 400)
    paths = write_report(h, SUMMARY, tmp_path)
    charts = ["loss", "learning_rate", "grad_norm", "step_time"]
    assert set(paths) == {"json", "markdown", "html", *(f"chart_{c}" for c in charts)}

    for name in charts:
        path = tmp_path / "charts" / f"{name}.png"
        assert path.stat().st_size > 10_000, f"{name}.png looks empty"
        width, height = png_size(path)
        assert 700 < width < 1100 and 350 < height < 600

    report = json.loads(paths["json"].read_text())
    assert report["status"] == "warn" and report["charts"] == [f"charts/{c}.png" for c in charts]

    md = paths["markdown"].read_text()
    assert "| train samples | 1,200 |" in md and "| timings / train | 2m 32s |" in md
    assert all(f"](charts/{c}.png)" in md for c in charts)

    page = paths["html"].read_text()
    for v in verdicts(h):
        assert v.text in md and html.escape(v.text) in page
    # self-contained: every src is an embedded image, nothing is fetched
    assert "http://" not in page and "https://" not in page and "<link" not in page and "<script" not in page
    srcs = re.findall(r'src="([^"]*)"', page)
    assert len(srcs) == 4 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "eval perplexity" in page and "1,234,567" in page
    # no temp files left behind by the atomic writes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["charts", *sorted(
        ["train_report.html", "train_report.json", "train_report.md"])]


def test_charts_without_data_are_skipped_and_stale_ones_removed(tmp_path):
    pytest.importorskip("matplotlib")
    write_report(make_history(), SUMMARY, tmp_path)
    assert (tmp_path / "charts" / "grad_norm.png").exists()
    only_loss = make_history(eval_loss=False, grad=False, step_time=False, lr=False)
    assert [p.name for p in render_charts(only_loss, tmp_path / "other")] == ["loss.png"]

    paths = write_report(only_loss, SUMMARY, tmp_path)
    assert sorted(p.name for p in (tmp_path / "charts").iterdir()) == ["loss.png"]
    assert "chart_grad_norm" not in paths
    assert len(re.findall(r'src="data:image/png;base64,', paths["html"].read_text())) == 1


def test_nan_grad_chart_still_draws(tmp_path):
    pytest.importorskip("matplotlib")
    h = make_history(grad=lambda s: math.nan if s in (57, 58) else 1.0 + (30 if s == 90 else 0))
    paths = render_charts(h, tmp_path)
    assert (tmp_path / "grad_norm.png") in paths and png_size(tmp_path / "grad_norm.png")[0] > 700


def test_report_without_matplotlib_still_writes_and_says_why(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` raise ImportError
    paths = write_report(make_history(), SUMMARY, tmp_path)
    report = json.loads(paths["json"].read_text())
    assert report["charts"] == [] and "matplotlib" in report["charts_note"]
    assert "Charts skipped" in paths["markdown"].read_text()
    assert "pip install matplotlib" in paths["html"].read_text()
