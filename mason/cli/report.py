"""`mason report [RUN]`: the reports a run's tasks wrote (train, evaluation, export), read-only.

Prints each task's Markdown report (rendered by rich), or with `--json` the JSON reports, or with
`--paths` only where the files are; `--open` opens the HTML reports in the browser.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from mason.cli.runs import (
    DEFAULT_WORKSPACE,
    WorkspaceOpt,
    _check_refs,
    _open_tracker,
    _print_json,
    _stdout,
)
from mason.core.errors import MasonError

#: report file stems, in the order tasks run
REPORTS = ("train_report", "eval_report", "export_report")


def find_reports(artifact_dir: Path) -> list[dict[str, Any]]:
    """The reports in one task execution's folder (its curriculum stages' and, for export, the
    exports' evaluation folders too).

    Returns:
        [{"name", "folder", "json", "md", "html"}] with paths that exist (others None).
    """
    folders = [artifact_dir] + sorted(p for p in (artifact_dir / "stages").glob("*") if p.is_dir())
    if (artifact_dir / "evaluation").is_dir():  # the export task's evaluation of the exported models
        folders.append(artifact_dir / "evaluation")
    found = []
    for folder in folders:
        for stem in REPORTS:
            paths = {ext: folder / f"{stem}.{ext}" for ext in ("json", "md", "html")}
            if any(p.is_file() for p in paths.values()):
                label = stem if folder == artifact_dir else f"{stem} ({folder.name})"
                found.append({"name": label, "folder": str(folder),
                              **{ext: str(p) if p.is_file() else None for ext, p in paths.items()}})
    return found


def report_cmd(
    run: Annotated[str, typer.Argument(help="run id, unique id prefix, name, `latest`, or -1, -2, ...")] = "latest",
    workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
    task: Annotated[str | None, typer.Option("--task", "-t", help="only this task's reports")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the JSON reports to stdout")] = False,
    paths: Annotated[bool, typer.Option("--paths", help="print only the report files' paths")] = False,
    open_html: Annotated[bool, typer.Option("--open", help="open the HTML reports in a browser")] = False,
) -> None:
    """Show the reports of a run (default: the latest): training, evaluation, export."""
    with _open_tracker(workspace) as tracker:
        _check_refs([run])
        info = tracker.get_run(run)
        entries = []
        for t in info["tasks"]:
            if (task is None or t["task"] == task) and t.get("artifact_dir"):
                entries += [{"task": t["task"], **r} for r in find_reports(Path(t["artifact_dir"]))]
        if not entries:
            raise MasonError(f"run {info['id'][:12]} has no reports" + (f" for task {task}" if task else ""),
                             hint="reports are written by the training, evaluation and export tasks")
    if as_json:
        _print_json({e["name"]: json.loads(Path(e["json"]).read_text(encoding="utf-8"))
                     for e in entries if e["json"]})
        return
    out = _stdout()
    if paths:
        for e in entries:
            for ext in ("html", "md", "json"):
                if e[ext]:
                    out.print(e[ext], highlight=False, soft_wrap=True)
        return
    from rich.markdown import Markdown
    from rich.rule import Rule

    for e in entries:
        out.print(Rule(f"{e['task']}: {e['name']}"))
        if e["md"]:
            out.print(Markdown(Path(e["md"]).read_text(encoding="utf-8")))
        elif e["json"]:
            out.print_json(Path(e["json"]).read_text(encoding="utf-8"))
        if e["html"]:
            out.print(f"[dim]HTML: {e['html']}[/dim]", soft_wrap=True)
    if open_html:
        import webbrowser

        for e in entries:
            if e["html"]:
                webbrowser.open(Path(e["html"]).resolve().as_uri())


