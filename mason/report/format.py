"""Numbers, durations, tables and JSON for reports: the helpers every report uses (train, evaluation,
export, curation, tuning), so a value reads the same on every page."""

from __future__ import annotations

import math
from typing import Any


def num(v: float | None) -> str:
    """A value for people: counts with thousands separators, else 4 significant digits (scientific if tiny)."""
    if v is None:
        return "–"
    if not math.isfinite(v):
        return "NaN" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if float(v).is_integer() and abs(v) < 1e15:
        return f"{int(v):,}"
    if abs(v) < 1e-3 or abs(v) >= 1e6:
        return f"{v:.3e}"
    return f"{v:.4g}"


def json_safe(obj: Any) -> Any:
    """`obj` as strict JSON: NaN/inf become null, other unknown objects their `str`."""
    if isinstance(obj, float):
        # strict JSON has no NaN/inf: write null; the metric's `non_finite` count keeps the information
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    return obj if isinstance(obj, str | int | bool | type(None)) else str(obj)



def summary_rows(summary: dict, prefix: str = "") -> list[tuple[str, str]]:
    """Flatten the summary into (label, text) rows; nested dicts become `parent / child`."""
    rows: list[tuple[str, str]] = []
    for key, value in summary.items():
        key = str(key)
        seconds = key.endswith(("_s", "_seconds")) and isinstance(value, int | float)
        # `train_s: 152.3` reads as `train: 2m 32s`
        label = prefix + (key.rsplit("_", 1)[0] if seconds else key).replace("_", " ")
        if isinstance(value, dict):
            rows += summary_rows(value, prefix=f"{label} / ")
        elif value is None or isinstance(value, bool):
            rows.append((label, "–" if value is None else str(value).lower()))
        elif isinstance(value, int | float):
            rows.append((label, duration(value) if seconds else num(value)))
        elif isinstance(value, list | tuple):
            rows.append((label, ", ".join(str(v) for v in value)))
        else:
            rows.append((label, str(value)))
    return rows


def duration(seconds: float) -> str:
    """`152.3` -> `2m 32s`; under a minute `12.5 s`."""
    if not math.isfinite(seconds) or seconds < 60:
        return f"{seconds:.1f} s" if math.isfinite(seconds) else num(seconds)
    m, s = divmod(round(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h {m:02d}m {s:02d}s" if h else f"{m}m {s:02d}s"


def md_table(head: list[str], rows: list) -> str:
    """A Markdown table; `|` and newlines in cells are escaped."""
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in row) + " |" for row in rows]
    return "\n".join(lines)
