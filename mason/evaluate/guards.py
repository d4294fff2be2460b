"""Guards: thresholds on metrics that must hold for the pipeline to pass (and export to run).

The evaluation stage writes its report first and then calls `raise_if_failed`: the report of a
failed run says exactly which guard failed, by how much.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from mason.core.errors import MasonError
from mason.evaluate.config import Guard


@dataclass
class GuardResult:
    """One guard checked against one model's metrics. `value` is None when it was not computed."""

    metric: str
    model: str
    min: float | None
    max: float | None
    value: float | None
    passed: bool
    skipped: bool = False

    def describe(self) -> str:
        """`rougeL (tuned) = 0.212, below min 0.3` and the like."""
        who = f"{self.metric} ({self.model})"
        if self.skipped:
            return f"{who}: skipped, the {self.model} model was not evaluated"
        if self.value is None:
            return f"{who} was not computed"
        bounds = []
        if self.min is not None:
            bounds.append(f"{'below' if self.value < self.min else '>='} min {self.min:g}")
        if self.max is not None:
            bounds.append(f"{'above' if self.value > self.max else '<='} max {self.max:g}")
        return f"{who} = {self.value:.4g}, {', '.join(bounds)}"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "text": self.describe()}


class GuardFailed(MasonError):
    """At least one evaluation guard failed: the pipeline is marked failed and export is skipped.

    Attributes:
        failures: the failed guards.
        report: path of the evaluation report (already written).
        result: the evaluation's TaskResult (counts, metrics, files), set by the stage, so the runner
            can record the metrics of the failed run.
    """

    exit_code = 4

    def __init__(self, failures: list[GuardResult], *, report: str | None = None):
        self.failures = list(failures)
        self.report = report
        self.result: Any = None
        n = len(self.failures)
        lines = "\n".join(f"  - {f.describe()}" for f in self.failures)
        super().__init__(
            f"{n} evaluation guard{'s' if n != 1 else ''} failed:\n{lines}",
            hint=(f"see the report {report}; " if report else "")
            + "improve the model (data, steps) or relax the guard in `evaluation.guards`",
        )


def check_guards(guards: list[Guard], metrics: dict[str, dict[str, float | None]]) -> list[GuardResult]:
    """Check each guard against `metrics[model][metric]`.

    A guard on a model that was not evaluated (e.g. `gguf` when export did not run) is skipped
    (passed, `skipped`); a guard whose metric is missing for an evaluated model fails (it cannot be
    shown to hold).

    Returns:
        one result per guard, in config order.
    """
    results = []
    for g in guards:
        if g.model not in metrics:
            results.append(GuardResult(g.metric, g.model, g.min, g.max, None, True, skipped=True))
            continue
        value = metrics[g.model].get(g.metric)
        passed = value is not None and (g.min is None or value >= g.min) and (g.max is None or value <= g.max)
        results.append(GuardResult(g.metric, g.model, g.min, g.max, value, passed))
    return results


def raise_if_failed(results: list[GuardResult], *, report: str | None = None) -> None:
    """Raise GuardFailed listing every failed guard; return quietly when all passed."""
    failed = [r for r in results if not r.passed]
    if failed:
        raise GuardFailed(failed, report=report)
