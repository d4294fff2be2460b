"""The model layer: resolve a model name, check it is usable offline, materialize it as a HF folder.

    from mason.models import resolve_model, materialize
    ref = resolve_model("smollm2-135m-instruct")       # or a folder, a .gguf file, a hub id
    path_or_id = materialize(ref)                       # what from_pretrained accepts

Importing this package imports neither torch nor transformers (they load inside the functions
that need them), so the CLI and config validation stay fast.
"""

from __future__ import annotations

from mason.models.builtin import BUILTIN_MODELS, BuiltinModel, get_builtin
from mason.models.resolver import (
    ModelRef,
    build_cached,
    check_available,
    default_cache_dir,
    materialize,
    model_source,
    resolve_model,
)
from mason.models.tiny import build_tiny_model

__all__ = [
    "BUILTIN_MODELS",
    "BuiltinModel",
    "ModelRef",
    "build_cached",
    "build_tiny_model",
    "check_available",
    "default_cache_dir",
    "get_builtin",
    "materialize",
    "model_source",
    "resolve_model",
]
