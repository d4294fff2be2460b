"""`pytest_guard`: an Eval Protocol evaluation file run through the eval-protocol pytest harness in a
child pytest, its summary metric checked; a failing one stops the plan with exit code 4 after the
tracker and guards.json record why (in-process and as a program)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

import mason
from mason.pipeline.tracker import Tracker
from mason.tuning.records import make_record

pytestmark = pytest.mark.slow
if importlib.util.find_spec("eval_protocol") is None:  # not imported here: the child pytest loads it
    pytest.skip('pytest_guard needs eval-protocol: pip install "mason[tuning]"', allow_module_level=True)
t = mason.tuning

EVAL_FILE = '''
import json, os
from eval_protocol.models import EvaluateResult, EvaluationRow, Message, MetricResult
from eval_protocol.pytest import NoOpRolloutProcessor, evaluation_test


def conversations():
    dataset = json.loads(os.environ["MASON_TUNING_ARTEFACTS"])["sft"]["uri"]
    rows = [json.loads(line) for line in open(dataset, encoding="utf-8")]
    return [[Message(role=m["role"], content=m["content"]) for m in r["messages"]] for r in rows]


@evaluation_test(input_messages=[conversations()], rollout_processor=NoOpRolloutProcessor(),
                 completion_params=[{"model": "phase-sft"}], mode="pointwise")
def test_answers_are_sentences(row: EvaluationRow) -> EvaluationRow:
    ok = float(row.messages[-1].content.endswith("."))
    row.evaluation_result = EvaluateResult(score=ok, reason="ends with a period" if ok else "no period",
                                           metrics={"sentence": MetricResult(score=ok, reason="", is_score_valid=True)})
    return row
'''


def _setup(tmp_path: Path) -> tuple[Path, Path]:
    answers = ["Mortar.", "A trowel.", "About 28 days"]
    rows = [make_record(f"t{i}", input=f"Q{i}?", output=a, metadata={"source": {"trace": f"t{i}"}})
            for i, a in enumerate(answers)]
    (tmp_path / "traces.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    evals = tmp_path / "evals" / "test_sentences.py"
    evals.parent.mkdir()
    evals.write_text(EVAL_FILE, encoding="utf-8")
    return tmp_path / "traces.jsonl", evals


def _plan(tmp_path: Path, guard) -> t.Plan:
    return t.Plan([t.Phase("sft", source="dataset://jsonl/traces.jsonl", curate=t.to_sft)], guard=guard)


def test_pytest_guard_runs_the_evaluation_and_checks_its_metric(tmp_path):
    _, evals = _setup(tmp_path)
    env = {"HOME": str(tmp_path / "home")}  # eval-protocol keeps its logs in ~/.eval_protocol
    guards = [t.pytest_guard(evals, "agg_score", 0.6, env=env),
              t.pytest_guard(evals, "sentence", 0.5, name="sentences", env=env)]
    result = t.run(_plan(tmp_path, guards), base_dir=tmp_path)
    with Tracker(tmp_path / ".mason" / "mason.db", readonly=True) as tracker:
        run = tracker.get_run(result.run_id)
    assert run["status"] == "success"
    values = {(m["task"], m["name"]): m["value"] for m in run["metrics"]}
    assert values[("guard:test_sentences", "agg_score")] == pytest.approx(2 / 3)
    assert values[("guard:sentences", "sentence")] == pytest.approx(2 / 3)
    report = json.loads((tmp_path / ".mason/artifacts/tuning/_runs" / result.run_id / "guards.json").read_text())
    summary = report["guards"][0]["details"]["summaries"][0]
    assert summary["suite"] == "test_answers_are_sentences" and summary["rows"] == 3


def test_a_failing_pytest_guard_stops_the_plan_with_exit_code_4(tmp_path):
    _, evals = _setup(tmp_path)
    guard = t.pytest_guard(evals, "agg_score", 0.9, env={"HOME": str(tmp_path / "home")})
    with pytest.raises(t.PlanGuardFailed) as e:
        t.run(_plan(tmp_path, guard), base_dir=tmp_path)
    assert e.value.exit_code == 4
    assert "agg_score (test_sentences) = 0.6667, below min 0.9" in e.value.message
    with Tracker(tmp_path / ".mason" / "mason.db", readonly=True) as tracker:
        run = tracker.get_run("latest")
    assert run["status"] == "failed"
    task = next(x for x in run["tasks"] if x["task"] == "guard:test_sentences")
    assert task["status"] == "failed" and "below min 0.9" in task["error"]


def test_an_evaluation_that_cannot_run_fails_its_guard_with_the_reason(tmp_path):
    _setup(tmp_path)
    broken = tmp_path / "evals" / "test_broken.py"
    broken.write_text("import no_such_module\n")
    with pytest.raises(t.PlanGuardFailed) as e:
        t.run(_plan(tmp_path, t.pytest_guard(broken, threshold=0.5)), base_dir=tmp_path)
    assert "without an Eval Protocol summary" in e.value.message and "no_such_module" in e.value.message


def test_a_plan_program_with_a_failing_pytest_guard_exits_4(tmp_path):
    _, evals = _setup(tmp_path)
    script = tmp_path / "plan.py"
    script.write_text(
        "import mason\nt = mason.tuning\n"
        "phase = t.Phase('sft', source='dataset://jsonl/traces.jsonl', curate=t.to_sft)\n"
        f"guard = t.pytest_guard({str(evals)!r}, 'agg_score', 0.95, env={{'HOME': {str(tmp_path / 'home')!r}}})\n"
        f"t.main(t.Plan([phase], guard=guard), base_dir={str(tmp_path)!r})\n")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 4, proc.stderr[-2000:]
    assert "1 tuning guard failed" in proc.stderr and "below min 0.95" in proc.stderr
