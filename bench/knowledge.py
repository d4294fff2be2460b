"""Does the quickstart's model know its documents? The knowledge benchmark.

    python bench/knowledge.py [--limit N] [--set training.epochs=2 ...] [--json OUT]

The fictional knowledge base (`bench/knowledge_base.yaml`: invented places, people and numbers in
documents of several formats; questions hand-written away from the sentences) is written to a
folder, and the quickstart project (`mason init`) runs on it with only the documents changed:
ingest, generate (the knowledge recipe), training. Then the untouched SmolLM2-135M-Instruct and
the tuned model answer every question greedily through MASON's transformers runtime (the same
fp32 weights on both sides):

- closed book: the question alone (direct and reversed questions);
- open book: the passage first, then the question (the ceiling, for the untouched model);
- unknown: questions about entities no document mentions (right = the answer declines);
- known: general knowledge the base model answers right (the forgetting probe).

It prints one table (base, tuned, minutes) and the ratios the knowledge issue targets: tuned
closed-book accuracy, its share of the untouched model's open-book score, the reversed-question
accuracy and the change of the known-facts probe. The training time is wall-clock on this machine:
say which CPU it ran on (`grep -o 'avx512f\\|amx_bf16\\|avx2' /proc/cpuinfo | sort -u`).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make `bench` and `mason` importable from the checkout
    sys.path.insert(0, str(ROOT))

from bench.knowledge_base import load, write_documents  # noqa: E402
from bench.knowledge_probe import evaluate_model  # noqa: E402


def _set(config: dict[str, Any], assignment: str) -> None:
    """Apply `section.key=value` (value parsed as YAML) to the pipeline dict."""
    import yaml

    path, _, value = assignment.partition("=")
    *parents, key = path.split(".")
    node = config
    for p in parents:
        if not isinstance(node.get(p), dict):  # `knowledge: true` becomes `knowledge: {enabled: true, ...}`
            node[p] = {"enabled": node[p]} if isinstance(node.get(p), bool) else {}
        node = node[p]
    node[key] = yaml.safe_load(value)


def project(folder: Path, overrides: list[str]) -> dict[str, Any]:
    """The quickstart pipeline (as `mason init` writes it) on the knowledge base's documents."""
    import yaml

    from mason.scaffold import init_project

    init_project(folder / "scaffold")
    config = yaml.safe_load((folder / "scaffold" / "pipeline.yaml").read_text())
    config["knowledge_source"]["path"] = str(folder / "docs")
    config["workspace"] = str(folder / ".mason")
    config["training"]["test_prompts"] = []
    for section in ("evaluation", "export"):
        config.pop(section, None)
    for assignment in overrides:
        _set(config, assignment)
    return config


def _row(summary: dict[str, Any], key: str) -> str:
    s = summary.get(key)
    return "–" if not s else f"{s['correct']}/{s['n']} ({100 * s['rate']:.0f}%)"


def _errors(records: list[dict[str, Any]]) -> dict[str, int]:
    """Kinds of the wrong closed-book answers (`mason.data.answers.error_kinds`)."""
    from mason.data.answers import error_kinds

    closed = [r for r in records if r["probe"] == "closed_book"]
    return error_kinds([r["answer"] for r in closed], [r["accepted"] for r in closed], [r["correct"] for r in closed],
                       [r["question"] for r in closed])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="override the quickstart pipeline, e.g. --set training.epochs=2")
    ap.add_argument("--limit", type=int, default=None, help="ask about the first N facts only")
    ap.add_argument("--json", type=Path, default=None, help="write every answer and the summary here")
    ap.add_argument("--keep", type=Path, default=None, help="work in this folder (kept) instead of a temp one")
    args = ap.parse_args()

    from rich.console import Console
    from rich.table import Table

    from mason.api import Pipeline
    from mason.models.resolver import materialize, resolve_model
    from mason.runtime import open_runtime

    kb = load()
    console = Console()
    with tempfile.TemporaryDirectory(prefix="mason-knowledge-") as tmp:
        folder = args.keep or Path(tmp)
        write_documents(kb, folder / "docs")
        config = project(folder, args.set)
        pipeline = Pipeline.from_dict(config, base_dir=folder)
        started = time.perf_counter()
        summary = pipeline.run(tasks=["training"], show_progress=True)
        train_minutes = (time.perf_counter() - started) / 60
        generate = json.loads((Path(summary.outcome("generate").out_dir) / "manifest.json").read_text())
        adapter = Path(summary.outcome("training").out_dir) / "adapter"
        base_dir = materialize(resolve_model(config["base_model"]))
        results = {}
        for name, path, fmt in (("base", Path(base_dir), "merged"), ("tuned", adapter, "adapter")):
            started = time.perf_counter()
            runtime = open_runtime(path, format=fmt, base_model=base_dir, batch_size=8)
            try:
                results[name] = evaluate_model(runtime, kb, limit=args.limit)
            finally:
                runtime.close()
            console.print(f"{name}: answered in {(time.perf_counter() - started) / 60:.1f} min")

    base, tuned = results["base"]["summary"], results["tuned"]["summary"]
    table = Table(title=f"Knowledge benchmark ({len(kb.facts)} facts, {len(kb.documents)} documents)")
    for col in ("probe", "base", "tuned"):
        table.add_column(col, justify="left" if col == "probe" else "right")
    for key, label in (("closed_book/direct", "closed book, direct"), ("closed_book/reversed", "closed book, reversed"),
                       ("closed_book/all", "closed book, all"), ("open_book/all", "open book (ceiling)"),
                       ("unknown", "unknown: declined"), ("known", "known facts")):
        table.add_row(label, _row(base, key), _row(tuned, key))
    kinds = {name: _errors(r["records"]) for name, r in results.items()}
    table.add_row("closed-book errors: other fact / invented / declined",
                  *("/".join(str(kinds[m][k]) for k in ("other_fact", "invented", "declined")) for m in ("base", "tuned")))
    table.add_row("minutes", "–", f"{train_minutes:.1f} (ingest+generate+train)")
    console.print(table)
    closed = tuned["closed_book/all"]["rate"]
    ceiling = base["open_book/all"]["rate"]
    known_drop = 100 * (base["known"]["rate"] - tuned["known"]["rate"]) if "known" in base else None
    ratios = {"tuned_closed_book": closed, "share_of_open_book_ceiling": closed / ceiling if ceiling else None,
              "tuned_reversed": (tuned.get("closed_book/reversed") or {}).get("rate"),
              "known_probe_drop_points": known_drop, "train_minutes": round(train_minutes, 1),
              "tuned_errors": kinds["tuned"],
              "samples": generate["counts"].get("train"), "knowledge": generate["details"].get("knowledge")}
    console.print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in ratios.items() if k != "knowledge"})
    if args.json:
        args.json.write_text(json.dumps({"config": config, "results": results, "ratios": ratios}, indent=1))


if __name__ == "__main__":
    main()
