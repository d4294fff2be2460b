"""Charts of the evaluation report (matplotlib, Agg backend), in the training report's style:
metric bars per model, the primary metric per row (distribution and base-vs-tuned scatter),
judge score distributions and the latency histogram.

Input is the JSON report (`mason.evaluate.report.build_report`); matplotlib is imported inside the
functions, so importing this module stays light.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

from mason.core.io import atomic_write_bytes
from mason.report.charts import DPI, ChartsUnavailable, legend, new_axes

#: metrics on other scales than 0-1 (seconds, tokens/s, perplexity): never drawn as bars
NOT_BARS = {"perplexity", "latency_p50", "latency_p95", "latency_mean", "tokens_per_second"}
#: base grey, tuned blue, then the exports
COLORS = {"base": "#8c8c8c", "tuned": "#4c72b0"}
EXPORT_COLORS = ("#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860")


def color(model: str, order: list[str]) -> str:
    """The model's color: fixed for base and tuned, the palette in order for the exports."""
    if model in COLORS:
        return COLORS[model]
    exports = [m for m in order if m not in COLORS]
    return EXPORT_COLORS[exports.index(model) % len(EXPORT_COLORS)] if model in exports else "#333333"


def _finite(values: list[Any]) -> list[float]:
    return [float(v) for v in values if isinstance(v, int | float) and math.isfinite(v)]


def _figure(ncols: int = 1, height: float = 4.2):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, height), dpi=DPI)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    for ax in axes:
        ax.grid(True, alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)
    return fig, list(axes)


def _metric_bars(report: dict) -> Any:
    """Grouped bars: every 0-1 metric (text metrics, and custom ones that stay in 0-1), per model."""
    models = [m for m in report["models"] if report["models"][m].get("metrics")]
    names = [n for n in report["metric_names"] if n not in NOT_BARS and not n.startswith("judge.") and all(
        (v := report["models"][m]["metrics"].get(n)) is None or 0.0 <= v <= 1.0 for m in models)
        and any(report["models"][m]["metrics"].get(n) is not None for m in models)]
    if not names or not models:
        return None
    fig, ax = new_axes("Metrics per model", "score (0-1)")
    ax.set_xlabel("")
    width = 0.8 / len(models)
    for j, m in enumerate(models):
        xs = [i + (j - (len(models) - 1) / 2) * width for i in range(len(names))]
        vals = [report["models"][m]["metrics"].get(n) or 0.0 for n in names]
        bars = ax.bar(xs, vals, width * 0.92, color=color(m, models), label=m)
        if len(names) * len(models) <= 24:  # labels stay readable up to about this many bars
            ax.bar_label(bars, labels=[f"{v:.2f}" for v in vals], fontsize=7, padding=2)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylim(0, 1.08)
    ax.grid(True, axis="y", alpha=0.3)
    ax.grid(False, axis="x")
    legend(ax)
    return fig


def _primary_chart(report: dict) -> Any:
    """Left: the per-row primary metric's distribution (base and tuned); right: base vs tuned per row."""
    primary = report["comparison"]["primary"]
    dist = report["distributions"]
    # exports follow the tuned model closely: drawn here they would only hide its line
    models = [m for m in ("base", "tuned") if _finite(dist.get(m, {}).get(primary, []))]
    if not models:
        return None
    pair = models == ["base", "tuned"]
    fig, axes = _figure(2 if pair else 1)
    ax = axes[0]
    bins = [i / 10 for i in range(11)]
    for m in models:
        values = _finite(dist[m][primary])
        ax.hist(values, bins=bins, color=color(m, models), alpha=0.25)
        ax.hist(values, bins=bins, histtype="step", lw=2, color=color(m, models), label=m)
    ax.set_title(f"Per-row {primary}", fontsize=12, loc="left")
    ax.set(xlabel=primary, ylabel="rows", xlim=(0, 1))
    legend(ax)
    if pair:
        ax = axes[1]
        pts = [(b, t) for b, t in zip(dist["base"][primary], dist["tuned"][primary], strict=False)
               if b is not None and t is not None]
        ax.plot([0, 1], [0, 1], color="#59636e", ls="--", lw=1)
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=14, alpha=0.6, color=COLORS["tuned"])
        c = report["comparison"].get("tuned_vs_base") or {}
        ax.set_title(f"Tuned vs base ({c.get('wins', 0)} wins, {c.get('losses', 0)} losses, {c.get('ties', 0)} ties)",
                     fontsize=10, loc="left")
        ax.set(xlabel=f"base {primary}", ylabel=f"tuned {primary}", xlim=(-0.02, 1.02), ylim=(-0.02, 1.02))
        ax.set_aspect("equal", adjustable="box")
    return fig


def _judge_chart(report: dict) -> Any:
    """One panel per rubric: how many answers got each score, per judged model."""
    judge = report.get("judge")
    if not judge:
        return None
    rubrics = judge["rubrics"]
    dist = report["distributions"]
    models = [m for m in dist if any(_finite(dist[m].get(f"judge.{r['name']}", [])) for r in rubrics)]
    if not models:
        return None
    fig, axes = _figure(len(rubrics), height=3.6)
    for ax, r in zip(axes, rubrics, strict=True):
        lo, hi = r["scale"]
        values = list(range(int(lo), int(hi) + 1))
        width = 0.8 / len(models)
        for j, m in enumerate(models):
            scores = [round(v) for v in _finite(dist[m].get(f"judge.{r['name']}", []))]
            xs = [v + (j - (len(models) - 1) / 2) * width for v in values]
            ax.bar(xs, [scores.count(v) for v in values], width * 0.92, color=color(m, models), label=m)
        ax.set_title(r["name"], fontsize=11, loc="left")
        ax.set_xticks(values if len(values) <= 11 else values[::2])
        ax.set_xlabel("score")
        ax.grid(False, axis="x")
    axes[0].set_ylabel("answers")
    legend(axes[-1])
    return fig


def _latency_chart(report: dict) -> Any:
    dist = report["distributions"]
    models = [m for m in dist if _finite(dist[m].get("latency", []))]
    if not models:
        return None
    every = [v for m in models for v in _finite(dist[m]["latency"])]
    lo, hi = min(every), max(every)
    bins = [lo + (hi - lo) * i / 20 for i in range(21)] if hi > lo else 10
    fig, ax = new_axes("Seconds per answer", "answers")
    ax.set_xlabel("seconds (a batch's time shared between its rows)")
    for m in models:
        p95 = report["models"][m]["metrics"].get("latency_p95")
        label = m if p95 is None else f"{m} (p95 {p95:.3g} s)"
        # outlines, not filled bars: three overlapping filled histograms read as mud
        ax.hist(_finite(dist[m]["latency"]), bins=bins, histtype="step", lw=2, color=color(m, models), label=label)
        if p95 is not None:
            ax.axvline(p95, color=color(m, models), ls="--", lw=1.2)
    legend(ax)
    return fig


#: chart name -> (title, caption), in report order
CHARTS: dict[str, tuple[str, str]] = {
    "metrics": ("Metrics per model", "Corpus scores of every 0-1 metric (BLEU and chrF divided by 100), per model."),
    "primary": ("Per-row primary metric", ("Left: how the rows' scores are spread, base and tuned. Right: each dot "
                                           "is a row; above the dashed diagonal the tuned model beat the base model.")),
    "judge": ("Judge scores", ("How many answers received each score, per rubric and model (unscored answers "
                               "left out).")),
    "latency": ("Seconds per answer", ("Per-row generation time (a batch's time shared between its rows); dashed: "
                                       "95th percentile.")),
}
_BUILDERS = {"metrics": _metric_bars, "primary": _primary_chart, "judge": _judge_chart, "latency": _latency_chart}


def render_charts(report: dict, out_dir: str | Path) -> list[Path]:
    """Draw one PNG per chart that has data into `out_dir`; returns their paths in `CHARTS` order.

    Raises:
        ChartsUnavailable: matplotlib is not installed.
    """
    try:
        import matplotlib  # noqa: F401  (only to fail early with the fix)
    except ImportError:
        raise ChartsUnavailable("the evaluation charts need matplotlib", hint="pip install matplotlib") from None
    written = []
    for name, build in _BUILDERS.items():
        fig = build(report)
        if fig is None:
            continue
        buf = io.BytesIO()
        fig.tight_layout()
        fig.savefig(buf, format="png", dpi=DPI)
        path = Path(out_dir) / f"{name}.png"
        atomic_write_bytes(path, buf.getvalue())
        written.append(path)
    return written
