"""`mason init`'s project template: pipeline.yaml and the sample corpus, so the quickstart runs offline.

The package owns both halves: the YAML (`pipeline.yaml`, read by `pipeline_template`) and the
sample documents (`mason.scaffold.corpus`, the writers of the demo corpus); `init_project` puts
them in a folder.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from mason.core.errors import InputError
from mason.core.io import atomic_write_text


def pipeline_template() -> str:
    """The text of the pipeline.yaml that `mason init` writes."""
    return resources.files("mason.scaffold").joinpath("pipeline.yaml").read_text(encoding="utf-8")


def init_project(folder: str | Path, *, force: bool = False) -> list[Path]:
    """Write `pipeline.yaml` and a `docs/` folder of sample documents into `folder`.

    Returns:
        The paths written.
    Raises:
        InputError: `folder/pipeline.yaml` exists and `force` is false.
    """
    from mason.scaffold.corpus import write_sample_corpus

    folder = Path(folder)
    target = folder / "pipeline.yaml"
    if target.exists() and not force:
        raise InputError(f"{target} already exists", hint="pass --force to overwrite it, or pick another folder")
    folder.mkdir(parents=True, exist_ok=True)
    written = write_sample_corpus(folder / "docs")
    atomic_write_text(target, pipeline_template())
    return [target, *written]
