"""`mason curate PIPELINE`: open the curation UI on the current generate output, on its own.

Reads the generate task's samples (and the chunks they came from), writes decisions to the decisions
file as they are made, runs nothing else. `--web` serves the same app in a browser on localhost
(textual-serve); `--import-seeds FILE` adds the samples of a dataset file to the seed instructions.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer


def curate_command(
    pipeline: Annotated[Path, typer.Argument(help="The pipeline YAML file.")],
    web: Annotated[bool, typer.Option("--web", help="Serve the UI in a browser (localhost) instead of the terminal.")] = False,
    host: Annotated[str, typer.Option(help="Address the web UI listens on.")] = "localhost",
    port: Annotated[int, typer.Option(help="Port of the web UI.")] = 8000,
    import_seeds: Annotated[Path | None, typer.Option(
        "--import-seeds", help="Add the samples of this dataset file (any format `mason validate` reads) to the "
                               "seed instructions, then exit.")] = None,
) -> None:
    """Review generated samples: approve, reject, edit, seed (decisions are saved as you make them)."""
    from mason.api import Pipeline
    from mason.core.console import info
    from mason.core.errors import InputError

    p = Pipeline.from_yaml(pipeline)
    if import_seeds is not None:
        from mason.curate.stage import seeds_file
        from mason.data.files import load_dataset
        from mason.data.seeds import append_seeds

        target = seeds_file(p.config, p.base_dir)
        if target is None:
            raise InputError("`synthetic_data.seeds` is switched off: there is no seeds file to import into")
        added = append_seeds(target, [row for _, row in load_dataset(import_seeds)])
        info(f"{added} seed instruction(s) added to {target} (the next `mason run` regenerates with them)")
        return
    if web:
        _serve(pipeline, host, port)
        return
    try:
        from mason.curate.app import CurationApp
    except ImportError:
        raise InputError("the curation UI needs textual", hint='pip install "mason[tui]"') from None
    with p.curation() as session:
        CurationApp(session, title=f"MASON curation: {p.config.name or p.base_dir.name}").run()
        counts = session.counts()
    info(f"saved: {counts['approved']} approved, {counts['rejected']} rejected, {counts['undecided']} undecided, "
         f"{counts['edited']} edited, {counts['rescued']} rescued, {counts['seeded']} seeded "
         f"(`mason run {pipeline}` trains on them)")


def _serve(pipeline: Path, host: str, port: int) -> None:
    """Serve `mason curate PIPELINE` (the terminal app) through textual-serve until Ctrl+C."""
    from mason.core.console import info
    from mason.core.errors import InputError

    try:
        from textual_serve.server import Server
    except ImportError:
        raise InputError("the web UI needs textual-serve", hint='pip install "mason[tui]"') from None
    command = shlex.join([sys.executable, "-m", "mason", "curate", str(pipeline.resolve())])
    info(f"curation UI at http://{host}:{port} (Ctrl+C stops it)")
    Server(command, host=host, port=port, title="MASON curation").serve()
