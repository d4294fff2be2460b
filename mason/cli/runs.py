"""`mason runs`: list, show and compare the runs a workspace's tracker recorded.

Read-only: the tracker is opened in SQLite's read-only mode and nothing is created, so these
commands are safe to run beside a live `mason run` (they see its metrics as they are logged).
Tables go to stdout; `--json` prints pure JSON to stdout instead; errors go to stderr.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mason.core.errors import MasonError

if TYPE_CHECKING:  # rich and the tracker are imported inside commands: `mason --help` stays fast
    from rich.console import Console
    from rich.table import Table

    from mason.pipeline.tracker import Tracker

runs_app = typer.Typer(
    help="Inspect tracked runs: list them, show one, compare several.",
    no_args_is_help=True,
)

DEFAULT_WORKSPACE = Path(".mason")
WorkspaceOpt = Annotated[
    Path,
    typer.Option(
        "--workspace",
        "-w",
        help="workspace folder, or the pipeline YAML (its workspace is `.mason` beside it)",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON to stdout instead of tables")]

_STATUS_STYLE = {
    "running": "cyan",
    "success": "green",
    "done": "green",
    "cached": "blue",
    "failed": "red",
    "interrupted": "yellow",
}


def workspace_from_option(path: Path) -> Path:
    """The workspace folder that a `--workspace` value names.

    A pipeline YAML file (`.yaml`/`.yml`) names the `.mason` folder beside it, a tracker
    database file names its folder, a project folder holding a `.mason` workspace (and no
    tracker of its own) names that, anything else is the workspace itself. The YAML is not
    read here; the CLI may replace this function (`mason.cli.runs.workspace_from_option = f`) with
    one that honours a pipeline's `workspace:` section, and the commands pick it up.

    Returns:
        the workspace folder (it may not exist).
    """
    if path.suffix.lower() in (".yaml", ".yml"):
        return path.parent / DEFAULT_WORKSPACE
    if path.suffix == ".db" and path.is_file():
        return path.parent
    if path.is_dir() and not (path / "mason.db").is_file() and (path / DEFAULT_WORKSPACE).is_dir():
        return path / DEFAULT_WORKSPACE  # a project folder: its workspace beside its pipeline.yaml
    return path


# --------------------------------------------------------------------------- plumbing


@contextmanager
def _reported_errors() -> Iterator[None]:
    """Turn a MasonError (or a broken database) into one message on stderr and exit code 1."""
    import sqlite3

    try:
        yield
    except MasonError as e:
        _print_error(str(e))
        raise typer.Exit(code=e.exit_code) from None
    except sqlite3.Error as e:
        _print_error(f"cannot read the tracker database: {e}")
        raise typer.Exit(code=1) from None


def _print_error(message: str) -> None:
    from rich.text import Text

    from mason.core.console import console

    # Text, not markup: messages quote user input and may contain "[...]".
    console().print(Text.assemble(("error: ", "bold red"), message))


@contextmanager
def _open_tracker(workspace: Path) -> Iterator[Tracker]:
    """The workspace's tracker, read-only.

    Errors raised while opening it, and inside the `with` body, are reported and exit 1.
    """
    with _reported_errors():
        from mason.pipeline.tracker import DB_NAME, Tracker

        folder = workspace_from_option(workspace)
        if not folder.is_dir():
            raise MasonError(
                f"no runs yet in {folder}: there is no such workspace folder",
                hint="run `mason run pipeline.yaml` first, or point --workspace at the "
                "workspace folder or the pipeline YAML",
            )
        with Tracker(folder / DB_NAME, readonly=True) as tracker:
            yield tracker


def _jsonable(obj: Any) -> Any:
    # JSON has no NaN or Infinity: print null, so any JSON parser reads the output.
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


def _print_json(obj: Any) -> None:
    typer.echo(json.dumps(_jsonable(obj), indent=2, ensure_ascii=False, allow_nan=False))


def _stdout() -> Console:
    from rich.console import Console

    return Console(highlight=False)


def _table(title: str | None, *columns: str) -> Table:
    from rich import box
    from rich.table import Table

    # SIMPLE_HEAD: no vertical rules, so an 80-column terminal fits more text.
    table = Table(title=title, title_justify="left", title_style="bold", header_style="bold",
                  box=box.SIMPLE_HEAD)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def _status(status: str | None) -> str:
    style = _STATUS_STYLE.get(status or "", "")
    return f"[{style}]{status}[/{style}]" if style else str(status)


def _when(iso: str | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """An ISO UTC timestamp in local time."""
    if not iso:
        return "-"
    return datetime.fromisoformat(iso).astimezone().strftime(fmt)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _number(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def _value(value: Any) -> str:
    """A param value as the YAML would show it: strings bare, the rest as JSON."""
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return _number(value)
    return json.dumps(value, ensure_ascii=False)


def _escape(text: Any) -> str:
    from rich.markup import escape

    return escape(str(text))


# --------------------------------------------------------------------------- commands


@runs_app.command("list")
def list_cmd(
    workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
    limit: Annotated[int, typer.Option("--limit", "-n", help="show at most this many runs")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """List the most recent runs, newest first."""
    with _open_tracker(workspace) as tracker:
        runs = tracker.list_runs(limit=limit)
    if as_json:
        _print_json(runs)
        return
    if not runs:
        _stdout().print("no runs yet")
        return
    # The pipeline column only when it tells runs apart (two YAMLs beside one `.mason`):
    # an 80-column terminal has no room to spare.
    with_pipeline = len({run["pipeline_path"] for run in runs}) > 1
    columns = ["id", "name", "status", "started", "duration", "tasks"]
    table = _table(None, *columns, *(["pipeline"] if with_pipeline else []))
    for column in table.columns:  # ids, statuses and times stay on one line
        column.no_wrap = column.header in ("id", "status", "started", "duration")
    for run in runs:
        tasks = ", ".join(f"{n} {status}" for status, n in sorted(run["tasks"].items()))
        row = [
            run["id"],
            _escape(run["name"] or ""),
            _status(run["status"]),
            _when(run["started_at"], "%Y-%m-%d %H:%M"),
            _duration(run["duration_s"]),
            tasks or "-",
        ]
        table.add_row(*row, *([_escape(run["pipeline_path"])] if with_pipeline else []))
    _stdout().print(table)


# `-1`/`-2` name runs; without this click takes them for unknown options.
_RUN_REF_COMMAND = {"context_settings": {"ignore_unknown_options": True}}


def _check_refs(refs: list[str]) -> None:
    """Reject a mistyped option that `ignore_unknown_options` let through as a run ref."""
    for ref in refs:
        if ref.startswith("-") and not ref[1:].isdigit():
            raise MasonError(f"no such option: {ref}", hint="see --help")


@runs_app.command("show", **_RUN_REF_COMMAND)
def show_cmd(
    run: Annotated[
        str, typer.Argument(help="run id, unique id prefix, name, `latest`, or -1, -2, ...")
    ] = "latest",
    workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
    as_json: JsonOpt = False,
) -> None:
    """Show one run: its tasks, final metrics and artifacts."""
    with _open_tracker(workspace) as tracker:
        _check_refs([run])
        info = tracker.get_run(run)
    if as_json:
        _print_json(info)
        return
    out = _stdout()
    _print_run_header(out, info)
    tasks = _table("Tasks", "task", "status", "key", "duration", "counts", "error")
    for task in info["tasks"]:
        counts = ", ".join(f"{k}={_number(v)}" for k, v in (task["counts"] or {}).items())
        tasks.add_row(
            _escape(task["task"]),
            _status(task["status"]),
            _escape(task["key"][:12]),
            _duration(task["duration_s"]),
            _escape(counts),
            _escape(task["error"] or ""),
        )
    metrics = _table("Final metrics", "task", "metric", "value", "step")
    for m in info["metrics"]:
        step = "-" if m["step"] is None else str(m["step"])
        metrics.add_row(_escape(m["task"]), _escape(m["name"]), _number(m["value"]), step)
    artifacts = _table("Artifacts", "task", "kind", "path")
    for a in info["artifacts"]:
        artifacts.add_row(_escape(a["task"]), _escape(a["kind"]), _escape(a["path"]))
    for table, rows in ((tasks, info["tasks"]), (metrics, info["metrics"]),
                        (artifacts, info["artifacts"])):
        out.print()
        if rows:
            out.print(table)
        else:
            out.print(f"[bold]{table.title}[/bold]: [dim]none[/dim]")


def _print_run_header(out: Console, info: dict[str, Any]) -> None:
    from rich.table import Table

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    grid.add_row("run", info["id"] + (f"  ({_escape(info['name'])})" if info["name"] else ""))
    grid.add_row("status", _status(info["status"]))
    grid.add_row("pipeline", _escape(info["pipeline_path"]))
    grid.add_row("started", _when(info["started_at"]))
    grid.add_row("ended", _when(info["ended_at"]))
    grid.add_row("duration", _duration(info["duration_s"]))
    grid.add_row("mason", _escape(info["mason_version"]))
    if info["error"]:
        grid.add_row("error", f"[red]{_escape(info['error'])}[/red]")
    out.print(grid)


@runs_app.command("compare", **_RUN_REF_COMMAND)
def compare_cmd(
    runs: Annotated[
        list[str],
        typer.Argument(help="two or more runs: ids, unique prefixes, names, `latest`, -1, -2..."),
    ],
    workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
    show_all: Annotated[
        bool, typer.Option("--all", help="also list the params that are equal in every run")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Compare the params and final metrics of several runs side by side.

    Rows that differ are highlighted. `--json` always includes every row with a `differs` flag.
    """
    with _open_tracker(workspace) as tracker:
        _check_refs(runs)
        result = tracker.compare(runs)
    if as_json:
        _print_json(result)
        return
    headers = [r["id"] + (f"\n{r['name']}" if r["name"] else "") for r in result["runs"]]
    out = _stdout()
    params = [p for p in result["params"] if show_all or p["differs"]]
    if params:
        table = _table("Params", "param", *headers)
        for p in params:
            _add_compare_row(table, p["key"], [_value(v) for v in p["values"]], p["differs"])
        out.print(table)
    hidden = len(result["params"]) - len(params)
    if hidden:
        out.print(f"[dim]{hidden} equal param{'s' if hidden != 1 else ''} hidden "
                  f"(--all shows them)[/dim]")
    out.print()
    if not result["metrics"]:
        out.print("[bold]Final metrics[/bold]: [dim]none[/dim]")
        return
    table = _table("Final metrics", "metric", *headers)
    for m in result["metrics"]:
        values = ["-" if v is None else _number(v) for v in m["values"]]
        _add_compare_row(table, f"{m['task']}/{m['name']}", values, m["differs"])
    out.print(table)


def _add_compare_row(table: Table, label: str, values: list[str], differs: bool) -> None:
    # Differing rows stand out; a marker too, so the difference survives without colour.
    mark = "* " if differs else "  "
    table.add_row(mark + _escape(label), *[_escape(v) for v in values],
                  style="bold yellow" if differs else None)
