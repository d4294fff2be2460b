"""A chat session (system prompt, history, decoding settings) and the REPL that drives it.

The session streams each reply from a `Runtime`, keeps the conversation, and hands each finished
exchange to a `ChatLogger`. The REPL reads lines (`you> ` on stderr), streams answers to stdout
and understands a few commands (see `HELP`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TextIO

from mason.core.errors import MasonError
from mason.runtime.base import GenerationParams, GenerationResult, Runtime

if TYPE_CHECKING:
    from rich.console import Console

    from mason.chat.log import ChatLogger

HELP = """\
commands:
  /reset          forget the conversation (the system prompt stays)
  /system TEXT    set the system prompt (/system alone removes it)
  /help           this list
  exit, quit      leave (Ctrl-D too; Ctrl-C stops an answer, or leaves at the prompt)"""
EXIT_WORDS = {"exit", "quit", "/exit", "/quit", "/bye"}


class ChatSession:
    """A multi-turn conversation with one model.

    Args:
        runtime: the loaded model.
        params: decoding settings used for every reply.
        system: the system prompt (None: none).
        logger: where finished exchanges go (None: not logged).
        model: the model's name or path, for the log rows.
    """

    def __init__(self, runtime: Runtime, params: GenerationParams, *, system: str | None = None,
                 logger: ChatLogger | None = None, model: str = ""):
        self.runtime, self.params, self.logger, self.model = runtime, params, logger, model
        self.system = system or None
        self.history: list[dict[str, Any]] = []
        self.last: GenerationResult | None = None

    def messages(self) -> list[dict[str, Any]]:
        """The conversation so far, system prompt first."""
        head = [{"role": "system", "content": self.system}] if self.system else []
        return head + self.history

    def reset(self) -> None:
        """Forget the conversation; the system prompt stays."""
        self.history.clear()

    def set_system(self, text: str | None) -> None:
        """Set (or, with None or "", remove) the system prompt; it applies from the next reply."""
        self.system = text or None

    def reply(self, text: str) -> Iterator[str]:
        """Stream the answer to `text`. Once the stream is complete, the exchange joins the history,
        `last` holds its counts and timings, and it is logged. An interrupted stream (closed early,
        Ctrl-C) leaves the history as it was. An empty answer is not kept (nor logged): a
        conversation with an empty assistant turn is not valid training data.
        """
        messages = [*self.messages(), {"role": "user", "content": text}]
        start = time.perf_counter()
        first: float | None = None
        pieces: list[str] = []
        with contextlib.closing(self.runtime.stream(messages, self.params)) as stream:
            for piece in stream:
                if first is None:
                    first = time.perf_counter() - start
                pieces.append(piece)
                yield piece
        seconds = time.perf_counter() - start
        answer = "".join(pieces).strip()
        prompt_tokens, output_tokens = self.runtime.last_usage
        self.last = GenerationResult(answer, prompt_tokens, output_tokens, seconds, first)
        if not answer:
            return
        self.history += [messages[-1], {"role": "assistant", "content": answer}]
        if self.logger is not None:
            from mason.chat.log import chat_row

            self.logger.log(chat_row(self.messages(), model=self.model, runtime=self.runtime.describe(),
                                     params=self.params.as_dict(), tokens=(prompt_tokens, output_tokens),
                                     seconds=seconds))


def stats_line(result: GenerationResult) -> str:
    """e.g. `12 tokens · 3.1 s · 38.7 tok/s · first token 0.21 s · prompt 40 tokens`."""
    parts = [f"{result.output_tokens} tokens", f"{result.seconds:.2f} s", f"{result.tokens_per_second:.1f} tok/s"]
    if result.first_token_seconds is not None:
        parts.append(f"first token {result.first_token_seconds:.2f} s")
    parts.append(f"prompt {result.prompt_tokens} tokens")
    return " · ".join(parts)


def stream_answer(session: ChatSession, text: str, out: TextIO) -> GenerationResult:
    """Write the answer to `text` to `out` as it is decoded, then a newline.

    Returns:
        the exchange's `GenerationResult` (`session.last`).
    """
    started = False
    for piece in session.reply(text):
        if not started:  # the model's leading whitespace would only push the answer down
            piece = piece.lstrip()
            started = bool(piece)
        out.write(piece)
        out.flush()
    out.write("\n")
    out.flush()
    assert session.last is not None
    return session.last


def _command(session: ChatSession, line: str, err: Console) -> bool:
    """Run a `/command`; returns False when the REPL should end."""
    name, _, arg = line.partition(" ")
    if line in EXIT_WORDS:
        return False
    if name == "/reset":
        session.reset()
        err.print("[dim]conversation cleared[/dim]")
    elif name == "/system":
        session.set_system(arg.strip())
        err.print("[dim]system prompt " + ("set" if session.system else "removed") + "[/dim]")
    elif name == "/help":
        err.print(HELP, markup=False)
    else:
        err.print(f"[yellow]unknown command[/yellow] {name} (/help lists them)", markup=True)
    return True


def run_repl(session: ChatSession, *, out: TextIO, err: Console, read: Callable[[], str] = input,
             show_prompt: bool = True, show_stats: bool = True) -> int:
    """Read lines and answer them until exit/quit, Ctrl-D, or Ctrl-C at the prompt.

    Ctrl-C while an answer streams stops that answer (it is not kept) and returns to the prompt;
    so does a `MasonError` from the runtime, after printing it.
    `show_prompt=False` when `read` shows its own prompt (e.g. `input("you> ")` on a terminal).

    Returns:
        the number of completed exchanges.
    """
    exchanges = 0
    while True:
        if show_prompt:
            err.print("[bold cyan]you>[/bold cyan] ", end="")
        try:
            line = read().strip()
        except (EOFError, KeyboardInterrupt):
            err.print()
            return exchanges
        if not line:
            continue
        if line in EXIT_WORDS or line.startswith("/"):
            if not _command(session, line, err):
                return exchanges
            continue
        try:
            result = stream_answer(session, line, out)
        except KeyboardInterrupt:
            out.write("\n")
            out.flush()
            err.print("[yellow]interrupted[/yellow] (answer not kept)")
            continue
        except MasonError as e:  # e.g. the conversation outgrew the context: say so, keep the session
            from rich.markup import escape

            err.print(f"[bold red]error:[/bold red] {escape(str(e))}")
            continue
        if not result.text:
            err.print("[yellow]empty answer[/yellow] (not kept)")
            continue
        exchanges += 1
        if show_stats:
            err.print(f"[dim]{stats_line(result)}[/dim]")
