"""Work units of the synthetic-data stage: which chunk (or record) is asked for what.

A unit is one call of a generator: (chunk, task type, n samples) or (record, prompt style).
Its id names it across runs, so an interrupted run skips the units it already finished
(their rows are in `raw.jsonl`). Its `fingerprint` hashes what its prompt is made of, so
`--resume-verify` can tell when a finished row no longer matches its prompt.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from mason.core.hashing import stable_hash
from mason.generate.config import GenerateConfig

# generate more than the target: filters, the judge and dedup reject some of it
OVERGENERATION = 1.5
DISTILLATION = "distillation"


@dataclass
class Unit:
    """One generator call.

    Attributes:
        id: stable name of the unit (what `raw.jsonl` records as done).
        task: task type (or `distillation`).
        n: samples asked for.
        order: position in the plan; final samples are sorted by it, so output order does not
            depend on which request finished first.
        chunk: the source chunk (chunk units).
        record, line_no, template_index: the source record (distillation units).
        fingerprint: hash of the prompt's ingredients (text, template, teacher, parameters).
    """

    id: str
    task: str
    n: int
    order: int
    fingerprint: str
    chunk: dict[str, Any] | None = None
    record: dict[str, Any] | None = None
    line_no: int = 0
    template_index: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def task_targets(cfg: GenerateConfig) -> dict[str, int]:
    """Samples to ask for per task type: its weighted share of the target, plus headroom."""
    total = sum(cfg.task_type.values())
    return {
        task: max(1, math.ceil(cfg.num_instructions * weight / total * OVERGENERATION))
        for task, weight in cfg.task_type.items()
    }


def _spread(chunks: list[dict[str, Any]], seed: int, salt: str) -> list[dict[str, Any]]:
    """Chunks in an order that visits every document before revisiting one (seeded)."""
    by_doc: dict[str, list[dict[str, Any]]] = {}
    for c in chunks:
        by_doc.setdefault(c["doc"], []).append(c)
    docs = sorted(by_doc, key=lambda d: stable_hash([seed, salt, d]))
    for d in docs:
        by_doc[d].sort(key=lambda c: stable_hash([seed, salt, c["id"]]))
    out: list[dict[str, Any]] = []
    for rank in range(max((len(v) for v in by_doc.values()), default=0)):
        out += [by_doc[d][rank] for d in docs if rank < len(by_doc[d])]
    return out


def plan_chunk_units(chunks: list[dict[str, Any]], cfg: GenerateConfig, *, model_id: str,
                     template_digest: dict[str, str]) -> list[Unit]:
    """Units over chunks: each task type gets enough chunks to reach its target (or all)."""
    units: list[Unit] = []
    params = cfg.teacher.model_dump(include={"temperature", "max_tokens"})
    for task, target in task_targets(cfg).items():
        n = cfg.samples_per_chunk
        wanted = math.ceil(target / n)
        for chunk in _spread(chunks, cfg.seed, task)[:wanted]:
            uid = stable_hash([task, chunk["id"], n], length=24)
            fp = stable_hash([chunk["text"], chunk.get("headings"), task, n, template_digest.get(task),
                              model_id, params, cfg.system_prompt, cfg.tools if task == "tool_calling" else None,
                              cfg.seed])
            units.append(Unit(uid, task, n, len(units), fp, chunk=chunk))
    return units


def plan_record_units(records: list[tuple[int, dict[str, Any]]], cfg: GenerateConfig, *, model_id: str,
                      start: int) -> list[Unit]:
    """Units over records: every row with every prompt style."""
    assert cfg.records is not None
    params = cfg.teacher.model_dump(include={"temperature", "max_tokens"})
    units: list[Unit] = []
    for line_no, record in records:
        for index, template in enumerate(cfg.records.templates):
            uid = stable_hash([DISTILLATION, line_no, index, stable_hash(record)], length=24)
            fp = stable_hash([record, template, model_id, params, cfg.records.system_prompt, cfg.system_prompt,
                              cfg.seed])
            units.append(Unit(uid, DISTILLATION, 1, start + len(units), fp, record=record, line_no=line_no,
                              template_index=index))
    return units
