"""Charts of the training report (matplotlib, Agg backend): loss, learning rate, grad norm, step time.

matplotlib is imported inside the functions, so importing this module stays light.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from mason.core.io import atomic_write_bytes
from mason.report.charts import DPI, ChartsUnavailable, legend, new_axes
from mason.report.format import num
from mason.train.history import SMOOTH_MIN_POINTS, SPIKE_FACTOR, Series, finite, quarter_medians, series


def _sci(v: float) -> str:
    """Compact scientific notation for tick labels: 1.75e-4, 5e-5, 0."""
    if v == 0:
        return "0"
    mantissa, exponent = f"{v:.2e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def _ema(values: list[float]) -> list[float]:
    """Debiased exponential moving average (as TensorBoard draws it); NaN values are passed over."""
    beta = 1.0 - 2.0 / (max(2, len(values) // 20) + 1)
    out, acc, weight = [], 0.0, 0.0
    for v in values:
        if math.isfinite(v):
            acc = beta * acc + (1 - beta) * v
            weight = beta * weight + (1 - beta)
        out.append(acc / weight if weight else math.nan)
    return out


def _xy(points: Series) -> tuple[list[int], list[float]]:
    # inf would stretch the axis to nothing; NaN is a gap in the line, which is what a lost value is
    return [p[0] for p in points], [p[1] if math.isfinite(p[1]) else math.nan for p in points]


def _maybe_log(ax, values: list[float], ratio: float = 100.0) -> None:
    # a log axis only when the values span orders of magnitude; otherwise linear reads better
    pos = [v for v in values if math.isfinite(v) and v > 0]
    if pos and max(pos) / min(pos) > ratio:
        ax.set_yscale("log")


def _loss_chart(s: dict[str, Series]):
    loss, ev = s.get("loss", []), finite(s.get("eval_loss", []))
    if not finite(loss) and not ev:
        return None
    fig, ax = new_axes("Training and eval loss", "loss")
    if loss:
        steps, vals = _xy(loss)
        smooth = len(loss) >= SMOOTH_MIN_POINTS
        ax.plot(steps, vals, color="#4c72b0", alpha=0.35 if smooth else 1.0, lw=1, label="train loss")
        if smooth:
            ax.plot(steps, _ema(vals), color="#4c72b0", lw=2, label="train loss (smoothed)")
    if ev:
        ax.plot(*_xy(ev), "o-", color="#dd8452", lw=2, ms=4, label="eval loss")
        b_step, b_val = min(ev, key=lambda p: p[1])
        ax.plot([b_step], [b_val], marker="*", color="#c44e52", ms=14, ls="none",
                label=f"best eval {num(b_val)} (step {b_step})")
    _maybe_log(ax, [v for _, v in loss] + [v for _, v in ev], ratio=20)
    legend(ax)
    return fig


def _line_chart(points: Series, title: str, ylabel: str, color: str, *, log: bool = False):
    if not finite(points):
        return None
    fig, ax = new_axes(title, ylabel)
    ax.plot(*_xy(points), color=color, lw=1.5)
    if log:
        _maybe_log(ax, [v for _, v in points])
    return fig


def _grad_chart(points: Series):
    fig = _line_chart(points, "Gradient norm", "grad norm", "#55a868", log=True)
    if fig is None:
        return None
    ax = fig.axes[0]
    median = statistics.median(v for _, v in finite(points))
    # the threshold only when something crosses it: drawn always, it squashes a healthy curve to the floor
    if median > 0 and max(v for _, v in finite(points)) > SPIKE_FACTOR * median:
        ax.axhline(SPIKE_FACTOR * median, color="#c44e52", ls="--", lw=1,
                   label=f"spike threshold ({SPIKE_FACTOR:g}× median)")
    bad = [s for s, v in points if not math.isfinite(v)]
    if bad:  # NaN/inf cannot be drawn as values: mark their steps along the top edge instead
        ax.scatter(bad, [0.97] * len(bad), transform=ax.get_xaxis_transform(), marker="x", color="#c44e52",
                   clip_on=False, label="NaN/inf")
    legend(ax)
    return fig


def _step_time_chart(points: Series):
    fig = _line_chart(points, "Step time", "seconds per step", "#8172b3")
    if fig is None or not (quarters := quarter_medians(points)):
        return fig
    (ax,), (first, last) = fig.axes, quarters
    ax.axhline(first, color="#937860", ls=":", lw=1.5, label=f"first-quarter median ({num(first)} s)")
    ax.axhline(last, color="#c44e52", ls="--", lw=1.5, label=f"last-quarter median ({num(last)} s)")
    legend(ax)
    return fig


def render_charts(history: list[dict], out_dir: str | Path) -> list[Path]:
    """Draw one PNG per chart with data (loss, learning_rate, grad_norm, step_time) into `out_dir`.

    Returns the PNG paths, in that order; a chart whose metric was never logged is skipped.

    Raises:
        ChartsUnavailable: matplotlib is not installed.
    """
    try:
        import matplotlib  # noqa: F401  (only to fail early with the fix)
    except ImportError:
        raise ChartsUnavailable("the training charts need matplotlib", hint="pip install matplotlib") from None
    import io

    s = series(history)
    lr = _line_chart(s.get("learning_rate", []), "Learning rate", "learning rate", "#937860")
    if lr is not None:  # 2e-4 reads better than 0.00020
        from matplotlib.ticker import FuncFormatter

        lr.axes[0].yaxis.set_major_formatter(FuncFormatter(lambda v, _: _sci(v)))
    figures = {"loss": _loss_chart(s), "learning_rate": lr, "grad_norm": _grad_chart(s.get("grad_norm", [])),
               "step_time": _step_time_chart(s.get("step_time", []))}
    written = [Path(out_dir) / f"{name}.png" for name, fig in figures.items() if fig is not None]
    for path in written:
        buf, fig = io.BytesIO(), figures[path.stem]
        fig.tight_layout()
        fig.savefig(buf, format="png", dpi=DPI)
        atomic_write_bytes(path, buf.getvalue())
    return written
