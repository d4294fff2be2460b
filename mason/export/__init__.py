"""Export: the `export` task writes the tuned model as merged weights, the LoRA adapter, GGUF (+ Ollama
Modelfile), ONNX and MLX, and verifies each by loading it in its own runtime. An exporter is a registry
entry (`export.base.EXPORTERS`). Importing this package is cheap.
"""

from __future__ import annotations

from mason.core.task import TaskContext, TaskResult
from mason.export.config import ExportConfig

__all__ = ["run", "ExportConfig"]


def run(ctx: TaskContext) -> TaskResult:
    """Run the `export` task: the tuned model in each format, each verified in its runtime.

    The code is `mason.export.stage`, imported on first run (importing the package stays cheap).
    """
    from mason.export.stage import run as run_stage

    return run_stage(ctx)
