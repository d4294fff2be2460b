"""`mason init [FOLDER]`: write a ready pipeline.yaml and the sample corpus (see `mason.scaffold`).

The command body is `init_command`; the CLI registers it as
`app.command("init")(handles_errors(init_command))`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def init_command(
    folder: Annotated[Path, typer.Argument(help="Folder to create (pipeline.yaml + docs/).")] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing pipeline.yaml.")] = False,
) -> None:
    """Write a ready pipeline.yaml and sample documents: `mason init demo && mason run demo/pipeline.yaml`."""
    from mason.core.console import console
    from mason.scaffold import init_project

    written = init_project(folder, force=force)
    for path in written:
        console().print(f"  wrote {path}")
    console().print(f"[bold green]ready[/bold green]: mason run {folder / 'pipeline.yaml'}")
