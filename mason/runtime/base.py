"""The `Runtime` interface and the format registry.

A runtime turns chat messages (the data contract's OpenAI-style `{"role", "content"}` dicts)
into text, streamed piece by piece, and counts tokens so callers can report tokens/s.
"""

from __future__ import annotations

import importlib
import json
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mason.core.errors import InputError, MasonError


@dataclass(frozen=True)
class GenerationParams:
    """Decoding settings. `temperature == 0` means greedy (deterministic) decoding."""

    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    seed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class GenerationResult:
    """One answer with its token counts and timings (seconds)."""

    text: str
    prompt_tokens: int
    output_tokens: int
    seconds: float
    first_token_seconds: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def tokens_per_second(self) -> float:
        return self.output_tokens / self.seconds if self.seconds > 0 else 0.0


class Runtime(ABC):
    """A loaded model that answers chat messages.

    Subclasses implement `stream` (text pieces as they are decoded) and set `last_usage` to
    `(prompt_tokens, output_tokens)` when a stream ends; `generate` and `generate_batch` have
    defaults built on it (override `generate_batch` where the backend batches for real).
    """

    #: the format this runtime loads: one of FORMATS
    format: str = ""
    #: the library that runs it ("transformers", "llama.cpp", "onnxruntime", "mlx")
    backend: str = ""

    def __init__(self) -> None:
        self.last_usage: tuple[int, int] = (0, 0)

    @abstractmethod
    def stream(self, messages: list[dict[str, Any]], params: GenerationParams = GenerationParams()) -> Iterator[str]:
        """Yield the answer's text in pieces; sets `last_usage` when done."""

    def generate(self, messages: list[dict[str, Any]], params: GenerationParams = GenerationParams()) -> GenerationResult:
        """The whole answer with token counts and timings."""
        start = time.perf_counter()
        first: float | None = None
        pieces = []
        for piece in self.stream(messages, params):
            if first is None:
                first = time.perf_counter() - start
            pieces.append(piece)
        seconds = time.perf_counter() - start
        prompt_tokens, output_tokens = self.last_usage
        return GenerationResult("".join(pieces).strip(), prompt_tokens, output_tokens, seconds, first)

    def generate_batch(self, conversations: list[list[dict[str, Any]]],
                       params: GenerationParams = GenerationParams()) -> list[GenerationResult]:
        """Answers to several conversations (one by one unless the backend batches)."""
        return [self.generate(messages, params) for messages in conversations]

    def describe(self) -> dict[str, Any]:
        """What was loaded, for reports and manifests."""
        return {"format": self.format, "backend": self.backend}

    def close(self) -> None:
        """Free the model (optional)."""


def require(module: str, extra: str) -> Any:
    """Import `module`, or raise MasonError with `pip install "mason[extra]"` when it is missing."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MasonError(f"this runtime needs {module}, which is not installed",
                         hint=f'pip install "mason[{extra}]"') from None


#: format name -> "module:Class" of its runtime (imported only when opened)
FORMATS: dict[str, str] = {
    "merged": "mason.runtime.transformers:TransformersRuntime",
    "adapter": "mason.runtime.transformers:TransformersRuntime",
    "gguf": "mason.runtime.llamacpp:LlamaCppRuntime",
    "onnx": "mason.runtime.onnx:OnnxRuntime",
    "mlx": "mason.runtime.mlx:MlxRuntime",
}


def detect_format(path: str | Path) -> str:
    """Which format a model path holds.

    Rules: a `.gguf` file → gguf; a folder with `adapter_config.json` → adapter; with
    `genai_config.json` or any `*.onnx` → onnx; with `config.json` whose weights are MLX
    (`mlx_format` marker file written by MASON's MLX export, or `config.json` with a
    `quantization` key and `*.safetensors` but no `model.safetensors.index.json` from torch)
    → mlx; with `config.json` → merged (any transformers model folder).

    Raises:
        InputError: the path does not exist or holds no model MASON can load.
    """
    p = Path(path).expanduser()
    if p.is_file():
        if p.suffix.lower() == ".gguf":
            return "gguf"
        raise InputError(f"{p}: not a model MASON can load (a file must be .gguf)",
                         hint="pass a .gguf file or a model folder (merged, adapter, ONNX, MLX)")
    if not p.is_dir():
        raise InputError(f"{p}: no such file or folder", hint="check the path")
    if (p / "adapter_config.json").is_file():
        return "adapter"
    if (p / "genai_config.json").is_file() or any(p.glob("*.onnx")):
        return "onnx"
    if (p / "mlx_format").is_file():
        return "mlx"
    if (p / "config.json").is_file():
        try:
            cfg = json.loads((p / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            cfg = {}
        if "quantization" in cfg and not (p / "generation_config.json").is_file():
            return "mlx"
        return "merged"
    raise InputError(f"{p}: no model found (no config.json, adapter_config.json, *.onnx or .gguf)",
                     hint="pass a folder written by `mason run` (training or export) or a .gguf file")


def open_runtime(path: str | Path, *, format: str | None = None, base_model: str | None = None,
                 **options: Any) -> Runtime:
    """Load the model at `path` in its runtime.

    Args:
        path: a model file or folder.
        format: force a format instead of detecting it.
        base_model: for adapters whose `adapter_config.json` names a base that is not loadable
            here (e.g. a hub id offline): the base model to put the adapter on.
        options: passed to the runtime's constructor (e.g. `n_threads`, `device`).
    Raises:
        InputError: unknown format or path; MasonError: the runtime's library is not installed.
    """
    fmt = format or detect_format(path)
    if fmt not in FORMATS:
        raise InputError(f"unknown model format '{fmt}'", hint=f"formats: {', '.join(FORMATS)}")
    module, cls = FORMATS[fmt].split(":")
    runtime_cls = getattr(importlib.import_module(module), cls)
    return runtime_cls(Path(path).expanduser(), format=fmt, base_model=base_model, **options)
