"""The `evaluation` task: answer the held-out prompts with the tuned model (and the base model, and
the exports), score the answers, judge them, check the guards, and write the report.

Outputs in the artifact folder:
  eval_report.json / .md / .html   the report (HTML self-contained, charts inline)
  charts/*.png                     the report's charts
  eval_rows.jsonl                  every row: question, reference, each model's answer and scores

Answers are cached in the workspace (`cache/eval_answers/`, keyed by the model and the decoding
settings), batch by batch: a killed evaluation resumes where it stopped, and changing only the
metrics, the judge or the guards re-scores without generating again. Judge verdicts go through
the request cache (`cache/requests.sqlite`). The report is written before the guards are
enforced: a `GuardFailed` run still leaves its report.
"""

from __future__ import annotations

import asyncio
import gc
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mason.core.console import progress, warn
from mason.core.errors import InputError
from mason.core.hashing import stable_hash
from mason.core.io import atomic_write_text
from mason.core.task import TaskContext, TaskResult
from mason.evaluate.config import EvaluationConfig
from mason.evaluate.data import EvalRow, EvalSet
from mason.evaluate.generation import ModelAnswers
from mason.evaluate.scores import ModelScores

VERSION = "1"
ROWS_FILE = "eval_rows.jsonl"
EXPORT_FORMATS_FIRST = ("merged", "adapter", "gguf", "onnx", "mlx")


@dataclass
class Target:
    """A model to evaluate: where it is, its format, the base model for adapters."""

    name: str
    path: Path
    format: str | None = None
    base_model: str | None = None


def fingerprint(cfg: EvaluationConfig, base_dir: Path) -> dict[str, Any]:
    """Inputs outside the workspace (the eval file, custom metric files): their sha256, so an edit re-evaluates."""
    from mason.core.hashing import file_sha256

    paths = [cfg.data] if cfg.data else []
    paths += [spec.rpartition(":")[0] for spec in cfg.custom_metrics if spec.rpartition(":")[0].endswith(".py")]
    out = {}
    for p in paths:
        path = Path(p).expanduser()
        path = path if path.is_absolute() else base_dir / path
        out[p] = file_sha256(path) if path.is_file() else "missing"
    return out


# --------------------------------------------------------------------------- models


def tuned_target(ctx: TaskContext) -> Target:
    """The training task's result: `merged/` when it wrote one, else `adapter/` on the base model.

    Raises:
        InputError: no training artifact upstream, or it holds neither folder.
    """
    from mason.models import model_source

    folder = ctx.inputs.get("training")
    if folder is None:
        raise InputError("evaluation needs a trained model: no `training` task upstream",
                         hint="add a `training:` section to the pipeline")
    if (folder / "merged" / "config.json").is_file():
        return Target("tuned", folder / "merged", "merged")
    if (folder / "adapter" / "adapter_config.json").is_file():
        return Target("tuned", folder / "adapter", "adapter", model_source(ctx.pipeline.base_model, ctx.base_dir))
    raise InputError(f"the training artifact {folder} has neither merged/ nor adapter/",
                     hint="re-run training: `mason run PIPELINE training --force`")


def targets(ctx: TaskContext, cfg: EvaluationConfig) -> list[Target]:
    """tuned, then base (with `compare_base`), then the exports given in `ctx.options["exported_models"]`."""
    from mason.models import model_source

    out = [tuned_target(ctx)]
    if cfg.compare_base:
        out.append(Target("base", Path(model_source(ctx.pipeline.base_model, ctx.base_dir))))
    exported = (ctx.options.get("exported_models") or {}) if cfg.exported else {}
    order = sorted(exported, key=lambda f: (EXPORT_FORMATS_FIRST.index(f) if f in EXPORT_FORMATS_FIRST else 99, f))
    out += [Target(fmt, Path(exported[fmt]), fmt) for fmt in order]
    return out


def _identity(target: Target, params: Any) -> str:
    """Cache key of a model's answers: its path, what its files look like now, and the decoding."""
    path = target.path
    files = [path] if path.is_file() else sorted(p for p in path.glob("*") if p.is_file())
    stamp = [(p.name, p.stat().st_size, int(p.stat().st_mtime)) for p in files]
    return stable_hash({"path": str(path.resolve()), "files": stamp, "format": target.format,
                        "base": target.base_model, "params": params.as_dict()})


def _open(target: Target, cfg: EvaluationConfig) -> Any:
    from mason.runtime.base import detect_format, open_runtime

    fmt = target.format or detect_format(target.path)
    # `device` places the PyTorch models; GGUF, ONNX and MLX runtimes pick their own hardware
    options = {"batch_size": cfg.batch_size, "device": cfg.device} if fmt in ("merged", "adapter") else {}
    return open_runtime(target.path, format=fmt, base_model=target.base_model, **options)


def evaluate_model(ctx: TaskContext, cfg: EvaluationConfig, target: Target, rows: list[EvalRow],
                   open_rows: list[EvalRow] | None = None) -> tuple[ModelAnswers, ModelAnswers | None]:
    """Load one model, answer every row (resuming from the answer cache), measure perplexity, answer
    the open-book rows (when given), unload. Returns (answers, open-book answers or None).

    Raises:
        MasonError, InputError: the model cannot be loaded, or generation fails.
    """
    from mason.evaluate.generation import answer_rows, perplexity
    from mason.runtime.base import GenerationParams

    params = GenerationParams(max_tokens=cfg.max_new_tokens, temperature=cfg.temperature, top_p=cfg.top_p,
                              seed=cfg.seed)
    key = _identity(target, params)
    cache = (ctx.cache_dir or ctx.out_dir) / "eval_answers" / f"{key}.jsonl"
    runtime = _open(target, cfg)
    try:
        answers = answer_rows(runtime, target.name, rows, params, batch_size=cfg.batch_size, path=cache,
                              model_path=str(target.path), show_progress=ctx.show_progress)
        if cfg.perplexity:
            training = getattr(ctx.pipeline, "training", None)
            answers.perplexity = perplexity(runtime, rows, batch_size=cfg.batch_size,
                                            max_length=max(getattr(training, "max_length", 0) or 0, 2048))
        opened = None
        if open_rows:
            opened = answer_rows(runtime, f"{target.name} (open book)", open_rows, params, batch_size=cfg.batch_size,
                                 path=cache.with_suffix(".open.jsonl"), model_path=str(target.path),
                                 show_progress=ctx.show_progress)
    finally:
        runtime.close()
        gc.collect()
    return answers, opened


def open_book_rows(rows: list[EvalRow]) -> list[EvalRow]:
    """The knowledge rows (with `answers` and a source passage), asked with the passage in the prompt."""
    from dataclasses import replace

    from mason.evaluate.knowledge import open_book_prompt

    return [replace(r, id=f"{r.id}#open", prompt=open_book_prompt(r.prompt, r.question, r.source))
            for r in rows if r.answers and r.source]


def _evaluate_all(ctx: TaskContext, cfg: EvaluationConfig,
                  rows: list[EvalRow]) -> tuple[dict[str, ModelAnswers], dict[str, ModelAnswers]]:
    """Every target's answers, and the open-book answers of the tuned and base models."""
    out: dict[str, ModelAnswers] = {}
    opened: dict[str, ModelAnswers] = {}
    open_rows = open_book_rows(rows) if cfg.open_book else []
    for target in targets(ctx, cfg):
        try:
            both = open_rows if target.name in ("tuned", "base") else None
            out[target.name], book = evaluate_model(ctx, cfg, target, rows, both)
            if book is not None:
                opened[target.name] = book
        except Exception as e:
            if target.name in ("tuned", "base"):
                raise
            # an export that cannot be run here (runtime not installed, a library's own error on a broken
            # file) is reported, and fails any guard on it, but does not stop the evaluation of the others
            warn(f"evaluation: the {target.name} export at {target.path} could not be evaluated: {e}")
            out[target.name] = ModelAnswers(target.name, {"path": str(target.path), "format": target.name},
                                            error=str(e).splitlines()[0])
    return out, opened


def knowledge_report(rows: list[EvalRow], answers: dict[str, ModelAnswers], scores: dict[str, ModelScores],
                     opened: dict[str, ModelAnswers]) -> dict[str, Any] | None:
    """Per model: the closed-book knowledge score with its interval, by question type, and the
    open-book ceiling (None when no row has `answers`)."""
    from mason.evaluate.knowledge import row_scores, summarize, unknown_summary

    if not any(r.answers for r in rows):
        return None
    book_rows = open_book_rows(rows)
    out = {}
    for name, s in scores.items():
        book = None
        if name in opened:
            book = row_scores([r.answers for r in book_rows], opened[name].predictions)
        out[name] = summarize([r.question_type for r in rows], s.rows["knowledge"], answers[name].predictions, book,
                              [r.answers for r in rows], [r.question for r in rows])
        if out[name] is not None:
            out[name]["unknown"] = unknown_summary([r.expect for r in rows], answers[name].predictions)
    return out


# --------------------------------------------------------------------------- judge


def _judge(ctx: TaskContext, cfg: EvaluationConfig, rows: list[EvalRow], answers: dict[str, ModelAnswers]) -> Any:
    from mason.evaluate.judge import judge_answers

    judge_cfg = cfg.llm_judge
    assert judge_cfg is not None
    by_model = {m: [{"question": r.question, "reference": r.reference, "source": r.source, "prediction": p}
                    for r, p in zip(rows, answers[m].predictions, strict=True)]
                for m in judge_cfg.models if m in answers and not answers[m].error}
    rubrics = cfg.rubrics()
    total = sum(len(v) for v in by_model.values()) * len(rubrics)
    with progress(disable=not ctx.show_progress) as bar:
        task = bar.add_task("judge", total=total)
        return asyncio.run(judge_answers(judge_cfg, rubrics, by_model, base_dir=ctx.base_dir,
                                         cache_path=(ctx.cache_dir or ctx.out_dir) / "requests.sqlite",
                                         on_done=lambda: bar.advance(task),
                                         **ctx.options.get("judge_client_overrides", {})))


# --------------------------------------------------------------------------- report


def _rows_file(path: Path, rows: list[EvalRow], answers: dict[str, ModelAnswers], scores: dict[str, ModelScores],
               judge: Any) -> None:
    lines = []
    for i, r in enumerate(rows):
        models = {}
        for name, s in scores.items():
            a = answers[name]
            entry: dict[str, Any] = {"prediction": a.predictions[i], "seconds": a.seconds[i],
                                     "prompt_tokens": a.prompt_tokens[i], "output_tokens": a.output_tokens[i],
                                     "scores": {k: v[i] for k, v in s.rows.items() if k != "latency"}}
            if judge is not None and name in judge.reasons:
                entry["judge_reasons"] = {k: v[i] for k, v in judge.reasons[name].items()}
            models[name] = entry
        lines.append(json.dumps({"id": r.id, "question": r.question, "reference": r.reference, "chunk": r.chunk,
                                 "task": r.task, "models": models}, ensure_ascii=False, default=str))
    atomic_write_text(path, "\n".join(lines) + "\n")


def _report(ctx: TaskContext, cfg: EvaluationConfig, eval_set: EvalSet, answers: dict[str, ModelAnswers],
            scores: dict[str, ModelScores], judge: Any, guard_results: list[Any],
            knowledge: dict[str, Any] | None = None) -> dict:
    from mason.evaluate.report import build_report, metric_order
    from mason.evaluate.scores import deltas, wins_losses, worst_rows

    primary = cfg.primary_metric
    comparison: dict[str, Any] = {"primary": primary}
    delta: dict[str, dict[str, float]] = {}
    if "tuned" in scores and "base" in scores:
        comparison["tuned_vs_base"] = wins_losses(scores["tuned"].rows[primary], scores["base"].rows[primary])
        delta["base"] = deltas(scores["tuned"], scores["base"])
    for name, s in scores.items():
        if name not in ("tuned", "base") and "tuned" in scores:
            delta[name] = deltas(s, scores["tuned"])  # an export against the model it came from
    keys = list(dict.fromkeys(k for s in scores.values() for k in s.corpus))
    order = sorted(answers, key=lambda n: {"base": 0, "tuned": 1}.get(n, 2))  # tables and charts read base → tuned
    answers = {n: answers[n] for n in order}
    models = {name: {"model": a.model, "metrics": scores[name].corpus if name in scores else {},
                     "perplexity": a.perplexity, "resumed_answers": a.resumed, "error": a.error,
                     "empty_answers": sum(1 for p in a.predictions if not p.strip()),
                     "truncated_answers": sum(1 for n in a.output_tokens if n >= cfg.max_new_tokens)}
              for name, a in answers.items()}
    judge_info = None
    if judge is not None:
        judge_info = {"model": judge.model, "models": list(judge.scores), "unscored": judge.unscored,
                      "errors": judge.errors, "usage": judge.stats,
                      "rubrics": [{"name": r.name, "criteria": r.criteria, "scale": list(r.scale)}
                                  for r in judge.rubrics]}
    data = {"origin": eval_set.origin, "evaluated": len(eval_set.rows), "available": eval_set.available,
            "skipped_without_answer": eval_set.skipped, "train_rows": eval_set.train_rows,
            "with_source_passage": sum(1 for r in eval_set.rows if r.source), "split": eval_set.split,
            "contamination": eval_set.contamination, "probe_questions_left_out": eval_set.probe}
    summary = {"name": getattr(ctx.pipeline, "name", None) or "evaluation",
               "base_model": ctx.pipeline.base_model.name, "tuned_model": answers["tuned"].model.get("path"),
               "primary_metric": primary, "metrics": list(cfg.metrics), "custom_metrics": list(cfg.custom_metrics) or None,
               "judge": judge.model if judge is not None else None}
    decoding = {"temperature": cfg.temperature, "greedy": cfg.temperature == 0, "top_p": cfg.top_p,
                "seed": cfg.seed, "max_new_tokens": cfg.max_new_tokens, "batch_size": cfg.batch_size}
    distributions = {name: {k: v for k, v in scores[name].rows.items()
                            if k in (primary, "latency") or k.startswith("judge.")} for name in order if name in scores}
    return build_report(summary=summary, data=data, decoding=decoding, models=models,
                        metric_names=metric_order(cfg.metrics, keys), comparison=comparison, delta=delta,
                        distributions=distributions, guards=[g.as_dict() for g in guard_results],
                        worst_rows=worst_rows(eval_set.rows, answers, scores, primary, cfg.worst_rows, judge),
                        judge=judge_info, knowledge=knowledge)


def _result(report: dict, eval_set: EvalSet, files: list[str], judge: Any) -> TaskResult:
    metrics: dict[str, float] = {}
    for name, m in report["models"].items():
        metrics.update({f"{name}.{k}": float(v) for k, v in m["metrics"].items() if v is not None})
    metrics.update({f"delta.{k}": float(v) for k, v in report["delta"].get("base", {}).items() if v is not None})
    comparison = report["comparison"].get("tuned_vs_base") or {}
    metrics.update({k: float(comparison[k]) for k in ("wins", "losses", "ties") if k in comparison})
    counts = {"eval_rows": len(eval_set.rows), "eval_available": eval_set.available,
              "models": sum(1 for m in report["models"].values() if not m.get("error")),
              "guards_failed": sum(1 for g in report["guards"] if not g["passed"])}
    if eval_set.train_rows is not None:
        counts["train_rows"] = eval_set.train_rows
    if judge is not None:
        counts["judge_unscored"] = sum(v for per in judge.unscored.values() for v in per.values())
    return TaskResult(counts=counts, metrics=metrics, files=files,
                      details={"version": VERSION, "status": report["status"], "guards": report["guards"],
                               "models": {k: {"model": v["model"], "error": v["error"]}
                                          for k, v in report["models"].items()}})


def run(ctx: TaskContext) -> TaskResult:
    """Run the evaluation task (see the module docstring).

    Returns:
        counts (eval_rows, train_rows, models, judge_unscored, guards_failed) and metrics flattened as
        `tuned.rougeL`, `base.rougeL`, `delta.rougeL`, `tuned.judge.faithfulness`, `tuned.latency_p95`...
    Raises:
        GuardFailed: a guard failed (after the report is written; `e.result` holds the TaskResult).
        InputError, CustomMetricError, MasonError: no eval data or model, a failing custom metric, a judge
            that cannot be reached.
    """
    from mason.evaluate.custom import load_custom_metrics
    from mason.evaluate.data import load_eval_set
    from mason.evaluate.guards import GuardFailed, check_guards, raise_if_failed
    from mason.evaluate.metrics import get_metric
    from mason.evaluate.report import write_report
    from mason.evaluate.scores import add_judge, score_model

    cfg: EvaluationConfig = ctx.section
    for name in cfg.metrics:
        get_metric(name)  # a missing library (rouge-score, sacrebleu) fails now, not after hours of generation
    customs = load_custom_metrics(cfg.custom_metrics, ctx.base_dir)  # and so does user code
    eval_set = load_eval_set(cfg, ctx)
    answers, opened = _evaluate_all(ctx, cfg, eval_set.rows)
    judge = _judge(ctx, cfg, eval_set.rows, answers) if cfg.llm_judge else None
    scores: dict[str, ModelScores] = {}
    for name, a in answers.items():
        if not a.error:
            scores[name] = score_model(cfg, eval_set.rows, a, customs)
            add_judge(scores[name], judge)
    knowledge = knowledge_report(eval_set.rows, answers, scores, opened)
    for name, k in (knowledge or {}).items():
        if k and k["open_book"]:
            scores[name].corpus["knowledge_open_book"] = k["open_book"]["accuracy"]
    guard_results = check_guards(cfg.guards, {n: (scores[n].corpus if n in scores else {}) for n in answers})
    report = _report(ctx, cfg, eval_set, answers, scores, judge, guard_results, knowledge)
    paths = write_report(report, ctx.out_dir)
    _rows_file(ctx.out_dir / ROWS_FILE, eval_set.rows, answers, scores, judge)
    files = [p.relative_to(ctx.out_dir).as_posix() for p in paths.values()] + [ROWS_FILE]
    result = _result(report, eval_set, files, judge)
    try:
        raise_if_failed(guard_results, report=str(paths["html"]))
    except GuardFailed as e:
        e.result = result  # the runner records it: a failed run's metrics still belong in the tracker
        raise
    return result
