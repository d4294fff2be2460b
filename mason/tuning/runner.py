"""Running a plan: each phase resolves its source, curates, optimizes and applies, then the guards
run; everything is one tracker run in the workspace (`mason runs list` shows it).

```
<workspace>/
  mason.db                                  the tracker: the plan run, a task per phase and guard,
                                            the training task of TRL phases, metrics, artifacts, lineage
  active.json                               what apply_lora / apply_model made active
  cache/tuning/sources/<key>.jsonl          fetched records (a re-run reads them)
  artifacts/tuning/<phase>/<key>/           records.jsonl, data.jsonl, lineage.jsonl, phase.json,
                                            the optimizer's output (program.json, ...)
  artifacts/tuning/_runs/<run id>/          plan.json (the artefacts), guards.json
```

A phase's key hashes its source records, its curated data and its optimizer: a phase whose folder
holds a complete `phase.json` for that key is not optimized again (`force=True` re-runs it); its
apply still runs. Lineage rows go `<phase key> -> dataset:<sha> -> sample:<id> -> trace:<id>`
(`lineage()` walks them back).
"""

from __future__ import annotations

import inspect
import sys
import time
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mason import __version__
from mason.core.console import console
from mason.core.errors import InputError, MasonError
from mason.core.hashing import stable_hash
from mason.core.io import JsonlWriter, atomic_write_json
from mason.pipeline.workspace import Workspace
from mason.tuning.records import trace_ids
from mason.tuning.types import Artefact, Phase, PhaseContext, Plan, Source, _row_json, describe, records_hash

#: the phase being run (apply_lora / apply_model record into its tracker run)
_CURRENT: ContextVar[PhaseContext | None] = ContextVar("mason_tuning_phase", default=None)


def current_context() -> PhaseContext | None:
    """The phase `run` is executing in this context, or None outside a plan run."""
    return _CURRENT.get()


class PlanResult(list):
    """What `run` returns: the artefacts in phase order (a list), with the tracker's `run_id` and
    `by_phase` (phase name -> artefact)."""

    def __init__(self, artefacts: Sequence[Artefact], run_id: str, by_phase: dict[str, Artefact]):
        super().__init__(artefacts)
        self.run_id = run_id
        self.by_phase = by_phase


def workspace_for(plan: Plan | None, workspace: str | Path | None, base_dir: str | Path) -> Workspace:
    """The plan's workspace folder: `workspace`, else the plan's, else `.mason` in `base_dir`."""
    root = Path(workspace or (plan.workspace if plan is not None else None) or ".mason").expanduser()
    return Workspace(root if root.is_absolute() else Path(base_dir).resolve() / root)


def describe_plan(plan: Plan) -> dict[str, Any]:
    """The plan as JSON for the tracker's params (`mason runs show`, `compare`)."""
    phases = {}
    for p in plan.phases:
        src = p.source.describe() if isinstance(p.source, Source) else (
            {"records": len(p.source)} if p.source is not None else None)
        phases[p.name] = {"source": src, "curate": describe(p.curate), "optimize": describe(p.optimize),
                          "apply": describe(p.apply)}
    return {"tuning": {"name": plan.name or "tuning", "phases": phases,
                       "guards": [describe(g) for g in plan.guards]}}


def collect_from(source: Source | str, *, workspace: str | Path | None = None, base_dir: str | Path = ".",
                 refresh: bool = False, **filters: Any) -> list[dict[str, Any]]:
    """Resolve a source into normalized records without running anything.

        records = mason.tuning.collect_from("trace://langfuse/support/qa", since="2026-11-01", tags=["prod"])

    Args:
        source: a `Source` or a URI (`filters` then are its filters).
        workspace: cache fetched records there (None: no cache).
    Raises:
        InputError: see `Source.resolve`.
    """
    if isinstance(source, str):
        source = Source(source, refresh=refresh, **filters)
    elif filters or refresh:
        source = Source(source.uri, refresh=refresh or source.refresh, **{**source.filters, **filters})
    return source.resolve(workspace=workspace, base_dir=base_dir)


@contextmanager
def _phase_context(ctx: PhaseContext) -> Iterator[PhaseContext]:
    token = _CURRENT.set(ctx)
    try:
        yield ctx
    finally:
        _CURRENT.reset(token)


def _records(phase: Phase, ws: Workspace, base_dir: Path, previous: Artefact | None) -> tuple[Any, dict[str, Any]]:
    """The phase's input: the source's records, records in hand, or the previous phase's artefact."""
    info: dict[str, Any] = {}
    if isinstance(phase.source, Source):
        from mason.tuning.sources import resolve

        records = resolve(phase.source, workspace=ws.root, base_dir=base_dir, on_fetch=info.update)
        return records, info
    if phase.source is None:
        if previous is None:
            raise InputError(f"phase {phase.name!r} has no source and no phase before it",
                             hint="give it a source: Source('trace://langfuse/<project>/<task>') or a dataset URI")
        return previous, info
    return list(phase.source), info


def _write_data(out_dir: Path, records: Any, data: Any) -> tuple[int, int, list[dict[str, Any]]]:
    """records.jsonl, data.jsonl and lineage.jsonl of a phase; returns (records, rows, lineage)."""
    lineage: list[dict[str, Any]] = []
    n_records = 0
    if isinstance(records, list):
        with JsonlWriter(out_dir / "records.jsonl", resume=False) as w:
            for rec in records:
                w.write(rec)
        n_records = len(records)
    rows = data if isinstance(data, list) else None
    if rows is None:
        return n_records, 0, lineage
    with JsonlWriter(out_dir / "data.jsonl", resume=False) as w:
        for row in rows:
            w.write(row if isinstance(row, dict) else _row_json(row))
            if isinstance(row, dict) and trace_ids(row):
                lineage.append({"sample": str(row.get("id")), "traces": trace_ids(row)})
    with JsonlWriter(out_dir / "lineage.jsonl", resume=False) as w:
        for item in lineage:
            w.write(item)
    return n_records, len(rows), lineage


def _call_optimizer(phase: Phase, data: Any, ctx: PhaseContext) -> Artefact:
    opt = phase.optimize
    if opt is None:
        if (ctx.out_dir / "data.jsonl").is_file():
            return Artefact("dataset", str(ctx.out_dir / "data.jsonl"))
        raise InputError(f"phase {phase.name!r} has no optimizer and no data rows to hand on")
    if hasattr(opt, "optimize"):
        result = opt.optimize(data, ctx)
    else:
        try:
            takes_ctx = len(inspect.signature(opt).parameters) >= 2
        except (TypeError, ValueError):
            takes_ctx = False
        result = opt(data, ctx) if takes_ctx else opt(data)
    if not isinstance(result, Artefact):
        raise InputError(f"phase {phase.name!r}: the optimizer returned {type(result).__name__}, not an Artefact")
    return result


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _run_phase(phase: Phase, plan_name: str, ws: Workspace, base_dir: Path, tracker: Any, run_id: str,
               previous: Artefact | None, artefacts: dict[str, Artefact], *, force: bool,
               show_progress: bool) -> Artefact:
    started = time.monotonic()
    config_key = stable_hash({"phase": phase.name, **describe_plan(Plan([phase]))["tuning"]["phases"][phase.name]})
    try:
        records, fetch = _records(phase, ws, base_dir, previous)
        data = phase.curate(records) if phase.curate is not None else records
    except BaseException as e:  # recorded as a failed task of the run
        exec_id = tracker.start_task(run_id, phase.name, config_key, None)
        tracker.end_task(exec_id, "failed", None, _error_text(e))
        raise
    data = list(data) if isinstance(data, (tuple, Iterator)) else data
    key = stable_hash({"config": config_key, "records": records_hash(records) if isinstance(records, list) else
                       describe(records), "data": records_hash(data) if isinstance(data, list) else describe(data)})
    out_dir = ws.artifacts_dir / "tuning" / phase.name / key
    out_dir.mkdir(parents=True, exist_ok=True)
    exec_id = tracker.start_task(run_id, phase.name, key, str(out_dir))
    ctx = PhaseContext(plan_name, phase.name, key, out_dir, ws.root, base_dir, tracker, run_id,
                       show_progress=show_progress, force=force, artefacts=dict(artefacts))
    manifest_path = out_dir / "phase.json"
    try:
        n_records, n_rows, lineage = _write_data(out_dir, records, data)
        counts = {"records": n_records, "samples": n_rows, "samples_with_traces": len(lineage)}
        if isinstance(data, list):
            ctx.data_key = f"dataset:{records_hash(data)}"
            ctx.add_lineage(key, ctx.data_key)
            if isinstance(records, list):
                ctx.add_lineage(ctx.data_key, f"records:{records_hash(records)}")
            pairs = [(ctx.data_key, f"sample:{item['sample']}") for item in lineage]
            pairs += [(f"sample:{item['sample']}", f"trace:{t}") for item in lineage for t in item["traces"]]
            tracker.add_lineages(pairs)  # one transaction for every sample
        for name, value in counts.items():
            ctx.log_metric(name, value)
        if fetch:
            ctx.log_metric("records_from_cache", 1.0 if fetch.get("cached") else 0.0)
        done = _read_json(manifest_path)
        cached = done.get("status") == "complete" and done.get("key") == key and not force
        console().print(f"[bold cyan]•[/bold cyan] phase {phase.name} [dim]{key}[/dim] "
                        + ("[green]cached[/green]" if cached else f"{n_records} records, {n_rows} samples"))
        manifest = {"phase": phase.name, "key": key, "plan": plan_name, "run_id": run_id, "status": "running",
                    "source": fetch, "counts": counts, "started_at": _now()}
        with _phase_context(ctx):
            if cached:
                artefact = Artefact.from_dict(done["artefact"])
            else:
                atomic_write_json(manifest_path, manifest)
                artefact = _call_optimizer(phase, data, ctx)
                manifest.update(status="complete", artefact=artefact.as_dict(), ended_at=_now(),
                                seconds=round(time.monotonic() - started, 3))
                atomic_write_json(manifest_path, manifest)
            ctx.add_artifact(artefact.uri, artefact.kind)
            if phase.apply is not None:
                applied = phase.apply(artefact)
                if isinstance(applied, dict) and applied:
                    atomic_write_json(out_dir / "applied.json", applied)
    except BaseException as e:
        if not (out_dir / "phase.json").is_file() or _read_json(manifest_path).get("status") != "complete":
            atomic_write_json(manifest_path, {**_read_json(manifest_path), "status": "failed", "error": _error_text(e)})
        tracker.end_task(exec_id, "failed", None, _error_text(e))
        raise
    tracker.end_task(exec_id, "cached" if cached else "done", counts)
    return artefact


def _read_json(path: Path) -> dict[str, Any]:
    import json

    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _error_text(e: BaseException) -> str:
    return str(e) if isinstance(e, MasonError) else "".join(traceback.format_exception_only(e)).strip()


def run(plan: Plan, *, base_dir: str | Path = ".", workspace: str | Path | None = None, force: bool = False,
        show_progress: bool = True, wait: float = 0.0) -> PlanResult:
    """Run the plan's phases in order (resolve -> curate -> optimize -> apply), then its guards.

    Args:
        base_dir: where relative paths (dataset URIs, the workspace) resolve.
        workspace: the workspace folder (default: the plan's, else `.mason` in `base_dir`).
        force: optimize again even where a phase's result is cached.
        wait: seconds to wait for another run holding the workspace.
    Returns:
        the artefacts in phase order (`PlanResult`: also `.run_id` and `.by_phase`).
    Raises:
        GuardFailed (exit code 4): a guard failed; the tracker and `guards.json` say why.
        InputError, ConfigError, LockError, MasonError: a phase failed (the tracker says which).
    """
    from mason.pipeline.runner import recording
    from mason.pipeline.tracker import Tracker
    from mason.tuning.guards import check_guards

    base = Path(base_dir).resolve()
    ws = workspace_for(plan, workspace, base)
    ws.ensure()
    name = plan.name or "tuning"
    artefacts: dict[str, Artefact] = {}
    with ws.lock(wait), Tracker(ws.db_path) as tracker:
        tracker.end_stale_runs()
        run_id = tracker.start_run(pipeline_path=f"tuning:{name}", config=describe_plan(plan), name=name,
                                   mason_version=__version__)
        run_dir = ws.artifacts_dir / "tuning" / "_runs" / run_id
        with recording(tracker, run_id, _error_text):
            previous = None
            for phase in plan.phases:
                previous = _run_phase(phase, name, ws, base, tracker, run_id, previous, artefacts, force=force,
                                      show_progress=show_progress)
                artefacts[phase.name] = previous
                atomic_write_json(run_dir / "plan.json", {"run_id": run_id, "plan": name,
                                                          "artefacts": {k: a.as_dict() for k, a in artefacts.items()}})
            check_guards(plan.guards, artefacts, tracker=tracker, run_id=run_id, run_dir=run_dir, base_dir=base,
                         workspace=ws.root)
    return PlanResult(list(artefacts.values()), run_id, artefacts)


def main(plan: Plan, **options: Any) -> None:
    """Run `plan` as a program: one line per artefact on success (exit 0); on failure the error and its
    hint on stderr and MASON's exit code (4 for a failed guard, 130 for Ctrl-C).

        if __name__ == "__main__":
            mason.tuning.main(plan)
    """
    from rich.markup import escape

    try:
        result = run(plan, **options)
    except MasonError as err:
        console().print(f"[bold red]error:[/bold red] {escape(err.message)}")
        if err.hint:
            console().print(f"  [dim]hint:[/dim] {escape(err.hint)}")
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        console().print("[yellow]interrupted[/yellow]: run it again to resume")
        sys.exit(130)
    console().print(f"[green]plan done[/green] (run {result.run_id}; `mason runs show {result.run_id}`)")
    for phase, artefact in result.by_phase.items():
        console().print(f"  {phase}: {artefact.kind} {escape(artefact.uri)}")
    sys.exit(0)


def lineage(key: str, *, workspace: str | Path = ".mason") -> list[str]:
    """The trace ids a key was made from, walking the tracker's lineage back (a phase key, a training
    task key, `dataset:<sha>` or `sample:<id>`).

    Raises:
        MasonError: no tracker in the workspace.
    """
    import sqlite3

    db = Workspace(Path(workspace)).db_path
    if not db.is_file():
        raise MasonError(f"no runs yet in {db.parent}", hint="run a plan first: mason.tuning.run(plan)")
    conn = sqlite3.connect(db.resolve().as_uri() + "?mode=ro", uri=True)
    try:
        parents: dict[str, list[str]] = {}
        for child, parent in conn.execute("SELECT child_key, parent_key FROM lineage"):
            parents.setdefault(child, []).append(parent)
    finally:
        conn.close()
    seen, stack, traces = set(), [key], []
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        if node.startswith("trace:"):
            traces.append(node.removeprefix("trace:"))
        stack += parents.get(node, [])
    return sorted(traces)
