"""Guards: pass, fail, missing metrics, models that were not evaluated, the GuardFailed message."""

from __future__ import annotations

import pytest

from mason.evaluate.config import Guard
from mason.evaluate.guards import GuardFailed, check_guards, raise_if_failed

METRICS = {"tuned": {"rougeL": 0.41, "latency_p95": 3.2}, "base": {"rougeL": 0.2}}


def test_pass_and_fail():
    results = check_guards([Guard(metric="rougeL", min=0.3), Guard(metric="latency_p95", max=2.0),
                            Guard(metric="rougeL", min=0.3, model="base")], METRICS)
    assert [r.passed for r in results] == [True, False, False]
    assert results[1].describe() == "latency_p95 (tuned) = 3.2, above max 2"
    assert results[2].describe() == "rougeL (base) = 0.2, below min 0.3"
    raise_if_failed(results[:1])  # all passed: nothing raised


def test_bounds_are_inclusive():
    assert check_guards([Guard(metric="rougeL", min=0.41, max=0.41)], METRICS)[0].passed


def test_missing_metric_fails_and_unevaluated_model_is_skipped():
    missing, skipped = check_guards([Guard(metric="judge.faithfulness", min=3),
                                     Guard(metric="rougeL", min=0.3, model="gguf")], METRICS)
    assert not missing.passed and missing.describe() == "judge.faithfulness (tuned) was not computed"
    assert skipped.passed and skipped.skipped and "not evaluated" in skipped.describe()


def test_guard_failed_lists_every_failure_with_exit_code_4():
    results = check_guards([Guard(metric="rougeL", min=0.5), Guard(metric="latency_p95", max=1.0)], METRICS)
    with pytest.raises(GuardFailed) as info:
        raise_if_failed(results, report="/w/eval_report.html")
    e = info.value
    assert e.exit_code == 4 and len(e.failures) == 2
    assert str(e).startswith("2 evaluation guards failed:\n  - rougeL (tuned) = 0.41, below min 0.5\n"
                             "  - latency_p95 (tuned) = 3.2, above max 1")
    assert "/w/eval_report.html" in e.hint
