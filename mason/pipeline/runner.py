"""Plan and execute tasks: dependency order, cache by key, resume, track.

A task's key is the hash of its config section (secrets redacted), the sections it also uses,
its stage's code version, the keys of its inputs and its external-input fingerprint. A key
whose artifact folder has a complete manifest is skipped ("cached"); a folder with an
incomplete one was interrupted and is resumed.
"""

from __future__ import annotations

import platform
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mason import __version__
from mason.core import distributed
from mason.core.console import console
from mason.core.errors import ConfigError, MasonError, Problem, TaskNotAvailableError
from mason.core.hashing import stable_hash
from mason.core.redact import redact
from mason.core.task import TaskContext, TaskResult
from mason.pipeline.config import PipelineConfig
from mason.pipeline.tasks import TASKS, TaskSpec, split_selectors
from mason.pipeline.workspace import Workspace


@dataclass
class PlannedTask:
    """A task as the plan sees it.

    Attributes:
        state: `cached` (complete artifact for its key), `run` (new), `resume` (an interrupted
            execution left durable output), or `unavailable` (not implemented in this version).
    """

    spec: TaskSpec
    key: str
    inputs: dict[str, str]
    state: str
    out_dir: Path
    forced: bool = False

    @property
    def name(self) -> str:
        return self.spec.name


@contextmanager
def recording(tracker: Any, run_id: str, error_text: Callable[[BaseException], str] = str) -> Iterator[None]:
    """End the tracker run `run_id` as the block ends: success, interrupted (Ctrl-C) or failed (with
    `error_text(e)`); the exception goes on. Every orchestrator's run (`mason run`, a tuning plan) ends here."""
    try:
        yield
    except KeyboardInterrupt:
        tracker.end_run(run_id, "interrupted", "interrupted by the user")
        raise
    except BaseException as e:
        tracker.end_run(run_id, "failed", error_text(e))
        raise
    tracker.end_run(run_id, "success")


@dataclass
class TaskOutcome:
    name: str
    key: str
    status: str  # done | partial | cached | failed | interrupted
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    out_dir: Path | None = None


@dataclass
class RunSummary:
    """What `Pipeline.run` returns: the tracker's run id and one outcome per task."""

    run_id: str
    status: str
    tasks: list[TaskOutcome]

    def outcome(self, task: str) -> TaskOutcome:
        return next(t for t in self.tasks if t.name == task)


#: tasks that run in every process of a multi-process launch (`accelerate launch -m mason run ...`)
DISTRIBUTED = ("training",)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Runner:
    """Executes a validated pipeline in its workspace."""

    def __init__(self, config: PipelineConfig, *, base_dir: Path, workspace: Workspace, source: str | None = None):
        self.config = config
        self.base_dir = base_dir
        self.workspace = workspace
        self.source = source

    # ---- planning -------------------------------------------------------------------------
    def _section(self, spec: TaskSpec) -> Any:
        section = getattr(self.config, spec.section)
        # `enabled: false` (curation) is the same as no section
        return None if getattr(section, "enabled", True) is False else section

    def _select(self, names: list[str] | None) -> tuple[list[str], set[str]]:
        configured = [n for n, s in TASKS.items() if self._section(s) is not None]
        if not names:
            if not configured:
                raise ConfigError(
                    [Problem("", "no task is configured; add a `knowledge_source:` section (see `mason init`)")],
                    source=self.source,
                )
            return configured, set(configured)
        targets, _ = split_selectors(names)
        missing = [t for t in targets if t not in configured]
        if missing:
            raise ConfigError(
                [Problem(TASKS[t].section, f"task '{t}' has no `{TASKS[t].section}:` section") for t in missing],
                source=self.source,
            )
        wanted: set[str] = set()

        def add(name: str) -> None:
            if name in wanted:
                return
            wanted.add(name)
            for dep in TASKS[name].deps:
                if dep in configured:
                    add(dep)

        for t in targets:
            add(t)
        return [n for n in TASKS if n in wanted], set(targets)

    def _selectors(self, names: list[str] | None) -> dict[str, str]:
        """`TASK:PART` selections, checked against the config (`training:NAME` names a stage)."""
        selectors = split_selectors(names or [])[1]
        stage = selectors.get("training")
        if stage is not None and self.config.training is not None:
            known = self.config.training.stage_names()
            if stage not in known:
                raise ConfigError([Problem("training.stages", f"no stage named '{stage}'; stages are: {', '.join(known)}")],
                                  source=self.source)
        return selectors

    def _key(self, spec: TaskSpec, inputs: dict[str, str]) -> str:
        section = self._section(spec)
        payload: dict[str, Any] = {
            "task": spec.name,
            # a section's NOT_IN_KEY fields change how the task runs, never what it makes (curation's `interactive`)
            "config": redact(section.model_dump(mode="json", exclude=set(getattr(section, "NOT_IN_KEY", ())))),
            "uses": {u: redact(getattr(self.config, u).model_dump(mode="json")) for u in spec.uses},
            "inputs": inputs,
        }
        if spec.available:
            module = spec.load()
            payload["version"] = module.VERSION
            fingerprint = getattr(module, "fingerprint", None)
            if fingerprint is not None:
                payload["fingerprint"] = fingerprint(section, self.base_dir)
        return stable_hash(payload)

    def plan(self, tasks: list[str] | None = None, *, force: bool = False) -> list[PlannedTask]:
        """The tasks that `run` would execute, in order, each with its key and state.

        Args:
            tasks: task names to run (their configured upstream tasks come along); None = all.
            force: re-run the named tasks (all when none are named) even when cached.
        """
        order, targets = self._select(tasks)
        self._selectors(tasks)
        planned: dict[str, PlannedTask] = {}
        for name in order:
            spec = TASKS[name]
            inputs = {d: planned[d].key for d in spec.deps if d in planned}
            key = self._key(spec, inputs)
            out_dir = self.workspace.artifact_dir(name, key)
            forced = force and name in targets
            if not spec.available:
                state = "unavailable"
            elif self.workspace.is_complete(name, key) and not forced:
                state = "cached"
            elif out_dir.exists() and not forced:
                state = "resume"
            else:
                state = "run"
            planned[name] = PlannedTask(spec, key, inputs, state, out_dir, forced)
        return list(planned.values())

    # ---- execution ------------------------------------------------------------------------
    def run(self, tasks: list[str] | None = None, *, force: bool = False, wait: float = 0.0,
            show_progress: bool = True, options: dict[str, Any] | None = None) -> RunSummary:
        """Execute the plan under the workspace lock, recording everything in the tracker.

        Raises:
            TaskNotAvailableError: the plan needs a task this version does not implement.
            LockError: another run holds the workspace.
            MasonError: a task failed (its manifest and the tracker say why).
        """
        plan = self.plan(tasks, force=force)
        options = {**(options or {}), "select": self._selectors(tasks)}
        unavailable = [p.name for p in plan if p.state == "unavailable"]
        if unavailable:
            raise TaskNotAvailableError(
                f"task{'s' if len(unavailable) > 1 else ''} {', '.join(unavailable)} "
                f"{'are' if len(unavailable) > 1 else 'is'} not available in MASON {__version__} yet",
                hint="remove the section(s) from pipeline.yaml, or name the tasks to run, e.g. `mason run pipeline.yaml ingest`",
            )
        if not distributed.is_main():
            return self._follow(plan, show_progress, options)
        from mason.pipeline.tracker import Tracker

        self.workspace.ensure()
        with self.workspace.lock(wait), Tracker(self.workspace.db_path) as tracker:
            # re-plan under the lock: another run may have completed tasks while we waited
            plan = self.plan(tasks, force=force)
            tracker.end_stale_runs()
            run_id = tracker.start_run(
                pipeline_path=self.source or "<python>",
                config=redact(self.config.model_dump(mode="json")),
                name=self.config.name,
                mason_version=__version__,
            )
            outcomes: list[TaskOutcome] = []
            with recording(tracker, run_id):
                i = 0
                while i < len(plan):
                    if self._review(plan[i], show_progress, options):
                        # the person changed what the task's key depends on: re-plan from here
                        plan = plan[:i] + self.plan(tasks, force=force)[i:]
                    outcomes.append(self._execute(plan[i], tracker, run_id, show_progress, options))
                    i += 1
        return RunSummary(run_id, "success", outcomes)

    def _review(self, item: PlannedTask, show_progress: bool, options: dict[str, Any]) -> bool:
        """Run the stage's human step (`review(ctx)`, the curation UI) when it has one; True when it ran."""
        if not item.spec.available:
            return False
        review = getattr(item.spec.load(), "review", None)
        if review is None:
            return False
        ctx = self._context(item, False, lambda *a, **k: None, show_progress, options)
        return bool(review(ctx))

    def _follow(self, plan: list[PlannedTask], show_progress: bool, options: dict[str, Any]) -> RunSummary:
        """A non-main process of a multi-process launch: join the main process in the tasks that
        train across processes, write nothing else (the main process owns the workspace)."""
        token = distributed.launch_token()
        outcomes = []
        for item in plan:
            if item.name not in DISTRIBUTED or (item.state == "cached" and not item.forced):
                continue
            manifest = self._wait_for_main(item, token)
            started = time.monotonic()
            ctx = self._context(item, manifest.get("resuming", False), lambda *a, **k: None, show_progress, options)
            result = item.spec.entry()(ctx)
            outcomes.append(TaskOutcome(item.name, item.key, "done", time.monotonic() - started, result.counts,
                                        item.out_dir))
        return RunSummary("", "success", outcomes)

    def _wait_for_main(self, item: PlannedTask, token: str | None, poll: float = 0.2) -> dict[str, Any]:
        """The manifest the main process wrote for this launch when it started `item`."""
        waited = 0.0
        while True:
            manifest = self.workspace.read_manifest(item.name, item.key) or {}
            if manifest.get("launch") == token:
                if manifest.get("status") == "failed":
                    raise MasonError(f"the main process failed task {item.name}: {manifest.get('error')}")
                return manifest
            time.sleep(poll)
            waited += poll
            if waited >= 60 and waited - poll < 60:
                console().print(f"[dim]rank {distributed.rank()}: waiting for the main process to start {item.name}[/dim]")

    def _context(self, item: PlannedTask, resuming: bool, log_metric: Any, show_progress: bool,
                 options: dict[str, Any]) -> TaskContext:
        return TaskContext(
            task=item.name,
            section=self._section(item.spec),
            pipeline=self.config,
            base_dir=self.base_dir,
            out_dir=item.out_dir,
            inputs={d: self.workspace.artifact_dir(d, k) for d, k in item.inputs.items()},
            cache_dir=self.workspace.cache_dir,
            resuming=resuming,
            log_metric=log_metric,
            show_progress=show_progress and distributed.is_main(),
            options=options,
            stages={name: TASKS[name].entry() for name in item.spec.calls if TASKS[name].available},
        )

    def execute(self, item: PlannedTask, tracker: Any, run_id: str, *, show_progress: bool = True,
                options: dict[str, Any] | None = None) -> TaskOutcome:
        """Execute one planned task inside a run the caller holds (its tracker run and workspace lock):
        what an orchestrator that runs tasks as part of its own run (`mason.tuning`) calls."""
        return self._execute(item, tracker, run_id, show_progress, dict(options or {}))

    def _execute(self, item: PlannedTask, tracker: Any, run_id: str, show_progress: bool,
                 options: dict[str, Any]) -> TaskOutcome:
        name, key = item.name, item.key
        exec_id = tracker.start_task(run_id, name, key, str(item.out_dir))
        if item.state == "cached":
            manifest = self.workspace.read_manifest(name, key) or {}
            counts = manifest.get("counts", {})
            tracker.end_task(exec_id, "cached", counts)
            console().print(f"[dim]•[/dim] {name} [dim]{key}[/dim] [green]cached[/green]")
            return TaskOutcome(name, key, "cached", 0.0, counts, item.out_dir)

        if item.forced:
            self.workspace.reset_artifact(name, key)
        resuming = item.state == "resume" and not item.forced
        item.out_dir.mkdir(parents=True, exist_ok=True)
        verb = "resuming" if resuming else "running"
        console().print(f"[bold cyan]•[/bold cyan] {name} [dim]{key}[/dim] {verb}")
        manifest = self._manifest(item, status="running", run_id=run_id)
        manifest["resuming"] = resuming
        if distributed.launch_token() is not None:
            manifest["launch"] = distributed.launch_token()  # the other processes wait for this
        self.workspace.write_manifest(name, key, manifest)
        started = time.monotonic()
        ctx = self._context(item, resuming, lambda n, v, step=None: tracker.log_metric(run_id, name, n, v, step),
                            show_progress, options)
        try:
            result = item.spec.entry()(ctx)
        except BaseException as e:
            status = "interrupted" if isinstance(e, KeyboardInterrupt) else "failed"
            error = str(e) if isinstance(e, MasonError) else "".join(traceback.format_exception_only(e)).strip()
            partial = getattr(e, "result", None)  # a stage that failed on its verdict (e.g. a guard) after measuring
            if isinstance(partial, TaskResult):
                self._record(item, partial, tracker, run_id)
                manifest.update(counts=partial.counts, metrics=partial.metrics, files=partial.files,
                                details=partial.details)
            manifest.update(status=status, error=error, timings=self._timings(manifest, started))
            self.workspace.write_manifest(name, key, manifest)
            tracker.end_task(exec_id, status, None, error)
            raise
        self._record(item, result, tracker, run_id)
        manifest.update(
            status="partial" if result.partial else "complete",
            counts=result.counts,
            metrics=result.metrics,
            files=result.files,
            details=result.details,
            timings=self._timings(manifest, started),
        )
        # the complete manifest is the commit point: written last, atomically
        self.workspace.write_manifest(name, key, manifest)
        status = "partial" if result.partial else "done"
        tracker.end_task(exec_id, status, result.counts)
        seconds = time.monotonic() - started
        summary = ", ".join(f"{v} {k}" for k, v in result.counts.items() if v)
        word = "[yellow]partly done[/yellow]" if result.partial else "[green]done[/green]"
        console().print(f"  {word} in {seconds:.1f}s: {summary}")
        return TaskOutcome(name, key, status, seconds, result.counts, item.out_dir)

    def _record(self, item: PlannedTask, result: TaskResult, tracker: Any, run_id: str) -> None:
        for metric, value in {**result.counts, **result.metrics}.items():
            tracker.log_metric(run_id, item.name, metric, float(value), None)
        for rel in result.files:
            tracker.add_artifact(run_id, item.name, item.key, str(item.out_dir / rel), Path(rel).suffix.lstrip(".") or "file")
        for parent in item.inputs.values():
            tracker.add_lineage(item.key, parent)

    def _manifest(self, item: PlannedTask, *, status: str, run_id: str) -> dict[str, Any]:
        module = item.spec.load()
        return {
            "task": item.name,
            "key": item.key,
            "status": status,
            "run_id": run_id,
            "config": redact(self._section(item.spec).model_dump(mode="json")),
            "uses": {u: redact(getattr(self.config, u).model_dump(mode="json")) for u in item.spec.uses},
            "inputs": item.inputs,
            "versions": {"mason": __version__, "stage": module.VERSION, "python": platform.python_version()},
            "timings": {"started_at": _now()},
        }

    @staticmethod
    def _timings(manifest: dict[str, Any], started: float) -> dict[str, Any]:
        return {**manifest.get("timings", {}), "ended_at": _now(), "seconds": round(time.monotonic() - started, 3)}
