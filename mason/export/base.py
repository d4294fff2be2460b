"""The exporter interface and registry.

Every exporter reads a plain Hugging Face model folder (the tuned model with any LoRA adapter
already merged: `ExportJob.model_dir`) and writes its format into `ExportJob.out_dir`, a fresh
folder that the export stage renames into place when the exporter returns. `verify` loads what
was written in its real runtime and compares it with the PyTorch model (see `mason.export.verify`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mason.core.errors import MasonError


class ExportVerificationError(MasonError):
    """An export loaded but does not compute what the PyTorch model computes (numbers in the message)."""

    exit_code = 1


@dataclass
class ExportJob:
    """What an exporter gets.

    Attributes:
        model_dir: the merged model folder (safetensors + tokenizer + chat template).
        out_dir: the (empty, existing) folder to write this format into.
        options: the export section's settings (`quantization`, `system_prompt`, ...), as a dict.
        adapter_dir: the PEFT adapter folder when the model was LoRA-trained (else None).
        verify_prompts: chat conversations to compare on (OpenAI-style messages).
    """

    model_dir: Path
    out_dir: Path
    options: dict[str, Any] = field(default_factory=dict)
    adapter_dir: Path | None = None
    verify_prompts: list[list[dict[str, Any]]] = field(default_factory=list)


@dataclass
class ExportOutput:
    """What an exporter wrote.

    Attributes:
        path: the main artifact (the .gguf file, the ONNX/MLX/merged folder), inside `out_dir`.
        files: every written file, relative to `out_dir`.
        details: format facts for the manifest (outtype, tensor count, sizes, tool versions).
    """

    path: Path
    files: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


class Exporter(Protocol):
    """One export format."""

    name: str

    def export(self, job: ExportJob) -> ExportOutput:
        """Write the format into `job.out_dir`. Raises MasonError with a hint on failure."""

    def verify(self, job: ExportJob, output: ExportOutput) -> dict[str, Any]:
        """Load `output` in its runtime and compare with PyTorch on `job.verify_prompts`.

        Returns:
            the numbers (max logit difference, greedy match, tolerance, runtime) — `passed: True`.
        Raises:
            ExportVerificationError: the export disagrees with the PyTorch model beyond tolerance.
        """


#: format name -> "module:Class" (imported only when used)
EXPORTERS: dict[str, str] = {
    "merged": "mason.export.merged:MergedExporter",
    "adapter": "mason.export.merged:AdapterExporter",
    "gguf": "mason.export.gguf:GGUFExporter",
    "onnx": "mason.export.onnx:OnnxExporter",
    "mlx": "mason.export.mlx:MlxExporter",
}


def get_exporter(name: str) -> Exporter:
    """The exporter registered under `name`."""
    module, cls = EXPORTERS[name].split(":")
    return getattr(importlib.import_module(module), cls)()
