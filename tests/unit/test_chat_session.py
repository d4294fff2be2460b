"""The chat session and REPL on a scripted runtime (no model): history, commands, interruption, logging."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from mason.chat import ChatLogger, ChatSession, run_repl, stats_line, stream_answer
from mason.core.errors import MasonError
from mason.core.io import read_jsonl
from mason.runtime.base import GenerationParams, Runtime


class ScriptedRuntime(Runtime):
    """Answers from a queue, in 3-character pieces; records the messages it was asked."""

    format, backend = "merged", "scripted"

    def __init__(self, answers: list[str]):
        super().__init__()
        self.answers = list(answers)
        self.seen: list[list[dict[str, Any]]] = []
        self.interrupt_after: int | None = None  # raise KeyboardInterrupt after this many pieces

    def stream(self, messages: list[dict[str, Any]], params: GenerationParams | None = None) -> Iterator[str]:
        self.seen.append([dict(m) for m in messages])
        answer = self.answers.pop(0)
        pieces = [answer[i:i + 3] for i in range(0, len(answer), 3)]
        for n, piece in enumerate(pieces):
            if self.interrupt_after is not None and n == self.interrupt_after:
                self.interrupt_after = None
                raise KeyboardInterrupt
            yield piece
        self.last_usage = (sum(len(m["content"]) for m in messages), len(pieces))


def repl(runtime: Runtime, lines: list[str], **kwargs: Any) -> tuple[ChatSession, str, str, int]:
    session = ChatSession(runtime, GenerationParams(), **kwargs)
    feed = iter(lines)

    def read() -> str:
        try:
            return next(feed)
        except StopIteration:
            raise EOFError from None

    out, err = io.StringIO(), io.StringIO()
    n = run_repl(session, out=out, err=Console(file=err, width=200), read=read)
    return session, out.getvalue(), err.getvalue(), n


def test_multi_turn_history_and_system_prompt() -> None:
    rt = ScriptedRuntime(["Mortar.", "  The keystone.  "])
    session = ChatSession(rt, GenerationParams(), system="Be brief.")
    assert "".join(session.reply("What holds bricks?")) == "Mortar."
    assert "".join(session.reply("And an arch?")).strip() == "The keystone."
    assert rt.seen[1] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What holds bricks?"},
        {"role": "assistant", "content": "Mortar."},
        {"role": "user", "content": "And an arch?"},
    ]
    assert session.history[-1] == {"role": "assistant", "content": "The keystone."}  # stripped
    assert session.last is not None and session.last.output_tokens == 6


def test_repl_commands_reset_system_and_exit() -> None:
    rt = ScriptedRuntime(["one", "two", "three", "never"])
    session, out, err, n = repl(rt, ["hi", "", "/system Speak like a mason.", "again", "/reset", "fresh",
                                     "/nope", "/help", "exit", "not read"])
    assert n == 3 and out == "one\ntwo\nthree\n"
    assert rt.seen[1][0] == {"role": "system", "content": "Speak like a mason."}
    assert [m["role"] for m in rt.seen[1]] == ["system", "user", "assistant", "user"]
    assert rt.seen[2] == [{"role": "system", "content": "Speak like a mason."}, {"role": "user", "content": "fresh"}]
    assert "conversation cleared" in err and "unknown command /nope" in err and "/system TEXT" in err
    assert rt.answers == ["never"]  # nothing after `exit` was read
    assert session.history[-1]["content"] == "three"
    assert err.count("tok/s") == 3  # a stats line after each answer


@pytest.mark.parametrize("word", ["quit", "/quit", "exit"])
def test_exit_words(word: str) -> None:
    _, out, _, n = repl(ScriptedRuntime(["x"]), [word, "hi"])
    assert n == 0 and out == ""


def test_ctrl_d_and_ctrl_c_at_the_prompt_leave() -> None:
    _, _, _, n = repl(ScriptedRuntime(["a"]), ["hi"])  # then EOF
    assert n == 1

    def interrupted() -> str:
        raise KeyboardInterrupt

    session = ChatSession(ScriptedRuntime([]), GenerationParams())
    assert run_repl(session, out=io.StringIO(), err=Console(file=io.StringIO()), read=interrupted) == 0


def test_ctrl_c_during_an_answer_drops_it_and_keeps_chatting(tmp_path: Path) -> None:
    rt = ScriptedRuntime(["a long answer that is interrupted", "second answer"])
    rt.interrupt_after = 2
    with ChatLogger(tmp_path / "log.jsonl") as logger:
        _, out, err, n = repl(rt, ["first", "second"], logger=logger)
    assert n == 1 and "interrupted" in err
    assert out.startswith("a long") and out.endswith("second answer\n")
    assert rt.seen[1] == [{"role": "user", "content": "second"}]  # the interrupted turn is not history
    rows = read_jsonl(tmp_path / "log.jsonl")
    assert [m["content"] for m in rows[0]["messages"]] == ["second", "second answer"]


def test_a_runtime_error_is_reported_and_the_session_goes_on() -> None:
    class Failing(ScriptedRuntime):
        def stream(self, messages, params=None):
            if not self.seen:
                self.seen.append(messages)
                raise MasonError("prompt longer than the context", hint="use /reset")
            yield from super().stream(messages, params)

    session, out, err, n = repl(Failing(["fine"]), ["too long", "short"])
    assert n == 1 and out == "fine\n" and "prompt longer than the context" in err and "/reset" in err
    assert [m["content"] for m in session.history] == ["short", "fine"]


def test_empty_answer_is_neither_kept_nor_logged(tmp_path: Path) -> None:
    rt = ScriptedRuntime(["   ", "real"])
    with ChatLogger(tmp_path / "log.jsonl") as logger:
        session, _, err, n = repl(rt, ["a", "b"], logger=logger)
    assert n == 1 and "empty answer" in err
    assert session.history == [{"role": "user", "content": "b"}, {"role": "assistant", "content": "real"}]
    assert len(read_jsonl(tmp_path / "log.jsonl")) == 1


def test_stream_answer_writes_pieces_without_leading_blank() -> None:
    out = io.StringIO()
    result = stream_answer(ChatSession(ScriptedRuntime(["\n\n  Mortar holds them."]), GenerationParams()), "q", out)
    assert out.getvalue() == "Mortar holds them.\n" and result.text == "Mortar holds them."
    assert "tokens" in stats_line(result) and "tok/s" in stats_line(result)


def test_each_exchange_logs_the_conversation_so_far(tmp_path: Path) -> None:
    rt = ScriptedRuntime(["Mortar holds them together.", "The keystone locks the arch."])
    with ChatLogger(tmp_path / "log.jsonl") as logger:
        session = ChatSession(rt, GenerationParams(max_tokens=32), system="Be brief.", logger=logger, model="m")
        for q in ("What holds bricks together?", "What locks an arch?"):
            "".join(session.reply(q))
    first, second = read_jsonl(tmp_path / "log.jsonl")
    assert [m["role"] for m in first["messages"]] == ["system", "user", "assistant"]
    assert second["messages"] == session.messages()
    assert second["meta"]["params"]["max_tokens"] == 32 and second["meta"]["task"] == "chat"
    assert second["meta"]["runtime"] == {"format": "merged", "backend": "scripted"}
    assert second["meta"]["tokens"]["output"] == 10
