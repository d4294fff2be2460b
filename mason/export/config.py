"""Config of the export stage: the `export` section of pipeline.yaml."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from mason.core.config import Section

ExportFormat = Literal["merged", "adapter", "gguf", "onnx", "mlx"]


class ExportConfig(Section):
    """Which formats the tuned model is written in, and where."""

    format: list[ExportFormat] = Field(
        default_factory=lambda: ["gguf"], description="One format or a list of them."
    )
    path: str = Field("exports", description="Output folder (relative to the pipeline YAML's folder).")
    quantization: str = Field("q8_0", description="GGUF outtype: `f16`, `bf16`, `q8_0`, `q4_0`, or a K-quant.")
    verify: bool = Field(True, description="Load each export in its runtime and compare with PyTorch.")

    @field_validator("format", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value
