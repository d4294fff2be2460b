"""Every number of one evaluated model (text metrics, custom metrics, perplexity, latency, judge),
and the comparisons between models: deltas, per-row wins/losses/ties, the worst rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mason.evaluate.config import EvaluationConfig
from mason.evaluate.custom import CustomMetric, mean, score_rows
from mason.evaluate.data import EvalRow
from mason.evaluate.generation import ModelAnswers, latency_summary
from mason.evaluate.metrics import compute

TIE = 1e-9  # row scores closer than this are a tie (floating-point noise is no win)


@dataclass
class ModelScores:
    """One model's numbers: `corpus[metric]` (None: not computed) and `rows[metric]` (one per eval row)."""

    name: str
    corpus: dict[str, float | None] = field(default_factory=dict)
    rows: dict[str, list[float | None]] = field(default_factory=dict)


def custom_row(row: EvalRow, prediction: str, model: str) -> dict[str, Any]:
    """The dict a custom metric function receives."""
    return {"id": row.id, "question": row.question, "reference": row.reference, "prediction": prediction,
            "source": row.source, "model": model, "messages": row.prompt}


def score_model(cfg: EvaluationConfig, rows: list[EvalRow], answers: ModelAnswers,
                customs: list[CustomMetric]) -> ModelScores:
    """Text metrics, custom metrics, perplexity and latency of one model's answers.

    Raises:
        MasonError: a metric's library is missing; CustomMetricError: a custom metric failed.
    """
    out = ModelScores(answers.name)
    corpus, per_row = compute(cfg.metrics, answers.predictions, [r.reference for r in rows])
    out.corpus.update(corpus)
    out.rows.update(per_row)
    reserved = set(cfg.known_metric_names())
    dicts = [custom_row(r, p, answers.name) for r, p in zip(rows, answers.predictions, strict=True)]
    for metric in customs:
        for name, values in score_rows(metric, dicts, reserved).items():
            out.rows[name], out.corpus[name] = values, mean(values)
            reserved.add(name)
    if any(r.answers for r in rows):  # the closed-book knowledge score (mason.evaluate.knowledge)
        from mason.evaluate.knowledge import row_scores

        out.rows["knowledge"] = row_scores([r.answers for r in rows], answers.predictions)
        out.corpus["knowledge"] = mean(out.rows["knowledge"])
    if cfg.perplexity:
        out.corpus["perplexity"] = (answers.perplexity or {}).get("value")
    out.corpus.update(latency_summary(answers))
    out.rows["latency"] = list(answers.seconds)
    return out


def add_judge(scores: ModelScores, judge: Any) -> None:
    """Put the judge's mean and row scores (`judge.<rubric>`) of this model into `scores`."""
    if judge is None or scores.name not in judge.scores:
        return
    scores.corpus.update(judge.means(scores.name))
    for rubric, values in judge.scores[scores.name].items():
        scores.rows[f"judge.{rubric}"] = values


#: metrics where lower is better (the delta's sign reads the other way)
LOWER_IS_BETTER = {"perplexity", "latency_p50", "latency_p95", "latency_mean"}


def deltas(model: ModelScores, reference: ModelScores) -> dict[str, float]:
    """`model - reference` for every metric both have a value for."""
    return {k: v - reference.corpus[k] for k, v in model.corpus.items()
            if v is not None and reference.corpus.get(k) is not None}


def wins_losses(model: list[float | None], reference: list[float | None]) -> dict[str, int]:
    """Per row: a win when `model` scores higher than `reference`, a loss when lower, else a tie."""
    out = {"wins": 0, "losses": 0, "ties": 0, "compared": 0}
    for a, b in zip(model, reference, strict=True):
        if a is None or b is None:
            continue
        out["compared"] += 1
        out["wins" if a - b > TIE else "losses" if b - a > TIE else "ties"] += 1
    return out


def worst_rows(rows: list[EvalRow], answers: dict[str, ModelAnswers], scores: dict[str, ModelScores],
               primary: str, n: int, judge: Any = None) -> list[dict[str, Any]]:
    """The `n` rows where the tuned model's primary metric is lowest, with both answers and scores."""
    tuned = scores.get("tuned")
    if tuned is None or n <= 0:
        return []
    values = tuned.rows.get(primary, [])
    order = sorted((i for i, v in enumerate(values) if v is not None), key=lambda i: values[i])[:n]
    out = []
    for i in order:
        r = rows[i]
        item: dict[str, Any] = {"index": i, "id": r.id, "question": r.question, "reference": r.reference,
                                "tuned": answers["tuned"].predictions[i], f"tuned_{primary}": values[i]}
        if "base" in scores and "base" in answers and not answers["base"].error:
            item["base"] = answers["base"].predictions[i]
            item[f"base_{primary}"] = scores["base"].rows.get(primary, [None] * len(rows))[i]
        if judge is not None and "tuned" in judge.scores:
            item["judge"] = {k: v[i] for k, v in judge.scores["tuned"].items()}
            item["judge_reasons"] = {k: v[i] for k, v in judge.reasons["tuned"].items() if v[i]}
        out.append(item)
    return out
