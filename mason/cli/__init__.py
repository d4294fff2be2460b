"""The `mason` command: one module per verb; thin — it parses, calls the API, prints.

This package owns the typer `app`, the entry point `main`, the error handling every verb shares
(`handles_errors`) and the wiring of the verbs: `run`, `init`, `models`, `validate`, `report`,
`chat` and the `runs` sub-app, each in the module of that name.

Heavy libraries are imported inside commands so `mason --help` stays fast.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer

from mason import __version__
from mason.cli.chat import chat_command
from mason.cli.curate import curate_command
from mason.cli.init import init_command
from mason.cli.models import models_command
from mason.cli.report import report_cmd
from mason.cli.run import run_command
from mason.cli.runs import runs_app
from mason.cli.validate import validate_command
from mason.core.errors import MasonError

app = typer.Typer(
    name="mason",
    help="MASON: documents -> synthetic data -> fine-tuned, evaluated, exported small model.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

app.add_typer(runs_app, name="runs", help="List, show and compare tracked runs (read-only).")


def _fail(err: MasonError) -> None:
    from rich.markup import escape

    from mason.core.console import console

    console().print(f"[bold red]error:[/bold red] {escape(err.message)}")
    if err.hint:
        console().print(f"  [dim]hint:[/dim] {escape(err.hint)}")
    raise typer.Exit(code=err.exit_code)


def handles_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn MasonError into one clear message and its exit code; Ctrl-C into exit 130."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except MasonError as err:
            _fail(err)
        except KeyboardInterrupt:
            from mason.core.console import console

            console().print("[yellow]interrupted[/yellow]: rerun the same command to resume")
            raise typer.Exit(code=130) from None

    return wrapper


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mason {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")] = False,
) -> None:
    """MASON command line."""


app.command("run")(handles_errors(run_command))
app.command("init")(handles_errors(init_command))
app.command("models")(handles_errors(models_command))
app.command("validate", help="Check a dataset file: format errors with line numbers, quality score; --filter.")(
    handles_errors(validate_command)
)


app.command("curate")(handles_errors(curate_command))
app.command("report", context_settings={"ignore_unknown_options": True})(report_cmd)
app.command("chat", help="Chat with a model (merged, adapter, GGUF, ONNX, MLX); --prompt for one answer; "
            "--log saves exchanges as training data.")(handles_errors(chat_command))


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except BrokenPipeError:
        sys.exit(0)
