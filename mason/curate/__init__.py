"""Curation: the human in the loop between generation and training (task `curate`).

Owns the decisions store (`store`: SQLite, each decision durable at once, undo), the review session
(`session`: samples beside their source chunks, the filter language, bulk actions, seeds, the curated
dataset), the terminal UI (`app`, Textual; also served in a browser by `mason curate --web`) and the
task (`stage`). Importing this package imports neither textual nor anything heavy.
"""

from __future__ import annotations

from mason.core.task import TaskContext, TaskResult
from mason.curate.config import CurationConfig

__all__ = ["CurationConfig", "run"]


def run(ctx: TaskContext) -> TaskResult:
    """Run the `curate` task: the saved decisions applied to the generated dataset.

    The code is `mason.curate.stage`, imported on first run (importing the package stays cheap).
    """
    from mason.curate.stage import run as run_stage

    return run_stage(ctx)
