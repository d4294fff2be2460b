"""The `mason chat` command without a real model: options, errors, stdout discipline, SIGTERM, light imports.

A scripted runtime is registered for the "merged" format (open_runtime imports runtimes by
"module:Class"), so the whole command runs in milliseconds; tests/integration/test_chat.py runs
it on the tiny model.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import typer
from typer.testing import CliRunner

from mason.cli import handles_errors
from mason.cli.chat import chat_command, exit_on_sigterm
from mason.core.io import read_jsonl
from mason.runtime import base as runtime_base
from mason.runtime.base import GenerationParams, Runtime

app = typer.Typer()
app.command("chat")(handles_errors(chat_command))


@app.callback()
def _root() -> None:
    """Test app."""


class EchoRuntime(Runtime):
    """Answers "echo: <last user message>" in pieces and remembers its constructor arguments."""

    format, backend = "merged", "echo"
    calls: ClassVar[list[dict[str, Any]]] = []
    opened: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, path: Path, **kwargs: Any):
        super().__init__()
        EchoRuntime.opened.append({"path": path, **kwargs})

    def stream(self, messages: list[dict[str, Any]], params: GenerationParams | None = None) -> Iterator[str]:
        EchoRuntime.calls.append({"messages": messages, "params": params})
        text = "echo: " + messages[-1]["content"]
        yield from text.partition(" ")
        self.last_usage = (len(messages), 3)


@pytest.fixture
def model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "merged"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    monkeypatch.setitem(runtime_base.FORMATS, "merged", f"{__name__}:EchoRuntime")
    EchoRuntime.calls, EchoRuntime.opened = [], []
    return folder


def invoke(*args: str | Path, input: str | None = None):
    return CliRunner().invoke(app, ["chat", *map(str, args)], input=input)


def test_prompt_prints_only_the_answer_on_stdout(model: Path, tmp_path: Path) -> None:
    log = tmp_path / "logs" / "chat.jsonl"
    r = invoke(model, "--prompt", "What holds bricks?", "--system", "Be brief.", "--log", log)
    assert r.exit_code == 0, r.output
    assert r.stdout == "echo: What holds bricks?\n" and r.stderr == ""
    call = EchoRuntime.calls[0]
    assert call["messages"][0] == {"role": "system", "content": "Be brief."}
    assert call["params"] == GenerationParams(max_tokens=256, temperature=0.0, top_p=1.0,
                                              repetition_penalty=1.1, seed=0)
    (row,) = read_jsonl(log)
    assert row["meta"]["source"] == {"chat": str(model.resolve())} and row["meta"]["tokens"]["output"] == 3


def test_options_reach_the_runtime(model: Path) -> None:
    r = invoke(model, "-p", "hi", "--max-tokens", "7", "--temperature", "0.5", "--top-p", "0.9",
               "--repetition-penalty", "1.3", "--seed", "4", "--stats", "--format", "merged")
    assert r.exit_code == 0, r.output
    assert EchoRuntime.calls[0]["params"] == GenerationParams(7, 0.5, 0.9, 1.3, 4)
    assert EchoRuntime.opened[0]["format"] == "merged" and EchoRuntime.opened[0]["base_model"] is None
    assert "3 tokens" in r.stderr


def test_repl_defaults_to_sampling_and_keeps_history(model: Path) -> None:
    r = invoke(model, input="one\ntwo\n/reset\nthree\n")  # then EOF (Ctrl-D)
    assert r.exit_code == 0, r.output
    assert r.stdout == "echo: one\necho: two\necho: three\n"
    assert [len(c["messages"]) for c in EchoRuntime.calls] == [1, 3, 1]
    assert EchoRuntime.calls[0]["params"].temperature == 0.7
    assert r.stderr.count("you>") == 5 and "chatting with" in r.stderr


def test_errors(model: Path, tmp_path: Path) -> None:
    r = invoke(tmp_path / "missing", "--prompt", "hi")
    assert r.exit_code == 1 and "no such file or folder" in r.stderr and "hint" in r.stderr
    r = invoke(model, "--prompt", "hi", "--base", "smollm2-135m-instruct")
    assert r.exit_code == 1 and "--base applies to adapter folders" in r.stderr
    r = invoke(model, "--format", "pickle")
    assert r.exit_code == 2 and "unknown format" in r.stderr
    r = invoke(model, "--prompt", "hi", "--log", tmp_path)
    assert r.exit_code == 1 and "is a folder" in r.stderr
    (tmp_path / "ro").mkdir(mode=0o500)
    if os.geteuid() != 0:  # root writes anywhere
        r = invoke(model, "--prompt", "hi", "--log", tmp_path / "ro" / "sub" / "chat.jsonl")
        assert r.exit_code == 1 and "cannot open it" in r.stderr
    r = invoke(model, "--max-tokens", "0")
    assert r.exit_code == 2
    assert len(EchoRuntime.opened) <= 1  # only the unwritable-log case got as far as loading


def test_help_lists_the_options() -> None:
    r = CliRunner().invoke(app, ["chat", "--help"], env={"COLUMNS": "200"})
    assert r.exit_code == 0
    for option in ("--prompt", "--system", "--max-tokens", "--temperature", "--top-p", "--repetition-penalty",
                   "--seed", "--format", "--base", "--log", "--stats"):
        assert option in r.stdout


def test_sigterm_becomes_a_normal_exit_and_handlers_are_restored() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as exc, exit_on_sigterm():
        os.kill(os.getpid(), signal.SIGTERM)
        signal.pause() if hasattr(signal, "pause") else None  # the handler raises before this returns
    assert exc.value.code == 128 + signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) == before


def test_chat_modules_import_no_heavy_library(tmp_path: Path) -> None:
    code = ("import sys, json\nimport mason.cli.chat, mason.chat, mason.chat.session, mason.chat.log\n"
            "import mason.runtime.transformers\nprint(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}).stdout
    mods = set(json.loads(out.strip().splitlines()[-1]))
    assert not mods & {"torch", "transformers", "peft", "tokenizers"}
    assert os.listdir(tmp_path) == []
