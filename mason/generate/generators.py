"""Task generators by name: the registry the synthetic-data stage picks from.

`GENERATORS` maps a task type to a factory of `TaskGenerator`s (LLM teachers). Packages add
their own through the entry-point group `mason.generators` (name = task type, value = a
factory). `get_generator(task, teacher=...)` is what the stage calls: with the `extractive`
teacher it returns an `ExtractiveGenerator` (which refuses `reasoning` and `tool_calling`).

Usage (the stage):

    ctx = GenContext(client=teacher_client, prompts=PromptLibrary(prompts_dir), cfg=cfg,
                     model_id=teacher_client.model_id, seed=cfg.seed)
    gen = get_generator("question_answering", teacher=cfg.teacher.model)
    samples = await gen.generate(chunk, cfg.samples_per_chunk, ctx)
"""

from __future__ import annotations

from collections.abc import Callable

from mason.core.errors import ConfigError, Problem
from mason.generate.extractive import ExtractiveGenerator
from mason.generate.tasks.base import GenContext, TaskGenerator
from mason.generate.tasks.multi_turn import MultiTurnGenerator
from mason.generate.tasks.preference import PreferenceGenerator
from mason.generate.tasks.question_answering import QuestionAnsweringGenerator
from mason.generate.tasks.reasoning import ReasoningGenerator
from mason.generate.tasks.summarization import SummarizationGenerator
from mason.generate.tasks.tool_calling import ToolCallingGenerator

GeneratorFactory = Callable[[], TaskGenerator]
ENTRY_POINT_GROUP = "mason.generators"
EXTRACTIVE_TEACHER = "extractive"

GENERATORS: dict[str, GeneratorFactory] = {
    "question_answering": QuestionAnsweringGenerator,
    "multi_turn": MultiTurnGenerator,
    "reasoning": ReasoningGenerator,
    "summarization": SummarizationGenerator,
    "preference": PreferenceGenerator,
    "tool_calling": ToolCallingGenerator,
}

_plugins_loaded = False

__all__ = ["ENTRY_POINT_GROUP", "GENERATORS", "ExtractiveGenerator", "GenContext", "TaskGenerator",
           "get_generator", "load_plugins", "register_generator"]


def register_generator(name: str, factory: GeneratorFactory) -> None:
    """Register `factory` for task type `name` (a later registration replaces an earlier one)."""
    GENERATORS[name] = factory


def load_plugins() -> None:
    """Register the generators of installed packages (entry-point group `mason.generators`), once.

    Plugins add task types; they do not replace the built-in ones. A plugin that fails to load
    is reported with `warn()` and ignored.
    """
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    from importlib.metadata import entry_points

    from mason.core.console import warn

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in GENERATORS:
            continue
        try:
            register_generator(ep.name, ep.load())
        except Exception as e:  # noqa: BLE001 - a broken plugin must not stop the built-in task types
            warn(f"generator plugin {ep.name!r} ({ep.value}) failed to load: {type(e).__name__}: {e}")


def get_generator(task: str, *, teacher: str | None = None) -> TaskGenerator:
    """The generator for task type `task`.

    With `teacher="extractive"` it is the no-LLM ExtractiveGenerator.
    Raises ConfigError for an unknown task type, or one the extractive teacher cannot make.
    """
    if teacher == EXTRACTIVE_TEACHER:
        return ExtractiveGenerator(task)
    load_plugins()
    factory = GENERATORS.get(task)
    if factory is None:
        raise ConfigError([Problem("synthetic_data.task_type",
                                   f"unknown task type `{task}` (known: {', '.join(sorted(GENERATORS))})")])
    return factory()
