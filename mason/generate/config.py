"""Config of the synthetic-data stage: the `synthetic_data` section of pipeline.yaml."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mason.core.config import Section

TaskType = Literal[
    "question_answering", "multi_turn", "reasoning", "summarization", "preference", "tool_calling"
]


class GenerateConfig(Section):
    """How the teacher LLM turns chunks into instruction samples."""

    teacher: str = Field(
        "extractive",
        description=(
            "Teacher model: `provider/model` (e.g. `openai/gpt-4o-mini`), a local model folder or GGUF, "
            "a built-in name, or `extractive` (no LLM: questions and answers built from the text)."
        ),
    )
    judge_llm: str | None = Field(None, description="Judge model that scores each sample; same forms as `teacher`.")
    base_url: str | None = Field(None, description="OpenAI-compatible endpoint URL for the teacher.")
    api_key: str | None = Field(
        None, description="API key for the endpoint; write `${ENV_VAR}` (never the key itself)."
    )
    task_type: list[TaskType] = Field(
        default_factory=lambda: ["question_answering"], description="Kinds of samples to generate."
    )
    num_instructions: int = Field(200, ge=1, description="Target number of samples after filtering.")
    max_concurrency: int = Field(8, ge=1, description="Teacher requests in flight at once.")
    judge_threshold: float = Field(6.0, description="Minimum judge score (0-10) a sample needs to be kept.")
    eval_fraction: float = Field(
        0.1, ge=0.0, lt=1.0, description="Share of source documents held out for evaluation."
    )
    seed: int = Field(0, description="Seed for sampling, balancing and the train/eval split.")
