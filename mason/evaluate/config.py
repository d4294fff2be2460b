"""Config of the evaluation stage: the `evaluation` section of pipeline.yaml."""

from __future__ import annotations

from pydantic import Field, model_validator

from mason.core.config import Section


class Guard(Section):
    """A threshold on a metric; a failed guard fails the pipeline and blocks export."""

    metric: str = Field(..., description="Metric name, e.g. `rougeL`.")
    min: float | None = Field(None, description="Fail when the tuned model's value is below this.")
    max: float | None = Field(None, description="Fail when the tuned model's value is above this.")

    @model_validator(mode="after")
    def _one_bound(self) -> Guard:
        if self.min is None and self.max is None:
            raise ValueError(f"guard on '{self.metric}' needs `min` or `max`")
        return self


class EvaluationConfig(Section):
    """How the tuned model is measured against references (and the base model)."""

    metrics: list[str] = Field(
        default_factory=lambda: ["rougeL", "exact_match", "char_f1"], description="Metric names to compute."
    )
    compare_base: bool = Field(True, description="Also evaluate the untouched base model.")
    max_new_tokens: int = Field(256, ge=1, description="Longest generated answer.")
    guards: list[Guard] = Field(default_factory=list, description="Thresholds that must hold.")
