"""`mason runs list|show|compare` on a tracker database filled through the Tracker API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mason.cli import runs as cli_runs
from mason.cli.runs import runs_app, workspace_from_option
from mason.pipeline.tracker import Tracker

runner = CliRunner()
SECRET = "sk-proj-0123456789abcdefghijklmnopqrstuv"


def _strict_json(text: str):
    def refuse(name: str):
        raise ValueError(f"not strict JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def invoke(*args: str | Path):
    # A wide terminal, so tables are not folded and rows can be matched by line.
    return runner.invoke(runs_app, [str(a) for a in args], env={"COLUMNS": "200"})


@pytest.fixture
def ws(tmp_path: Path) -> dict:
    """A workspace with two finished runs that differ in lr and loss."""
    workspace = tmp_path / ".mason"
    ids = []
    with Tracker(workspace / "mason.db") as t:
        for name, lr, loss in (("baseline", 1e-4, 0.5), ("bigger-lr", 3e-4, 0.25)):
            cfg = {"train": {"lr": lr, "epochs": 3}, "teacher": {"api_key": SECRET}}
            run_id = t.start_run(pipeline_path="pipeline.yaml", config=cfg, name=name,
                                 mason_version="0.1.0")
            ingest = t.start_task(run_id, "ingest", "ingestkey0123456789", None)
            t.end_task(ingest, "done", counts={"documents": 3, "chunks": 41})
            train = t.start_task(run_id, "train", "trainkey0123456789", None)
            t.log_metrics(run_id, "train", {"loss": loss + 1, "accuracy": 0.9}, step=1)
            t.log_metrics(run_id, "train", {"loss": loss, "accuracy": 0.9}, step=2)
            t.log_metric(run_id, "evaluate", "perplexity", float("nan"))
            t.end_task(train, "done", counts={"steps": 2})
            t.add_artifact(run_id, "train", "trainkey", f"artifacts/train/{name}/adapter",
                           "adapter")
            t.end_run(run_id, "success")
            ids.append(run_id)
    return {"path": workspace, "baseline": ids[0], "bigger": ids[1]}


def line_with(text: str, needle: str) -> str:
    lines = [line for line in text.splitlines() if needle in line]
    assert lines, f"{needle!r} not in output:\n{text}"
    return lines[0]


# --------------------------------------------------------------------------- list


def test_list_table(ws):
    result = invoke("list", "-w", ws["path"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.index(ws["bigger"]) < out.index(ws["baseline"])  # newest first
    row = line_with(out, ws["baseline"])
    assert "baseline" in row and "success" in row and "2 done" in row


def test_list_json(ws):
    result = invoke("list", "-w", ws["path"], "--json")
    assert result.exit_code == 0, result.output
    runs = _strict_json(result.stdout)
    assert [r["id"] for r in runs] == [ws["bigger"], ws["baseline"]]
    assert runs[0]["name"] == "bigger-lr" and runs[0]["tasks"] == {"done": 2}
    limited = _strict_json(invoke("list", "-w", ws["path"], "--json", "--limit", "1").stdout)
    assert [r["id"] for r in limited] == [ws["bigger"]]


def test_list_of_a_workspace_without_runs(tmp_path: Path):
    Tracker(tmp_path / ".mason" / "mason.db").close()
    result = invoke("list", "-w", tmp_path / ".mason")
    assert result.exit_code == 0 and "no runs yet" in result.stdout
    assert _strict_json(invoke("list", "-w", tmp_path / ".mason", "--json").stdout) == []


# --------------------------------------------------------------------------- show


def test_show_table(ws):
    result = invoke("show", ws["baseline"][:-1], "-w", ws["path"])  # a prefix is enough
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert ws["baseline"] in line_with(out, "run ") and "baseline" in out
    ingest = line_with(out, "ingest ")
    assert "done" in ingest and "ingestkey012" in ingest and "documents=3, chunks=41" in ingest
    assert "0.5" in line_with(out, "loss")  # the final value, not the first one (1.5)
    assert "1.5" not in out
    assert "nan" in line_with(out, "perplexity")
    assert "artifacts/train/baseline/adapter" in line_with(out, "adapter")
    assert SECRET not in result.output


def test_show_accepts_negative_refs_and_defaults_to_latest(ws):
    assert ws["baseline"] in invoke("show", "-2", "-w", ws["path"]).stdout
    latest = invoke("show", "-w", ws["path"])
    assert latest.exit_code == 0 and ws["bigger"] in latest.stdout


def test_show_json(ws):
    result = invoke("show", "bigger-lr", "-w", ws["path"], "--json")
    assert result.exit_code == 0, result.output
    run = _strict_json(result.stdout)  # NaN is printed as null
    assert run["id"] == ws["bigger"] and run["status"] == "success"
    assert run["params"] == {"teacher.api_key": "***", "train.epochs": 3, "train.lr": 3e-4}
    finals = {(m["task"], m["name"]): m["value"] for m in run["metrics"]}
    assert finals == {("train", "loss"): 0.25, ("train", "accuracy"): 0.9,
                      ("evaluate", "perplexity"): None}
    assert [t["counts"] for t in run["tasks"]] == [{"documents": 3, "chunks": 41}, {"steps": 2}]


# --------------------------------------------------------------------------- compare


def test_compare_table_shows_differences(ws):
    result = invoke("compare", ws["baseline"], ws["bigger"], "-w", ws["path"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    lr = line_with(out, "train.lr")
    assert lr.lstrip().startswith("*") and "0.0001" in lr and "0.0003" in lr
    assert "train.epochs" not in out and "2 equal params hidden" in out
    loss = line_with(out, "train/loss")
    assert loss.lstrip().startswith("*") and loss.index("0.5") < loss.index("0.25")
    assert not line_with(out, "train/accuracy").lstrip().startswith("*")

    everything = invoke("compare", "-1", "-2", "--all", "-w", ws["path"]).stdout
    assert not line_with(everything, "train.epochs").lstrip().startswith("*")
    assert "hidden" not in everything


def test_compare_json(ws):
    result = invoke("compare", "-1", "-2", "-w", ws["path"], "--json")
    assert result.exit_code == 0, result.output
    data = _strict_json(result.stdout)
    assert [r["id"] for r in data["runs"]] == [ws["bigger"], ws["baseline"]]
    params = {p["key"]: p for p in data["params"]}
    assert params["train.lr"] == {"key": "train.lr", "values": [3e-4, 1e-4], "differs": True}
    assert params["train.epochs"]["differs"] is False  # JSON keeps equal rows
    metrics = {m["name"]: m for m in data["metrics"]}
    assert metrics["loss"]["differs"] and not metrics["accuracy"]["differs"]


# --------------------------------------------------------------------------- errors


def test_unknown_run_exits_1_with_a_message(ws):
    for command in (["show", "nope"], ["compare", "-1", "nope"]):
        result = invoke(*command, "-w", ws["path"])
        assert result.exit_code == 1
        assert "no run matches 'nope'" in result.stderr
        assert ws["bigger"] in result.stderr  # candidates listed
        assert result.stdout == ""


def test_ambiguous_and_malformed_refs(ws):
    result = invoke("show", "20", "-w", ws["path"])
    assert result.exit_code == 1 and "matches several runs" in result.stderr
    result = invoke("compare", "-1", "-w", ws["path"])
    assert result.exit_code == 1 and "at least two runs" in result.stderr
    result = invoke("show", "--jsn", "-w", ws["path"])
    assert result.exit_code == 1 and "no such option: --jsn" in result.stderr


def test_missing_workspace_exits_1_and_creates_nothing(tmp_path: Path):
    missing = tmp_path / "nowhere" / ".mason"
    for command in (["list"], ["show", "latest"], ["compare", "-1", "-2"]):
        result = invoke(*command, "-w", missing)
        assert result.exit_code == 1
        assert "no runs yet" in result.stderr and result.stdout == ""
    empty = tmp_path / "empty"
    empty.mkdir()
    result = invoke("list", "-w", empty)
    assert result.exit_code == 1 and "no runs yet in" in result.stderr
    assert "mason run pipeline.yaml" in result.stderr
    assert not (tmp_path / "nowhere").exists() and list(empty.iterdir()) == []


def test_workspace_from_a_pipeline_yaml_and_the_default(ws, monkeypatch):
    yaml = ws["path"].parent / "pipeline.yaml"
    yaml.write_text("name: demo\n")
    assert workspace_from_option(yaml) == ws["path"]
    assert workspace_from_option(ws["path"] / "mason.db") == ws["path"]
    assert workspace_from_option(Path("elsewhere")) == Path("elsewhere")
    assert ws["bigger"] in invoke("list", "-w", yaml).stdout
    monkeypatch.chdir(ws["path"].parent)
    result = invoke("list")  # default: .mason in the current directory
    assert result.exit_code == 0 and ws["bigger"] in result.stdout


def test_workspace_resolver_can_be_replaced(ws, monkeypatch):
    seen = []

    def resolver(path: Path) -> Path:
        seen.append(path)
        return ws["path"]

    monkeypatch.setattr(cli_runs, "workspace_from_option", resolver)
    result = invoke("list", "-w", "custom.yaml", "--json")
    assert result.exit_code == 0 and len(_strict_json(result.stdout)) == 2
    assert seen == [Path("custom.yaml")]


def test_importing_the_sub_app_stays_light():
    import subprocess
    import sys

    code = ("import sys, mason.cli.runs; "
            "print(sorted(m for m in ('rich', 'sqlite3', 'mason.pipeline.tracker') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[2], check=True, timeout=60)
    assert out.stdout.strip() == "[]"
