"""`mason run PIPELINE [TASKS]`: run a pipeline, or print its plan with `--dry-run`.

The command body is `run_command`; the CLI registers it as
`app.command("run")(handles_errors(run_command))`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from mason import __version__
from mason.core.errors import TaskNotAvailableError


def run_command(
    pipeline: Annotated[Path, typer.Argument(help="The pipeline YAML file.")],
    tasks: Annotated[list[str] | None, typer.Argument(help="Tasks to run (default: all configured).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Re-run the named tasks (all if none) even if cached.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and print the plan; do no work.")] = False,
    wait: Annotated[float, typer.Option(help="Seconds to wait for another run holding the workspace.")] = 0.0,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Draw progress bars.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan or the run summary as JSON on stdout.")] = False,
    resume_verify: Annotated[bool, typer.Option(
        "--resume-verify", help="On resume, check finished generation rows still match their prompts.")] = False,
    no_input: Annotated[bool, typer.Option(
        "--no-input", help="Never stop for a person: the curation UI stays closed (saved decisions apply).")] = False,
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
                    resume_verify=resume_verify, no_input=no_input)
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
