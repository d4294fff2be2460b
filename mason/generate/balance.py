"""Train/eval split by document and task balancing with caps (the contamination check is
`mason.data.contamination`).

Everything here is deterministic: the same samples, in any order, with the same seed give the
same split; the same samples in the same order with the same seed give the same balance.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from typing import Any

from mason.data.quality import quality_score


def document_of(sample: dict[str, Any]) -> str:
    """The source document of a sample (`meta.source.doc`); a sample without one is its own
    document, so it can never straddle the split with itself."""
    source = (sample.get("meta") or {}).get("source") or {}
    doc = source.get("doc")
    return str(doc) if doc is not None else f"sample:{sample.get('id')}"


def task_of(sample: dict[str, Any]) -> str:
    """The task of a sample (`meta.task`), "" when missing."""
    return str((sample.get("meta") or {}).get("task") or "")


def _unit_hash(seed: int, *parts: Any) -> float:
    digest = hashlib.sha256(":".join([str(seed), *map(str, parts)]).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


# ---------------------------------------------------------------------------- split


def split_by_document(samples: list[dict[str, Any]], eval_fraction: float, seed: int) -> None:
    """Set `meta.split` of every sample to "train" or "eval", whole documents at a time.

    Documents are ranked by a hash of (seed, document) and the first
    `round(eval_fraction * n_documents)` go to eval — at least one when there are 2+ documents
    and `eval_fraction > 0`, and never all of them (a single document stays in train). The
    ranking depends only on the seed and the document names, not on the order of the samples.

    Raises:
        ValueError: eval_fraction outside [0, 1).
    """
    if not 0.0 <= eval_fraction < 1.0:
        raise ValueError(f"eval_fraction must be in [0, 1), got {eval_fraction}")
    docs = sorted({document_of(s) for s in samples}, key=lambda d: (_unit_hash(seed, "split", d), d))
    n_eval = 0
    if len(docs) >= 2 and eval_fraction > 0:
        n_eval = min(max(1, round(eval_fraction * len(docs))), len(docs) - 1)
    eval_docs = set(docs[:n_eval])
    for sample in samples:
        meta = sample.setdefault("meta", {})
        meta["split"] = "eval" if document_of(sample) in eval_docs else "train"


# ---------------------------------------------------------------------------- balance


def _apportion(total: int, weights: dict[str, float], caps: dict[str, int]) -> dict[str, int]:
    """Split `total` among tasks in proportion to `weights`, none above its cap.

    Tasks whose proportional share reaches their cap get the cap and leave; the rest share
    what is left (largest remainder, ties broken by task name).
    """
    quotas = {t: 0 for t in weights}
    free = {t for t in weights if caps[t] > 0}
    remaining = total
    while free:
        weight = sum(weights[t] for t in free)
        full = [t for t in free if remaining * weights[t] / weight >= caps[t]]
        if not full:
            break
        for t in full:
            quotas[t] = caps[t]
            remaining -= caps[t]
            free.discard(t)
    if free and remaining > 0:
        weight = sum(weights[t] for t in free)
        ideal = {t: remaining * weights[t] / weight for t in free}
        for t in free:
            quotas[t] = math.floor(ideal[t])
        leftover = remaining - sum(quotas[t] for t in free)
        for t in sorted(free, key=lambda t: (-(ideal[t] - math.floor(ideal[t])), t))[:leftover]:
            quotas[t] += 1
    return quotas


def _rank_key(sample: dict[str, Any], index: int, seed: int) -> tuple[float, float, float]:
    # Judge score first (an unjudged or unparsable sample ranks below every judged one), then
    # the heuristic quality score, then a seeded hash so ties are broken the same way each run.
    scores = (sample.get("meta") or {}).get("scores") or {}
    judge = scores.get("judge")
    quality = scores.get("quality")
    if quality is None:
        quality = quality_score(sample)
    return (-(judge if isinstance(judge, (int, float)) else -1.0), -float(quality),
            _unit_hash(seed, "rank", sample.get("id"), index))


def _greedy(ranked: list[tuple[int, dict[str, Any]]], quotas: dict[str, int], max_per_document: int | None,
            max_per_task: int | None) -> tuple[list[int], dict[int, str], Counter[str]]:
    taken: Counter[str] = Counter()
    per_doc: Counter[str] = Counter()
    kept: list[int] = []
    reasons: dict[int, str] = {}
    for index, sample in ranked:
        task, doc = task_of(sample), document_of(sample)
        # The document cap is checked first: when it starved a task, that task's quota was cut
        # to what it got, and "over_target" would hide the real reason.
        if max_per_document is not None and per_doc[doc] >= max_per_document:
            reasons[index] = "max_per_document"
        elif taken[task] >= quotas[task]:
            at_cap = max_per_task is not None and taken[task] >= max_per_task
            reasons[index] = "max_per_task" if at_cap else "over_target"
        else:
            kept.append(index)
            taken[task] += 1
            per_doc[doc] += 1
    return kept, reasons, taken


def balance(samples: list[dict[str, Any]], *, target: int | None, task_weights: dict[str, float],
            max_per_document: int | None = None, max_per_task: int | None = None,
            seed: int = 0) -> tuple[list[dict[str, Any]], list[tuple[dict[str, Any], str]]]:
    """Choose at most `target` samples whose tasks follow `task_weights`, within the caps.

    Each task's quota is its weight's share of `target`, never more than the samples it has or
    `max_per_task`; what a task cannot fill goes to the others, in proportion to their weights.
    Within the quotas the best samples are taken first (judge score, then quality score, then a
    seeded hash), skipping those whose document already has `max_per_document` samples; quotas
    that the document cap leaves unfilled are handed to the other tasks and the choice is redone.

    Args:
        samples: candidate samples (`meta.task`, `meta.source.doc`, optional `meta.scores`).
        target: how many samples to keep at most (None: as many as the caps allow).
        task_weights: relative share of each task; tasks not named (or weight <= 0) are dropped.
        max_per_document, max_per_task: caps (None: no cap).
        seed: tie-breaking seed.

    Returns:
        (kept samples in input order, [(dropped sample, reason)] in input order); reasons are
        "task_not_requested", "max_per_task", "max_per_document" and "over_target".

    Raises:
        ValueError: a negative target or cap below 1.
    """
    if target is not None and target < 0:
        raise ValueError(f"target must be >= 0, got {target}")
    for name, cap in (("max_per_document", max_per_document), ("max_per_task", max_per_task)):
        if cap is not None and cap < 1:
            raise ValueError(f"{name} must be >= 1, got {cap}")
    weights = {t: float(w) for t, w in task_weights.items() if w > 0}
    candidates = [(i, s) for i, s in enumerate(samples) if task_of(s) in weights]
    available = Counter(task_of(s) for _, s in candidates)
    weights = {t: w for t, w in weights.items() if available[t]}
    ranked = sorted(candidates, key=lambda item: _rank_key(item[1], item[0], seed))
    supply = {t: min(available[t], max_per_task or available[t]) for t in weights}
    total = sum(supply.values()) if target is None else target
    while True:
        quotas = _apportion(total, weights, supply)
        kept, reasons, taken = _greedy(ranked, quotas, max_per_document, max_per_task)
        short = {t for t in weights if taken[t] < quotas[t]}
        if not short:
            break
        # The document cap starved these tasks: they can supply no more than they got.
        for t in short:
            supply[t] = taken[t]
    kept_set = set(kept)
    dropped = [(s, reasons.get(i, "task_not_requested")) for i, s in enumerate(samples) if i not in kept_set]
    return [s for i, s in enumerate(samples) if i in kept_set], dropped
