"""The one rich console MASON prints to (stderr, so stdout stays clean for --json)."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress


@lru_cache(maxsize=1)
def console() -> Console:
    from rich.console import Console

    # soft_wrap: messages keep their lines when piped (paths and tests must not be cut)
    return Console(stderr=True, highlight=False, soft_wrap=True)


def progress(*, transient: bool = False, disable: bool = False) -> Progress:
    """A rich progress bar with count, rate and ETA, on the shared console."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console(),
        transient=transient,
        disable=disable,
    )


def warn(message: str) -> None:
    console().print(f"[yellow]warning:[/yellow] {message}")


def info(message: str) -> None:
    console().print(message)
