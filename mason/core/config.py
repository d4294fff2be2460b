"""Base class for every config section: strict (unknown keys are errors) and self-documenting."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A strict config model: unknown keys are errors, every field carries a description.

    Subclasses live beside the stage that uses them (e.g. `mason.ingest.config.IngestConfig`);
    `mason.pipeline.config.PipelineConfig` composes them into the `pipeline.yaml` layout.
    """

    model_config = ConfigDict(extra="forbid", validate_default=True, use_attribute_docstrings=False)
