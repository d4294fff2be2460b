"""The task graph: which stage runs for which config section, and what it needs first.

Stages are found by module path and imported only when they run, so planning stays light.
A stage module provides `VERSION: str` (part of the task key), `run(ctx) -> TaskResult`, and
optionally `fingerprint(section, base_dir) -> object` for inputs that live outside the
workspace (e.g. the document files), which also goes into the key.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from mason.core.errors import ConfigError, Problem


@dataclass(frozen=True)
class TaskSpec:
    """One task of the pipeline.

    Attributes:
        name: what users type in `mason run pipeline.yaml NAME`.
        section: the pipeline config section that configures it.
        deps: upstream tasks whose artifacts it reads (those configured in the pipeline).
        module: the stage module that runs it; None when this version does not implement it.
        uses: other config sections whose values go into its key (e.g. `base_model`).
        issue: where the missing stage is planned (for the "not available yet" message).
    """

    name: str
    section: str
    deps: tuple[str, ...] = ()
    module: str | None = None
    uses: tuple[str, ...] = ()

    @property
    def available(self) -> bool:
        return self.module is not None

    def load(self) -> ModuleType:
        assert self.module is not None
        return importlib.import_module(self.module)


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec("ingest", "knowledge_source", module="mason.ingest.stage"),
        TaskSpec("generate", "synthetic_data", deps=("ingest",), module="mason.generate.stage"),
        TaskSpec("curate", "curation", deps=("generate",)),
        TaskSpec("training", "training", deps=("generate", "curate"), module="mason.train.stage", uses=("base_model",)),
        TaskSpec("evaluation", "evaluation", deps=("training", "generate", "ingest"), module="mason.evaluate.stage",
                 uses=("base_model",)),
        TaskSpec("export", "export", deps=("training", "evaluation", "generate"), module="mason.export.stage",
                 uses=("base_model",)),
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
