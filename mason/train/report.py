"""The training report: what a run's metrics say, as JSON, Markdown and a self-contained HTML page.

Input: the trainer's metrics history (one `{"step", "name", "value", "time"}` dict per logged value, from
`metrics.jsonl`) and a `summary` dict (run name, model, method, counts, timings). `build_report` gives the
JSON report, `verdicts` the numeric checks (loss reduction, best eval loss, gradient health, step-time
drift), `render_charts` the PNG charts and `write_report` all the files, atomically. matplotlib and jinja2
are imported only inside the functions that draw and render: importing this module stays light.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from mason.core.io import atomic_write_json, atomic_write_text
from mason.report.charts import ChartsUnavailable
from mason.report.format import duration, json_safe, md_table, num, summary_rows
from mason.report.page import CSS, png_data
from mason.train.history import SPIKE_FACTOR, Series, finite, quarter_medians, series

# the order metrics appear in tables; other names (DPO rewards...) are listed after them
METRICS = ("loss", "eval_loss", "eval_perplexity", "eval_knowledge", "learning_rate", "grad_norm", "tokens_per_second", "step_time",
           "epoch")
LABELS = {"loss": "train loss", "eval_loss": "eval loss", "eval_perplexity": "eval perplexity",
          "eval_knowledge": "knowledge probe",
          "learning_rate": "learning rate", "grad_norm": "grad norm", "tokens_per_second": "tokens / s",
          "step_time": "step time (s)", "epoch": "epoch"}
LEVELS = ("ok", "warn", "fail")

# thresholds of the verdicts (kept together so the report and the tests agree on them)
MIN_LOSS_REDUCTION = 0.05  # less than 5 % first->last is a run that barely learned
OVERFIT_RISE = 0.10  # eval loss ending >= 10 % above its best
VANISHING_GRAD = 1e-6
DRIFT_SLOWER = 0.25  # last-quarter median step time > 25 % above the first quarter's

REPORT_FILES = {"json": "train_report.json", "markdown": "train_report.md", "html": "train_report.html"}
CHARTS_DIR = "charts"
CHART_TITLES = {"loss": "Training and eval loss", "learning_rate": "Learning rate", "grad_norm": "Gradient norm",
                "step_time": "Step time"}
# how to read each chart, under it in the report
CHART_CAPTIONS = {
    "loss": "Train loss at each logged step (light) and its moving average (dark); eval loss as dots, when "
            "logged, with a star on the best.",
    "learning_rate": "Learning rate at each step (the warm-up and decay schedule).",
    "grad_norm": f"Gradient norm at each step; dashed line: the spike threshold ({SPIKE_FACTOR:g}× the median), "
                 "drawn when crossed; ×: steps where it was NaN/inf.",
    "step_time": "Seconds per optimizer step; lines: medians of the first and last quarter (the drift check).",
}


@dataclass(frozen=True)
class Verdict:
    """One check of the run: `level` is ok, warn or fail; `text` says what was measured."""

    level: Literal["ok", "warn", "fail"]
    text: str
    check: str = ""


# --------------------------------------------------------------------------- numbers


def _perplexity(loss: float) -> float:
    try:
        return math.exp(loss)
    except OverflowError:
        return math.inf


def _pct(new: float, old: float) -> float:
    """Relative change new vs old in percent (sign follows new - old)."""
    return (new - old) / abs(old) * 100.0 if old else math.inf if new > old else 0.0


def _stats(points: Series) -> dict[str, Any]:
    """first/last/min/max (with steps) over the finite values, and how many were NaN/inf."""
    good = finite(points)
    out: dict[str, Any] = {"count": len(points), "non_finite": len(points) - len(good)}
    if good:
        lo, hi = min(good, key=lambda p: p[1]), max(good, key=lambda p: p[1])
        out.update(first=good[0][1], first_step=good[0][0], last=good[-1][1], last_step=good[-1][0],
                   min=lo[1], min_step=lo[0], max=hi[1], max_step=hi[0], median=statistics.median(v for _, v in good))
    return out


# --------------------------------------------------------------------------- verdicts


def _loss_verdict(points: Series) -> Verdict:
    def v(level: str, text: str) -> Verdict:
        return Verdict(level, text, "loss_reduction")

    bad = [s for s, x in points if not math.isfinite(x)]
    if bad:
        return v("fail", f"Training loss became NaN/inf at {len(bad)} step(s), first at step {bad[0]}: "
                         "lower the learning rate or check the data for empty samples.")
    if len(points) < 2:
        return v("warn", f"{len(points)} training-loss value(s) logged: the loss reduction cannot be measured "
                         "(log more often or train longer).")
    # mean of a tenth of the run at each end (1 to 50 values): batch noise must not decide the verdict
    w = max(1, min(50, len(points) // 10))
    first, last = statistics.fmean(x for _, x in points[:w]), statistics.fmean(x for _, x in points[-w:])
    change = _pct(last, first)
    how = f"{num(first)} → {num(last)}" + (f", mean of the first/last {w} values" if w > 1 else "")
    if change > 0:
        return v("warn", f"Training loss rose {change:.1f}% ({how}): the model did not learn; "
                         "lower the learning rate or check the data.")
    if -change < MIN_LOSS_REDUCTION * 100:
        return v("warn", f"Training loss fell only {-change:.1f}% ({how}), under {MIN_LOSS_REDUCTION:.0%}: "
                         "raise the learning rate or train longer.")
    return v("ok", f"Training loss fell {-change:.1f}% ({how}).")


def _eval_verdict(points: Series) -> Verdict | None:
    if not points:
        return None
    bad = [s for s, x in points if not math.isfinite(x)]
    if bad:
        return Verdict("fail", f"Eval loss was NaN/inf at {len(bad)} evaluation(s), first at step {bad[0]}.",
                       "best_eval")
    best_step, best = min(points, key=lambda p: p[1])
    last_step, last = points[-1]
    rise = _pct(last, best)
    text = f"Best eval loss {num(best)} at step {best_step} (perplexity {num(_perplexity(best))})"
    if rise >= OVERFIT_RISE * 100:
        return Verdict("warn", f"{text}, but it ended {rise:.1f}% higher ({num(last)} at step {last_step}): "
                               f"the model is overfitting; stop early at step {best_step} (keep that checkpoint, "
                               "or train fewer epochs).", "best_eval")
    if last_step != best_step:
        text += f"; final {num(last)} at step {last_step} ({rise:+.1f}%)"
    return Verdict("ok", text + ".", "best_eval")


def _knowledge_verdict(points: Series) -> Verdict | None:
    """The headline of a run with a knowledge probe: the best share of its held-out questions
    answered right closed-book, where, and how it moved from the first evaluation to the last."""
    if not points:
        return None
    best_step, best = max(points, key=lambda p: p[1])
    first_step, first = points[0]
    last_step, last = points[-1]
    text = (f"Knowledge probe: best {100 * best:.0f}% of its held-out questions answered right closed-book, "
            f"at step {best_step}")
    if len(points) > 1:
        text += f" ({100 * first:.0f}% at step {first_step}, {100 * last:.0f}% at the last evaluation, step {last_step})"
    if best == 0:
        return Verdict("warn", text + ": the model did not learn the facts; train longer or at a higher learning rate.",
                       "knowledge")
    return Verdict("ok", text + ".", "knowledge")


def _grad_verdicts(points: Series) -> list[Verdict]:
    found: list[Verdict] = []

    def add(level: str, text: str) -> None:
        found.append(Verdict(level, text, "gradient_health"))

    bad = [s for s, x in points if not math.isfinite(x)]
    if bad:
        add("fail", f"Grad norm was NaN/inf at {len(bad)} step(s), first at step {bad[0]}: training diverged; "
                    "lower the learning rate or enable gradient clipping.")
    good = finite(points)
    if not good:
        return found
    median = statistics.median(x for _, x in good)
    top_step, top = max(good, key=lambda p: p[1])
    spikes = [s for s, x in good if median > 0 and x > SPIKE_FACTOR * median]
    if spikes:
        add("warn", f"{len(spikes)} grad-norm spike(s) above {SPIKE_FACTOR:g}× the median ({num(median)}); "
                    f"largest {num(top)} at step {top_step} ({top / median:.0f}×): "
                    "consider a lower learning rate or gradient clipping.")
    # the last quarter: gradients that die out late still stall the end of the run
    tail_median = statistics.median(x for _, x in good[-max(1, len(good) // 4):])
    if tail_median < VANISHING_GRAD:
        add("warn", f"Gradients vanished: median grad norm {num(tail_median)} over the last quarter of steps "
                    f"(< {VANISHING_GRAD:g}); the weights barely change.")
    if not found:
        add("ok", f"Gradients healthy: median grad norm {num(median)}, max {num(top)} at step {top_step}; "
                  f"no NaN/inf, no spike above {SPIKE_FACTOR:g}× the median.")
    return found


def _drift_verdict(points: Series) -> Verdict | None:
    if not (quarters := quarter_medians(points)):
        return None
    first, last = quarters
    drift = _pct(last, first)
    how = f"median {num(first)} s in the first quarter → {num(last)} s in the last"
    if drift > DRIFT_SLOWER * 100:
        return Verdict("warn", f"Steps got {drift:.1f}% slower ({how}): look for memory pressure, "
                               "thermal throttling or growing sequence lengths.", "step_time_drift")
    return Verdict("ok", f"Step time steady: {drift:+.1f}% ({how}).", "step_time_drift")


def verdicts(history: list[dict]) -> list[Verdict]:
    """The run's checks, in report order: loss reduction, best eval loss, gradient health, step-time drift.

    A check whose metric was never logged is left out; only a missing training loss is itself a warning.

    Raises:
        InputError: a history entry lacks a valid step, name or value.
    """
    s = series(history)
    if s.get("loss"):
        found = [_loss_verdict(s["loss"])]
    else:
        found = [Verdict("warn", "No training loss was logged: the run cannot be judged.", "loss_reduction")]
    found += [v for v in (_knowledge_verdict(s.get("eval_knowledge", [])), _eval_verdict(s.get("eval_loss", []))) if v]
    found += _grad_verdicts(s.get("grad_norm", []))
    found += [v for v in (_drift_verdict(s.get("step_time", [])),) if v]
    return found


# --------------------------------------------------------------------------- JSON report


def build_report(history: list[dict], summary: dict) -> dict:
    """The JSON report: summary, per-metric series and stats, best/final values, verdicts and status.

    Raises:
        InputError: a history entry lacks a valid step, name or value.
    """
    s = series(history)
    order = sorted(s, key=lambda n: (METRICS.index(n) if n in METRICS else len(METRICS), n))
    metrics = {n: {"steps": [st for st, _ in s[n]], "values": [v for _, v in s[n]], **_stats(s[n])} for n in order}
    # the value really logged last: a run that ended in NaN must not show its last finite loss as final
    final = {n: s[n][-1][1] for n in order}
    best: dict[str, Any] = {}
    if "min" in metrics.get("loss", {}):
        best["loss"] = {"value": metrics["loss"]["min"], "step": metrics["loss"]["min_step"]}
    if "min" in metrics.get("eval_loss", {}):
        ev = metrics["eval_loss"]
        best["eval_loss"] = {"value": ev["min"], "step": ev["min_step"], "perplexity": _perplexity(ev["min"])}
        final["eval_perplexity"] = _perplexity(final["eval_loss"])
    if "max" in metrics.get("eval_knowledge", {}):
        kn = metrics["eval_knowledge"]
        best["knowledge"] = {"value": kn["max"], "step": kn["max_step"]}
    times = [e["time"] for e in history if isinstance(e.get("time"), int | float)]
    found = verdicts(history)
    status = max((v.level for v in found), key=LEVELS.index, default="ok")
    return json_safe({
        "report": "mason.train_report", "version": 1, "summary": dict(summary), "status": status,
        "verdicts": [asdict(v) for v in found], "final": final, "best": best,
        "wall_time_s": (max(times) - min(times)) if len(times) > 1 else None, "metrics": metrics,
    })


# --------------------------------------------------------------------------- Markdown and HTML


def _metric_row(label: str, m: dict, f=lambda v: v) -> list[str]:
    """metric, first, last, min (step), max (step), points; `f` maps values (exp for perplexity)."""
    points = f"{m['count']}" + (f" ({m['non_finite']} NaN/inf)" if m["non_finite"] else "")
    if "min" not in m:
        return [label, "–", "–", "–", "–", points]
    return [label, num(f(m["first"])), num(f(m["last"])), f"{num(f(m['min']))} (step {m['min_step']})",
            f"{num(f(m['max']))} (step {m['max_step']})", points]


def _tables(report: dict) -> tuple[list[tuple[str, str]], list[list[str]]]:
    """The summary rows and the metric rows, shared by the Markdown and the HTML page."""
    summary = summary_rows(report["summary"])
    if report.get("wall_time_s") is not None:
        summary.append(("wall time (from metrics)", duration(report["wall_time_s"])))
    rows = []
    for name, m in report["metrics"].items():  # already in METRICS order
        rows.append(_metric_row(LABELS.get(name, name), m))
        if name == "eval_loss" and "eval_perplexity" not in report["metrics"]:  # derived unless logged
            rows.append(_metric_row(LABELS["eval_perplexity"], m, _perplexity))
    return summary, rows


_METRIC_HEAD = ["metric", "first", "last", "min", "max", "points"]


def _title(summary: dict) -> str:
    return next((str(summary[k]) for k in ("run", "name", "stage", "run_name") if summary.get(k)), "training run")


def render_markdown(report: dict, charts: list[str]) -> str:
    """The Markdown report; `charts` are PNG paths relative to the Markdown file."""
    summary, metric_rows = _tables(report)
    parts = [f"# Training report: {_title(report['summary'])}", "", f"**Status: {report['status'].upper()}**", ""]
    parts += ["## Verdicts", ""] + [f"- **{v['level'].upper()}** {v['text']}" for v in report["verdicts"]]
    if summary:
        parts += ["", "## Summary", "", md_table(["field", "value"], summary)]
    if metric_rows:
        parts += ["", "## Metrics", "", md_table(_METRIC_HEAD, metric_rows)]
    if charts:
        parts += ["", "## Charts", ""]
        parts += [f"![{CHART_TITLES[Path(c).stem]}]({c})\n\n_{CHART_CAPTIONS[Path(c).stem]}_\n" for c in charts]
    if report.get("charts_note"):
        parts += ["", f"_Charts skipped: {report['charts_note']}_"]
    return "\n".join(parts).rstrip() + "\n"


_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Training report: {{ title }}</title><style>{{ css | safe }}</style></head><body>
<h1>Training report: {{ title }}</h1>
<p><span class="badge {{ status }}">{{ status | upper }}</span></p>
<h2>Verdicts</h2>
<ul class="verdicts">{% for v in verdicts %}
<li class="{{ v.level }}"><span class="lvl">{{ v.level | upper }}</span>{{ v.text }}</li>{% endfor %}
</ul>
{% if summary %}<h2>Summary</h2>
<table class="kv">{% for k, v in summary %}
<tr><th scope="row">{{ k }}</th><td>{{ v }}</td></tr>{% endfor %}
</table>{% endif %}
{% if metric_rows %}<h2>Metrics</h2>
<table><tr>{% for h in head %}<th>{{ h }}</th>{% endfor %}</tr>{% for row in metric_rows %}
<tr><th scope="row">{{ row[0] }}</th>{% for c in row[1:] %}<td class="n">{{ c }}</td>{% endfor %}</tr>{% endfor %}
</table>{% endif %}
{% if charts %}<h2>Charts</h2>{% for c in charts %}
<figure><img alt="{{ c.alt }}" src="data:image/png;base64,{{ c.data }}">
<figcaption>{{ c.caption }}</figcaption></figure>{% endfor %}{% endif %}
{% if charts_note %}<p class="note">Charts skipped: {{ charts_note }}</p>{% endif %}
</body></html>
"""


def render_html(report: dict, charts: list[Path]) -> str:
    """A self-contained HTML page: the Markdown's tables, charts embedded as base64 PNG, inline CSS."""
    import jinja2

    summary, metric_rows = _tables(report)
    embedded = [{"alt": CHART_TITLES[p.stem], "caption": CHART_CAPTIONS[p.stem],
                 "data": png_data(p)} for p in charts]
    return jinja2.Environment(autoescape=True).from_string(_HTML).render(
        title=_title(report["summary"]), status=report["status"], verdicts=report["verdicts"],
        summary=summary, head=_METRIC_HEAD, metric_rows=metric_rows, charts=embedded,
        charts_note=report.get("charts_note"), css=CSS,
    )


def write_report(history: list[dict], summary: dict, out_dir: str | Path) -> dict[str, Path]:
    """Write `train_report.json`, `train_report.md`, `train_report.html` and `charts/*.png` into `out_dir`.

    Every file is written atomically. Without matplotlib the report is still written, with no charts and a
    note saying why. Returns the written paths by kind: `json`, `markdown`, `html`, and `chart_<name>`.

    Raises:
        InputError: a history entry lacks a valid step, name or value.
    """
    out_dir = Path(out_dir)
    report = build_report(history, summary)
    charts_dir = out_dir / CHARTS_DIR
    try:
        from mason.train.report_charts import render_charts

        charts = render_charts(history, charts_dir)
    except ChartsUnavailable as e:
        charts, report["charts_note"] = [], str(e)
    # a chart of an earlier report whose metric is gone now would be shown stale in the folder
    for name in CHART_TITLES:
        stale = charts_dir / f"{name}.png"
        if stale not in charts and stale.exists():
            stale.unlink()
    report["charts"] = [p.relative_to(out_dir).as_posix() for p in charts]
    paths = {kind: out_dir / name for kind, name in REPORT_FILES.items()}
    atomic_write_json(paths["json"], report)
    atomic_write_text(paths["markdown"], render_markdown(report, report["charts"]))
    atomic_write_text(paths["html"], render_html(report, charts))
    paths.update({f"chart_{p.stem}": p for p in charts})
    return paths
