"""What a stage receives when the runner executes it, and what it gives back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class TaskContext:
    """Everything a stage needs to run one task execution.

    Attributes:
        task: task name (e.g. "ingest").
        section: the stage's validated config section.
        pipeline: the whole validated pipeline config (for cross-section values like `base_model`).
        base_dir: folder of the pipeline YAML; relative paths in the config resolve against it.
        out_dir: the artifact folder of this execution. It may already hold output a killed run
            wrote durably: the stage resumes from it when `resuming` is true.
        inputs: artifact folders of upstream tasks, by task name.
        cache_dir: workspace cache folder shared across executions (e.g. parsed documents).
        resuming: true when `out_dir` holds partial output of an earlier, interrupted execution.
        log_metric: record a metric (name, value, step) in the tracker.
        show_progress: whether to draw progress bars.
        options: run options for stages that take them (e.g. `resume_verify`).
        stages: the entries (`run(ctx) -> TaskResult`) of other stages this one hands work to, by task
            name, as the task table's `calls` lists them: the runner passes them in, so no stage
            imports another (export evaluates its exports through `stages["evaluation"]`).
    """

    task: str
    section: Any
    pipeline: Any
    base_dir: Path
    out_dir: Path
    inputs: dict[str, Path] = field(default_factory=dict)
    cache_dir: Path | None = None
    resuming: bool = False
    log_metric: Callable[[str, float, int | None], None] = lambda name, value, step=None: None
    show_progress: bool = True
    options: dict[str, Any] = field(default_factory=dict)
    stages: dict[str, Callable[[TaskContext], TaskResult]] = field(default_factory=dict)


@dataclass
class TaskResult:
    """What a stage returns; the runner writes it into the manifest and the tracker.

    Attributes:
        counts: sizes of what was produced or skipped (documents, chunks, warnings...).
        metrics: final numbers worth comparing across runs.
        files: names of the files the stage wrote, relative to `out_dir`.
        details: anything else for the manifest (e.g. per-file warnings).
        partial: the stage did only part of its work on purpose (e.g. one training stage by
            name): the manifest stays incomplete so the next run resumes where this one stopped.
    """

    counts: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    partial: bool = False
