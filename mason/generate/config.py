"""Config of the synthetic-data stage: the `synthetic_data` section of pipeline.yaml."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from mason.core.config import Section
from mason.data.quality import FilterConfig
from mason.llm.config import TeacherConfig

TaskType = Literal[
    "question_answering", "multi_turn", "reasoning", "summarization", "preference", "tool_calling"
]
TASK_TYPES: tuple[str, ...] = TaskType.__args__  # type: ignore[attr-defined]


class JudgeConfig(Section):
    """How samples are scored before they are kept."""

    rubric: str | None = Field(
        None,
        description="Rubric text the judge scores against (default: faithfulness, relevance, clarity, usefulness).",
    )
    threshold: float = Field(6.0, ge=0, le=10, description="Minimum judge score (0-10) to keep a sample.")
    grounding: bool = Field(True, description="Ask the judge whether the answer is supported by the source chunk.")


class RecordsConfig(Section):
    """Record distillation: a prompt template over the rows of a JSONL file of structured records."""

    path: str = Field(..., description="JSONL file of records (relative to the pipeline YAML's folder).")
    templates: list[str] = Field(
        ..., min_length=1,
        description="Jinja prompt templates (one per prompt style) rendered with each row's fields, e.g. "
                    "`Describe {{ name }} in {{ city }} for a tourist.`",
    )
    system_prompt: str | None = Field(None, description="System message given to the teacher and kept in the sample.")
    id_field: str | None = Field(None, description="Field that names a record (used as its `doc` for splitting).")


class KnowledgeConfig(Section):
    """The knowledge recipe (mason.generate.knowledge): every fact of the documents in many views,
    and held-out questions that measure, closed-book, whether the model learned it."""

    enabled: bool = Field(False, description="Add the recipe's training views and held-out questions to the dataset.")
    questions_per_span: int = Field(
        2, ge=1, le=6, description="Training questions about each key span (name, number, year) of each fact sentence.")
    framings: int = Field(3, ge=0, le=4, description="Plain-text framings of each fact sentence (continued pretraining).")
    paragraphs: bool = Field(True, description="Also train on each paragraph as plain text, once.")
    heldout_questions: bool = Field(
        True, description="Held-out questions (other templates, never trained on) for the closed-book knowledge score.")
    unknown_questions: int = Field(
        8, ge=0, le=200,
        description="Held-out questions about invented entities no document mentions (the hallucination check: a "
                    "right answer declines).")
    decline_examples: int = Field(
        8, ge=0, le=200,
        description="Training questions about other invented entities, answered with \"I don't know\" (teaches the "
                    "model to decline instead of inventing).")
    probe_questions: int = Field(
        16, ge=0, le=500,
        description="Held-out questions set aside (at most a quarter of them) for training to pick its best "
                    "checkpoint by (`training.select_by`); the evaluation does not score them. 0: none.")


class GenerateConfig(Section):
    """How the teacher LLM turns chunks (or records) into instruction samples."""

    teacher: TeacherConfig = Field(
        default_factory=lambda: TeacherConfig(model="extractive"),
        description="Teacher model (`teacher: NAME` is shorthand). `extractive` builds Q&A from the text itself.",
    )
    judge_llm: TeacherConfig | None = Field(
        None, description="Judge model that scores every sample (same forms). Given without `teacher:`, it also "
                          "generates the samples.")
    task_type: dict[TaskType, float] = Field(
        default_factory=lambda: {"question_answering": 1.0},
        description="Kinds of samples: a list, or a mapping of kind to weight (share of the samples).",
    )
    num_instructions: int = Field(200, ge=1, description="Target number of samples after filtering and balancing.")
    samples_per_chunk: int = Field(3, ge=1, description="Samples asked from the teacher per chunk and kind.")
    prompts_dir: str | None = Field(
        None, description="Folder with your own prompt templates (same file names as the built-in ones)."
    )
    system_prompt: str | None = Field(
        None, description="System message put at the start of every generated conversation."
    )
    seeds: str | None = Field(
        "seeds.jsonl",
        description="Seed instructions (JSONL, relative to the YAML's folder; used when the file exists): shown to an "
                    "LLM teacher as examples of the questions and answers wanted, and added to the dataset. `mason "
                    "curate` writes it; changing it re-runs generation.",
    )
    tools: list[dict[str, Any]] = Field(
        default_factory=list, description="OpenAI-format tool schemas, for `tool_calling` samples."
    )
    records: RecordsConfig | None = Field(None, description="Distil from structured records instead of (or besides) chunks.")
    judge: JudgeConfig = Field(default_factory=JudgeConfig, description="Judge rubric and threshold.")
    filters: FilterConfig = Field(default_factory=FilterConfig, description="Quality, grounding and duplicate filters.")
    max_per_document: int | None = Field(None, ge=1, description="Cap on samples from one source document.")
    max_per_task: int | None = Field(None, ge=1, description="Cap on samples of one kind.")
    eval_fraction: float = Field(
        0.1, ge=0.0, lt=1.0, description="Share of source documents held out for evaluation (never trained on)."
    )
    seed: int = Field(0, description="Seed for sampling, balancing and the train/eval split.")
    knowledge: KnowledgeConfig = Field(
        default_factory=KnowledgeConfig,
        description="The knowledge recipe: many views of every fact, plus held-out questions (`knowledge: true` is shorthand).",
    )

    @model_validator(mode="before")
    @classmethod
    def _judge_generates_without_teacher(cls, data: Any) -> Any:
        # the MASON README's `judge_llm: "openai/gpt-4-turbo"  # The LLM to generate data`: with no teacher
        # named, the judge model is also the one that writes the samples
        if isinstance(data, dict) and data.get("judge_llm") and "teacher" not in data:
            data = {**data, "teacher": data["judge_llm"]}
        return data

    @field_validator("knowledge", mode="before")
    @classmethod
    def _knowledge_shorthand(cls, value: Any) -> Any:
        return {"enabled": value} if isinstance(value, bool) else value

    @field_validator("task_type", mode="before")
    @classmethod
    def _list_or_weights(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {value: 1.0}
        if isinstance(value, list):
            return {v: 1.0 for v in value}
        return value

    @field_validator("task_type")
    @classmethod
    def _positive_weights(cls, value: dict[str, float]) -> dict[str, float]:
        if not value:
            raise ValueError("name at least one task type")
        bad = [k for k, w in value.items() if w <= 0]
        if bad:
            raise ValueError(f"weights must be > 0 (got {', '.join(bad)})")
        return value

    @model_validator(mode="after")
    def _tools_for_tool_calling(self) -> GenerateConfig:
        if "tool_calling" in self.task_type and not self.tools:
            raise ValueError("task_type `tool_calling` needs `tools:` (OpenAI-format tool schemas)")
        return self
