"""The `pipeline.yaml` layout: one section per stage, composed from the stages' own configs."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from mason.core.config import Section
from mason.curate.config import CurationConfig
from mason.evaluate.config import EvaluationConfig
from mason.export.config import ExportConfig
from mason.generate.config import GenerateConfig
from mason.ingest.config import IngestConfig
from mason.models.config import BaseModelConfig
from mason.train.config import TrainingConfig


class WorkspaceConfig(Section):
    """Where MASON keeps artifacts, caches and the run tracker."""

    path: str = Field(".mason", description="Workspace folder (relative paths resolve against the YAML's folder).")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"path": data}
        return data


class PipelineConfig(Section):
    """A whole MASON pipeline. Sections left out are tasks that do not run."""

    name: str | None = Field(None, description="A name for this pipeline, shown in `mason runs list`.")
    workspace: WorkspaceConfig = Field(
        default_factory=WorkspaceConfig, description="Workspace folder (`workspace: PATH` is shorthand)."
    )
    base_model: BaseModelConfig = Field(
        default_factory=BaseModelConfig, description="The model to fine-tune (`base_model: NAME` is shorthand)."
    )
    knowledge_source: IngestConfig | None = Field(None, description="Documents to ingest (task `ingest`).")
    synthetic_data: GenerateConfig | None = Field(
        None, description="Synthetic dataset generation (task `generate`)."
    )
    curation: CurationConfig | None = Field(None, description="Human review of samples (task `curate`).")
    training: TrainingConfig | None = Field(None, description="Fine-tuning (task `training`).")
    evaluation: EvaluationConfig | None = Field(None, description="Evaluation and guards (task `evaluation`).")
    export: ExportConfig | None = Field(None, description="Exported formats (task `export`).")


SECTION_MODELS: dict[str, type[Section]] = {
    "workspace": WorkspaceConfig,
    "base_model": BaseModelConfig,
    "knowledge_source": IngestConfig,
    "synthetic_data": GenerateConfig,
    "curation": CurationConfig,
    "training": TrainingConfig,
    "evaluation": EvaluationConfig,
    "export": ExportConfig,
}
