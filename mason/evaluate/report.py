"""The evaluation report: `eval_report.json`, `eval_report.md` and a self-contained `eval_report.html`
(charts inline as base64 PNG), in the style of every MASON report (`mason.report`: its CSS and table helpers).

`build_report` turns the stage's results into the JSON report (plain data); the Markdown and HTML
are rendered from that JSON alone, so a report can be re-rendered from its JSON.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from mason.core.io import atomic_write_json, atomic_write_text
from mason.report.charts import ChartsUnavailable
from mason.report.format import json_safe, md_table, num, summary_rows
from mason.report.page import CSS, png_data

REPORT_FILES = {"json": "eval_report.json", "markdown": "eval_report.md", "html": "eval_report.html"}
CHARTS_DIR = "charts"
LATENCY = ("latency_p50", "latency_p95", "latency_mean", "tokens_per_second")
_ROUND = 4
UNITS = {"latency_p50": " (s)", "latency_p95": " (s)", "latency_mean": " (s)", "perplexity": " (reference answers)"}


def _rounded(values: list[Any]) -> list[Any]:
    return [round(v, _ROUND) if isinstance(v, float) and math.isfinite(v) else v for v in values]


def metric_order(metrics: list[str], corpus_keys: list[str]) -> list[str]:
    """Text metrics first (config order), then custom and judge metrics, perplexity, latency."""
    rest = [k for k in corpus_keys if k not in metrics and k not in LATENCY and k != "perplexity"]
    tail = [k for k in ("perplexity", *LATENCY) if k in corpus_keys]
    return list(metrics) + sorted(rest, key=lambda k: (k.startswith("judge."), k)) + tail


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f}%"


def _knowledge_findings(knowledge: dict[str, Any] | None) -> list[dict[str, str]]:
    """The headline: does the tuned model know the documents (closed-book), against base and its ceiling."""
    tuned = (knowledge or {}).get("tuned")
    if not tuned:
        return []
    base = (knowledge or {}).get("base")
    ci = tuned.get("ci95") or (None, None)
    text = (f"Knowledge (closed-book, held-out questions on the trained documents): tuned answers {tuned['correct']} "
            f"of {tuned['n']} ({_pct(tuned['accuracy'])}, 95% CI {_pct(ci[0])}–{_pct(ci[1])})")
    if base:
        text += f"; base {base['correct']} of {base['n']} ({_pct(base['accuracy'])})"
    if tuned.get("open_book"):
        text += (f"; open-book ceiling {_pct(tuned['open_book']['accuracy'])}, so the tuned model reaches "
                 f"{_pct(tuned.get('ceiling_fraction'))} of it")
    better = base is None or tuned["accuracy"] > base["accuracy"]
    errors = tuned.get("errors")
    if errors and any(errors.values()):
        text += (f". Its wrong answers: {errors['other_fact']} gave another fact's answer, {errors['invented']} "
                 f"invented one, {errors['declined']} declined")
    out = [{"level": "ok" if better and tuned["accuracy"] > 0 else "warn", "text": text + "."}]
    unknown = tuned.get("unknown")
    if unknown:
        text = (f"Hallucination check: asked about {unknown['n']} invented entities no document mentions, the tuned "
                f"model declined {unknown['declined']} and made up an answer for {unknown['invented']}")
        if base and base.get("unknown"):
            text += f" (base declined {base['unknown']['declined']})"
        out.append({"level": "ok" if unknown["decline_rate"] >= 0.5 else "warn", "text": text + "."})
    return out


def knowledge_table(report: dict) -> tuple[list[str], list[list[str]]]:
    """Head and rows of the knowledge table: one row per model, closed-book by question type and open-book."""
    knowledge = report.get("knowledge") or {}
    types = sorted({t for k in knowledge.values() if k for t in k["by_type"]})
    types = [t for t in types if t != "unknown"]
    head = ["model", "closed-book", "95% CI", *types, "declined", "open-book", "share of ceiling",
            "unknown entities declined"]
    rows = []
    for name, k in knowledge.items():
        if not k:
            continue
        ci = k.get("ci95") or (None, None)
        by = [f"{k['by_type'][t]['correct']}/{k['by_type'][t]['n']}" if t in k["by_type"] else "–" for t in types]
        book = k.get("open_book")
        rows.append([name, f"{k['correct']}/{k['n']} ({_pct(k['accuracy'])})", f"{_pct(ci[0])}–{_pct(ci[1])}", *by,
                     str(k["declined"]), f"{book['correct']}/{book['n']} ({_pct(book['accuracy'])})" if book else "–",
                     _pct(k.get("ceiling_fraction")),
                     f"{k['unknown']['declined']}/{k['unknown']['n']}" if k.get("unknown") else "–"])
    return head, rows


def _findings(report: dict) -> list[dict[str, str]]:
    """The report's headline checks, as {level, text} (ok / warn / fail), like the training verdicts."""
    out = _knowledge_findings(report.get("knowledge"))
    primary, models = report["comparison"]["primary"], report["models"]
    c = report["comparison"].get("tuned_vs_base")
    tuned = (models.get("tuned") or {}).get("metrics", {}).get(primary)
    base = (models.get("base") or {}).get("metrics", {}).get(primary)
    if c and tuned is not None and base is not None:
        better = tuned > base
        out.append({"level": "ok" if better else "warn",
                    "text": f"Tuned {'beats' if better else 'does not beat'} base on {primary}: {num(tuned)} vs "
                            f"{num(base)} ({tuned - base:+.4g}); {c['wins']} wins, {c['losses']} losses, "
                            f"{c['ties']} ties over {c['compared']} rows."})
    for g in report["guards"]:
        out.append({"level": "ok" if g["passed"] else "fail", "text": f"Guard: {g['text']}."})
    data = report["data"]
    cont = data.get("contamination")
    if cont:
        n, total = cont.get("contaminated", 0), cont.get("eval_questions", 0)
        out.append({"level": "warn" if n else "ok",
                    "text": f"Contamination: {n} of {total} eval questions share a run of {cont.get('n', 8)} words "
                            "with the training data (or repeat a training question)." + (" Their scores may be optimistic." if n else "")})
    out.append({"level": "ok", "text": f"Evaluated {data['evaluated']} held-out rows (of {data['available']}); "
                f"the training set has {num(data.get('train_rows'))} rows. No training row is evaluated."
                + (f" {data['probe_questions_left_out']} held-out questions chose the training checkpoint and are"
                   " not scored." if data.get("probe_questions_left_out") else "")})
    judge = report.get("judge")
    if judge:
        unscored = sum(v for per in judge["unscored"].values() for v in per.values())
        if unscored:
            out.append({"level": "warn", "text": f"The judge left {unscored} answer(s) unscored (unreadable "
                                                 "verdicts after one retry); means are over the scored ones."})
    for name, m in models.items():
        if m.get("error"):
            out.append({"level": "warn", "text": f"Model {name} could not be evaluated: {m['error']}"})
            continue
        if m.get("empty_answers"):
            out.append({"level": "warn", "text": f"{name} gave {m['empty_answers']} empty answer(s) of "
                                                 f"{data['evaluated']}: check its chat template and stop tokens."})
        if m.get("truncated_answers"):
            out.append({"level": "warn", "text": f"{m['truncated_answers']} of {name}'s answers stopped at "
                                                 f"max_new_tokens ({report['decoding'].get('max_new_tokens')}): "
                                                 "raise it if answers are cut off."})
    return out


def build_report(*, summary: dict, data: dict, decoding: dict, models: dict[str, dict], metric_names: list[str],
                 comparison: dict, delta: dict[str, dict[str, float]], distributions: dict[str, dict[str, list]],
                 guards: list[dict], worst_rows: list[dict], judge: dict | None,
                 knowledge: dict[str, Any] | None = None) -> dict:
    """The JSON report (see the module docstring); NaN/inf become null."""
    report = {
        "report": "mason.eval_report", "version": 1, "summary": summary, "data": data, "decoding": decoding,
        "models": models, "metric_names": metric_names, "comparison": comparison, "delta": delta,
        "judge": judge, "guards": guards, "worst_rows": worst_rows, "knowledge": knowledge,
        "distributions": {m: {k: _rounded(v) for k, v in d.items()} for m, d in distributions.items()},
    }
    report["status"] = "fail" if any(not g["passed"] for g in guards) else "pass"
    report["findings"] = _findings(report)
    return json_safe(report)


# --------------------------------------------------------------------------- tables


def metric_table(report: dict) -> tuple[list[str], list[list[str]]]:
    """Head and rows of the metrics table: metric, base, tuned, Δ tuned−base, then each export (Δ vs tuned)."""
    models = [m for m in report["models"] if not report["models"][m].get("error")]
    exports = [m for m in models if m not in ("base", "tuned")]
    head = ["metric"] + [m for m in ("base", "tuned") if m in models]
    if "base" in models and "tuned" in models:
        head.append("Δ tuned−base")
    head += exports
    rows = []
    for name in report["metric_names"]:
        vals = {m: report["models"][m]["metrics"].get(name) for m in models}
        if all(v is None for v in vals.values()):
            continue
        row = [name + UNITS.get(name, "")] + [num(vals[m]) for m in ("base", "tuned") if m in models]
        if "base" in models and "tuned" in models:
            d = report["delta"].get("base", {}).get(name)
            row.append("–" if d is None else f"{d:+.4g}")
        for e in exports:
            d = report["delta"].get(e, {}).get(name)
            row.append(num(vals[e]) + ("" if d is None else f" ({d:+.3g})"))
        rows.append(row)
    return head, rows


def _data_rows(report: dict) -> list[tuple[str, str]]:
    data = dict(report["data"])
    cont = data.pop("contamination", None) or {}
    rows = summary_rows({k: v for k, v in data.items() if k != "split"})
    rows += summary_rows(data.get("split") or {}, prefix="generated split / ")
    if cont:
        text = (f"{cont.get('contaminated', 0)} of {cont.get('eval_questions', 0)} eval questions "
                f"({num(100 * (cont.get('share') or 0))} %) share a run of {cont.get('n', 8)} words with training rows")
        rows.append(("contamination", text))
    return rows


def _judge_rows(report: dict) -> list[list[str]]:
    judge = report["judge"]
    rows = []
    for r in judge["rubrics"]:
        lo, hi = r["scale"]
        cells = [f"{r['name']} ({lo}-{hi})"]
        for m in judge["models"]:
            v = report["models"].get(m, {}).get("metrics", {}).get(f"judge.{r['name']}")
            unscored = judge["unscored"].get(m, {}).get(r["name"], 0)
            cells.append(num(v) + (f" ({unscored} unscored)" if unscored else ""))
        rows.append(cells)
    return rows


def _clip(text: Any, n: int = 240) -> str:
    text = str(text or "")
    return text if len(text) <= n else text[:n - 1] + "…"


def _worst_table(report: dict) -> tuple[list[str], list[list[str]]]:
    primary = report["comparison"]["primary"]
    head = ["#", "question", "reference", "tuned", f"tuned {primary}"]
    has_base = any("base" in w for w in report["worst_rows"])
    if has_base:
        head += ["base", f"base {primary}"]
    rows = []
    for w in report["worst_rows"]:
        row = [str(w["index"] + 1), _clip(w["question"]), _clip(w["reference"]), _clip(w["tuned"]),
               num(w.get(f"tuned_{primary}"))]
        if has_base:
            row += [_clip(w.get("base")), num(w.get(f"base_{primary}"))]
        rows.append(row)
    return head, rows


# --------------------------------------------------------------------------- Markdown and HTML


def render_markdown(report: dict, charts: list[str]) -> str:
    """The Markdown report; `charts` are PNG paths relative to the Markdown file."""
    from mason.evaluate.report_charts import CHARTS

    parts = [f"# Evaluation report: {report['summary'].get('name') or 'evaluation'}", "",
             f"**Status: {report['status'].upper()}**", "", "## Findings", ""]
    parts += [f"- **{f['level'].upper()}** {f['text']}" for f in report["findings"]]
    parts += ["", "## Summary", "", md_table(["field", "value"], summary_rows(report["summary"]))]
    parts += ["", "## Data", "", md_table(["field", "value"], _data_rows(report))]
    if report.get("knowledge"):
        head, rows = knowledge_table(report)
        parts += ["", "## Knowledge of the documents", "",
                  "Held-out questions about the trained documents, asked closed-book (no passage in the prompt) and "
                  "open-book (the source passage in the prompt: the ceiling). Right = the answer contains a key span.",
                  "", md_table(head, rows)]
    head, rows = metric_table(report)
    parts += ["", "## Metrics", "", md_table(head, rows)]
    if report["judge"]:
        j = report["judge"]
        parts += ["", "## LLM judge", "", f"Judge: `{j['model']}`", "",
                  md_table(["rubric"] + j["models"], _judge_rows(report))]
    parts += ["", "## Decoding", "", md_table(["setting", "value"], summary_rows(report["decoding"]))]
    if charts:
        parts += ["", "## Charts", ""]
        parts += [f"![{CHARTS[Path(c).stem][0]}]({c})\n\n_{CHARTS[Path(c).stem][1]}_\n" for c in charts]
    if report.get("charts_note"):
        parts += ["", f"_Charts skipped: {report['charts_note']}_"]
    if report["worst_rows"]:
        head, rows = _worst_table(report)
        parts += ["", f"## Worst rows (lowest tuned {report['comparison']['primary']})", "", md_table(head, rows)]
    return "\n".join(parts).rstrip() + "\n"


_EXTRA_CSS = """
.delta-pos { color: var(--ok); } .delta-neg { color: var(--fail); }
table.rows td { font-size: .82rem; max-width: 16rem; overflow-wrap: anywhere; }
code { background: var(--bg); padding: .05rem .3rem; border-radius: 4px; }
"""

_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Evaluation report: {{ title }}</title><style>{{ css | safe }}</style></head><body>
<h1>Evaluation report: {{ title }}</h1>
<p><span class="badge {{ 'ok' if status == 'pass' else 'fail' }}">{{ status | upper }}</span></p>
<h2>Findings</h2>
<ul class="verdicts">{% for f in findings %}
<li class="{{ f.level }}"><span class="lvl">{{ f.level | upper }}</span>{{ f.text }}</li>{% endfor %}
</ul>
<h2>Summary</h2>
<table class="kv">{% for k, v in summary %}<tr><th scope="row">{{ k }}</th><td>{{ v }}</td></tr>{% endfor %}</table>
<h2>Data</h2>
<table class="kv">{% for k, v in data %}<tr><th scope="row">{{ k }}</th><td>{{ v }}</td></tr>{% endfor %}</table>
{% if knowledge_rows %}<h2>Knowledge of the documents</h2>
<p class="note">Held-out questions about the trained documents, closed-book (no passage in the prompt) and open-book
(the source passage in the prompt: the ceiling). Right = the answer contains a key span.</p>
<table><tr>{% for h in knowledge_head %}<th>{{ h }}</th>{% endfor %}</tr>{% for row in knowledge_rows %}
<tr><th scope="row">{{ row[0] }}</th>{% for c in row[1:] %}<td class="n">{{ c }}</td>{% endfor %}</tr>{% endfor %}
</table>{% endif %}
<h2>Metrics</h2>
<table><tr>{% for h in metric_head %}<th>{{ h }}</th>{% endfor %}</tr>{% for row in metric_rows %}
<tr><th scope="row">{{ row[0] }}</th>{% for c, cls in row[1] %}<td class="n {{ cls }}">{{ c }}</td>{% endfor %}</tr>{% endfor %}
</table>
{% if judge %}<h2>LLM judge</h2>
<p class="note">Judge: <code>{{ judge.model }}</code>; one retry for an unreadable verdict, then unscored.</p>
<table><tr><th>rubric</th>{% for m in judge.models %}<th>{{ m }}</th>{% endfor %}</tr>{% for row in judge_rows %}
<tr><th scope="row">{{ row[0] }}</th>{% for c in row[1:] %}<td class="n">{{ c }}</td>{% endfor %}</tr>{% endfor %}
</table>{% endif %}
{% if charts %}<h2>Charts</h2>{% for c in charts %}
<figure><img alt="{{ c.alt }}" src="data:image/png;base64,{{ c.data }}">
<figcaption>{{ c.caption }}</figcaption></figure>{% endfor %}{% endif %}
{% if charts_note %}<p class="note">Charts skipped: {{ charts_note }}</p>{% endif %}
{% if worst_rows %}<h2>Worst rows (lowest tuned {{ primary }})</h2>
<table class="rows"><tr>{% for h in worst_head %}<th>{{ h }}</th>{% endfor %}</tr>{% for row in worst_rows %}
<tr>{% for c in row %}<td>{{ c }}</td>{% endfor %}</tr>{% endfor %}
</table>{% endif %}
<h2>Decoding</h2>
<table class="kv">{% for k, v in decoding %}<tr><th scope="row">{{ k }}</th><td>{{ v }}</td></tr>{% endfor %}</table>
</body></html>
"""


def _delta_class(metric: str, text: str) -> str:
    """Green for a change for the better, red for the worse (lower is better for perplexity and latency)."""
    from mason.evaluate.scores import LOWER_IS_BETTER

    if not text[:1] in ("+", "-") or text.strip("+-0.") == "":
        return ""
    better = text.startswith("+") != (metric.split(" ")[0] in LOWER_IS_BETTER)
    return "delta-pos" if better else "delta-neg"


def render_html(report: dict, charts: list[Path]) -> str:
    """A self-contained HTML page: the Markdown's tables, charts embedded as base64 PNG, inline CSS."""
    import jinja2

    from mason.evaluate.report_charts import CHARTS

    metric_head, metric_rows = metric_table(report)
    worst_head, worst_rows = _worst_table(report)
    knowledge_head, knowledge_rows = knowledge_table(report)
    embedded = [{"alt": CHARTS[p.stem][0], "caption": CHARTS[p.stem][1],
                 "data": png_data(p)} for p in charts]
    delta_col = metric_head.index("Δ tuned−base") if "Δ tuned−base" in metric_head else -1
    cells = [(row[0], [(c, _delta_class(row[0], c) if i + 1 == delta_col else "") for i, c in enumerate(row[1:])])
             for row in metric_rows]
    return jinja2.Environment(autoescape=True).from_string(_HTML).render(
        title=report["summary"].get("name") or "evaluation", status=report["status"], findings=report["findings"],
        summary=summary_rows(report["summary"]), data=_data_rows(report), metric_head=metric_head,
        metric_rows=cells, judge=report["judge"], knowledge_head=knowledge_head, knowledge_rows=knowledge_rows,
        judge_rows=_judge_rows(report) if report["judge"] else [], charts=embedded,
        charts_note=report.get("charts_note"), worst_head=worst_head, worst_rows=worst_rows,
        primary=report["comparison"]["primary"], decoding=summary_rows(report["decoding"]), css=CSS + _EXTRA_CSS,
    )


def write_report(report: dict, out_dir: str | Path) -> dict[str, Path]:
    """Write `eval_report.json`, `eval_report.md`, `eval_report.html` and `charts/*.png` into `out_dir`.

    Every file is written atomically. Without matplotlib the report is still written, with no charts
    and a note saying why. Returns the written paths by kind: `json`, `markdown`, `html`, `chart_<name>`.
    """
    out_dir = Path(out_dir)
    charts_dir = out_dir / CHARTS_DIR
    try:
        from mason.evaluate.report_charts import render_charts

        charts = render_charts(report, charts_dir)
    except ChartsUnavailable as e:
        charts, report["charts_note"] = [], str(e)
    for stale in charts_dir.glob("*.png") if charts_dir.is_dir() else []:
        if stale not in charts:  # an earlier execution's chart whose data is gone now
            stale.unlink()
    report["charts"] = [p.relative_to(out_dir).as_posix() for p in charts]
    paths = {kind: out_dir / name for kind, name in REPORT_FILES.items()}
    atomic_write_json(paths["json"], report)
    atomic_write_text(paths["markdown"], render_markdown(report, report["charts"]))
    atomic_write_text(paths["html"], render_html(report, charts))
    paths.update({f"chart_{p.stem}": p for p in charts})
    return paths
