"""Config of the base model: the `base_model` section of pipeline.yaml."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from mason.core.config import Section


class BaseModelConfig(Section):
    """The model to fine-tune. `base_model: NAME` is shorthand for `base_model: {name: NAME}`."""

    name: str = Field(
        "smollm2-135m-instruct",
        description=(
            "A hub id (`Qwen/Qwen2.5-0.5B-Instruct`), a local model folder, a `.gguf` file, "
            "or a built-in name (`smollm2-135m-instruct`, offline)."
        ),
    )
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit); hub ids only.")
    trust_remote_code: bool = Field(
        False, description="Allow code shipped with the model to run. Off unless you trust the model's author."
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="Weights dtype when loading with transformers."
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"name": data}
        return data
