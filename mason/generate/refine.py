"""From raw generated samples to the dataset: quality, grounding, judge, dedup, balance, split.

Every rejected sample keeps the reason (`meta.rejected`), so `rejected.jsonl` explains itself.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from mason.generate.config import GenerateConfig
from mason.data.quality import answer_messages, message_text, quality_issues, quality_score


@dataclass
class Refined:
    """The outcome of refining: what is kept, what is rejected (with reasons), and the report."""

    kept: list[dict[str, Any]]
    rejected: list[dict[str, Any]] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)

    def reject(self, sample: dict[str, Any], reason: str, stage: str) -> None:
        sample.setdefault("meta", {})["rejected"] = {"reason": reason, "stage": stage}
        self.rejected.append(sample)


def _answer_text(sample: dict[str, Any]) -> str:
    return " ".join(message_text(m) for m in answer_messages(sample))


def apply_heuristics(samples: list[dict[str, Any]], sources: dict[str, str], cfg: GenerateConfig,
                     out: Refined) -> list[dict[str, Any]]:
    """Quality heuristics and lexical grounding; scores go into `meta.scores`.

    Returns the samples that pass; the others are added to `out.rejected`.
    """
    from mason.data.grounding import lexical_support

    kept = []
    for sample in samples:
        source = sources.get(source_key(sample))
        scores = sample["meta"].setdefault("scores", {})
        scores["quality"] = round(quality_score(sample), 4)
        if source is not None:
            scores["grounding"] = round(lexical_support(_answer_text(sample), source), 4)
        issues = quality_issues(sample, cfg.filters, source=source)
        if issues:
            out.reject(sample, ",".join(issues), "quality")
        else:
            kept.append(sample)
    return kept


def source_key(sample: dict[str, Any]) -> str:
    """The key of a sample's source text: its chunk id, or its record's doc name."""
    source = sample["meta"].get("source") or {}
    return source.get("chunk") or source.get("doc") or ""


async def apply_judge(samples: list[dict[str, Any]], sources: dict[str, str], client: Any,
                      cfg: GenerateConfig, out: Refined, *, prompts_dir: Any = None,
                      on_done: Any = None) -> list[dict[str, Any]]:
    """Score every sample with the judge (concurrently; the client caps the concurrency).

    Returns the samples whose verdict passes the threshold (and grounding, when asked).
    """
    from mason.generate.judge import judge_sample, passes

    async def one(sample: dict[str, Any]) -> Any:
        result = await judge_sample(client, sample, sources.get(source_key(sample), ""), cfg.judge,
                                    prompts_dir=prompts_dir)
        if on_done:
            on_done()
        return result

    results = await asyncio.gather(*(one(s) for s in samples))
    kept = []
    for sample, result in zip(samples, results):
        sample["meta"].setdefault("scores", {}).update(result.as_scores())
        if result.reason:
            sample["meta"]["judge_reason"] = result.reason
        if passes(result, cfg.judge.threshold, require_grounded=cfg.judge.grounding):
            kept.append(sample)
        elif result.overall is None:
            out.reject(sample, "judge_unparsable", "judge")
        elif cfg.judge.grounding and result.grounded is False:
            out.reject(sample, "judge_ungrounded", "judge")
        else:
            out.reject(sample, f"judge_below_threshold:{result.overall:g}<{cfg.judge.threshold:g}", "judge")
    return kept


def apply_dedup(samples: list[dict[str, Any]], cfg: GenerateConfig, out: Refined) -> list[dict[str, Any]]:
    """Drop exact and near-duplicate questions (the first one seen is kept).

    Duplicates are looked for within a task type: the same question as an SFT answer and as a
    preference pair teaches two different things.
    """
    from mason.generate.dedup import Deduplicator

    dedups: dict[str, Deduplicator] = {}
    kept = []
    for sample in samples:
        task = sample["meta"].get("task", "")
        if task not in dedups:
            dedups[task] = Deduplicator(cfg.filters.near_duplicate_threshold, seed=cfg.seed + 1)
        reason = dedups[task].check_and_add(sample)
        if reason:
            out.reject(sample, reason, "dedup")
        else:
            kept.append(sample)
    return kept


def _split_report(train: list[dict[str, Any]], evals: list[dict[str, Any]], out: Refined) -> None:
    from mason.data.contamination import contamination

    out.report["contamination"] = contamination(train, evals)
    out.report["split"] = {
        "train": len(train), "eval": len(evals),
        "train_documents": len({s["meta"]["source"].get("doc") for s in train}),
        "eval_documents": len({s["meta"]["source"].get("doc") for s in evals}),
    }


def select_and_split(samples: list[dict[str, Any]], cfg: GenerateConfig, out: Refined,
                     task_weights: dict[str, float]) -> list[dict[str, Any]]:
    """Balance to the target and the caps, then split train/eval by source document."""
    from mason.generate.balance import balance, split_by_document

    kept, dropped = balance(samples, target=cfg.num_instructions, task_weights=task_weights,
                            max_per_document=cfg.max_per_document, max_per_task=cfg.max_per_task,
                            seed=cfg.seed)
    for sample, reason in dropped:
        out.reject(sample, reason, "balance")
    split_by_document(kept, cfg.eval_fraction, cfg.seed)
    train = [s for s in kept if s["meta"]["split"] == "train"]
    evals = [s for s in kept if s["meta"]["split"] == "eval"]
    _split_report(train, evals, out)
    return kept


def apply_knowledge(kept: list[dict[str, Any]], chunks: list[dict[str, Any]], cfg: GenerateConfig,
                    out: Refined) -> list[dict[str, Any]]:
    """Add the knowledge recipe's training views and held-out questions to the split dataset.

    Documents held out whole by the document split get held-out questions but no training view.
    A held-out question that (near-)repeats training text (the contamination check's n-gram rule)
    is dropped and counted. Updates `out.report` ("knowledge", "split", "contamination").
    """
    from mason.data.contamination import contamination
    from mason.generate.knowledge import build

    k = cfg.knowledge
    heldout_docs = frozenset(str(s["meta"]["source"].get("doc")) for s in kept if s["meta"]["split"] == "eval")
    made = build(chunks, questions_per_span=k.questions_per_span, framings=k.framings, paragraphs=k.paragraphs,
                 seed=cfg.seed, system=cfg.system_prompt, heldout_docs=heldout_docs, unknown=k.unknown_questions,
                 declines=k.decline_examples)
    ids = {s["id"] for s in kept}
    views = []
    for view in made.train:  # a view can repeat a generated sample (or another view): keep one
        if view["id"] not in ids:
            ids.add(view["id"])
            views.append(view)
    train = [s for s in kept if s["meta"]["split"] == "train"] + views
    questions: list[dict[str, Any]] = []
    dropped = 0
    if k.heldout_questions and made.eval:
        check = contamination(train, made.eval, worst=len(made.eval))
        bad = {str(h["id"]) for h in check["worst"]}
        for q in made.eval:
            if str(q["id"]) in bad or q["id"] in ids:
                out.reject(q, "heldout_near_duplicate", "knowledge")
                dropped += 1
            else:
                ids.add(q["id"])
                questions.append(q)
    from mason.data.answers import probe_subset

    probe = probe_subset([q for q in questions if q["meta"].get("answers")], k.probe_questions)
    for q in questions:
        if str(q["id"]) in probe:
            q["meta"]["probe"] = True
    kept = kept + views + questions
    out.report["knowledge"] = {**made.report, "heldout_kept": len(questions), "heldout_dropped_near_duplicates": dropped,
                               "probe_questions": len(probe)}
    evals = [s for s in kept if s["meta"]["split"] == "eval"]
    _split_report(train, evals, out)
    return kept


def rejection_counts(rejected: list[dict[str, Any]]) -> dict[str, int]:
    """Number of rejected samples per reason code (the part before any `:` detail)."""
    counts: Counter[str] = Counter()
    for sample in rejected:
        for reason in sample["meta"]["rejected"]["reason"].split(","):
            counts[reason.split(":", 1)[0]] += 1
    return dict(sorted(counts.items()))
