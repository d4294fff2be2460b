"""The `curate` task: the person's decisions applied to the generated dataset.

`review(ctx)` is the human step: in a terminal (and unless `interactive: false` or `--no-input`) the
runner calls it before taking the task's key, and it opens the curation UI on the generate task's
output; every decision is saved as it is made (`curation.decisions`, SQLite). `run(ctx)` then applies
the saved decisions and the `undecided` policy, without any UI, and writes:

  samples.jsonl    the curated dataset: approved (as edited), rescued and, under `undecided: keep`,
                   undecided samples; each with `meta.curation` (decision, who, when, edited, rescued)
  rejected.jsonl   what curation dropped, with `meta.rejected` (`stage: curation` and the reason)
  curation.json    the counts (approved, rejected, undecided, edited, rescued, seeded, stale, kept, dropped)

The decisions' digest is part of the task key (`fingerprint`): deciding anything re-runs the task
and what trains on it; deciding nothing new keeps everything cached.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from mason.core.console import info, warn
from mason.core.errors import InputError
from mason.core.io import atomic_write_json, atomic_write_text
from mason.core.task import TaskContext, TaskResult
from mason.curate.config import CurationConfig

VERSION = "1"
SAMPLES, REJECTED, SUMMARY = "samples.jsonl", "rejected.jsonl", "curation.json"


def decisions_path(cfg: CurationConfig, base_dir: Path) -> Path:
    """The decisions file (`curation.decisions`, relative to the YAML's folder)."""
    path = Path(cfg.decisions).expanduser()
    return path if path.is_absolute() else base_dir / path


def seeds_file(pipeline: Any, base_dir: Path) -> Path | None:
    """Where seeds typed in the UI go: `synthetic_data.seeds` (None when switched off)."""
    generate = getattr(pipeline, "synthetic_data", None)
    seeds = generate.seeds if generate is not None else "seeds.jsonl"
    if not seeds:
        return None
    path = Path(seeds).expanduser()
    return path if path.is_absolute() else base_dir / path


def fingerprint(cfg: CurationConfig, base_dir: Path) -> dict[str, Any]:
    """The decisions' digest: the curated dataset changes exactly when a decision or an edit does."""
    from mason.curate.store import DecisionStore

    path = decisions_path(cfg, base_dir)
    if not path.is_file():
        return {"decisions": None}
    with DecisionStore.open(path) as store:
        return {"decisions": store.digest()}


def open_session(ctx: TaskContext, store: Any) -> Any:
    """The curation session of this task's inputs (generate's samples, ingest's chunks).

    Raises:
        InputError: there is no generate output to curate.
    """
    from mason.curate.session import CurationSession

    samples = ctx.inputs.get("generate")
    if samples is None:
        raise InputError("curation has nothing to review: no `synthetic_data` task upstream",
                         hint="add a `synthetic_data:` section, or remove `curation:`")
    return CurationSession.load(samples, ctx.inputs.get("ingest"), store, seeds_file(ctx.pipeline, ctx.base_dir))


def interactive(cfg: CurationConfig, options: dict[str, Any]) -> bool:
    """Whether to open the UI: `interactive: true`, or `auto` in a terminal; never with `--no-input`."""
    if options.get("no_input") or cfg.interactive is False:
        return False
    return cfg.interactive is True or (sys.stdin.isatty() and sys.stdout.isatty())


def review(ctx: TaskContext) -> bool:
    """The human step (see the module docstring); returns whether the UI was opened."""
    cfg: CurationConfig = ctx.section
    if not interactive(cfg, ctx.options):
        return False
    try:
        from mason.curate.app import CurationApp
    except ImportError:
        warn('the curation UI needs textual (pip install "mason[tui]"); applying the saved decisions instead')
        return False
    from mason.curate.store import DecisionStore

    with DecisionStore.open(decisions_path(cfg, ctx.base_dir)) as store:
        session = open_session(ctx, store)
        CurationApp(session, title=f"MASON curation: {ctx.pipeline.name or ctx.base_dir.name}").run()
    return True


def run(ctx: TaskContext) -> TaskResult:
    """Apply the saved decisions and the undecided policy to the generated dataset (no UI here)."""
    from mason.curate.store import DecisionStore

    cfg: CurationConfig = ctx.section
    policy = cfg.policy()
    path = decisions_path(cfg, ctx.base_dir)
    with DecisionStore.open(path) as store:
        session = open_session(ctx, store)
        kept, dropped, counts = session.curated(policy)
    if not kept:
        raise InputError(f"curation kept no sample ({counts['rejected']} rejected, {counts['undecided']} undecided "
                         f"dropped by `undecided: {policy}`): nothing to train on",
                         hint="approve samples with `mason curate PIPELINE`, or set `curation.undecided: keep`")
    atomic_write_text(ctx.out_dir / SAMPLES, "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in kept))
    atomic_write_text(ctx.out_dir / REJECTED, "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in dropped))
    summary = {"policy": policy, "decisions": str(path), **counts}
    atomic_write_json(ctx.out_dir / SUMMARY, summary)
    undecided = f"{counts['undecided']} undecided {'kept' if policy == 'keep' else 'dropped'} (undecided: {policy})"
    info(f"  curation: {counts['approved']} approved, {counts['rejected']} rejected, {undecided}; "
         f"{counts['edited']} edited, {counts['rescued']} rescued, {counts['seeded']} seeded"
         + (f"; {counts['stale']} decisions on samples no longer generated" if counts["stale"] else ""))
    return TaskResult(counts=counts, files=[SAMPLES, REJECTED, SUMMARY], details={"policy": policy})
