"""The `mason` command. Thin: it parses arguments, calls the Python API and prints.

Heavy libraries are imported inside commands so `mason --help` stays fast.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from mason import __version__
from mason.cli_chat import chat_command
from mason.cli_report import report_cmd
from mason.cli_runs import runs_app
from mason.cli_validate import validate_command
from mason.core.errors import MasonError, TaskNotAvailableError

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


@app.command()
@handles_errors
def run(
    pipeline: Annotated[Path, typer.Argument(help="The pipeline YAML file.")],
    tasks: Annotated[list[str] | None, typer.Argument(help="Tasks to run (default: all configured).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Re-run the named tasks (all if none) even if cached.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and print the plan; do no work.")] = False,
    wait: Annotated[float, typer.Option(help="Seconds to wait for another run holding the workspace.")] = 0.0,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Draw progress bars.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan or the run summary as JSON on stdout.")] = False,
    resume_verify: Annotated[bool, typer.Option(
        "--resume-verify", help="On resume, check finished generation rows still match their prompts.")] = False,
) -> None:
    """Run a pipeline, or some of its tasks, in dependency order. Cached tasks are skipped."""
    from mason.api import Pipeline

    p = Pipeline.from_yaml(pipeline)
    if dry_run:
        plan = p.plan(tasks or None, force=force)
        _print_plan(plan, as_json)
        if any(t.state == "unavailable" for t in plan):
            names = ", ".join(t.name for t in plan if t.state == "unavailable")
            raise TaskNotAvailableError(f"not available in MASON {__version__} yet: {names}")
        return
    summary = p.run(tasks or None, force=force, wait=wait, show_progress=progress and not as_json,
                    resume_verify=resume_verify)
    if as_json:
        typer.echo(json.dumps({
            "run_id": summary.run_id,
            "status": summary.status,
            "tasks": [{"task": t.name, "key": t.key, "status": t.status, "seconds": round(t.seconds, 3),
                       "counts": t.counts, "artifacts": str(t.out_dir)} for t in summary.tasks],
        }, indent=2))
    else:
        from mason.core.console import console

        console().print(f"[bold green]run {summary.run_id} finished[/bold green] "
                        f"(see `mason runs show {summary.run_id} -w {p.workspace.root}`)")


def _print_plan(plan: list[Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps([{"task": t.name, "key": t.key, "state": t.state, "inputs": t.inputs,
                                "artifacts": str(t.out_dir)} for t in plan], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    styles = {"cached": "green", "run": "cyan", "resume": "yellow", "unavailable": "red"}
    table = Table(title="plan")
    for col in ("task", "key", "state", "inputs"):
        table.add_column(col)
    for t in plan:
        state = "not available yet" if t.state == "unavailable" else t.state
        table.add_row(t.name, t.key, f"[{styles[t.state]}]{state}[/]", ", ".join(t.inputs) or "-")
    console = Console()
    console.print(table, width=max(console.width, 100))


@app.command()
@handles_errors
def init(
    folder: Annotated[Path, typer.Argument(help="Folder to create (pipeline.yaml + docs/).")] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing pipeline.yaml.")] = False,
) -> None:
    """Write a ready pipeline.yaml and sample documents: `mason init demo && mason run demo/pipeline.yaml`."""
    from mason.core.console import console
    from mason.scaffold import init_project

    written = init_project(folder, force=force)
    for path in written:
        console().print(f"  wrote {path}")
    console().print(f"[bold green]ready[/bold green]: mason run {folder / 'pipeline.yaml'}")


@app.command()
@handles_errors
def models() -> None:
    """List the built-in models (usable offline as `base_model:`)."""
    from mason.models import BUILTIN_MODELS

    for name, model in BUILTIN_MODELS.items():
        typer.echo(f"{name}\t{getattr(model, 'description', '')}")


app.command("validate", help="Check a dataset file: format errors with line numbers, quality score; --filter.")(
    handles_errors(validate_command)
)


app.command("report", context_settings={"ignore_unknown_options": True})(report_cmd)
app.command("chat", help="Chat with a model (merged, adapter, GGUF, ONNX, MLX); --prompt for one answer; "
            "--log saves exchanges as training data.")(handles_errors(chat_command))


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except BrokenPipeError:
        sys.exit(0)
