"""Config of the evaluation stage: the `evaluation` section of pipeline.yaml.

```yaml
evaluation:
  metrics: [rougeL, bleu, chrf, exact_match, char_f1]
  compare_base: true
  max_samples: 200
  llm_judge:
    model: openai/gpt-4o-mini
    rubrics: [faithfulness, conciseness, {name: tone, criteria: "Polite and direct.", scale: 5}]
  custom_metrics: ["metrics.py:keyword_hit"]
  guards:
    - {metric: rougeL, min: 0.3}
    - {metric: latency_p95, max: 2.0}
```
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, field_validator, model_validator

from mason.core.config import Section
from mason.core.errors import did_you_mean
from mason.llm.config import TeacherConfig

#: text metrics computed when `metrics` is not set (see `mason.evaluate.metrics.METRICS`)
DEFAULT_METRICS = ("rougeL", "bleu", "chrf", "exact_match", "char_f1")
#: what every evaluated model also gets, without naming it in `metrics`
ALWAYS_METRICS = ("perplexity", "latency_p50", "latency_p95", "latency_mean", "tokens_per_second")
#: the models a guard or the judge can name besides export formats
MODEL_ROLES = ("tuned", "base")
#: built-in rubrics: criteria text, whether the judge sees the source passage, the reference answer
BUILTINS: dict[str, tuple[str, bool, bool]] = {
    "faithfulness": (
        ("Every statement of the answer is supported by the source passage: nothing is invented, contradicted "
         "or distorted (numbers, names and units exactly as in the source). Saying that the passage does not "
         "tell is faithful."), True, False),
    "conciseness": (
        ("The answer says what the question needs and stops: no filler, no repetition, no unrequested detail, "
         "no rambling. A short, complete answer scores highest."), False, False),
    "domain_accuracy": (
        ("The answer is correct for the domain: it agrees with the reference answer on the facts, numbers, "
         "names and terminology, and uses the domain's terms correctly."), False, True),
    "helpfulness": (
        ("The answer addresses what the user asked, all of it, in a form a person in this domain could act "
         "on; an evasive, off-topic or truncated answer is unhelpful."), False, True),
}
#: the rubrics `llm_judge.rubrics` knows by name
BUILTIN_RUBRICS = tuple(BUILTINS)
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def _export_formats() -> tuple[str, ...]:
    from mason.runtime.base import FORMATS

    return tuple(FORMATS)


class Rubric(Section):
    """A judge criterion of your own. `scale: 5` means scores 1-5; `scale: [0, 10]` sets both ends."""

    name: str = Field(..., description="Name of the score (`judge.<name>` in the report and in guards).")
    criteria: str = Field(..., min_length=1, description="What the judge checks, in plain words.")
    scale: tuple[int, int] = Field((1, 5), description="Lowest and highest score (`5` is short for `[1, 5]`).")

    @field_validator("scale", mode="before")
    @classmethod
    def _scale(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return (1, value)
        if isinstance(value, str) and (m := re.fullmatch(r"\s*(\d+)\s*(?:-|to|\.\.)\s*(\d+)\s*", value)):
            return (int(m.group(1)), int(m.group(2)))
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"rubric name '{value}' must be letters, digits and _ (it becomes `judge.{value}`)")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Rubric:
        lo, hi = self.scale
        if hi <= lo:
            raise ValueError(f"rubric '{self.name}': scale [{lo}, {hi}] must go from low to high")
        return self


def builtin_rubric(name: str) -> Rubric:
    """The built-in rubric `name` as a Rubric (scale 1-5).

    Raises:
        KeyError: not a built-in rubric.
    """
    return Rubric(name=name, criteria=BUILTINS[name][0], scale=(1, 5))


class LLMJudgeConfig(TeacherConfig):
    """An LLM that scores every answer against rubrics (any teacher form: `llm_judge: MODEL` is shorthand).

    Verdicts are JSON `{"score", "reason"}` constrained by a schema where the backend can; an answer that
    cannot be read is retried once, then left unscored (and counted).
    """

    temperature: float = Field(0.0, ge=0.0, le=2.0, description="Sampling temperature of the judge (0: repeatable).")
    max_tokens: int = Field(256, ge=1, description="Longest verdict, in tokens.")
    rubrics: list[str | Rubric] = Field(
        default_factory=lambda: ["faithfulness", "helpfulness"],
        description=f"Built-in rubrics by name ({', '.join(BUILTIN_RUBRICS)}) or `{{name, criteria, scale}}`.",
    )
    models: list[str] = Field(
        default_factory=lambda: list(MODEL_ROLES),
        description="Whose answers are judged: `tuned`, `base`, or an export format (`gguf`, ...).",
    )
    max_source_chars: int = Field(6000, ge=200, description="Longest source passage shown to the judge.")

    @model_validator(mode="before")
    @classmethod
    def _judge_llm_names_the_model(cls, data: Any) -> Any:
        # `llm_judge: {judge_llm: MODEL}` (the MASON README's spelling) is `model: MODEL`
        if isinstance(data, dict) and "judge_llm" in data:
            if "model" in data:
                raise ValueError("give the judge as `model` or `judge_llm`, not both")
            data = {("model" if k == "judge_llm" else k): v for k, v in data.items()}
        return data

    @field_validator("model")
    @classmethod
    def _an_llm(cls, value: str) -> str:
        if value.strip().lower() == "extractive":
            raise ValueError("the judge must be an LLM; `extractive` only builds questions from text")
        return value

    @field_validator("rubrics")
    @classmethod
    def _known_rubrics(cls, value: list[str | Rubric]) -> list[str | Rubric]:
        names = []
        for r in value:
            if isinstance(r, str) and r not in BUILTIN_RUBRICS:
                raise ValueError(f"unknown rubric '{r}'{did_you_mean(r, BUILTIN_RUBRICS)}; built-in rubrics: "
                                 f"{', '.join(BUILTIN_RUBRICS)} (or write {{name, criteria, scale}})")
            names.append(r if isinstance(r, str) else r.name)
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"rubric(s) named twice: {', '.join(dup)}")
        if not value:
            raise ValueError("name at least one rubric")
        return value

    @field_validator("models")
    @classmethod
    def _known_models(cls, value: list[str]) -> list[str]:
        known = MODEL_ROLES + _export_formats()
        for m in value:
            if m not in known:
                raise ValueError(f"unknown model '{m}'{did_you_mean(m, known)}; one of: {', '.join(known)}")
        return value

    def rubric_names(self) -> list[str]:
        """The rubrics' names, in order."""
        return [r if isinstance(r, str) else r.name for r in self.rubrics]


class Guard(Section):
    """A threshold on a metric; a failed guard fails the pipeline and blocks export."""

    metric: str = Field(..., description="Metric name, e.g. `rougeL`, `judge.faithfulness`, `latency_p95`.")
    min: float | None = Field(None, description="Fail when the model's value is below this.")
    max: float | None = Field(None, description="Fail when the model's value is above this.")
    model: str = Field("tuned", description="Whose value is checked: `tuned`, `base` or an export format.")

    @model_validator(mode="after")
    def _one_bound(self) -> Guard:
        if self.min is None and self.max is None:
            raise ValueError(f"guard on '{self.metric}' needs `min` or `max`")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"guard on '{self.metric}': min {self.min} is above max {self.max}")
        return self


class EvaluationConfig(Section):
    """How the tuned model is measured against references (and against the base model and the exports).

    The eval set is never trained on: by default it is the generated samples with `meta.split: eval`
    (held-out documents); `data` points at a file of your own instead.
    """

    metrics: list[str] = Field(
        default_factory=lambda: list(DEFAULT_METRICS),
        description="Text metrics by name (rougeL, bleu, chrf, exact_match, char_f1, token_f1, sequence_ratio); "
                    "all on 0-1. Perplexity and latency are always measured.",
    )
    primary_metric: str = Field("rougeL", description="Per-row metric for wins/losses/ties and the worst rows.")
    compare_base: bool = Field(True, description="Also evaluate the untouched base model.")
    exported: bool = Field(True, description="Also evaluate the exported models when the export task ran.")
    data: str | None = Field(
        None, description="Eval file of your own (any supported format; relative to the YAML's folder). "
                          "Default: the generated samples with meta.split = eval.",
    )
    max_samples: int | None = Field(None, ge=1, description="Evaluate at most this many rows (a seeded sample).")
    batch_size: int = Field(8, ge=1, description="Prompts generated together.")
    device: str = Field(
        "auto", description="Where the transformers models (tuned, base, merged export) run: `auto` (CUDA, else "
                            "Apple MPS, else the CPU), `cpu`, `cuda`, `cuda:N` or `mps`.")
    max_new_tokens: int = Field(256, ge=1, description="Longest generated answer.")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="0 is greedy (repeatable) decoding.")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus sampling (with temperature > 0).")
    seed: int = Field(0, description="Seed of the row sample and of sampled decoding.")
    perplexity: bool = Field(True, description="Measure perplexity of the reference answers (transformers models).")
    open_book: bool = Field(
        True, description="Also ask the knowledge questions (rows with `meta.answers`) with their source passage in "
                          "the prompt: the open-book ceiling the closed-book score is compared with (tuned and base).")
    llm_judge: LLMJudgeConfig | None = Field(None, description="An LLM that scores the answers against rubrics.")
    custom_metrics: list[str] = Field(
        default_factory=list,
        description="Your own metrics: `package.module:function` or `path/to/file.py:function` (relative to the "
                    "YAML's folder). The function gets a row dict and returns a number or a dict of numbers.",
    )
    guards: list[Guard] = Field(default_factory=list, description="Thresholds that must hold.")
    worst_rows: int = Field(10, ge=0, description="Rows with the lowest primary metric shown in the report.")

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, value: list[str]) -> list[str]:
        from mason.evaluate.metrics import metric_names

        known = metric_names()
        bad = [m for m in value if m not in known]
        if bad:
            raise ValueError("; ".join(f"unknown metric '{m}'{did_you_mean(m, known)}" for m in bad)
                             + f". Metrics: {', '.join(known)}")
        return list(dict.fromkeys(value))

    @field_validator("device")
    @classmethod
    def _device_name(cls, value: str) -> str:
        from mason.models.device import check_device_name

        return check_device_name(value)

    @field_validator("custom_metrics")
    @classmethod
    def _custom_form(cls, value: list[str]) -> list[str]:
        for spec in value:
            target, _, fn = spec.rpartition(":")
            if not target or not fn.isidentifier():
                raise ValueError(f"custom metric '{spec}' must be `module.path:function` or `file.py:function`")
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> EvaluationConfig:
        if self.primary_metric not in self.metrics:
            raise ValueError(f"primary_metric '{self.primary_metric}' is not in metrics ({', '.join(self.metrics)})")
        models = MODEL_ROLES + _export_formats()
        known = self.known_metric_names()
        for g in self.guards:
            if g.model not in models:
                raise ValueError(f"guard on '{g.metric}': unknown model '{g.model}'{did_you_mean(g.model, models)}; "
                                 f"one of: {', '.join(models)}")
            if g.model == "base" and not self.compare_base:
                raise ValueError(f"guard on '{g.metric}' checks the base model, but compare_base is false")
            if g.model in _export_formats() and not self.exported:
                raise ValueError(f"guard on '{g.metric}' checks the {g.model} export, but exported is false")
            # custom metrics name their values only when they run: their guards are checked then
            if g.metric not in known and not self.custom_metrics:
                raise ValueError(f"guard on unknown metric '{g.metric}'{did_you_mean(g.metric, known)}; "
                                 f"metrics here: {', '.join(known)}")
        judge = self.llm_judge
        if judge and "base" in judge.models and not self.compare_base:
            if "models" in judge.model_fields_set:
                raise ValueError("llm_judge.models names `base`, but compare_base is false")
            judge.models = [m for m in judge.models if m != "base"]  # the default judges both when both run
        return self

    def known_metric_names(self) -> list[str]:
        """Every metric name this config produces per model, custom metrics aside."""
        names = list(self.metrics) + [m for m in ALWAYS_METRICS if m != "perplexity" or self.perplexity]
        names += ["knowledge", "knowledge_open_book"]  # rows with `meta.answers` (mason.evaluate.knowledge)
        if self.llm_judge:
            names += [f"judge.{n}" for n in self.llm_judge.rubric_names()]
        return names

    def rubrics(self) -> list[Rubric]:
        """The judge's rubrics as `Rubric` objects (built-ins filled in); [] without a judge."""
        if self.llm_judge is None:
            return []
        return [builtin_rubric(r) if isinstance(r, str) else r for r in self.llm_judge.rubrics]
