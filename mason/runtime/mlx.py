"""The MLX runtime: a folder written by MASON's MLX export (or any mlx-lm folder), run with mlx-lm.

MLX runs on Apple silicon (Metal) and, with `mlx[cpu]`, on Linux CPUs. The chat template comes
from the folder's tokenizer (through mlx-lm's tokenizer wrapper, as `mlx_lm.chat` renders it);
decoding is `mlx_lm.stream_generate` with mlx-lm's sampler and logits processors.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mason.core.errors import InputError, MasonError
from mason.runtime.base import GenerationParams, Runtime, require
from mason.runtime.onnx import stop_ids


def mlx_prompt_ids(tokenizer: Any, messages: list[dict[str, Any]]) -> list[int]:
    """Token ids of the conversation with the assistant's turn opened, rendered by mlx-lm's
    `TokenizerWrapper` (no implicit special tokens: the template writes them)."""
    if not getattr(tokenizer, "has_chat_template", False):
        raise MasonError("the model's tokenizer has no chat template, so it cannot chat",
                         hint="export an instruct model, or a model trained by MASON")
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return list(tokenizer._tokenizer(text, add_special_tokens=False)["input_ids"])


class MlxRuntime(Runtime):
    """An MLX model folder, run with mlx-lm (Metal on Apple silicon, CPU elsewhere).

    Args:
        path: the MLX folder.
        format: "mlx".
        base_model: unused (an MLX folder is complete).
        max_kv_size: optional rotating KV-cache size (mlx-lm's option).
    Raises:
        InputError: the folder does not exist.
        MasonError: mlx or mlx-lm missing; mlx-lm cannot load the folder.
    """

    format = "mlx"
    backend = "mlx"

    def __init__(self, path: str | Path, *, format: str = "mlx", base_model: str | None = None,
                 max_kv_size: int | None = None, **options: Any):
        super().__init__()
        self.mx = require("mlx.core", "mlx")
        mlx_lm = require("mlx_lm", "mlx")
        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise InputError(f"{folder}: no such MLX model folder", hint="pass a folder written by MASON's mlx export")
        from mason.models.lfs import check_model_folder

        check_model_folder(folder)
        self.path, self.options, self.max_kv_size = folder, dict(options), max_kv_size
        try:
            self.model, self.tokenizer = mlx_lm.load(str(folder))
        except (ValueError, OSError, KeyError, FileNotFoundError) as e:
            raise MasonError(f"cannot load the MLX model in {folder}: {e}",
                             hint="re-export it; the folder needs config.json, *.safetensors and the "
                                  "tokenizer files") from None
        hf = self.tokenizer._tokenizer
        self.stop_ids = stop_ids(hf, tuple(self.tokenizer.eos_token_ids))
        # stream_generate stops on the wrapper's eos ids: give it the end-of-turn markers too
        self.tokenizer.eos_token_ids = self.stop_ids
        self.version = getattr(mlx_lm, "__version__", None)

    def describe(self) -> dict[str, Any]:
        """Format, backend, folder, MLX device and mlx-lm version."""
        return {**super().describe(), "path": str(self.path), "device": str(self.mx.default_device()),
                "mlx_lm": self.version}

    def _sampling(self, params: GenerationParams) -> dict[str, Any]:
        """`sampler` and `logits_processors` for `params` (greedy when temperature is 0)."""
        from mlx_lm.sample_utils import make_logits_processors, make_sampler

        top_p = params.top_p if 0 < params.top_p < 1 else 0.0  # mlx-lm: 0 disables top-p
        sampler = make_sampler(temp=max(0.0, float(params.temperature)), top_p=top_p)
        penalty = params.repetition_penalty if params.repetition_penalty and params.repetition_penalty != 1.0 else None
        return {"sampler": sampler, "logits_processors": make_logits_processors(repetition_penalty=penalty)}

    def stream(self, messages: list[dict[str, Any]], params: GenerationParams = GenerationParams()) -> Iterator[str]:
        """Yield the answer's text as mlx-lm decodes it; sets `last_usage` to (prompt tokens,
        answer tokens), the stop token not counted.

        Raises:
            MasonError: mlx-lm failed while generating.
        """
        from mlx_lm import stream_generate

        ids = mlx_prompt_ids(self.tokenizer, messages)
        self.last_usage = (len(ids), 0)
        if params.max_tokens <= 0:
            return
        if params.temperature > 0:
            self.mx.random.seed(int(params.seed))
        kwargs = self._sampling(params)
        if self.max_kv_size:
            kwargs["max_kv_size"] = int(self.max_kv_size)
        try:
            for response in stream_generate(self.model, self.tokenizer, ids, max_tokens=params.max_tokens, **kwargs):
                produced = response.generation_tokens
                if response.finish_reason == "stop":
                    produced -= 1  # the stop token ends the answer; it is not part of it
                self.last_usage = (len(ids), produced)
                if response.text:
                    yield response.text
        except (ValueError, RuntimeError) as e:
            raise MasonError(f"mlx-lm failed while generating: {e}") from None

    def close(self) -> None:
        """Drop the model."""
        self.model = None
