"""Export (merged, adapter, GGUF, ONNX, MLX), each verified in its runtime. Config only in this version."""

from mason.export.config import ExportConfig

__all__ = ["ExportConfig"]
