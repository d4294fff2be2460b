"""LLM-as-judge for evaluation: one score and a short reason per answer and rubric.

Requests go through the teacher client (`mason.llm.client.open_client`) and the workspace's
request cache, so a re-run pays nothing for verdicts it already has. Each request asks for
`{"score": n, "reason": "..."}` with a JSON schema (constrained decoding where the backend
supports it) and is read with `mason.llm.structured.ask_json`: an answer that cannot be
used is shown back to the judge with the error once; after that the answer stays unscored and
is counted, and the evaluation goes on.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, create_model, field_validator

from mason.evaluate.config import BUILTINS, LLMJudgeConfig, Rubric, builtin_rubric

SYSTEM = ("You are a strict and fair grader of answers written by an AI assistant. You grade one criterion "
          "at a time and reply with JSON only.")
MAX_REASON_CHARS = 300


def _uses(rubric: Rubric) -> tuple[bool, bool]:
    """(shows the source, shows the reference): user rubrics see both when known."""
    builtin = BUILTINS.get(rubric.name)
    if builtin is not None and builtin[0] == rubric.criteria:
        return builtin[1], builtin[2]
    return True, True


class _VerdictBase(BaseModel):
    score: float
    reason: str = Field(..., description="One short sentence.")

    @field_validator("score", mode="before")
    @classmethod
    def _fraction(cls, value: Any) -> Any:
        # "4/5", "4 out of 5", "Score: 4" from judges that ignore the schema: the first number
        if isinstance(value, str) and (m := re.search(r"-?\d+(?:\.\d+)?", value)):
            return m.group(0)
        return value


@lru_cache(maxsize=32)
def verdict_model(lo: int, hi: int) -> type[BaseModel]:
    """The verdict's pydantic model for a scale: `score` in [lo, hi] (also in its JSON schema)."""
    return create_model(f"Verdict{lo}to{hi}", __base__=_VerdictBase,
                        score=(float, Field(..., ge=lo, le=hi, description=f"From {lo} (worst) to {hi} (best).")))


def judge_messages(rubric: Rubric, row: dict[str, Any], max_source_chars: int) -> list[dict[str, str]]:
    """The judge's conversation for one answer and one rubric.

    `row` has `question`, `prediction`, and optionally `source` (passage text) and `reference`.
    Faithfulness without a source passage is judged against the reference answer.
    """
    lo, hi = rubric.scale
    show_source, show_reference = _uses(rubric)
    source, reference = row.get("source"), row.get("reference")
    parts = [f"Criterion: {rubric.name}\n{rubric.criteria}", f"Score from {lo} (worst) to {hi} (best)."]
    if show_source and source:
        if len(source) > max_source_chars:
            source = source[:max_source_chars] + " […]"
        parts.append(f"[Source passage]\n{source}")
    elif show_source and reference:
        show_reference = True
        parts.append("(No source passage is available: treat the reference answer as the source.)")
    parts.append(f"[Question]\n{row.get('question') or ''}")
    if show_reference and reference:
        parts.append(f"[Reference answer, written by an expert]\n{reference}")
    parts.append(f"[Answer to grade]\n{row.get('prediction') or '(empty answer)'}")
    parts.append(f'Reply with only a JSON object: {{"score": <a number from {lo} to {hi}>, '
                 '"reason": "<one short sentence>"}')
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n\n".join(parts)}]


@dataclass
class Verdict:
    """One judged answer: `score` None when the judge's answers could not be used."""

    score: float | None
    reason: str
    error: str | None = None


async def judge_one(client: Any, rubric: Rubric, row: dict[str, Any], cfg: LLMJudgeConfig) -> Verdict:
    """Ask the judge for one verdict; one repair attempt, then unscored.

    Raises:
        TeacherError: the client gave up (after its own retries), or the request is refused: every
            other verdict would fail alike, so the evaluation stops (verdicts so far stay cached).
    """
    from mason.llm.structured import StructuredOutputError, ask_json

    model_cls = verdict_model(*rubric.scale)
    try:
        value, _ = await ask_json(client, judge_messages(rubric, row, cfg.max_source_chars), model_cls, retries=1,
                                  temperature=cfg.temperature, max_tokens=cfg.max_tokens)
    except StructuredOutputError as e:
        return Verdict(None, "", error=e.message)
    return Verdict(float(value.score), str(value.reason).strip()[:MAX_REASON_CHARS])


@dataclass
class JudgeOutcome:
    """Verdicts of every judged model, rubric and row.

    Attributes:
        scores, reasons: `[model][rubric]` -> one entry per row (None: unscored).
        unscored: `[model][rubric]` -> how many answers stayed unscored.
        errors: a few of the parse errors, for the report.
        stats: the client's counters (requests, cache hits, tokens, cost).
    """

    model: str
    rubrics: list[Rubric]
    scores: dict[str, dict[str, list[float | None]]] = field(default_factory=dict)
    reasons: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    unscored: dict[str, dict[str, int]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    def means(self, model: str) -> dict[str, float | None]:
        """`judge.<rubric>` -> mean score of the scored answers (None when none was scored)."""
        out: dict[str, float | None] = {}
        for rubric, values in self.scores.get(model, {}).items():
            scored = [v for v in values if v is not None]
            out[f"judge.{rubric}"] = sum(scored) / len(scored) if scored else None
        return out


async def _judge_all(client: Any, cfg: LLMJudgeConfig, rubrics: list[Rubric],
                     rows_by_model: dict[str, list[dict[str, Any]]], out: JudgeOutcome,
                     on_done: Callable[[], None]) -> None:
    jobs = []
    for model, rows in rows_by_model.items():
        out.scores[model], out.reasons[model], out.unscored[model] = {}, {}, {}
        for rubric in rubrics:
            out.scores[model][rubric.name] = [None] * len(rows)
            out.reasons[model][rubric.name] = [""] * len(rows)
            out.unscored[model][rubric.name] = 0
            jobs += [(model, rubric, i, row) for i, row in enumerate(rows)]

    async def one(model: str, rubric: Rubric, i: int, row: dict[str, Any]) -> None:
        verdict = await judge_one(client, rubric, row, cfg)
        out.scores[model][rubric.name][i] = verdict.score
        out.reasons[model][rubric.name][i] = verdict.reason
        if verdict.score is None:
            out.unscored[model][rubric.name] += 1
            if len(out.errors) < 5:
                out.errors.append(f"{model}/{rubric.name}/row {i + 1}: {verdict.error}")
        on_done()

    tasks = [asyncio.ensure_future(one(*job)) for job in jobs]
    try:
        await asyncio.gather(*tasks)
    finally:
        for t in tasks:  # one failed: the others must not keep talking to the judge
            t.cancel()


async def judge_answers(cfg: LLMJudgeConfig, rubrics: list[Rubric], rows_by_model: dict[str, list[dict[str, Any]]],
                        *, base_dir: Path, cache_path: Path | None, on_done: Callable[[], None] = lambda: None,
                        **client_overrides: Any) -> JudgeOutcome:
    """Judge every row of every model with every rubric.

    Args:
        cfg: the judge (model, limits) and its settings.
        rubrics: the rubrics (see `EvaluationConfig.rubrics`).
        rows_by_model: model name -> row dicts with question, prediction, reference, source.
        base_dir: folder relative model paths resolve against.
        cache_path: the request cache file (None: no cache).
        on_done: called after each verdict (progress bars).
        client_overrides: TeacherClient keyword arguments (tests: backoff_base).

    Raises:
        TeacherError, MasonError: the judge cannot be built or reached (after retries).
    """
    from mason.llm.cache import RequestCache
    from mason.llm.client import open_client

    cache = RequestCache(cache_path) if cache_path is not None else None
    out = JudgeOutcome(cfg.model, rubrics)
    try:
        client = open_client(cfg, base_dir=base_dir, cache=cache, **client_overrides)
        try:
            out.model = client.model_id
            await _judge_all(client, cfg, rubrics, rows_by_model, out, on_done)
        finally:
            await client.aclose()
        out.stats = client.stats.as_dict()
    finally:
        if cache is not None:
            cache.close()
    return out
