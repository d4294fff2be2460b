"""The `training` task: fine-tune the base model on the dataset, stage by stage, resumably.

Outputs in the artifact folder:
  adapter/            the final PEFT adapter + tokenizer (LoRA methods)
  merged/             the base model with the adapter folded in (`merge: true`), or the full model
  checkpoints/        checkpoint-N every `save_steps` (resume points; single-stage runs)
  stages/<name>/      per stage when `stages` is set: checkpoints/, adapter/, merged/, answers.jsonl
  metrics.jsonl       every logged metric, in order (loss, eval_loss, learning_rate, grad_norm, ...)
  train_state.json    which stages are done, where each resumed from
  answers.jsonl       the test prompts' answers after the last stage (when `test_prompts` is set)

Resume: a killed execution is re-run with `ctx.resuming`; finished stages are skipped (their
`done.json`), and the running stage continues from its newest complete checkpoint with the
optimizer, scheduler, RNG and data-order state the Trainer saved there.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mason.core import distributed
from mason.core.console import info, warn
from mason.core.errors import InputError, MasonError
from mason.core.hashing import file_sha256
from mason.core.io import atomic_write_json
from mason.core.task import TaskContext, TaskResult
from mason.train.config import DataFilter, StageConfig, TrainingConfig

VERSION = "1"
METRICS, STATE, DONE = "metrics.jsonl", "train_state.json", "done.json"


# --------------------------------------------------------------------------- inputs


def _data_paths(cfg: TrainingConfig) -> list[str]:
    """Every dataset entry of your own (`data` files and globs, stage files), in order."""
    paths = [cfg.data] if isinstance(cfg.data, str) else list(cfg.data or [])
    for s in cfg.stages or []:
        if isinstance(s.data, str):
            paths.append(s.data)
        elif isinstance(s.data, DataFilter) and s.data.path:
            paths.append(s.data.path)
    return list(dict.fromkeys(paths))


def fingerprint(cfg: TrainingConfig, base_dir: Path) -> dict[str, Any]:
    """Dataset files outside the workspace (`data`, stage data paths): their sha256, so an edit re-trains;
    for a glob, the sha256 of each file it matches, so a new chat log re-trains too."""
    from mason.data.samples import expand, is_glob

    out: dict[str, Any] = {}
    for p in _data_paths(cfg):
        files = expand(p, base_dir)
        if is_glob(p):
            out[p] = {str(f): file_sha256(f) for f in files} or "missing"
        else:
            out[p] = file_sha256(files[0]) if files[0].is_file() else "missing"
    return out


def stage_data(ctx: TaskContext, cfg: TrainingConfig, stage: StageConfig) -> Any:
    """The `TrainingData` of one stage: its own file, a filter of a file, or the whole dataset
    (conversation logs collapsed, `train_eval_split` held out; see `mason.data.samples`).

    Raises:
        InputError, DatasetFileError: missing dataset, glob matching nothing, malformed row, filter
            matching nothing.
    """
    from mason.data.samples import load_training_data, select

    data, tasks = stage.data, None
    if isinstance(data, DataFilter):
        data, tasks = data.path, data.task
    try:
        loaded = load_training_data(data if data is not None else cfg.data, ctx.base_dir, ctx.inputs,
                                    eval_split=cfg.train_eval_split, seed=cfg.seed)
        loaded.samples = select(loaded.samples, tasks)
    except InputError as e:
        raise InputError(f"stage '{stage.name}': {e.message}", hint=e.hint) from None
    return loaded


def stage_samples(ctx: TaskContext, cfg: TrainingConfig, stage: StageConfig) -> list[Any]:
    """The samples of one stage (see `stage_data`)."""
    return stage_data(ctx, cfg, stage).samples


def check_data_quality(ctx: TaskContext, cfg: TrainingConfig) -> dict[str, Any] | None:
    """The quality gate on your own data files (`data`, stage files): `mason validate`'s checks;
    warns under 70% clean rows, stops under 50% unless `allow_low_quality` (`mason.data.gate`).

    Returns:
        rows, clean rows and their share for the report; None when every row is generated.
    Raises:
        InputError: under 50% clean without `allow_low_quality`; a glob matching nothing.
        DatasetFileError: a file is missing or unreadable.
    """
    from mason.data.gate import fix_hint, quality_gate
    from mason.data.samples import dataset_paths

    entries = _data_paths(cfg)
    if not entries:
        return None
    paths = dataset_paths(entries, ctx.base_dir, ctx.inputs)
    gate = quality_gate(paths, allow_low_quality=cfg.allow_low_quality)
    if gate.level != "ok" and distributed.is_main():
        below = "under 50%, training anyway (allow_low_quality)" if gate.level == "low" else "under 70%"
        warn(f"training data quality {gate.quality:.0%} clean ({below}): {gate.message()}")
        warn(f"  fix: {fix_hint()}")
    return gate.summary()


# --------------------------------------------------------------------------- one stage


@dataclass
class StageOutcome:
    """What one stage produced (also its done.json)."""

    name: str
    train_samples: int
    eval_samples: int
    steps: int
    tokens: int
    weights: str
    metrics: dict[str, float] = field(default_factory=dict)
    resumed_from: str | None = None
    data: dict[str, Any] = field(default_factory=dict)  # files, rows from chat logs, collapsed, held out


def _encode(cfg: TrainingConfig, samples: list[Any], tokenizer: Any) -> list[dict]:
    from mason.data.chat import ChatRenderer
    from mason.train.data import preference_rows, tokenize_sft

    if cfg.type == "dpo":
        return preference_rows(samples, ChatRenderer(tokenizer))
    return tokenize_sft(samples, tokenizer, cfg.max_length, cfg.train_on_prompt)


def _resume_point(ckpt_dir: Path, resuming: bool, history: Path, stage: str) -> Path | None:
    from mason.train.callbacks import drop_incomplete, latest_checkpoint, trim_history

    if not resuming:
        return None
    if not distributed.is_main():  # the main process cleans up; the others only read
        return latest_checkpoint(ckpt_dir)
    dropped = drop_incomplete(ckpt_dir)
    if dropped:
        warn(f"dropped half-written checkpoint(s): {', '.join(dropped)}")
    ckpt = latest_checkpoint(ckpt_dir)
    trim_history(history, stage, int(ckpt.name.split("-")[1]) if ckpt else 0)
    return ckpt


def _train(trainer: Any, ckpt: Path | None) -> None:
    try:
        trainer.train(resume_from_checkpoint=str(ckpt) if ckpt else None)
    except RuntimeError as e:
        if "out of memory" in str(e).lower() or type(e).__name__ == "OutOfMemoryError":
            raise MasonError(
                f"training ran out of memory: {str(e).splitlines()[0]}",
                hint="lower batch_size or max_length, raise gradient_accumulation_steps, or set gradient_checkpointing: true",
            ) from None
        raise


def _build(ctx: TaskContext, cfg: TrainingConfig, model: Any, tok: Any, rows: tuple[list, list],
           ckpt_dir: Path, sink: Any, label: str, probe: list[Any] | None = None) -> Any:
    from transformers import PrinterCallback

    from mason.train.callbacks import (
        checkpoint_marker,
        metrics_callback,
        progress_callback,
    )

    callbacks = [metrics_callback(sink), checkpoint_marker(), progress_callback(label, ctx.show_progress)]
    if probe:
        from mason.train.probe import knowledge_probe

        callbacks.append(knowledge_probe(probe, tok, sink.emit, cfg.probe_max_new_tokens))
    callbacks += ctx.options.get("train_callbacks", [])  # extra TrainerCallbacks from the Python API (tests, notebooks)
    if cfg.type == "dpo":
        from mason.train.dpo import build_dpo_trainer

        trainer = build_dpo_trainer(model, tok, rows[0], rows[1], cfg, ckpt_dir, callbacks)
    else:
        from mason.train.sft import build_sft_trainer

        trainer = build_sft_trainer(model, tok, rows[0], rows[1], cfg, ckpt_dir, callbacks)
    trainer.remove_callback(PrinterCallback)
    return trainer


def _stage_metrics(sink: Any, trainer: Any, has_eval: bool, changed: float, sft: bool) -> dict[str, float]:
    evaluated = [r["step"] for r in sink.rows if "eval_loss" in r]
    if has_eval and (not evaluated or evaluated[-1] != trainer.state.global_step):
        trainer.evaluate()  # logs eval_loss through the metrics callback
    losses = [r["loss"] for r in sink.rows if "loss" in r]
    evals = [r["eval_loss"] for r in sink.rows if "eval_loss" in r]
    knowledge = [r["eval_knowledge"] for r in sink.rows if "eval_knowledge" in r]
    from mason.train.hardware import peak_rss_mb

    out: dict[str, float] = {"adapter_change": changed, "peak_rss_mb": peak_rss_mb()}
    if knowledge:
        out.update(best_knowledge=max(knowledge), final_knowledge=knowledge[-1])
    if losses:
        out.update(first_loss=losses[0], final_loss=losses[-1])
    if evals:
        out.update(best_eval_loss=min(evals), final_eval_loss=evals[-1])
        if sft:  # a DPO loss is not a language-model loss: no perplexity for it
            out["perplexity"] = math.exp(min(min(evals), 50.0))
    margins = [r["reward_margin"] for r in sink.rows if "reward_margin" in r]
    if margins:
        out.update(first_reward_margin=margins[0], final_reward_margin=margins[-1])
    return out


def _probe(cfg: TrainingConfig, evals: list[Any], stage: str) -> list[Any]:
    """The knowledge probe's questions when the stage selects by knowledge ([] otherwise)."""
    from mason.train.probe import probe_questions

    if cfg.type != "sft" or cfg.select_by == "eval_loss" or cfg.eval_steps is None:
        return []
    questions = probe_questions(evals)
    if not questions and cfg.select_by == "knowledge":
        raise MasonError(f"stage '{stage}': select_by: knowledge, but no eval sample is a probe question "
                         "(meta.probe with meta.answers)",
                         hint="turn on synthetic_data.knowledge with probe_questions > 0, or use select_by: eval_loss")
    if questions:
        info(f"  knowledge probe: {len(questions)} held-out questions asked at each evaluation; "
             "the checkpoint that answers the most is kept" if cfg.early_stopping_patience else
             f"  knowledge probe: {len(questions)} held-out questions asked at each evaluation")
    return questions


def _param_change(before: dict[str, Any], model: Any) -> float:
    from mason.train.modeling import trainable_state

    after = trainable_state(model)
    return float(sum((after[n] - before[n]).norm() ** 2 for n in before if n in after) ** 0.5)


def _save_outputs(ctx: TaskContext, cfg: TrainingConfig, model: Any, tok: Any, stage_dir: Path) -> Path:
    from mason.train.outputs import (
        answer_prompts,
        save_merged,
        save_weights,
        write_answers,
    )

    if cfg.method == "full":
        weights = save_weights(model, tok, stage_dir / "merged")
    else:
        weights = save_weights(model, tok, stage_dir / "adapter")
        if cfg.merge:
            save_merged(model, tok, stage_dir / "merged")
    if cfg.test_prompts:
        write_answers(stage_dir / "answers.jsonl", answer_prompts(model, tok, cfg.test_prompts, cfg.test_max_new_tokens))
    return weights


def _log_data(loaded: Any) -> None:
    """One line on what loading did to the rows (conversation logs collapsed, rows held out), if anything."""
    done = []
    if loaded.collapsed:
        done.append(f"{loaded.collapsed} conversation-log row(s) collapsed into the longer conversation they begin")
    if loaded.from_chat_logs:
        done.append(f"{loaded.from_chat_logs} row(s) from chat logs")
    if loaded.held_out:
        done.append(f"{loaded.held_out} row(s) held out for evaluation (train_eval_split)")
    if done:
        info(f"  data: {'; '.join(done)}")


def run_stage(ctx: TaskContext, cfg: TrainingConfig, stage: StageConfig, stage_dir: Path,
              init_from: Path | None, prefix: str) -> StageOutcome:
    """Train one stage from `init_from` (the previous stage's weights; None = the base model).

    Returns:
        the stage's outcome, also written to `stage_dir/done.json`.
    Raises:
        InputError, ModelNotFoundError, MasonError: bad data, model, method, out of memory.
    """
    from mason.train.callbacks import MetricsSink
    from mason.data.samples import split
    from mason.train.modeling import prepare, trainable_state

    scfg = cfg.for_stage(stage)
    loaded = stage_data(ctx, cfg, stage)
    train, evals = split(loaded.samples)
    _log_data(loaded)
    if scfg.eval_steps and not evals:
        warn(f"stage '{stage.name}': eval_steps is set but no sample has meta.split = eval; no evaluation")
    from mason.train.mlx_backend import resolve_backend

    if resolve_backend(scfg) == "mlx":
        return _run_stage_mlx(ctx, scfg, stage, stage_dir, init_from, prefix, train, evals, loaded.summary())
    model, tok = prepare(ctx.pipeline.base_model, ctx.base_dir, scfg, init_from)
    if scfg.replay and scfg.type == "sft":
        from mason.train.replay import replay_samples

        replay = replay_samples(model, tok, scfg.replay, max_new_tokens=scfg.test_max_new_tokens, seed=scfg.seed)
        info(f"  replay: {len(replay)} general prompts answered by the model itself, mixed into the training data")
        train = train + replay
    rows = (_encode(scfg, train, tok), _encode(scfg, evals, tok))
    probe = _probe(scfg, evals, stage.name)
    ckpt_dir = stage_dir / "checkpoints"
    ckpt = _resume_point(ckpt_dir, ctx.resuming, ctx.out_dir / METRICS, stage.name)
    if ckpt:
        info(f"  stage '{stage.name}': resuming from {ckpt.name}")
    main = distributed.is_main()
    sink = MetricsSink(ctx.log_metric, ctx.out_dir / METRICS, stage.name, prefix, write=main)
    before = trainable_state(model)
    try:
        trainer = _build(ctx, scfg, model, tok, rows, ckpt_dir, sink, f"training {stage.name}" if prefix else "training",
                         probe)
        _train(trainer, ckpt)
        metrics = _stage_metrics(sink, trainer, bool(rows[1]), _param_change(before, trainer.model),
                                 scfg.type == "sft")
    finally:
        sink.close()
    weights = stage_dir / ("merged" if scfg.method == "full" else "adapter")
    if main:
        _save_outputs(ctx, scfg, trainer.model, tok, stage_dir)
    state = trainer.state
    tokens = int(state.num_input_tokens_seen) or sum(len(r.get("input_ids", ())) for r in rows[0])
    outcome = StageOutcome(stage.name, len(train), len(evals), int(state.global_step), tokens,
                           str(weights.relative_to(ctx.out_dir)), metrics, ckpt.name if ckpt else None,
                           loaded.summary())
    if main:
        atomic_write_json(stage_dir / DONE, outcome.__dict__)
    distributed.barrier()  # the next stage (on every process) starts from the weights saved above
    return outcome


def _run_stage_mlx(ctx: TaskContext, cfg: TrainingConfig, stage: StageConfig, stage_dir: Path,
                   init_from: Path | None, prefix: str, train: list[Any], evals: list[Any],
                   data: dict[str, Any] | None = None) -> StageOutcome:
    """One stage on the MLX backend (`mason.train.mlx_backend`): from the base model or the previous
    stage's fused model, to this stage's fused `merged/`."""
    from mason.models import model_source
    from mason.train.callbacks import MetricsSink
    from mason.train.mlx_backend import train_lora

    info(f"  stage '{stage.name}': training with mlx-lm (backend: mlx)" if prefix else "  training with mlx-lm (backend: mlx)")
    source = init_from or Path(model_source(ctx.pipeline.base_model, ctx.base_dir))
    sink = MetricsSink(ctx.log_metric, ctx.out_dir / METRICS, stage.name, prefix)
    try:
        result = train_lora(source, cfg, train, evals, stage_dir, sink)
    finally:
        sink.close()
    if cfg.test_prompts:
        info("  test_prompts are answered on the transformers path only; skipped on MLX")
    outcome = StageOutcome(stage.name, len(train), len(evals), result["steps"], result["tokens"],
                           str((stage_dir / "merged").relative_to(ctx.out_dir)), result["metrics"], data=data or {})
    atomic_write_json(stage_dir / DONE, outcome.__dict__)
    return outcome


# --------------------------------------------------------------------------- the task


def _load_done(stage_dir: Path) -> StageOutcome | None:
    path = stage_dir / DONE
    if not path.is_file():
        return None
    return StageOutcome(**json.loads(path.read_text(encoding="utf-8")))


def _finish(ctx: TaskContext, cfg: TrainingConfig, outcomes: list[StageOutcome],
            quality: dict[str, Any] | None = None) -> TaskResult:
    from mason.core.io import copy_folder

    last = outcomes[-1]
    files = [METRICS, STATE]
    if cfg.stages:  # the last stage's weights are the task's result
        stage_dir = ctx.out_dir / "stages" / last.name
        for name in ("adapter", "merged", "answers.jsonl"):
            src = stage_dir / name
            if src.is_dir():
                copy_folder(src, ctx.out_dir / name)
            elif src.is_file():
                (ctx.out_dir / name).write_bytes(src.read_bytes())
        files += [f"stages/{o.name}" for o in outcomes]
    files += [n for n in ("adapter", "merged", "answers.jsonl") if (ctx.out_dir / n).exists()]
    counts = {
        "train_samples": sum(o.train_samples for o in outcomes),
        "eval_samples": sum(o.eval_samples for o in outcomes),
        "steps": sum(o.steps for o in outcomes),
        "tokens": sum(o.tokens for o in outcomes),
        "stages": len(outcomes),
    }
    files += _write_reports(ctx, cfg, outcomes, quality)
    metrics = dict(last.metrics)
    metrics["first_loss"] = outcomes[0].metrics.get("first_loss", metrics.get("first_loss", float("nan")))
    metrics = {k: v for k, v in metrics.items() if not math.isnan(v)}
    details = {"version": VERSION, "stages": [o.__dict__ for o in outcomes], "method": cfg.method, "type": cfg.type}
    if quality:
        details["data_quality"] = quality
    return TaskResult(counts=counts, metrics=metrics, files=files, details=details)


def _curation_counts(ctx: TaskContext) -> dict[str, int]:
    """What the person decided about the dataset (the curate task's `curation.json`), {} without curation."""
    folder = ctx.inputs.get("curate")
    own_data = getattr(ctx.section, "data", None) is not None  # `training.data`: the curated set is not used
    if folder is None or own_data or not (folder / "curation.json").is_file():
        return {}
    summary = json.loads((folder / "curation.json").read_text(encoding="utf-8"))
    return {k: summary[k] for k in ("approved", "rejected", "undecided", "edited", "rescued", "seeded")
            if isinstance(summary.get(k), int)}


def _write_reports(ctx: TaskContext, cfg: TrainingConfig, outcomes: list[StageOutcome],
                   quality: dict[str, Any] | None = None) -> list[str]:
    """The train report (JSON, Markdown, HTML with charts) of every stage, beside its weights."""
    from mason.train.history import read_history
    from mason.train.report import write_report

    written = []
    curation = _curation_counts(ctx)
    for o in outcomes:
        folder = ctx.out_dir / "stages" / o.name if cfg.stages else ctx.out_dir
        history = read_history(ctx.out_dir / METRICS, stage=o.name)
        summary = {"stage": o.name, "model": ctx.pipeline.base_model.name, "type": cfg.type, "method": cfg.method,
                   "train_samples": o.train_samples, "eval_samples": o.eval_samples, "steps": o.steps,
                   "tokens": o.tokens}
        if o.metrics.get("peak_rss_mb"):  # the process's peak resident memory, at the end of this stage
            summary["peak_RSS_MiB"] = round(o.metrics["peak_rss_mb"])
        if curation:
            summary["curation"] = curation
        if o.data or quality:  # the files read, rows from chat logs, collapsed, held out; `mason validate`'s share
            summary["data"] = {**o.data, **({"quality": quality} if quality else {})}
        paths = write_report(history, summary, folder)
        if not cfg.stages:
            written += [p.relative_to(ctx.out_dir).as_posix() for k, p in paths.items() if not k.startswith("chart_")]
    return written


def run(ctx: TaskContext) -> TaskResult:
    """Run the training task (every stage in order; finished stages are kept on resume).

    Returns:
        counts (train_samples, eval_samples, steps, tokens, stages) and metrics (first_loss,
        final_loss, best_eval_loss, perplexity, adapter_change, DPO reward margins).
    Raises:
        InputError, ModelNotFoundError, MasonError: see `run_stage` and `check_data_quality`; a
            `device` this machine does not have.
    """
    from mason.train.hardware import training_device

    cfg: TrainingConfig = ctx.section
    quality = check_data_quality(ctx, cfg)
    with training_device(cfg.device):
        return _run(ctx, cfg, quality)


def _run(ctx: TaskContext, cfg: TrainingConfig, quality: dict[str, Any] | None) -> TaskResult:
    stages = cfg.stage_list()
    multi = cfg.stages is not None
    only = (ctx.options.get("select") or {}).get("training")  # `mason run pipeline.yaml training:NAME`
    if only is not None:
        names = [s.name for s in stages]
        stages = stages[: names.index(only) + 1]
        if len(stages) > 1:
            info(f"  stage '{only}' (after {', '.join(names[: len(stages) - 1])}, whose weights it starts from)")
    outcomes: list[StageOutcome] = []
    init_from: Path | None = None
    state: dict[str, Any] = {"stages": {}}
    for stage in stages:
        stage_dir = ctx.out_dir / "stages" / stage.name if multi else ctx.out_dir
        done = _load_done(stage_dir) if ctx.resuming else None
        if done is None:
            state["stages"][stage.name] = {"status": "running", "init_from": str(init_from) if init_from else None}
            if distributed.is_main():
                atomic_write_json(ctx.out_dir / STATE, state)
            if multi:
                info(f"  stage '{stage.name}'")
            done = run_stage(ctx, cfg, stage, stage_dir, init_from, f"{stage.name}/" if multi else "")
        state["stages"][stage.name] = {"status": "done", "init_from": str(init_from) if init_from else None,
                                       "steps": done.steps, "resumed_from": done.resumed_from}
        if distributed.is_main():
            atomic_write_json(ctx.out_dir / STATE, state)
        outcomes.append(done)
        init_from = ctx.out_dir / done.weights
    if not distributed.is_main():  # the main process writes the reports and the task's result
        return TaskResult(counts={"stages": len(outcomes)}, details={"rank": distributed.rank()})
    if len(outcomes) < len(cfg.stage_list()):
        # one stage by name, not the last: the task is not complete; the next run resumes after it
        return TaskResult(counts={"stages": len(outcomes), "steps": sum(o.steps for o in outcomes)},
                          metrics={k: v for k, v in outcomes[-1].metrics.items() if not math.isnan(v)},
                          files=[METRICS, STATE] + [f"stages/{o.name}" for o in outcomes],
                          details={"version": VERSION, "stages": [o.__dict__ for o in outcomes],
                                   "stopped_after": outcomes[-1].name}, partial=True)
    return _finish(ctx, cfg, outcomes, quality)
