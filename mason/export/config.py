"""Config of the export stage: the `export` section of pipeline.yaml.

    export:
      format: [gguf, onnx]      # merged | adapter | gguf | onnx | mlx (one or a list)
      quantization: q8_0        # GGUF outtype: f16, bf16, q8_0, q4_0, or a K-quant (q4_k_m, ...)
      path: exports             # copies of the verified exports, beside the YAML
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from mason.core.config import Section

ExportFormat = Literal["merged", "adapter", "gguf", "onnx", "mlx"]
#: a file extension of `export.path` -> the format that is one file of that kind
FILE_FORMATS = {".gguf": "gguf"}

#: GGUF outtypes written in Python (numpy quantizers) and K-quants (llama-cpp-python's quantizer)
GGUF_PYTHON_TYPES = ("f32", "f16", "bf16", "q8_0", "q4_0")
GGUF_K_QUANTS = ("q2_k", "q3_k_s", "q3_k_m", "q3_k_l", "q4_k_s", "q4_k_m", "q5_k_s", "q5_k_m", "q6_k", "q4_1", "q5_0",
                 "q5_1")


class ExportConfig(Section):
    """Which formats the tuned model is written in, where, and how each is verified."""

    format: list[ExportFormat] = Field(
        default_factory=lambda: ["gguf"], description="One format or a list: `merged`, `adapter`, `gguf`, `onnx`, `mlx`."
    )
    path: str = Field(
        "exports", description="Where the verified exports are copied (relative to the YAML's folder): a folder (one "
                               "subfolder per format), or, with one format, the file to write (`exports/my_model.gguf`; "
                               "its Ollama Modelfile goes beside it as `my_model.Modelfile`).")
    name: str = Field("model", description="File name stem of the exports (`model.gguf`, Ollama model name).")
    quantization: str = Field(
        "q8_0", description="GGUF outtype: `f32`, `f16`, `bf16`, `q8_0`, `q4_0`, or a K-quant such as `q4_k_m` "
        "(K-quants need the `llama` extra)."
    )
    onnx_precision: Literal["fp32", "int8", "int4"] = Field(
        "fp32", description="ONNX weights precision (onnxruntime-genai's builder; its fp16 CPU graph does not load)."
    )
    mlx_quantize: Literal[4, 8] | None = Field(None, description="Quantize MLX weights to 4 or 8 bits.")
    verify_tolerance: float | None = Field(
        None, gt=0, description="Override the verification's logit tolerance (default: per dtype/quantization)."
    )
    system_prompt: str | None = Field(None, description="System prompt written into the Ollama Modelfile.")
    verify: bool = Field(True, description="Load each export in its runtime and compare with the PyTorch model.")
    verify_prompts: list[str] = Field(
        default_factory=list,
        description="Prompts for the verification; default: the first questions of the eval split (or built-in ones).",
    )
    evaluate: bool = Field(
        True, description="Answer the evaluation's prompts with each exported model and compare with the tuned "
        "model's answers (when the `evaluation` task ran)."
    )
    push_to_hub: str | None = Field(None, description="Also upload the exports to this Hugging Face repo (`user/repo`).")

    @field_validator("format", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    def file_target(self) -> str | None:
        """The format whose single file `path` names (`.gguf` -> gguf), or None when `path` is a folder."""
        suffix = PurePath(self.path).suffix.lower()
        return FILE_FORMATS.get(suffix)

    @model_validator(mode="after")
    def _file_path_needs_its_format(self) -> ExportConfig:
        target = self.file_target()
        if target is not None and self.format != [target]:
            raise ValueError(f"`path: {self.path}` names a {target} file, so `format` must be `{target}` alone "
                             f"(got {', '.join(self.format)}); for several formats give a folder")
        return self

    @field_validator("quantization")
    @classmethod
    def _known_outtype(cls, value: str) -> str:
        value = value.lower()
        if value not in GGUF_PYTHON_TYPES + GGUF_K_QUANTS:
            raise ValueError(f"unknown GGUF outtype '{value}'; choose one of {', '.join(GGUF_PYTHON_TYPES + GGUF_K_QUANTS)}")
        return value

    @model_validator(mode="after")
    def _unique(self) -> ExportConfig:
        if len(set(self.format)) != len(self.format):
            raise ValueError("a format is listed twice in `format`")
        return self
