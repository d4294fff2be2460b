"""MASON: from a folder of documents to a trained, evaluated and exported small expert model.

    import mason
    pipeline = mason.Pipeline.from_yaml("pipeline.yaml")
    summary = pipeline.run()                 # or pipeline.run(tasks=["ingest"])
    mason.tuning.run(plan)                   # tune from traces and datasets (see mason.tuning)

Importing `mason` is cheap: no torch, no folders created, no config read.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

# note: not `ingest`: that name is the `mason.ingest` subpackage
_API = {"Pipeline", "run_ingest", "load_config", "RunSummary", "PlannedTask"}
_CONFIGS = {
    "PipelineConfig": "mason.pipeline.config",
    "WorkspaceConfig": "mason.pipeline.config",
    "BaseModelConfig": "mason.models.config",
    "IngestConfig": "mason.ingest.config",
    "GenerateConfig": "mason.generate.config",
    "CurationConfig": "mason.curate.config",
    "TrainingConfig": "mason.train.config",
    "EvaluationConfig": "mason.evaluate.config",
    "ExportConfig": "mason.export.config",
}

#: subpackages reachable as attributes without importing them first (`mason.tuning.run(plan)`)
_SUBPACKAGES = {"tuning"}

__all__ = sorted(_API | set(_CONFIGS) | _SUBPACKAGES | {"__version__"})


def __getattr__(name: str) -> Any:
    import importlib

    if name in _SUBPACKAGES:
        return importlib.import_module(f"mason.{name}")
    if name in _API:
        return getattr(importlib.import_module("mason.api"), name)
    if name in _CONFIGS:
        return getattr(importlib.import_module(_CONFIGS[name]), name)
    raise AttributeError(f"module 'mason' has no attribute {name!r}")
