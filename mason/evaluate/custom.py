"""Metrics written by the user: `package.module:function` or `path/to/file.py:function`.

The function is called once per row and model with a dict

    {"id", "question", "reference", "prediction", "source", "model", "messages"}

(`source` is the text of the row's source passage when known, else None; `messages` the prompt)
and returns a number, a dict of numbers (several metrics at once), or None (no score for this
row). A number is named after the function; a dict's keys are the names. The corpus value is
the mean over the rows that have one. An exception in the function stops the evaluation with
one message naming the function and the row.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mason.core.errors import MasonError


class CustomMetricError(MasonError):
    """A custom metric cannot be loaded, fails on a row, or returns something that is not a number."""


@dataclass
class CustomMetric:
    """A loaded user function. `spec` is what the config says (for messages)."""

    spec: str
    function: Callable[[dict[str, Any]], Any]

    @property
    def name(self) -> str:
        return self.function.__name__


def _load_file(path: Path, spec: str) -> Any:
    if not path.is_file():
        raise CustomMetricError(f"custom metric '{spec}': no file {path}",
                                hint="file paths are relative to the pipeline YAML's folder")
    # a name unique to the file, so two metrics.py in different folders do not collide
    name = "mason_custom_metric_" + hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
    module_spec = importlib.util.spec_from_file_location(name, path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as e:
        sys.modules.pop(name, None)
        raise CustomMetricError(f"custom metric '{spec}': importing {path} failed: {type(e).__name__}: {e}") from e
    return module


def load_custom_metric(spec: str, base_dir: Path) -> CustomMetric:
    """Import the function named by `spec` (`module.path:function` or `file.py:function`).

    Raises:
        CustomMetricError: the file or module is missing or fails to import, or has no such callable.
    """
    target, _, fn_name = spec.rpartition(":")
    if target.endswith(".py") or "/" in target or "\\" in target:
        path = Path(target).expanduser()
        module = _load_file(path if path.is_absolute() else base_dir / path, spec)
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as e:
            raise CustomMetricError(f"custom metric '{spec}': cannot import module '{target}': {e}",
                                    hint="install it, or write `path/to/file.py:function`") from e
        except Exception as e:
            raise CustomMetricError(f"custom metric '{spec}': importing '{target}' failed: "
                                    f"{type(e).__name__}: {e}") from e
    function = getattr(module, fn_name, None)
    if not callable(function):
        found = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
        raise CustomMetricError(f"custom metric '{spec}': '{target}' has no function '{fn_name}'",
                                hint=f"functions there: {', '.join(found) or 'none'}")
    return CustomMetric(spec, function)


def load_custom_metrics(specs: list[str], base_dir: Path) -> list[CustomMetric]:
    """Every configured custom metric, loaded (before any expensive work, to fail early)."""
    return [load_custom_metric(s, base_dir) for s in specs]


def _number(value: Any, metric: CustomMetric, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        value = float(value)
        return value if math.isfinite(value) else None
    try:  # numpy scalars, 0-d tensors
        return float(value)
    except (TypeError, ValueError):
        raise CustomMetricError(f"custom metric '{metric.spec}' returned {type(value).__name__} on {where}",
                                hint="return a number, a dict of numbers, or None") from None


def score_rows(metric: CustomMetric, rows: list[dict[str, Any]], reserved: set[str]) -> dict[str, list[float | None]]:
    """Call `metric` on every row.

    Args:
        rows: row dicts (see the module docstring).
        reserved: metric names already taken (built-in metrics, other custom metrics).

    Returns:
        row values by metric name (None where the function gave no value).
    Raises:
        CustomMetricError: the function raised, returned a non-number, or a name clashes with `reserved`.
    """
    out: dict[str, list[float | None]] = {}
    for i, row in enumerate(rows):
        where = f"row {i + 1} (id {str(row.get('id'))[:12]}, model {row.get('model')})"
        try:
            value = metric.function(dict(row))
        except Exception as e:
            raise CustomMetricError(f"custom metric '{metric.spec}' failed on {where}: {type(e).__name__}: {e}",
                                    hint="fix the function; the row's question starts: "
                                         f"{str(row.get('question'))[:80]!r}") from e
        values = value if isinstance(value, dict) else {metric.name: value}
        for key, v in values.items():
            name = str(key)
            if name not in out:
                if name in reserved:
                    raise CustomMetricError(f"custom metric '{metric.spec}' returns '{name}', which is already "
                                            "a metric name", hint="rename the value")
                out[name] = [None] * len(rows)
            out[name][i] = _number(v, metric, where)
    return out


def mean(values: list[float | None]) -> float | None:
    """The mean of the values that are not None (None when there are none)."""
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None
