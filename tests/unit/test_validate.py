"""`validate_dataset` and the `mason validate` command: format errors with line numbers, quality
scores, exit codes, filtering."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from mason.cli import handles_errors
from mason.cli.validate import validate_command
from mason.data.files import DatasetFileError, load_dataset
from mason.data.formats import to_contract
from mason.data.validate import FORMAT_ERRORS, check_sample, validate_dataset

# registered the way the lead registers it in mason/cli/__init__.py
app = typer.Typer()
app.command("validate")(handles_errors(validate_command))


@app.command()
def _other() -> None:  # a second command, so `validate` is a subcommand as in the real CLI
    """Unused."""


runner = CliRunner()


def invoke(*args: str | Path):
    return runner.invoke(app, ["validate", *[str(a) for a in args]], env={"COLUMNS": "200"})


Q = "What does the AquaSense S3 buoy measure?"
A = "It measures water temperature, turbidity and dissolved oxygen every ten minutes."


def user(text: str = Q) -> dict:
    return {"role": "user", "content": text}


def assistant(text: str = A, **extra) -> dict:
    return {"role": "assistant", "content": text, **extra}


def call(call_id: str = "call_1", arguments: str = '{"site": "A"}') -> dict:
    return {"id": call_id, "type": "function", "function": {"name": "get_depth", "arguments": arguments}}


GOOD = {"messages": [user(), assistant()]}
GOOD_ROWS = [
    GOOD,
    {"conversations": [{"from": "human", "value": "Where is the buoy anchored in the lake?"},
                       {"from": "gpt", "value": "The buoy is anchored near the north shore, at forty metres depth."}]},
    {"instruction": "Explain what turbidity tells a water engineer.", "input": "",
     "output": "Turbidity shows how cloudy the water is, a sign of suspended particles."},
    {"prompt": "How often does the buoy take samples?", "chosen": "Every ten minutes, day and night, all year.",
     "rejected": "Once a week when the operator visits it."},
    {"messages": [user("How deep is the buoy at site A right now?"), assistant("", tool_calls=[call()]),
                  {"role": "tool", "content": "12.5", "tool_call_id": "call_1"},
                  assistant("The buoy at site A is currently 12.5 metres deep.")]},
    {"text": "The AquaSense S3 samples the water every ten minutes."},
]

# each row has exactly one kind of format error (asserted below against the expected code)
BAD_ROWS = {
    "bad_shape": {"question": Q, "answer": A},
    "missing_role": {"messages": [user(), {"content": A}]},
    "unknown_role": {"messages": [user(), {"role": "robot", "content": A}]},
    "no_user_turn": {"messages": [{"role": "system", "content": "Be brief."}, assistant()]},
    "no_assistant_turn": {"messages": [{"role": "system", "content": "Be brief."}, user()]},
    "empty_user": {"messages": [user("  "), assistant()]},
    "empty_assistant": {"instruction": Q, "input": "", "output": "   "},
    "role_order": {"messages": [user(), assistant(), assistant("And one more thing about the buoy.")]},
    "unknown_tool_call_id": {"messages": [user(), assistant("", tool_calls=[call("call_1")]),
                                          {"role": "tool", "content": "12.5", "tool_call_id": "call_9"},
                                          assistant()]},
    "missing_tool_call_id": {"messages": [user(), assistant("", tool_calls=[call()]),
                                          {"role": "tool", "content": "12.5"}, assistant()]},
    "bad_tool_arguments": {"messages": [user(), assistant("", tool_calls=[call(arguments="{site: A")]),
                                        {"role": "tool", "content": "12.5", "tool_call_id": "call_1"}, assistant()]},
    "bad_tool_call": {"messages": [user(), assistant("", tool_calls=[{"id": "call_1", "type": "function"}]),
                                   {"role": "tool", "content": "12.5", "tool_call_id": "call_1"}, assistant()]},
    "preference_missing": {"prompt": Q, "chosen": A},
    "preference_identical": {"prompt": Q, "chosen": A, "rejected": A + "  "},
}


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def test_well_formed_rows_of_every_format_have_no_format_error(tmp_path):
    report = validate_dataset(write_jsonl(tmp_path / "good.jsonl", GOOD_ROWS))
    assert report.format_errors == []
    assert report.rows == len(GOOD_ROWS)
    assert dict(report.formats) == {"openai": 2, "sharegpt": 1, "alpaca": 1, "preference": 1, "text": 1}
    assert report.clean_rows == len(GOOD_ROWS) and report.quality == 1.0
    assert len(report.samples) == len(GOOD_ROWS)
    assert report.scored_rows == len(GOOD_ROWS) - 1  # the plain-text row is not scored


@pytest.mark.parametrize("code", list(BAD_ROWS))
def test_each_format_error_is_reported_with_its_line(tmp_path, code):
    # the bad row sits on line 3, after a good row and a blank line
    path = write_jsonl(tmp_path / "d.jsonl", [GOOD, "", BAD_ROWS[code], GOOD])
    report = validate_dataset(path)
    assert {(e.line, e.code) for e in report.format_errors} == {(3, code)}
    assert report.rows == 3 and report.format_error_rows == 1
    assert code in FORMAT_ERRORS
    assert [line for line, _ in report.samples] == [1, 4]


def test_bad_json_and_non_object_lines_are_reported_and_the_rest_still_read(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", ['{"messages": [', GOOD, "[1, 2]", GOOD])
    report = validate_dataset(path)
    assert [(e.line, e.code) for e in report.format_errors] == [(1, "bad_json"), (3, "bad_json")]
    assert "not valid JSON" in report.format_errors[0].message
    assert "expected a JSON object, got a list" in report.format_errors[1].message
    assert report.rows == 4 and report.clean_rows == 2 and report.quality == 0.5


def test_error_messages_name_the_message_and_the_problem():
    problems = check_sample(to_contract(BAD_ROWS["role_order"]))
    assert problems == [("role_order", "messages 2 and 3: two assistant turns in a row")]
    problems = check_sample(to_contract(BAD_ROWS["unknown_tool_call_id"]))
    assert problems == [("unknown_tool_call_id", "message 3: tool_call_id 'call_9' matches no earlier tool call")]
    (code, message), = check_sample(to_contract(BAD_ROWS["bad_tool_arguments"]))
    assert code == "bad_tool_arguments" and message.startswith("message 2, tool call 1 (get_depth): arguments")


def test_a_row_with_several_problems_counts_once_but_lists_each(tmp_path):
    row = {"messages": [{"role": "system", "content": "x"}, assistant(""), assistant("")]}
    report = validate_dataset(write_jsonl(tmp_path / "d.jsonl", [row]))
    assert report.format_error_rows == 1
    assert [e.code for e in report.format_errors] == ["empty_assistant", "empty_assistant", "role_order",
                                                      "no_user_turn"]
    assert all(e.line == 1 for e in report.format_errors)


def test_quality_issues_scores_and_worst_examples(tmp_path):
    short = {"messages": [user("Depth?"), assistant("Deep.")]}
    path = write_jsonl(tmp_path / "d.jsonl", [GOOD, short, GOOD_ROWS[2], short])
    report = validate_dataset(path, worst=2)
    assert report.quality_issue_rows == 2 and report.quality_issue_counts["too_short"] == 2
    assert report.clean_rows == 2 and report.quality == 0.5
    assert [w.line for w in report.worst] == [2, 4]
    assert report.worst[0].issues == ("too_short",) and report.worst[0].preview == "Depth?"
    assert report.worst[0].score < min(s for s in (report.mean_score,) if s is not None)
    assert [line for line, _ in report.samples] == [1, 3]
    data = report.to_dict()
    assert data["quality"] == 0.5 and data["quality_issue_counts"] == {"too_short": 2}
    assert data["worst"][0]["line"] == 2


def test_passed_threshold_and_empty_file(tmp_path):
    report = validate_dataset(write_jsonl(tmp_path / "d.jsonl", [GOOD, GOOD, BAD_ROWS["role_order"]]))
    assert report.quality == pytest.approx(2 / 3)
    assert report.passed(0.5) and report.passed(2 / 3) and not report.passed(0.7)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    assert not validate_dataset(empty).passed(0.0)


def test_json_array_files_are_validated_with_line_numbers(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps([GOOD, BAD_ROWS["preference_identical"]], indent=2), encoding="utf-8")
    report = validate_dataset(path)
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines, start=1) if '"prompt"' in line) - 1
    assert start > 10 and lines[start - 1].strip() == "{"  # the second element opens on its own line
    assert [(e.line, e.code) for e in report.format_errors] == [(start, "preference_identical")]


def test_forced_format_reports_rows_of_another_shape(tmp_path):
    report = validate_dataset(write_jsonl(tmp_path / "d.jsonl", [GOOD_ROWS[1], GOOD]), fmt="sharegpt")
    assert [(e.line, e.code) for e in report.format_errors] == [(2, "bad_shape")]
    assert "not in sharegpt format" in report.format_errors[0].message


def test_missing_file_raises_dataset_file_error(tmp_path):
    with pytest.raises(DatasetFileError):
        validate_dataset(tmp_path / "nope.jsonl")


# --------------------------------------------------------------------------- the command


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    """4 clean rows, 1 with a quality issue, 2 with format errors: quality 4/7."""
    short = {"messages": [user("Depth?"), assistant("Deep.")]}
    return write_jsonl(tmp_path / "mixed.jsonl",
                       GOOD_ROWS[:4] + [short, BAD_ROWS["role_order"], '{"text": broken'])


def test_command_prints_the_report_and_exits_0_above_the_threshold(mixed):
    result = invoke(mixed)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "rows 7 · clean 4" in out and "PASS: quality 57.1% ≥ 50.0%" in out
    assert "role_order" in out and "messages 2 and 3: two assistant turns in a row" in out
    assert "too_short" in out and "worst examples" in out
    line_6 = next(line for line in out.splitlines() if "two assistant turns" in line)
    assert line_6.split()[0] == "6"


def test_command_exits_1_below_the_threshold(mixed):
    result = invoke(mixed, "--min-quality", "0.6")
    assert result.exit_code == 1
    assert "FAIL: quality 57.1% < 60.0%" in result.stdout


def test_json_output_is_pure_json_on_stdout(mixed):
    result = invoke(mixed, "--json", "--min-quality", "0.9")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["rows"] == 7 and data["clean_rows"] == 4 and data["passed"] is False
    assert data["min_quality"] == 0.9
    assert {(e["line"], e["code"]) for e in data["format_errors"]} == {(6, "role_order"), (7, "bad_json")}
    assert data["quality_issue_counts"] == {"too_short": 1}


def test_filter_writes_only_clean_samples_and_leaves_the_input_untouched(mixed):
    before = mixed.read_bytes()
    result = invoke(mixed, "--filter")
    assert result.exit_code == 0, result.output
    out = mixed.with_name("mixed.filtered.jsonl")
    assert "wrote 4 clean rows to" in result.stdout
    assert mixed.read_bytes() == before
    kept = [s for _, s in load_dataset(out)]
    assert kept == [to_contract(r) for r in GOOD_ROWS[:4]]
    assert validate_dataset(out).quality == 1.0


def test_filter_with_format_writes_the_input_format(tmp_path):
    rows = [GOOD_ROWS[2], BAD_ROWS["empty_assistant"], {"instruction": "Hi?", "input": "", "output": "Yo."}]
    data = write_jsonl(tmp_path / "alpaca.jsonl", rows)
    out = tmp_path / "clean" / "alpaca.json"
    result = invoke(data, "--format", "alpaca", "--filter", "-o", out, "--min-quality", "0.3")
    assert result.exit_code == 0, result.output
    written = json.loads(out.read_text())
    assert len(written) == 1
    assert {k: v for k, v in written[0].items() if k != "id"} == GOOD_ROWS[2]


def test_filter_refuses_to_overwrite_the_input(mixed):
    before = mixed.read_bytes()
    result = invoke(mixed, "--filter", "-o", mixed)
    assert result.exit_code == 2
    assert "never overwrites its input" in result.stderr
    assert mixed.read_bytes() == before


def test_output_without_filter_is_a_usage_error(mixed, tmp_path):
    result = invoke(mixed, "-o", tmp_path / "x.jsonl")
    assert result.exit_code == 2 and not (tmp_path / "x.jsonl").exists()


@pytest.mark.parametrize("name", ["nope.jsonl", "."])
def test_missing_or_unreadable_file_is_one_message_and_exit_2(tmp_path, name):
    result = invoke(tmp_path / name)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: ") and "Traceback" not in result.output


def test_unknown_format_is_a_usage_error(mixed):
    result = invoke(mixed, "--format", "csv")
    assert result.exit_code == 2 and "unknown dataset format 'csv'" in result.output
