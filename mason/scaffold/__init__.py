"""`mason init`: a ready pipeline.yaml and sample documents, so the quickstart runs offline."""

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
    from mason.ingest.samples import write_sample_corpus

    folder = Path(folder)
    target = folder / "pipeline.yaml"
    if target.exists() and not force:
        raise InputError(f"{target} already exists", hint="pass --force to overwrite it, or pick another folder")
    folder.mkdir(parents=True, exist_ok=True)
    written = write_sample_corpus(folder / "docs")
    atomic_write_text(target, pipeline_template())
    return [target, *written]
