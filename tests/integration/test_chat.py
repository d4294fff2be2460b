"""`mason chat` end to end on the tiny model: --prompt, the REPL through stdin, --log rows that
validate and train, and a log that survives SIGKILL and SIGTERM.

The command runs in a subprocess through a small driver app that registers `chat_command` the
way mason/cli/__init__.py does, so these tests do not depend on the wiring; one test checks the wired
`python -m mason chat` when it is there.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from mason.cli import handles_errors
from mason.cli.chat import chat_command
from mason.core.io import read_jsonl
from mason.data.validate import validate_dataset
from mason.data.samples import load_samples

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")

from tests.helpers.models import make_adapter, teach_model

DRIVER = """\
import typer
from mason.cli import handles_errors
from mason.cli.chat import chat_command

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.callback()
def _root() -> None:
    \"\"\"Driver.\"\"\"


app.command("chat")(handles_errors(chat_command))
app()
"""
ROOT = Path(__file__).resolve().parents[2]

app = typer.Typer()
app.command("chat")(handles_errors(chat_command))


@app.callback()
def _root() -> None:
    """Test app."""


@pytest.fixture(scope="module")
def model(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return teach_model(tiny_model_dir, tmp_path_factory.mktemp("chat") / "model")


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("driver") / "mason_chat_driver.py"
    path.write_text(DRIVER)
    return path


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}


def chat(driver: Path, *args: str | Path, stdin: str = "", timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(check=False, args=[sys.executable, str(driver), "chat", *map(str, args)], input=stdin, text=True,
                          capture_output=True, timeout=timeout, env=_env(), cwd=ROOT)


def test_prompt_prints_only_the_answer(model: Path, driver: Path, tmp_path: Path) -> None:
    log = tmp_path / "chat.jsonl"
    r = chat(driver, model, "--prompt", "hi", "--log", log, "--stats")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Hello! Ask me about masonry.\n"
    assert "tok/s" in r.stderr
    (row,) = read_jsonl(log)
    assert row["messages"] == [{"role": "user", "content": "hi"},
                               {"role": "assistant", "content": "Hello! Ask me about masonry."}]
    assert row["meta"]["params"]["temperature"] == 0.0  # --prompt is greedy by default


def test_repl_multi_turn_reset_exit_and_log(model: Path, tmp_path: Path) -> None:
    log = tmp_path / "chat.jsonl"
    lines = ["hi", "What is a keystone?", "/reset", "/system You know masonry.", "How thick is a mortar joint?",
             "exit", "never read"]
    r = CliRunner().invoke(app, ["chat", str(model), "--temperature", "0", "--log", str(log)],
                           input="\n".join(lines) + "\n")
    assert r.exit_code == 0, r.output
    assert "you>" in r.stderr and "3 exchange(s) logged" in r.stderr
    assert r.stdout.splitlines()[0] == "Hello! Ask me about masonry."
    rows = read_jsonl(log)
    assert [len(row["messages"]) for row in rows] == [2, 4, 3]  # history kept, then reset
    assert rows[1]["messages"][:2] == rows[0]["messages"]
    assert rows[2]["messages"][0] == {"role": "system", "content": "You know masonry."}
    assert all(row["id"] and row["meta"]["task"] == "chat" and row["meta"]["source"] == {"chat": str(model)}
               for row in rows)
    report = validate_dataset(log)
    assert report.rows == 3 and report.format_error_rows == 0
    assert [len(s.row["messages"]) for s in load_samples(log)] == [2, 4, 3]
    # `mason validate` itself reads it: no format error (the tiny model's answers are too short to be "clean")
    out = subprocess.run(check=False, args=[sys.executable, "-m", "mason", "validate", str(log), "--json", "--min-quality", "0"],
                         capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["format_error_rows"] == 0


def test_missing_model_and_misused_base(model: Path, tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["chat", str(tmp_path / "nothing"), "--prompt", "hi"])
    assert r.exit_code == 1 and "no such file or folder" in r.stderr and "hint" in r.stderr
    r = CliRunner().invoke(app, ["chat", str(model), "--prompt", "hi", "--base", "x"])
    assert r.exit_code == 1 and "--base applies to adapter folders" in r.stderr
    r = CliRunner().invoke(app, ["chat", str(model), "--prompt", "hi", "--format", "tflite"])
    assert r.exit_code == 2 and "unknown format" in r.stderr


def test_adapter_with_base_override(model: Path, tmp_path: Path) -> None:
    import shutil

    base = Path(shutil.copytree(model, tmp_path / "base"))
    adapter = make_adapter(base, tmp_path / "adapter", with_tokenizer=True)
    expected = CliRunner().invoke(app, ["chat", str(adapter), "--prompt", "hi"])
    assert expected.exit_code == 0 and expected.stdout.strip(), expected.output
    shutil.rmtree(base)
    r = CliRunner().invoke(app, ["chat", str(adapter), "--prompt", "hi"])
    assert r.exit_code == 1 and "adapter's base model" in r.stderr and "--base" in r.stderr
    r = CliRunner().invoke(app, ["chat", str(adapter), "--prompt", "hi", "--base", str(model)])
    assert r.exit_code == 0 and r.stdout == expected.stdout


def _start(driver: Path, model: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(driver), "chat", str(model), "--temperature", "0", "--log", str(log)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env(), cwd=ROOT)


def _exchange(proc: subprocess.Popen, text: str) -> str:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(text + "\n")
    proc.stdin.flush()
    return proc.stdout.readline()


@pytest.mark.slow
@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_log_survives_a_kill(model: Path, driver: Path, tmp_path: Path, how: str) -> None:
    log = tmp_path / "chat.jsonl"
    proc = _start(driver, model, log)
    try:
        assert _exchange(proc, "hi") == "Hello! Ask me about masonry.\n"
        assert _exchange(proc, "What holds bricks together?").strip()
        proc.send_signal(getattr(signal, how))
        proc.wait(60)
    finally:
        proc.kill()
        proc.communicate()
    data = log.read_bytes()
    assert data.endswith(b"\n")  # never a partial line
    rows = read_jsonl(log)
    if how == "SIGTERM":  # drained before exit: every finished exchange is there
        assert proc.returncode == 128 + signal.SIGTERM
        assert [len(r["messages"]) for r in rows] == [2, 4]
    else:  # at most the row in flight is lost
        assert proc.returncode == -signal.SIGKILL
        assert [len(r["messages"]) for r in rows] in ([2], [2, 4])
    assert rows[0]["messages"][1]["content"] == "Hello! Ask me about masonry."
    # the next run appends to the same file
    r = chat(driver, model, "--prompt", "hi", "--log", log)
    assert r.returncode == 0, r.stderr
    assert len(read_jsonl(log)) == len(rows) + 1
    assert validate_dataset(log).format_error_rows == 0


@pytest.mark.slow
def test_wired_mason_chat(model: Path) -> None:
    from mason.cli import app as mason_app

    if "chat" not in {c.name for c in mason_app.registered_commands}:
        pytest.skip("`mason chat` is not registered in mason/cli/__init__.py yet")
    r = subprocess.run(check=False, args=[sys.executable, "-m", "mason", "chat", str(model), "--prompt", "hi"],
                       capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=240)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Hello! Ask me about masonry.\n"
