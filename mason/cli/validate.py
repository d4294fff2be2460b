"""`mason validate DATA`: check a dataset file's format and quality, and optionally filter it.

The command body is `validate_command`; the CLI registers it as
`app.command("validate")(handles_errors(validate_command))`. The report goes to stdout (rich
tables, or pure JSON with `--json`); errors go to stderr through `handles_errors`.

Exit codes: 0 when the share of clean rows reaches `--min-quality`, 1 when it does not (or a
sample cannot be written in the asked format), 2 when the file cannot be read or the command
line is wrong.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mason.data.files import DatasetFileError
from mason.data.formats import FORMATS

if TYPE_CHECKING:  # rich and the validator are imported inside the command: `mason --help` stays fast
    from rich.console import Console

    from mason.data.validate import ValidationReport

MAX_ERRORS_SHOWN = 20


def _check_format(value: str) -> str:
    from mason.core.errors import InputError
    from mason.data.formats import normalize_format

    if value == "auto":
        return value
    try:
        return normalize_format(value)
    except InputError as e:
        raise typer.BadParameter(f"{e.message}; {e.hint}") from None


def filtered_path(data: Path, output: Path | None) -> Path:
    """Where `--filter` writes: `--output`, or `<name>.filtered.jsonl` beside the input.

    Raises:
        DatasetFileError: the output is the input file itself (it is never overwritten).
    """
    out = output or data.with_name(f"{data.stem}.filtered.jsonl")
    same = out.exists() and data.exists() and os.path.samefile(out, data)
    if same or out.resolve() == data.resolve():
        raise DatasetFileError(f"--output {out} is the input file: MASON never overwrites its input",
                               hint="give --output another path (or leave it out for <name>.filtered.jsonl)")
    return out


def validate_command(
    data: Annotated[Path, typer.Argument(help="Dataset file: JSONL, or a JSON array (.json).", show_default=False)],
    fmt: Annotated[str, typer.Option(
        "--format", callback=_check_format,
        help=f"Rows' format: auto (per row) or one of {', '.join(FORMATS)}. "
             "With --filter, also the output's format (auto writes the data contract, openai).")] = "auto",
    filter: Annotated[bool, typer.Option(
        "--filter", help="Write the clean rows (no format error, no quality issue) to --output.")] = False,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="File --filter writes (default: <name>.filtered.jsonl beside the input; "
                               "a .json name gets a JSON array).", show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")] = False,
    min_quality: Annotated[float, typer.Option(
        "--min-quality", min=0.0, max=1.0,
        help="Share of clean rows needed to pass (exit 0); below it, exit 1.")] = 0.5,
) -> None:
    """Validate a dataset file: format errors with line numbers, quality issues, worst examples.

    Reads OpenAI messages (with tools), ShareGPT, Alpaca, prompt/completion, plain text,
    {input, output} and prompt/chosen/rejected rows. Exit 0 when the share of clean rows is at
    least --min-quality, 1 when it is below, 2 when the file cannot be read.
    """
    from mason.data.files import check_readable, write_dataset
    from mason.data.validate import validate_dataset

    if output is not None and not filter:
        raise typer.BadParameter("--output is where --filter writes: add --filter", param_hint="--output")
    check_readable(data)
    out = filtered_path(data, output) if filter else None
    report = validate_dataset(data, fmt=fmt, keep_samples=filter)
    written = None
    if out is not None:
        written = write_dataset([s for _, s in report.samples], out, fmt="openai" if fmt == "auto" else fmt)
    passed = report.passed(min_quality)
    if as_json:
        result: dict[str, Any] = {**report.to_dict(), "min_quality": min_quality, "passed": passed}
        if out is not None:
            result["filtered"] = {"path": str(out), "rows": written}
        typer.echo(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        _print_report(report, min_quality, passed, out, written)
    if not passed:
        raise typer.Exit(code=1)


# --------------------------------------------------------------------------- the rich report


def _stdout() -> Console:
    from rich.console import Console

    return Console(highlight=False)


def _table(title: str, *columns: str) -> Any:
    from rich import box
    from rich.table import Table

    table = Table(title=title, title_justify="left", title_style="bold", header_style="bold", box=box.SIMPLE_HEAD)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _print_report(report: ValidationReport, min_quality: float, passed: bool,
                  out: Path | None, written: int | None) -> None:
    from rich.markup import escape

    console = _stdout()
    formats = ", ".join(f"{k}: {v}" for k, v in report.formats.most_common()) or "none readable"
    mean = "-" if report.mean_score is None else f"{report.mean_score:.2f}"
    console.print(f"[bold]{escape(str(report.path))}[/bold]  ({escape(formats)})")
    console.print(f"rows {report.rows} · clean {report.clean_rows} · format errors in {report.format_error_rows} "
                  f"· quality issues in {report.quality_issue_rows} · mean score {mean}")
    _print_issues(console, report)
    _print_worst(console, report)
    _print_errors(console, report)
    verdict = "[bold green]PASS[/bold green]" if passed else "[bold red]FAIL[/bold red]"
    relation = "≥" if passed else "<"
    console.print(f"{verdict}: quality {_pct(report.quality)} {relation} {_pct(min_quality)} (share of clean rows)")
    if out is not None:
        console.print(f"wrote {written} clean row{'' if written == 1 else 's'} to {escape(str(out))}")


def _print_issues(console: Console, report: ValidationReport) -> None:
    from mason.data.validate import FORMAT_ERRORS

    if not report.format_error_counts and not report.quality_issue_counts:
        return
    table = _table("issues", "kind", "issue", "count")
    for code, n in report.format_error_counts.most_common():
        table.add_row("format", f"{code} ({FORMAT_ERRORS.get(code, code)})", str(n))
    for code, n in report.quality_issue_counts.most_common():
        table.add_row("quality", code, str(n))
    console.print(table)


def _print_worst(console: Console, report: ValidationReport) -> None:
    from rich.markup import escape

    if not report.worst:
        return
    table = _table("worst examples", "line", "score", "issues", "preview")
    for row in report.worst:
        table.add_row(str(row.line), f"{row.score:.2f}", ", ".join(row.issues) or "-", escape(row.preview))
    console.print(table)


def _print_errors(console: Console, report: ValidationReport) -> None:
    from rich.markup import escape

    if not report.format_errors:
        return
    table = _table("format errors", "line", "error", "message")
    for err in report.format_errors[:MAX_ERRORS_SHOWN]:
        table.add_row(str(err.line), err.code, escape(err.message))
    console.print(table)
    hidden = sum(report.format_error_counts.values()) - min(len(report.format_errors), MAX_ERRORS_SHOWN)
    if hidden > 0:
        console.print(f"… and {hidden} more format errors (--json lists up to {len(report.format_errors)})")
