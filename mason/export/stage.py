"""The `export` task: write the tuned model in each configured format, verify each one in its
runtime, and copy the verified exports to `export.path`.

Outputs in the artifact folder:
  source/             the merged model every format is converted from (LoRA folded into the base)
  <format>/           one folder per format (model.gguf + Modelfile, ONNX, MLX, merged, adapter),
                      renamed into place only after its verification passed
  <format>.failed/    an export whose verification failed, kept for inspection
  export_report.json  per format: files, sizes, details and the verification numbers
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from mason.core.console import info, warn
from mason.core.errors import InputError, MasonError
from mason.core.io import atomic_write_json
from mason.core.task import TaskContext, TaskResult
from mason.export.base import ExportJob, ExportVerificationError, get_exporter
from mason.export.config import ExportConfig

VERSION = "1"
DONE = "export_done.json"
REPORT = "export_report.json"
DEFAULT_PROMPTS = ["What is this document about?", "Explain the main idea in one sentence."]


def verify_prompts(cfg: ExportConfig, inputs: dict[str, Path], n: int = 3) -> list[list[dict[str, Any]]]:
    """Conversations to verify on: the configured prompts, else the eval split's first questions."""
    prompts = list(cfg.verify_prompts)
    samples = inputs.get("generate")
    if not prompts and samples is not None and (samples / "samples.jsonl").is_file():
        for line in (samples / "samples.jsonl").read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if row.get("meta", {}).get("split") == "eval" and row.get("messages"):
                user = next((m["content"] for m in row["messages"] if m.get("role") == "user"), None)
                if user:
                    prompts.append(user)
            if len(prompts) >= n:
                break
    return [[{"role": "user", "content": p}] for p in (prompts or DEFAULT_PROMPTS)]


def _source_model(ctx: TaskContext) -> tuple[Path, Path | None, str]:
    """(merged model folder, adapter folder or None, base model source) of what is exported."""
    from mason.models import model_source
    from mason.core.io import write_folder

    base = model_source(ctx.pipeline.base_model, ctx.base_dir)
    trained = ctx.inputs.get("training")
    if trained is not None and (trained / "merged").is_dir():
        adapter = trained / "adapter" if (trained / "adapter").is_dir() else None
        return trained / "merged", adapter, base
    source = ctx.out_dir / "source"
    adapter = trained / "adapter" if trained is not None and (trained / "adapter").is_dir() else None
    if trained is not None and adapter is None:
        raise InputError(f"the training artifact {trained} has neither merged/ nor adapter/", hint="re-run training with --force")
    if not (source / "config.json").is_file():
        info("  merging the adapter into the base model" if adapter else "  no training task: exporting the base model")
        write_folder(source, lambda tmp: _save_merged(base, adapter, tmp, ctx))
    return source, adapter, base


def _save_merged(base: str, adapter: Path | None, folder: Path, ctx: TaskContext) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mason.data.chat import ensure_chat_template

    bm = ctx.pipeline.base_model
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32, revision=bm.revision,
                                                 trust_remote_code=bm.trust_remote_code)
    tokenizer = AutoTokenizer.from_pretrained(adapter or base, trust_remote_code=bm.trust_remote_code)
    # a base model without a chat template exports with MASON's default, as training saves it
    ensure_chat_template(tokenizer)
    if adapter is not None:
        model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def export_one(fmt: str, job: ExportJob, final: Path, verify: bool) -> dict[str, Any]:
    """Export one format into a temporary folder beside `final`, verify it there, rename it in.

    Returns:
        the format's report entry (path, files, bytes, seconds, details, verification).
    Raises:
        ExportVerificationError: the export disagrees with the PyTorch model (kept in `<fmt>.failed/`).
    """
    exporter = get_exporter(fmt)
    tmp = final.parent / f".{final.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    job.out_dir = tmp
    started = time.perf_counter()
    try:
        output = exporter.export(job)
        exported = time.perf_counter() - started
        verification = exporter.verify(job, output) if verify else None
    except ExportVerificationError:
        failed = final.parent / f"{final.name}.failed"
        shutil.rmtree(failed, ignore_errors=True)
        os.replace(tmp, failed)
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    main = output.path.relative_to(tmp)
    entry = {"format": fmt, "path": (final / main).as_posix() if str(main) != "." else final.as_posix(),
             "files": output.files, "bytes": _size(tmp), "export_seconds": round(exported, 2),
             "verify_seconds": round(time.perf_counter() - started - exported, 2), "details": output.details,
             "verification": verification}
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    return entry


def _publish(ctx: TaskContext, cfg: ExportConfig, fmt: str, entry: dict[str, Any]) -> Path:
    from mason.core.io import copy_folder

    dest = Path(cfg.path).expanduser()
    dest = dest if dest.is_absolute() else ctx.base_dir / dest
    if cfg.file_target() == fmt:  # `path: exports/my_model.gguf`: that file, its Modelfile beside it
        return _publish_file(Path(entry["path"]), dest)
    return copy_folder(ctx.out_dir / fmt, dest / fmt)


def _publish_file(src: Path, dest: Path) -> Path:
    """Copy one exported file to `dest` (atomically: a temporary name, then a rename), with the Ollama
    Modelfile of its folder as `<stem>.Modelfile` pointing at it."""
    from mason.core.io import atomic_write_text

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp")
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    modelfile = src.parent / "Modelfile"
    if modelfile.is_file():
        lines = modelfile.read_text(encoding="utf-8").splitlines()
        lines = [f"FROM ./{dest.name}" if line.startswith("FROM ") else line for line in lines]
        atomic_write_text(dest.with_suffix(".Modelfile"), "\n".join(lines) + "\n")
    return dest


def run(ctx: TaskContext) -> TaskResult:
    """Run the export task.

    Returns:
        counts (formats, verified), metrics (`<format>.max_abs_diff`, `<format>.mb`), the report.
    Raises:
        ExportVerificationError: an export failed its check (the task fails; nothing is published).
        InputError, MasonError: no trained model, a missing optional package, an unsupported model.
    """
    cfg: ExportConfig = ctx.section
    model_dir, adapter, base = _source_model(ctx)
    prompts = verify_prompts(cfg, ctx.inputs)
    options = {**cfg.model_dump(), "base_model_dir": base}
    entries: dict[str, dict[str, Any]] = {}
    for fmt in cfg.format:
        done = ctx.out_dir / fmt / DONE
        if ctx.resuming and done.is_file():
            entries[fmt] = json.loads(done.read_text(encoding="utf-8"))
            continue
        info(f"  {fmt}: exporting" + (" and verifying" if cfg.verify else ""))
        job = ExportJob(model_dir, ctx.out_dir, dict(options), adapter, prompts)
        entry = export_one(fmt, job, ctx.out_dir / fmt, cfg.verify)
        atomic_write_json(done, entry)
        entries[fmt] = entry
        v = entry["verification"]
        if v:
            info(f"  {fmt}: verified in {v['runtime']} (max |logit diff| {v['max_abs_diff']:.3g} <= {v['tolerance']})")
    extra: dict[str, Any] = {}
    evaluated = evaluate_exports(ctx, entries) if cfg.evaluate else None  # before publishing: guards apply
    if evaluated:
        extra.update(evaluation=evaluated["report"], metrics=evaluated["metrics"])
    published = {fmt: str(_publish(ctx, cfg, fmt, entries[fmt])) for fmt in cfg.format}
    if cfg.push_to_hub:
        extra["hub"] = push_to_hub(cfg.push_to_hub, {fmt: ctx.out_dir / fmt for fmt in entries})
    report = {"version": VERSION, "source": str(model_dir), "formats": entries, "published": published, **extra}
    atomic_write_json(ctx.out_dir / REPORT, report)
    metrics: dict[str, float] = {}
    for fmt, e in entries.items():
        metrics[f"{fmt}.mb"] = e["bytes"] / 1e6
        if e.get("verification"):
            metrics[f"{fmt}.max_abs_diff"] = e["verification"]["max_abs_diff"]
    metrics.update(extra.get("metrics", {}))
    return TaskResult(
        counts={"formats": len(entries), "verified": sum(1 for e in entries.values() if e.get("verification"))},
        metrics=metrics,
        files=[REPORT] + list(cfg.format),
        details={"published": published},
    )


#: formats whose answers can differ from the tuned model's (merged and adapter are the same weights)
EVALUATED = ("gguf", "onnx", "mlx")


def evaluate_exports(ctx: TaskContext, entries: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """Answer the evaluation's prompts with each exported model (GGUF, ONNX, MLX) and compare them
    with the tuned model, in `evaluation/` of this task's folder (the evaluation stage, with the
    tuned and base answers from its cache). Guards on a format (`model: gguf`) apply here.

    Returns:
        {"report": path, "metrics": {...}} or None when there is nothing to evaluate.
    Raises:
        GuardFailed: a guard on an exported format failed (the report is written first).
    """
    import dataclasses

    exported = {fmt: e["path"] for fmt, e in entries.items() if fmt in EVALUATED}
    evaluate = ctx.stages.get("evaluation")  # passed in by the runner (the task table's `calls`)
    if not exported or ctx.pipeline.evaluation is None or "evaluation" not in ctx.inputs or evaluate is None:
        return None

    info(f"  evaluating the exports ({', '.join(exported)}) on the evaluation's prompts")
    sub = dataclasses.replace(
        # perplexity is the evaluation task's (exports have none); answers of tuned/base come from its cache
        ctx, task="evaluation", section=ctx.pipeline.evaluation.model_copy(update={"perplexity": False}),
        out_dir=ctx.out_dir / "evaluation",
        inputs={k: v for k, v in ctx.inputs.items() if k != "evaluation"}, resuming=False,
        options={**ctx.options, "exported_models": exported},
    )
    sub.out_dir.mkdir(parents=True, exist_ok=True)
    result = evaluate(sub)
    keep = {k: v for k, v in result.metrics.items() if k.split(".")[0] in exported}
    return {"report": "evaluation/eval_report.html", "metrics": keep}


def push_to_hub(repo: str, folders: dict[str, Path]) -> dict[str, str]:
    """Upload each format folder into `repo` (a subfolder per format).

    Raises:
        MasonError: offline, or huggingface_hub refused (message without the token).
    """
    from mason.models.resolver import hub_offline

    if hub_offline():
        raise MasonError(f"export.push_to_hub: {repo} needs the Hugging Face Hub, and this machine is offline "
                         "(HF_HUB_OFFLINE is set or the hub cannot be reached)", hint="remove push_to_hub, or run online")
    try:
        from huggingface_hub import HfApi

        api = HfApi()
        api.create_repo(repo, exist_ok=True)
        return {fmt: str(api.upload_folder(repo_id=repo, folder_path=str(folder), path_in_repo=fmt))
                for fmt, folder in folders.items()}
    except Exception as e:  # noqa: BLE001 - network and auth errors of every kind end here
        warn(f"push to {repo} failed")
        raise MasonError(f"export.push_to_hub: uploading to {repo} failed: {type(e).__name__}",
                         hint="check HF_TOKEN (write access) and the network") from None
