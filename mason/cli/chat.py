"""`mason chat MODEL`: talk to a model (merged folder, adapter, GGUF, ONNX or MLX) in the terminal.

The command body is `chat_command`; the CLI registers it as
`app.command("chat")(handles_errors(chat_command))`.

Output: answers go to stdout as they are decoded, and nothing else does; the `you>` prompt,
banners and stats go to stderr. With `--prompt`, one answer is printed as plain text and the
command exits (stats on stderr only with `--stats`); in the REPL a stats line follows each answer.

Temperature: greedy (0) with `--prompt`, so scripted answers are reproducible; 0.7 in the REPL.
`--temperature` overrides both.

Exit codes: 0 (also for exit/quit/Ctrl-D/Ctrl-C at the prompt), 1 for a missing or unknown model
(InputError) and load errors, 130 for Ctrl-C during a `--prompt` answer, 143 on SIGTERM (the log
is complete: every finished exchange is on disk).
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

REPL_TEMPERATURE = 0.7


def _check_format(value: str | None) -> str | None:
    from mason.runtime.base import FORMATS

    if value is not None and value not in FORMATS:
        raise typer.BadParameter(f"unknown format {value!r}; formats: {', '.join(FORMATS)}")
    return value


def _check_device(value: str) -> str:
    from mason.models.device import check_device_name

    try:
        return check_device_name(value)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None


@contextlib.contextmanager
def exit_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM (and SIGHUP) into `SystemExit(128 + signum)` while the block runs, so `finally`
    blocks and atexit hooks run (the chat log is drained) instead of the process dying at once."""
    def handler(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    names = [s for s in ("SIGTERM", "SIGHUP") if hasattr(signal, s)]
    previous = {}
    for name in names:
        sig = getattr(signal, name)
        with contextlib.suppress(ValueError):  # not the main thread: leave the default
            previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def chat_command(
    model: Annotated[Path, typer.Argument(
        help="Model: a merged or adapter folder, a .gguf file, an ONNX or MLX folder.", show_default=False)],
    prompt: Annotated[str | None, typer.Option(
        "--prompt", "-p", help="Answer this one message, print the answer to stdout and exit.",
        show_default=False)] = None,
    system: Annotated[str | None, typer.Option("--system", help="System prompt.", show_default=False)] = None,
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=1, help="Most tokens per answer.")] = 256,
    temperature: Annotated[float | None, typer.Option(
        "--temperature", min=0.0, help="Sampling temperature; 0 is greedy. Default: 0 with --prompt, "
                                       f"{REPL_TEMPERATURE} in the REPL.", show_default=False)] = None,
    top_p: Annotated[float, typer.Option("--top-p", min=0.0, max=1.0, help="Nucleus sampling mass.")] = 1.0,
    repetition_penalty: Annotated[float, typer.Option(
        "--repetition-penalty", min=0.0, help="Penalty on repeated tokens (1 = none).")] = 1.1,
    seed: Annotated[int, typer.Option("--seed", help="Random seed for sampling.")] = 0,
    fmt: Annotated[str | None, typer.Option(
        "--format", callback=_check_format, help="Force the model format: merged, adapter, gguf, onnx, mlx.",
        show_default=False)] = None,
    base: Annotated[str | None, typer.Option(
        "--base", help="Adapters: the base model to put the adapter on (folder, .gguf, built-in name, hub id) "
                       "instead of the one adapter_config.json names.", show_default=False)] = None,
    log: Annotated[Path | None, typer.Option(
        "--log", help="Append each exchange (the conversation so far) to this JSONL file, in the data "
                      "contract: `mason validate` checks it and training reads it.", show_default=False)] = None,
    stats: Annotated[bool, typer.Option(
        "--stats", help="With --prompt: print tokens, seconds and tokens/s to stderr.")] = False,
    device: Annotated[str, typer.Option(
        "--device", callback=_check_device, help="Where a merged or adapter model runs: auto (CUDA, else Apple MPS, "
                                                 "else the CPU), cpu, cuda, cuda:N or mps.")] = "auto",
) -> None:
    """Chat with a model: streaming answers, multi-turn history, /reset, /system; or one --prompt.

    In the REPL: `exit`, `quit` or Ctrl-D leave; Ctrl-C stops an answer (or leaves at the prompt);
    `/reset` forgets the conversation; `/system TEXT` sets the system prompt; `/help` lists them.
    """
    from rich.markup import escape

    from mason.core.console import console, warn
    from mason.core.errors import InputError
    from mason.runtime.base import GenerationParams, detect_format, open_runtime

    fmt = fmt or detect_format(model)
    if log is not None and log.is_dir():
        raise InputError(f"--log {log} is a folder", hint="give a file name, e.g. --log chats.jsonl")
    if base is not None and fmt != "adapter":
        raise InputError(f"--base applies to adapter folders; {model} is a {fmt} model",
                         hint="remove --base, or pass an adapter folder")
    if temperature is None:
        temperature = 0.0 if prompt is not None else REPL_TEMPERATURE
    params = GenerationParams(max_tokens=max_tokens, temperature=temperature, top_p=top_p,
                              repetition_penalty=repetition_penalty, seed=seed)
    err = console()
    with exit_on_sigterm():
        if prompt is None:
            err.print(f"[dim]loading {escape(str(model))} ({fmt})…[/dim]")
        options: dict[str, Any] = {}
        if fmt in ("merged", "adapter"):
            options["device"] = device
        elif device != "auto":
            warn(f"--device applies to merged and adapter models; the {fmt} runtime picks its own hardware")
        runtime = open_runtime(model, format=fmt, base_model=base, **options)
        try:
            _talk(runtime, params, model=str(model.expanduser().resolve()), prompt=prompt, system=system,
                  log=log, stats=stats)
        finally:
            runtime.close()


def _talk(runtime: Any, params: Any, *, model: str, prompt: str | None, system: str | None,
          log: Path | None, stats: bool) -> None:
    from rich.markup import escape

    from mason.chat import ChatLogger, ChatSession, run_repl, stats_line, stream_answer
    from mason.core.console import console, warn
    from mason.core.errors import InputError

    err = console()
    try:
        logger = ChatLogger(log) if log is not None else None
    except OSError as e:
        raise InputError(f"--log {log}: cannot open it for appending ({e.strerror or e})") from None
    session = ChatSession(runtime, params, system=system, logger=logger, model=model)
    try:
        if prompt is not None:
            try:
                result = stream_answer(session, prompt, sys.stdout)
            except KeyboardInterrupt:
                raise typer.Exit(code=130) from None
            if stats:
                err.print(f"[dim]{stats_line(result)}[/dim]")
            if not result.text:
                warn("the model gave an empty answer" + (" (not logged)" if logger else ""))
            return
        info = runtime.describe()
        err.print(f"[bold]chatting with {escape(model)}[/bold] [dim]({info.get('format')}, {info.get('backend')}, "
                  f"temperature {params.temperature}) — /help for commands, exit or Ctrl-D to leave[/dim]")
        if sys.stdin.isatty() and sys.stdout.isatty():
            with contextlib.suppress(ImportError):  # line editing and history for input(); not on Windows
                import readline  # noqa: F401
            run_repl(session, out=sys.stdout, err=err, read=lambda: input("you> "), show_prompt=False)
        else:  # piped: the prompt goes to stderr so stdout holds only the answers
            run_repl(session, out=sys.stdout, err=err)
    finally:
        if logger is not None:
            logger.close()
            if logger.error is not None:
                warn(f"the chat log {escape(str(log))} is incomplete: {escape(str(logger.error))}")
            elif prompt is None:
                err.print(f"[dim]{logger.written} exchange(s) logged to {escape(str(log))}[/dim]")
