"""Chart building blocks of the reports (matplotlib, Agg backend): one figure style for every report.

matplotlib is imported inside the functions, so importing this module stays light.
"""

from __future__ import annotations

from mason.core.errors import MasonError

#: resolution of every report chart
DPI = 110


class ChartsUnavailable(MasonError):
    """Charts need matplotlib, which is not installed."""


def new_axes(title: str, ylabel: str):
    """A figure with one axes in the reports' style (title left, step on x, light grid); returns (fig, ax)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # note: Figure + FigureCanvasAgg, not pyplot: no global state, no GUI backend, safe in threads
    fig = Figure(figsize=(8, 4.2), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=12, loc="left")
    ax.set(xlabel="step", ylabel=ylabel)
    ax.grid(True, alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def legend(ax) -> None:
    """The legend above the plot, right of the title (inside it, a legend hides the data it explains)."""
    # above the plot, right of the title: inside it, a legend hides the data it explains
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2, frameon=False, fontsize=9)
