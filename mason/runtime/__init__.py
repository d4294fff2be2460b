"""Runtimes: one way to generate text from each kind of model MASON writes or reads.

`open_runtime(path)` detects the format (merged/HF folder, PEFT adapter, GGUF file, ONNX folder,
MLX folder) and returns a `Runtime`; `mason chat`, the evaluation task and export verification
all generate through it. Backends are imported only when opened.
"""

from mason.runtime.base import (
    FORMATS,
    GenerationParams,
    GenerationResult,
    Runtime,
    detect_format,
    open_runtime,
)

__all__ = ["FORMATS", "GenerationParams", "GenerationResult", "Runtime", "detect_format", "open_runtime"]
