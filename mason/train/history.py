"""The metrics history of a training run: `metrics.jsonl` read into typed entries and per-metric series,
shared by the training report (numbers, verdicts) and its charts."""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

from mason.core.errors import InputError
from mason.core.io import iter_jsonl

Series = list[tuple[int, float]]

SPIKE_FACTOR = 10.0  # grad norm above 10x its median (a verdict, and a line on the chart)
SMOOTH_MIN_POINTS = 30  # fewer points than this are drawn as they are, without a moving average  # fewer points than this are drawn as they are, without a moving average


def _checked_entry(obj: Any, where: str) -> dict:
    """One history entry with typed fields; `value` null (a trainer that cannot write NaN) is NaN."""
    if not isinstance(obj, dict):
        raise InputError(f"{where}: expected an object, got {type(obj).__name__}")
    step, name, value = obj.get("step"), obj.get("name"), obj.get("value")
    integral = isinstance(step, int) or (isinstance(step, float) and step.is_integer())
    if isinstance(step, bool) or not integral:
        raise InputError(f"{where}: 'step' must be an integer, got {step!r}", hint=_ENTRY_HINT)
    if not isinstance(name, str) or not name:
        raise InputError(f"{where}: 'name' must be a metric name, got {name!r}", hint=_ENTRY_HINT)
    if value is None:
        value = math.nan
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{where}: 'value' must be a number, got {value!r}", hint=_ENTRY_HINT)
    entry = {"step": int(step), "name": _ALIASES.get(name, name), "value": float(value)}
    if isinstance(obj.get("time"), int | float):
        entry["time"] = float(obj["time"])
    return entry


_ENTRY_HINT = 'each entry is {"step": int, "name": str, "value": float, "time": float}'
_ALIASES = {"tokens_per_s": "tokens_per_second"}
_ROW_FIELDS = ("stage", "step", "time")  # the fields of a wide row that are not metrics


def _entries(obj: Any, where: str) -> list[dict]:
    """The entries of one history row: a `{"step", "name", "value", "time"}` entry as it is, or a wide row
    (`{"stage", "step", "time", "loss": 1.2, "grad_norm": 0.8, ...}`, one line per log call) split into
    one entry per numeric field."""
    if not isinstance(obj, dict) or "name" in obj or "value" in obj:
        return [_checked_entry(obj, where)]
    return [_checked_entry({"step": obj.get("step"), "name": k, "value": v, "time": obj.get("time")}, where)
            for k, v in obj.items()
            if k not in _ROW_FIELDS and (v is None or (isinstance(v, int | float) and not isinstance(v, bool)))]


def read_history(path: str | Path, *, stage: str | None = None) -> list[dict]:
    """The metrics history of a `metrics.jsonl` file, as `{"step", "name", "value", "time"}` entries.

    Lines are entries or wide rows (see `_entries`); with `stage`, rows of other stages are left out.

    Raises:
        InputError: the file is missing, or a line is not a valid entry (file and line are named).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no metrics file at {path}", hint="the trainer writes metrics.jsonl in its output folder")
    return [entry for lineno, obj in iter_jsonl(path) if stage is None or obj.get("stage") in (None, stage)
            for entry in _entries(obj, f"{path}:{lineno}")]


def series(history: list[dict]) -> dict[str, Series]:
    """Per-metric `(step, value)` lists sorted by step; a step logged twice keeps its last value.

    Raises:
        InputError: a row lacks a valid step, name or value (its index is named).
    """
    by_name: dict[str, dict[int, float]] = {}
    for i, obj in enumerate(history):
        for entry in _entries(obj, f"history[{i}]"):
            # note: a resumed run can log a step again; the later value is the one that counts
            by_name.setdefault(entry["name"], {})[entry["step"]] = entry["value"]
    return {name: sorted(points.items()) for name, points in by_name.items()}


def finite(points: Series) -> Series:
    return [(s, v) for s, v in points if math.isfinite(v)]


def quarter_medians(points: Series) -> tuple[float, float] | None:
    """Medians of the first and the last quarter of the values; None under 4 values (empty quarters)."""
    good = [x for _, x in finite(points) if x > 0]
    q = len(good) // 4
    return (statistics.median(good[:q]), statistics.median(good[-q:])) if q else None
