"""The eval set: which rows are evaluated, their prompts and reference answers, and how they relate
to the training data (split sizes, contamination).

Default: the samples of the training dataset (the generate task's samples.jsonl, or
`training.data`) whose `meta.split` is `eval` — held-out documents, never trained on. With
`evaluation.data`, the rows of that file (only its `eval` rows when it marks splits), checked
for contamination against the training rows. A row's prompt is its conversation up to the last
assistant turn; the reference is that turn (or the `chosen` answer of a preference sample).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mason.core.console import warn
from mason.core.errors import InputError
from mason.core.io import iter_jsonl
from mason.core.task import TaskContext
from mason.data.formats import content_text, sample_id
from mason.evaluate.config import EvaluationConfig


@dataclass
class EvalRow:
    """One evaluated row.

    Attributes:
        prompt: the messages the model answers (system/user/... up to the reference turn).
        reference: the expected answer's text.
        question: the last user message (for tables and the judge).
        chunk: `meta.source.chunk` (the passage it was made from), if any.
        source: the text of that chunk, when the ingest artifact has it.
        sample: the contract sample prompt + reference (for perplexity).
        answers: `meta.answers`, key spans one of which a right answer contains (the knowledge
            score, see `mason.evaluate.knowledge`); None when the row has none.
        question_type: `meta.question_type` ("direct", "reversed", "unknown", ...), for the knowledge report.
        expect: `meta.expect`; "decline" for questions about something no document mentions (the
            hallucination check: the right answer says it does not know).
    """

    id: str
    prompt: list[dict[str, Any]]
    reference: str
    question: str
    chunk: str | None = None
    source: str | None = None
    task: str | None = None
    sample: dict[str, Any] = field(default_factory=dict)
    answers: list[str] | None = None
    question_type: str | None = None
    expect: str | None = None


@dataclass
class EvalSet:
    """The rows to evaluate and what the report says about where they come from.

    Attributes:
        origin: the file the rows were read from.
        available: eval rows in the file (before `max_samples`).
        skipped: rows with no assistant answer to compare against.
        train_rows: rows of the training dataset (None when there is none to count).
        split: the generate task's split report (train/eval counts and documents), if any.
        contamination: eval questions found in the training rows (the generate task's check, or
            computed here for a file of your own).
        probe: held-out questions left out because training picked its checkpoint by them
            (`meta.probe`, see `synthetic_data.knowledge.probe_questions`).
    """

    rows: list[EvalRow]
    origin: str
    available: int
    skipped: int = 0
    train_rows: int | None = None
    split: dict[str, Any] | None = None
    contamination: dict[str, Any] | None = None
    probe: int = 0


def _resolve(path: str, base_dir: Path) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else base_dir / p


def _answer_text(message: dict[str, Any]) -> str:
    text = content_text(message.get("content")).strip()
    if not text and message.get("tool_calls"):  # a tool-calling answer: compare the calls as text
        text = json.dumps([c.get("function", c) for c in message["tool_calls"]], ensure_ascii=False)
    return text


def to_eval_row(row: dict[str, Any]) -> EvalRow | None:
    """The eval row of a contract sample, or None when it has no answer to compare against."""
    messages = [dict(m) for m in row.get("messages") or []]
    if row.get("chosen") is not None:
        prompt, answer = messages, dict(row["chosen"])
    else:
        last = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=None)
        if last is None:
            return None
        prompt, answer = messages[:last], messages[last]
    users = [m for m in prompt if m.get("role") == "user"]
    reference = _answer_text(answer)
    if not users or not reference:
        return None
    meta = row.get("meta") or {}
    source = meta.get("source") or {}
    return EvalRow(
        id=str(row.get("id") or sample_id(row)), prompt=prompt, reference=reference,
        question=content_text(users[-1].get("content")).strip(), chunk=source.get("chunk"), task=meta.get("task"),
        sample={"messages": [*prompt, {"role": "assistant", "content": reference}], "tools": row.get("tools")},
        answers=_answers(meta.get("answers")), question_type=meta.get("question_type"), expect=meta.get("expect"),
    )


def _answers(value: Any) -> list[str] | None:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return None
    spans = [str(v).strip() for v in value if str(v).strip()]
    return spans or None


def _is_eval(row: dict[str, Any]) -> bool:
    return (row.get("meta") or {}).get("split") == "eval"


def _generate_manifest(ctx: TaskContext) -> dict[str, Any]:
    folder = ctx.inputs.get("generate")
    try:
        return json.loads((folder / "manifest.json").read_text(encoding="utf-8")) if folder else {}
    except (OSError, ValueError):
        return {}


def ingest_dir(ctx: TaskContext) -> Path | None:
    """The ingest artifact folder: from `ctx.inputs`, else the one the generate task read (its manifest)."""
    if ctx.inputs.get("ingest") is not None:
        return ctx.inputs["ingest"]
    key = (_generate_manifest(ctx).get("inputs") or {}).get("ingest")
    generate = ctx.inputs.get("generate")
    if key and generate is not None:
        folder = generate.parent.parent / "ingest" / key  # artifacts/<task>/<key>
        return folder if folder.is_dir() else None
    return None


def chunk_texts(ctx: TaskContext, wanted: set[str]) -> dict[str, str]:
    """Text of the chunks in `wanted`, by id, from the ingest artifact's chunks.jsonl ({} without one)."""
    folder = ingest_dir(ctx)
    if not wanted or folder is None or not (folder / "chunks.jsonl").is_file():
        return {}
    return {c["id"]: c.get("text", "") for _, c in iter_jsonl(folder / "chunks.jsonl") if c.get("id") in wanted}


def _training_rows(ctx: TaskContext) -> tuple[list[dict[str, Any]] | None, str | None]:
    """The training dataset's rows as training reads them (conversation logs collapsed, the
    `train_eval_split` rows marked eval) and its path(s) (None when no training data is known)."""
    from mason.data.samples import load_training_data

    training = getattr(ctx.pipeline, "training", None)
    data = getattr(training, "data", None)
    if data is None and ctx.inputs.get("generate") is None and ctx.inputs.get("curate") is None:
        return None, None
    loaded = load_training_data(data, ctx.base_dir, ctx.inputs, eval_split=getattr(training, "train_eval_split", None),
                                seed=getattr(training, "seed", 0))
    return [s.row for s in loaded.samples], loaded.origin


def training_is_generated(ctx: TaskContext) -> bool:
    """Whether the training dataset is the generate task's samples (not `training.data`)."""
    training = getattr(ctx.pipeline, "training", None)
    return getattr(training, "data", None) is None and ctx.inputs.get("generate") is not None


def _sample(rows: list[Any], n: int | None, seed: int) -> list[Any]:
    if n is None or len(rows) <= n:
        return rows
    keep = sorted(random.Random(seed).sample(range(len(rows)), n))  # file order kept: reports read better
    return [rows[i] for i in keep]


def load_eval_set(cfg: EvaluationConfig, ctx: TaskContext) -> EvalSet:
    """The rows to evaluate (see the module docstring), with split sizes and contamination.

    Raises:
        InputError, DatasetFileError: no eval file or dataset, a malformed row, or no eval row at all.
    """
    from mason.data.contamination import contamination
    from mason.data.samples import load_samples

    train_all, train_origin = _training_rows(ctx)
    split = contamination_report = None
    if cfg.data is not None:
        origin = _resolve(cfg.data, ctx.base_dir)
        raw = [s.row for s in load_samples(origin)]
        if any(_is_eval(r) for r in raw):
            raw = [r for r in raw if _is_eval(r)]
        train = [r for r in train_all or [] if not _is_eval(r)]
    else:
        if train_all is None:
            raise InputError("evaluation has no eval data: no `evaluation.data` file and no dataset upstream",
                             hint="set `evaluation.data: path/to/eval.jsonl`, or add `synthetic_data:` / `training.data`")
        origin = Path(train_origin or "")
        raw = [r for r in train_all if _is_eval(r)]
        train = [r for r in train_all if not _is_eval(r)]
        if not raw:
            raise InputError(
                f"no eval rows: no sample of {origin} has meta.split = eval",
                hint="set `synthetic_data.eval_fraction` above 0 (held-out documents), or `evaluation.data`",
            )
        details = (_generate_manifest(ctx).get("details") or {}) if training_is_generated(ctx) else {}
        split = details.get("split")
        if cfg.max_samples is None and details.get("contamination"):
            contamination_report = details["contamination"]  # the generate task's check of this very split
    probe = sum(1 for r in raw if (r.get("meta") or {}).get("probe"))
    raw = [r for r in raw if not (r.get("meta") or {}).get("probe")]  # they chose the checkpoint: not a test
    pairs = [(r, e) for r in raw if (e := to_eval_row(r)) is not None]
    skipped = len(raw) - len(pairs)
    if skipped:
        warn(f"evaluation: {skipped} row(s) of {origin} have no assistant answer to compare against; skipped")
    if not pairs:
        raise InputError(f"{origin}: no row has a user prompt and an assistant answer to evaluate")
    chosen_pairs = _sample(pairs, cfg.max_samples, cfg.seed)
    chosen = [e for _, e in chosen_pairs]
    if contamination_report is None and train:
        # the rows really evaluated, against every training row
        contamination_report = contamination(train, [r for r, _ in chosen_pairs])
    texts = chunk_texts(ctx, {r.chunk for r in chosen if r.chunk})
    for r in chosen:
        r.source = texts.get(r.chunk) if r.chunk else None
    return EvalSet(chosen, str(origin), len(pairs), skipped, len(train) if train_all is not None else None,
                   split, contamination_report, probe)
