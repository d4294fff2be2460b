"""The task graph: which stage runs for which config section, and what it needs first.

`TASKS` is the one table of the pipeline: diagram -> folder -> function in one hop. Each stage is a
package (`mason.ingest`, `mason.generate`, ...) whose `__init__` exposes `run(ctx) -> TaskResult`; its
`stage` module holds the code, `VERSION: str` (part of the task key) and optionally
`fingerprint(section, base_dir) -> object` for inputs that live outside the workspace (e.g. the
document files, the curation decisions), which also goes into the key, and `review(ctx)`: a human
step the runner runs before it takes the task's key (the curation UI), then re-plans. Stages are imported only when they are planned or
run, and never import each other: a stage that hands work to another names it in `calls`, and the
runner passes that stage's `run` in `TaskContext.stages`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

from mason.core.errors import ConfigError, Problem
from mason.core.task import TaskContext, TaskResult


@dataclass(frozen=True)
class TaskSpec:
    """One task of the pipeline.

    Attributes:
        name: what users type in `mason run pipeline.yaml NAME`.
        section: the pipeline config section that configures it.
        deps: upstream tasks whose artifacts it reads (those configured in the pipeline).
        package: the stage package whose `run` runs it; None when this version does not implement it.
        uses: other config sections whose values go into its key (e.g. `base_model`).
        calls: other tasks whose `run` this one is handed (in `TaskContext.stages`), e.g. export
            evaluates its exported models with the evaluation stage.
    """

    name: str
    section: str
    deps: tuple[str, ...] = ()
    package: str | None = None
    uses: tuple[str, ...] = ()
    calls: tuple[str, ...] = ()

    @property
    def available(self) -> bool:
        return self.package is not None

    def load(self) -> ModuleType:
        """The stage's code module (`<package>.stage`): its `VERSION` and `fingerprint` key the task."""
        assert self.package is not None
        return importlib.import_module(f"{self.package}.stage")

    def entry(self) -> Callable[[TaskContext], TaskResult]:
        """The stage package's `run(ctx) -> TaskResult`."""
        assert self.package is not None
        return importlib.import_module(self.package).run


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec("ingest", "knowledge_source", package="mason.ingest"),
        TaskSpec("generate", "synthetic_data", deps=("ingest",), package="mason.generate"),
        TaskSpec("curate", "curation", deps=("generate", "ingest"), package="mason.curate"),
        TaskSpec("training", "training", deps=("generate", "curate"), package="mason.train", uses=("base_model",)),
        TaskSpec("evaluation", "evaluation", deps=("training", "generate", "curate", "ingest"), package="mason.evaluate",
                 uses=("base_model",)),
        TaskSpec("export", "export", deps=("training", "evaluation", "generate"), package="mason.export",
                 uses=("base_model",), calls=("evaluation",)),
    )
}

ALIASES: dict[str, str] = {
    "knowledge_source": "ingest",
    "synthetic_data": "generate",
    "generation": "generate",
    "curation": "curate",
    "train": "training",
    "evaluate": "evaluation",
    "eval": "evaluation",
}


#: tasks whose work can be narrowed with `TASK:PART` (e.g. `training:facts`, one curriculum stage)
SELECTABLE = ("training",)


def split_selectors(names: list[str]) -> tuple[list[str], dict[str, str]]:
    """`["ingest", "training:facts"]` -> (`["ingest", "training"]`, `{"training": "facts"}`).

    Raises:
        ConfigError: a selector on a task that has no parts, or an unknown task.
    """
    plain, selectors, problems = [], {}, []
    for name in names:
        task, _, part = name.partition(":")
        plain.append(task)
        if part:
            canonical = ALIASES.get(task, task)
            if canonical not in SELECTABLE:
                problems.append(Problem("tasks", f"'{name}': only {', '.join(SELECTABLE)} can be narrowed with ':'"))
            else:
                selectors[canonical] = part
    if problems:
        raise ConfigError(problems, source="command line")
    return resolve_task_names(plain), selectors


def resolve_task_names(names: list[str]) -> list[str]:
    """Canonical task names for what the user typed (section names are accepted too).

    Raises:
        ConfigError: an unknown name, with the list of tasks.
    """
    out, problems = [], []
    for name in names:
        canonical = ALIASES.get(name, name)
        if canonical not in TASKS:
            problems.append(Problem("tasks", f"unknown task '{name}'; tasks are: {', '.join(TASKS)}"))
        elif canonical not in out:
            out.append(canonical)
    if problems:
        raise ConfigError(problems, source="command line")
    return out
