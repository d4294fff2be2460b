"""The `generate` task: chunks (and/or records) → teacher → filters → judge → dedup → balance → split.

Outputs in the artifact folder:
  raw.jsonl        one row per finished work unit (durable as it goes: the resume point)
  samples.jsonl    the dataset, in the data contract, with `meta.split` train/eval
  rejected.jsonl   every rejected sample with `meta.rejected.reason`

Teacher and judge requests go through the workspace's request cache, so a resumed or
re-run task never pays twice for the same request.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from mason.core.console import info, progress, warn
from mason.core.errors import InputError, MasonError
from mason.core.hashing import file_sha256, stable_hash
from mason.core.io import JsonlWriter, atomic_write_text, iter_jsonl, read_jsonl
from mason.core.task import TaskContext, TaskResult
from mason.generate.config import GenerateConfig
from mason.generate.units import DISTILLATION, Unit, plan_chunk_units, plan_record_units

VERSION = "1"
RAW, SAMPLES, REJECTED = "raw.jsonl", "samples.jsonl", "rejected.jsonl"


def _prompts_dir(cfg: GenerateConfig, base_dir: Path) -> Path | None:
    if not cfg.prompts_dir:
        return None
    path = Path(cfg.prompts_dir)
    return path if path.is_absolute() else base_dir / path


def fingerprint(cfg: GenerateConfig, base_dir: Path) -> dict[str, Any]:
    """Inputs outside the workspace: the records file and the user's prompt templates."""
    out: dict[str, Any] = {}
    if cfg.records is not None:
        path = Path(cfg.records.path)
        path = path if path.is_absolute() else base_dir / path
        out["records"] = file_sha256(path) if path.is_file() else "missing"
    prompts = _prompts_dir(cfg, base_dir)
    if prompts is not None and prompts.is_dir():
        out["prompts"] = {p.name: file_sha256(p) for p in sorted(prompts.glob("*.j2"))}
    seeds = seeds_path(cfg, base_dir)
    if seeds is not None and seeds.is_file():
        out["seeds"] = file_sha256(seeds)
    return out


def seeds_path(cfg: GenerateConfig, base_dir: Path) -> Path | None:
    """The seed instructions file (`synthetic_data.seeds`), or None when there is none configured."""
    if not cfg.seeds:
        return None
    path = Path(cfg.seeds).expanduser()
    return path if path.is_absolute() else base_dir / path


def _load_chunks(ctx: TaskContext) -> list[dict[str, Any]]:
    folder = ctx.inputs.get("ingest")
    if folder is None:
        return []
    path = folder / "chunks.jsonl"
    if not path.is_file():
        raise InputError(f"the ingest artifact {folder} has no chunks.jsonl", hint="run `mason run PIPELINE ingest --force`")
    return read_jsonl(path)


def _seeds(ctx: TaskContext, cfg: GenerateConfig, *, say: bool = True) -> list[dict[str, Any]]:
    from mason.data.seeds import read_seeds

    path = seeds_path(cfg, ctx.base_dir)
    seeds = read_seeds(path) if path is not None else []
    if seeds and say:
        info(f"  {len(seeds)} seed instruction(s) from {path}: examples for the teacher, and in the dataset")
    return seeds


def _plan(ctx: TaskContext, cfg: GenerateConfig, model_id: str, prompts: Any,
          sources: dict[str, str], seeds: list[dict[str, Any]]) -> list[Unit]:
    from mason.generate.records import load_records, record_id

    chunks = _load_chunks(ctx)
    for c in chunks:
        sources[c["id"]] = c["text"]
    digest = {}
    for task in cfg.task_type:
        try:
            # the seeds are part of every teacher prompt: --resume-verify redoes units when they change
            digest[task] = stable_hash([prompts.source(task)[0], [r["id"] for r in seeds]] if seeds
                                       else prompts.source(task)[0])
        except MasonError:
            digest[task] = None  # extractive tasks have no template
    units = plan_chunk_units(chunks, cfg, model_id=model_id, template_digest=digest) if chunks else []
    if cfg.records is not None:
        records = load_records(cfg.records, ctx.base_dir)
        for line_no, record in records:
            sources[record_id(record, line_no, cfg.records)] = json.dumps(record, ensure_ascii=False)
        units += plan_record_units(records, cfg, model_id=model_id, start=len(units))
    if not units:
        raise InputError(
            "nothing to generate from: no chunks and no records",
            hint="add a `knowledge_source:` section (documents) or `synthetic_data.records` (a JSONL file)",
        )
    return units


def _done_units(path: Path, units: list[Unit], verify: bool) -> tuple[dict[str, dict], list[str]]:
    """Rows of `raw.jsonl` by unit id; with `verify`, rows whose fingerprint changed are dropped."""
    if not path.exists():
        return {}, []
    from mason.core.io import repair_jsonl_tail

    repair_jsonl_tail(path)
    by_id = {u.id: u for u in units}
    done, mismatched = {}, []
    for _, row in iter_jsonl(path):
        unit = by_id.get(row.get("unit"))
        if unit is None:
            continue
        if verify and row.get("fingerprint") != unit.fingerprint:
            mismatched.append(unit.id)
            continue
        done[unit.id] = row
    return done, mismatched


async def _run_unit(unit: Unit, gen_ctx: Any, teacher: str) -> list[dict[str, Any]]:
    from mason.generate.generators import get_generator
    from mason.generate.records import distill

    if unit.task == DISTILLATION:
        return [await distill(unit.record, unit.line_no, unit.template_index, gen_ctx)]
    return await get_generator(unit.task, teacher=teacher).generate(unit.chunk, unit.n, gen_ctx)


async def _generate(todo: list[Unit], gen_ctx: Any, teacher: str, writer: JsonlWriter,
                    show_progress: bool) -> tuple[int, int, list[str]]:
    """Run the units concurrently, writing each finished unit's row as it completes.

    Returns (units done, units with no usable answer, errors of units that failed).
    """
    from mason.llm.structured import StructuredOutputError
    from mason.llm.teachers.base import TeacherError

    unusable, errors = 0, []

    async def one(unit: Unit) -> tuple[Unit, list[dict] | None, str | None]:
        try:
            return unit, await _run_unit(unit, gen_ctx, teacher), None
        except StructuredOutputError as e:
            return unit, [], f"unusable answer: {e}"  # the cache would give the same answer again
        except TeacherError as e:
            return unit, None, str(e)

    with progress(disable=not show_progress) as bar:
        task = bar.add_task("generate", total=len(todo))
        for coro in asyncio.as_completed([one(u) for u in todo]):
            unit, samples, error = await coro
            if samples is None:
                errors.append(error or "failed")
            else:
                unusable += 0 if samples else 1
                writer.write({"unit": unit.id, "task": unit.task, "fingerprint": unit.fingerprint,
                              "samples": samples, "note": error})
            bar.advance(task)
    writer.sync()
    return len(todo) - len(errors), unusable, errors


def _collect(units: list[Unit], raw_path: Path) -> list[dict[str, Any]]:
    """All raw samples in plan order (not completion order), so output is deterministic."""
    order = {u.id: u.order for u in units}
    # a unit can have two rows (--resume-verify regenerated it): the later row wins
    last = {r["unit"]: r for _, r in iter_jsonl(raw_path) if r.get("unit") in order}
    samples: list[dict[str, Any]] = []
    for uid in sorted(last, key=order.__getitem__):
        samples += last[uid]["samples"]
    return samples


def run(ctx: TaskContext) -> TaskResult:
    """Generate, filter and split the dataset (see the module docstring)."""
    return asyncio.run(_run(ctx))


async def _run(ctx: TaskContext) -> TaskResult:
    from mason.llm.cache import RequestCache
    from mason.llm.client import open_client
    from mason.generate.prompts import PromptLibrary
    from mason.generate.tasks.base import GenContext
    from mason.llm.teachers import is_extractive

    cfg: GenerateConfig = ctx.section
    extractive = is_extractive(cfg.teacher)
    if extractive:
        warn("synthetic_data.teacher is `extractive`: questions and answers are cut from the text itself, "
             "without an LLM. Quality is limited; set `teacher:` to an LLM for better data.")
    cache = RequestCache((ctx.cache_dir or ctx.out_dir) / "requests.sqlite")
    client = None if extractive else open_client(cfg.teacher, base_dir=ctx.base_dir, cache=cache)
    judge = open_client(cfg.judge_llm, base_dir=ctx.base_dir, cache=cache) if cfg.judge_llm else None
    try:
        model_id = "extractive" if client is None else client.model_id
        prompts = PromptLibrary(_prompts_dir(cfg, ctx.base_dir))
        seeds = _seeds(ctx, cfg)
        gen_ctx = GenContext(client=client, prompts=prompts, cfg=cfg, model_id=model_id, seed=cfg.seed,
                             examples=seeds)
        sources: dict[str, str] = {}
        units = _plan(ctx, cfg, model_id, prompts, sources, seeds)
        raw_path = ctx.out_dir / RAW
        done, mismatched = _done_units(raw_path, units, bool(ctx.options.get("resume_verify")))
        if mismatched:
            warn(f"--resume-verify: {len(mismatched)} finished unit(s) no longer match their prompts; regenerating them")
        todo = [u for u in units if u.id not in done]
        with JsonlWriter(raw_path, resume=True) as writer:
            finished, unusable, errors = await _generate(todo, gen_ctx, cfg.teacher.model, writer, ctx.show_progress)
        if errors:
            raise MasonError(
                f"{len(errors)} of {len(units)} generation requests failed after retries "
                f"({len(done) + finished} finished units are kept). First error: {errors[0]}",
                hint="fix the teacher (URL, key, server) and run again: finished units are not redone",
            )
        return await _refine_and_write(ctx, cfg, units, sources, judge, client, {
            "units": len(units), "units_resumed": len(done), "units_unusable": unusable,
            "mismatched": len(mismatched)})
    finally:
        for c in (client, judge):
            if c is not None:
                await c.aclose()
        cache.close()


async def _refine_and_write(ctx: TaskContext, cfg: GenerateConfig, units: list[Unit], sources: dict[str, str],
                            judge: Any, client: Any, counts: dict[str, int]) -> TaskResult:
    from mason.data.quality import dataset_quality
    from mason.generate.refine import (
        Refined, apply_dedup, apply_heuristics, apply_judge, apply_knowledge, rejection_counts, select_and_split,
    )

    raw = _collect(units, ctx.out_dir / RAW)
    out = Refined(kept=[])
    kept = apply_heuristics(raw, sources, cfg, out)
    if judge is not None and kept:
        with progress(disable=not ctx.show_progress) as bar:
            t = bar.add_task("judge", total=len(kept))
            kept = await apply_judge(kept, sources, judge, cfg, out, prompts_dir=_prompts_dir(cfg, ctx.base_dir),
                                     on_done=lambda: bar.advance(t))
    kept = apply_dedup(kept, cfg, out)
    weights = dict(cfg.task_type)
    if cfg.records is not None:
        weights[DISTILLATION] = sum(cfg.task_type.values()) / len(cfg.task_type)
    kept = select_and_split(kept, cfg, out, weights)
    if cfg.knowledge.enabled:
        kept = apply_knowledge(kept, _load_chunks(ctx), cfg, out)
    kept += [s for s in _seeds(ctx, cfg, say=False) if s["id"] not in {k.get("id") for k in kept}]
    if not raw:
        raise MasonError(
            f"the teacher produced no usable sample: all {counts['units_unusable']} answered units were unusable "
            f"(see the `note` of each row in {ctx.out_dir / RAW})",
            hint="use a stronger teacher, or check its answers with `mason chat`; small models often cannot "
                 "follow the JSON format",
        )
    if not kept:
        atomic_write_text(ctx.out_dir / REJECTED, "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in out.rejected))
        raise MasonError(f"every generated sample was rejected ({len(raw)} generated): see {ctx.out_dir / REJECTED}",
                         hint=f"rejections: {rejection_counts(out.rejected)}")
    atomic_write_text(ctx.out_dir / SAMPLES, "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in kept))
    atomic_write_text(ctx.out_dir / REJECTED, "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in out.rejected))
    return _result(cfg, kept, raw, out, client, judge, counts, dataset_quality(kept, cfg.filters))


def _result(cfg: GenerateConfig, kept: list[dict], raw: list[dict], out: Any, client: Any, judge: Any,
            counts: dict[str, int], quality: dict[str, Any]) -> TaskResult:
    from mason.generate.refine import rejection_counts

    per_task: dict[str, int] = {}
    for s in kept:
        per_task[s["meta"]["task"]] = per_task.get(s["meta"]["task"], 0) + 1
    usage = {"teacher": client.stats.as_dict() if client else {}, "judge": judge.stats.as_dict() if judge else {}}
    metrics: dict[str, float] = {"quality_mean": quality["mean_score"],
                                 "contamination_share": out.report["contamination"]["share"]}
    for who, stats in usage.items():
        for name in ("prompt_tokens", "completion_tokens", "requests_sent", "cache_hits"):
            if name in stats:
                metrics[f"{who}_{name}"] = stats[name]
        if stats.get("cost_usd") is not None:
            metrics[f"{who}_cost_usd"] = stats["cost_usd"]
    return TaskResult(
        counts={**counts, "generated": len(raw), "samples": len(kept), "rejected": len(out.rejected),
                "train": out.report["split"]["train"], "eval": out.report["split"]["eval"]},
        metrics=metrics,
        files=[SAMPLES, REJECTED, RAW],
        details={"per_task": per_task, "rejections": rejection_counts(out.rejected), "quality": quality,
                 "split": out.report["split"], "contamination": out.report["contamination"], "usage": usage,
                 "knowledge": out.report.get("knowledge"),
                 "teacher": cfg.teacher.model, "judge": cfg.judge_llm.model if cfg.judge_llm else None},
    )
