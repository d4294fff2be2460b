"""Guards: checks that must hold after a plan's phases, or the plan fails with exit code 4.

- `metric_guard(fn, threshold)`: `fn(artefacts)` (or `fn()`) returns a number that must be at least
  `threshold` (at most, with `higher_is_better=False`).
- `pytest_guard(path, metric, threshold)`: runs an Eval Protocol evaluation file (`@evaluation_test`
  functions, the `eval-protocol` package's pytest harness) in a child pytest, reads the harness's
  summary (`--ep-summary-json`) and checks `agg_score` or one of its `metrics_agg` means. The file
  gets the plan's artefacts as JSON in `MASON_TUNING_ARTEFACTS` and the workspace in
  `MASON_TUNING_WORKSPACE`; the harness's own pass thresholds are turned off, the guard decides.

Each guard is a task `guard:<name>` of the plan's tracker run with its value as a metric; a failed
one is recorded with why (and in `guards.json`) before `GuardFailed` (exit code 4, like evaluation
guards) stops the plan.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mason.core.hashing import stable_hash
from mason.core.io import atomic_write_json
from mason.evaluate.guards import GuardFailed, GuardResult
from mason.tuning.types import Artefact, describe_callable


class PlanGuardFailed(GuardFailed):
    """A guard of a tuning plan failed (exit code 4): the tracker run and `guards.json` say why."""

    def __init__(self, failures: list[GuardResult], *, report: str | None = None, reasons: list[str] | None = None):
        super().__init__(failures, report=report)
        n = len(self.failures)
        lines = "\n".join(f"  - {f.describe()}" + (f": {r}" if r else "")
                          for f, r in zip(self.failures, reasons or [""] * n))
        self.message = f"{n} tuning guard{'s' if n != 1 else ''} failed:\n{lines}"
        self.hint = ((f"see {report}; " if report else "")
                     + "improve the phases (data, steps, budget) or relax the guard's threshold")
        self.args = (self.message,)


@dataclass
class GuardOutcome:
    """One guard's verdict."""

    name: str
    metric: str
    value: float | None
    threshold: float
    higher_is_better: bool
    passed: bool
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def result(self) -> GuardResult:
        lo, hi = (self.threshold, None) if self.higher_is_better else (None, self.threshold)
        return GuardResult(self.metric, self.name, lo, hi, self.value, self.passed)


def _verdict(value: float | None, threshold: float, higher_is_better: bool) -> bool:
    if value is None or value != value:  # None or NaN: cannot be shown to hold
        return False
    return value >= threshold if higher_is_better else value <= threshold


class MetricGuard:
    """See `metric_guard`."""

    def __init__(self, fn: Any, threshold: float, *, name: str | None = None, metric: str | None = None,
                 higher_is_better: bool = True):
        self.fn = fn
        self.threshold = float(threshold)
        self.name = name or getattr(fn, "__name__", "metric").strip("<>") or "metric"
        self.metric = metric or self.name
        self.higher_is_better = higher_is_better

    def describe(self) -> dict[str, Any]:
        return {"guard": "metric", "name": self.name, "threshold": self.threshold,
                "higher_is_better": self.higher_is_better, "fn": describe_callable(self.fn)}

    def check(self, artefacts: dict[str, Artefact], base_dir: Path, workspace: Path) -> GuardOutcome:
        try:
            takes_args = bool(inspect.signature(self.fn).parameters)
        except (TypeError, ValueError):
            takes_args = True
        raw = self.fn(artefacts) if takes_args else self.fn()
        try:
            value = float(raw)
        except (TypeError, ValueError):
            return GuardOutcome(self.name, self.metric, None, self.threshold, self.higher_is_better, False,
                                f"the guard function returned {raw!r}, not a number")
        return GuardOutcome(self.name, self.metric, value, self.threshold, self.higher_is_better,
                            _verdict(value, self.threshold, self.higher_is_better))


def metric_guard(fn: Any, threshold: float, *, name: str | None = None, higher_is_better: bool = True) -> MetricGuard:
    """A guard on a number: `fn(artefacts)` (artefacts by phase name) or `fn()` must be >= `threshold`
    (<= with `higher_is_better=False`). An exception in `fn` fails the guard with its message."""
    return MetricGuard(fn, threshold, name=name, higher_is_better=higher_is_better)


class PytestGuard:
    """See `pytest_guard`."""

    def __init__(self, path: str | Path, metric: str = "agg_score", threshold: float = 0.0, *,
                 name: str | None = None, args: list[str] | None = None, timeout: float | None = 1800,
                 env: dict[str, str] | None = None, higher_is_better: bool = True):
        self.path = Path(path)
        self.metric = metric
        self.threshold = float(threshold)
        self.name = name or self.path.stem
        self.args = list(args or [])
        self.timeout = timeout
        self.env = dict(env or {})
        self.higher_is_better = higher_is_better

    def describe(self) -> dict[str, Any]:
        return {"guard": "pytest", "name": self.name, "path": str(self.path), "metric": self.metric,
                "threshold": self.threshold, "args": self.args}

    def command(self, summary_dir: Path, base_dir: Path) -> list[str]:
        path = self.path if self.path.is_absolute() else base_dir / self.path
        # the harness reports, the guard decides: its pass threshold is turned off
        return [sys.executable, "-m", "pytest", str(path), "-q", "-p", "no:cacheprovider", "-p", "eval_protocol",
                "-o", "asyncio_default_fixture_loop_scope=function", f"--ep-summary-json={summary_dir}/",
                "--ep-no-upload", "--ep-success-threshold=-1e18", *self.args]

    def check(self, artefacts: dict[str, Artefact], base_dir: Path, workspace: Path) -> GuardOutcome:
        import importlib.util

        if importlib.util.find_spec("eval_protocol") is None:  # the harness the child pytest loads
            return self._outcome(None, False, 'pytest_guard needs eval-protocol: pip install "mason[tuning]"')
        path = self.path if self.path.is_absolute() else base_dir / self.path
        if not path.exists():
            return self._outcome(None, False, f"no evaluation file {path}")
        with tempfile.TemporaryDirectory(prefix="mason-ep-") as tmp:
            env = {**os.environ, **self.env, "MASON_TUNING_WORKSPACE": str(workspace),
                   "MASON_TUNING_ARTEFACTS": json.dumps({k: a.as_dict() for k, a in artefacts.items()})}
            try:
                proc = subprocess.run(self.command(Path(tmp), base_dir), cwd=base_dir, env=env, capture_output=True,
                                      text=True, timeout=self.timeout, stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                return self._outcome(None, False, f"the evaluation ran past {self.timeout:g} s")
            summaries = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(Path(tmp).glob("*.json"))]
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-20:])
        details = {"exit_code": proc.returncode, "summaries": summaries, "output_tail": tail}
        if not summaries:
            return self._outcome(None, False, f"pytest exited {proc.returncode} without an Eval Protocol summary "
                                              f"(no @evaluation_test ran):\n{tail}", details)
        value = self._value(summaries)
        if value is None:
            return self._outcome(None, False, f"the summary has no metric {self.metric!r} (it has agg_score"
                                              f"{''.join(', ' + m for s in summaries for m in s.get('metrics_agg', {}))})",
                                 details)
        if proc.returncode != 0:
            return self._outcome(value, False, f"pytest failed (exit {proc.returncode}):\n{tail}", details)
        return self._outcome(value, _verdict(value, self.threshold, self.higher_is_better), "", details)

    def _value(self, summaries: list[dict[str, Any]]) -> float | None:
        if self.metric == "agg_score":
            values = [s["agg_score"] for s in summaries if isinstance(s.get("agg_score"), (int, float))]
        else:
            values = [s["metrics_agg"][self.metric]["mean"] for s in summaries
                      if self.metric in (s.get("metrics_agg") or {})]
        return sum(values) / len(values) if values else None

    def _outcome(self, value: float | None, passed: bool, reason: str,
                 details: dict[str, Any] | None = None) -> GuardOutcome:
        return GuardOutcome(self.name, self.metric, value, self.threshold, self.higher_is_better, passed, reason,
                            details or {})


def pytest_guard(path: str | Path, metric: str = "agg_score", threshold: float = 0.0, **options: Any) -> PytestGuard:
    """A guard that runs an Eval Protocol evaluation file through its pytest harness and checks
    `metric` (`agg_score`, or a `metrics_agg` name) against `threshold` (see the module docstring).

    Options: `name`, `args` (more pytest arguments), `timeout` (seconds), `env`, `higher_is_better`.
    """
    return PytestGuard(path, metric, threshold, **options)


def check_guards(guards: list[Any], artefacts: dict[str, Artefact], *, tracker: Any, run_id: str, run_dir: Path,
                 base_dir: Path, workspace: Path) -> list[GuardOutcome]:
    """Run every guard, record each as a task of the run, write `guards.json`; raise if any failed.

    Raises:
        PlanGuardFailed: (exit code 4) listing the failed guards and why.
    """
    if not guards:
        return []
    outcomes = []
    for guard in guards:
        task = f"guard:{guard.name}"
        key = stable_hash({"guard": guard.describe(), "artefacts": {k: a.as_dict() for k, a in artefacts.items()}})
        exec_id = tracker.start_task(run_id, task, key, str(run_dir))
        try:
            outcome = guard.check(artefacts, base_dir, workspace)
        except Exception as e:  # the guard's own function failed: the guard cannot be shown to hold
            outcome = GuardOutcome(guard.name, getattr(guard, "metric", guard.name), None, guard.threshold,
                                   getattr(guard, "higher_is_better", True), False, f"{type(e).__name__}: {e}")
        if outcome.value is not None:
            tracker.log_metric(run_id, task, outcome.metric, outcome.value)
        why = outcome.result().describe() + (f": {outcome.reason}" if outcome.reason else "")
        tracker.end_task(exec_id, "done" if outcome.passed else "failed", {"passed": int(outcome.passed)},
                         None if outcome.passed else why)
        outcomes.append(outcome)
    report = run_dir / "guards.json"
    atomic_write_json(report, {"run_id": run_id, "guards": [asdict(o) for o in outcomes]})
    failed = [o for o in outcomes if not o.passed]
    if failed:
        raise PlanGuardFailed([o.result() for o in failed], report=str(report), reasons=[o.reason for o in failed])
    return outcomes
