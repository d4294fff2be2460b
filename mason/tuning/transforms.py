"""Transforms: normalized records -> training data. Pure functions, same input, same output.

- `to_sft`: the data contract's chat samples `{"id", "messages", ["tools"], "meta"}` (or `{"id", "text",
  "meta"}` rows with `format="text"`), for `TRL_SFT` and anything that reads the contract;
- `to_preferences`: `{"id", "prompt", "chosen", "rejected", "meta"}` rows, for `TRL_DPO`: explicit
  pairs as they are, and from scored records the higher- against the lower-scored answer to the same
  prompt;
- `to_trajectories`: multi-step agent traces, tool calls and their results in order (`steps`);
- `to_dspy_examples`: `dspy.Example`s for `DSPY_Teleprompt`.

Every row keeps where it came from in `meta.source` (the trace id for LangFuse records): the run's
lineage goes from each training sample back to its trace.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from typing import Any

from mason.core.errors import InputError
from mason.core.hashing import canonical_json
from mason.data.formats import from_contract, sample_id
from mason.tuning.records import clean_message, score_value, text_of

Record = dict[str, Any]


def _source(rec: Record) -> dict[str, Any]:
    src = (rec.get("metadata") or {}).get("source")
    return dict(src) if isinstance(src, dict) else {"record": rec.get("id")}


def _conversation(rec: Record, system: str | None = None) -> list[dict[str, Any]]:
    """The record's messages, or user input + assistant output; `system` replaces its system prompt."""
    messages = [clean_message(m) for m in rec.get("messages") or []]
    if not messages and rec.get("output") is not None:
        messages = [{"role": "user", "content": text_of(rec.get("input"))},
                    {"role": "assistant", "content": text_of(rec.get("output"))}]
    if system is not None:
        messages = [{"role": "system", "content": system}] + [m for m in messages if m["role"] != "system"]
    return messages


def _answered(messages: list[dict[str, Any]]) -> bool:
    if not messages or messages[-1]["role"] != "assistant":
        return False
    last = messages[-1]
    return bool(text_of(last.get("content")).strip() or last.get("tool_calls"))


def _kept(rec: Record, score: str | None, min_score: float | None) -> bool:
    if min_score is None:
        return True
    value = score_value(rec, score)
    return value is not None and value >= min_score


def to_sft(records: Iterable[Record], *, format: str = "chat", system: str | None = None,
           score: str | None = None, min_score: float | None = None) -> list[dict[str, Any]]:
    """Records -> SFT samples, in order; records with no answer are dropped, the same conversation
    from several traces is kept once (its `meta.source.traces` lists them all).

    Args:
        format: `chat` (the data contract's messages) or `text` (`{"text": "<input>\\n\\n<output>"}`
            rows: continued pretraining on the text).
        system: replace (or add) the system prompt of every sample.
        score, min_score: keep records whose score `score` (their only score when None) is at least
            `min_score`.
    Returns:
        `{"id", "messages", ["tools"], "meta": {"source", "scores"}}` rows (`{"id", "text", "meta"}`
        for `format="text"`); `id` is the contract's sample id.
    Raises:
        InputError: an unknown format.
    """
    if format not in ("chat", "text"):
        raise InputError(f"to_sft format must be 'chat' or 'text', not {format!r}")
    out: dict[str, dict[str, Any]] = {}
    for rec in records:
        if not _kept(rec, score, min_score):
            continue
        messages = _conversation(rec, system)
        if not _answered(messages):
            continue
        meta = {"source": _source(rec), "scores": dict(rec.get("scores") or {})}
        if format == "text":
            question = text_of(rec.get("input")) if rec.get("input") is not None else ""
            answer = text_of(messages[-1].get("content"))
            text = f"{question}\n\n{answer}" if question else answer
            row: dict[str, Any] = {"id": sample_id({"messages": [{"role": "assistant", "content": text}]}),
                                   "text": text, "meta": meta}
        else:
            row = {"id": sample_id({"messages": messages}), "messages": messages}
            if rec.get("tools"):
                row["tools"] = copy.deepcopy(rec["tools"])
            row["meta"] = meta
        if row["id"] in out:  # the same conversation again: one sample, every trace in its lineage
            src = out[row["id"]]["meta"]["source"]
            trace = meta["source"].get("trace")
            if trace:
                src["traces"] = list(dict.fromkeys([*src.get("traces", [src.get("trace")]), trace]))
            continue
        out[row["id"]] = row
    return list(out.values())


def _preference_row(prompt: list[dict[str, Any]], chosen: dict[str, Any], rejected: dict[str, Any],
                    meta: dict[str, Any], tools: Any = None) -> dict[str, Any]:
    sample: dict[str, Any] = {"messages": prompt, "chosen": chosen, "rejected": rejected}
    sample = {"id": sample_id(sample), **sample, "meta": meta}
    row = from_contract(sample, "preference")
    if tools:
        row["tools"] = copy.deepcopy(tools)
    return row


def to_preferences(records: Iterable[Record], *, score: str | None = None, margin: float = 0.0,
                   pairs: str = "best_worst", system: str | None = None) -> list[dict[str, Any]]:
    """Records -> DPO preference rows.

    Records with `chosen` and `rejected` (dataset preference rows) are explicit pairs, kept as they
    are. The others are grouped by prompt (the conversation before the final answer); within a group
    the answer with the higher score is `chosen` against one with a lower score, when the scores
    differ by more than `margin`.

    Args:
        score: the score to compare (the records' only numeric score when None); unscored records
            are skipped.
        pairs: `best_worst` (one pair a prompt: the best against the worst answer) or `all` (every
            pair of answers whose scores differ by more than `margin`, best first).
        system: replace (or add) the system prompt.
    Returns:
        `{"id", "prompt", "chosen", "rejected", "meta": {"source": {"chosen_trace", "rejected_trace",
        ...}, "scores": {"chosen", "rejected"}}}` rows, in the order the prompts first appear (the
        `prompt/chosen/rejected` format: plain strings for a one-turn prompt, message lists otherwise).
    Raises:
        InputError: an unknown `pairs` value.
    """
    if pairs not in ("best_worst", "all"):
        raise InputError(f"to_preferences pairs must be 'best_worst' or 'all', not {pairs!r}")
    rows: list[dict[str, Any]] = []
    groups: dict[str, list[tuple[float, int, list[dict[str, Any]], dict[str, Any], Record]]] = {}
    for i, rec in enumerate(records):
        if rec.get("chosen") and rec.get("rejected"):
            prompt = _conversation({"messages": rec.get("messages") or []}, system)
            rows.append(_preference_row(prompt, clean_message(rec["chosen"]), clean_message(rec["rejected"]),
                                        {"source": _source(rec)}, rec.get("tools")))
            continue
        messages = _conversation(rec, system)
        value = score_value(rec, score)
        if value is None or not _answered(messages):
            continue
        prompt = messages[:-1]
        groups.setdefault(canonical_json(prompt), []).append((value, i, prompt, messages[-1], rec))
    for answers in groups.values():
        ranked = sorted(answers, key=lambda a: (-a[0], a[1]))
        if pairs == "best_worst":
            candidates = [(ranked[0], ranked[-1])] if len(ranked) > 1 else []
        else:
            candidates = [(a, b) for n, a in enumerate(ranked) for b in ranked[n + 1:]]
        for best, worst in candidates:
            if best[0] - worst[0] <= margin or canonical_json(best[3]) == canonical_json(worst[3]):
                continue
            src_best, src_worst = _source(best[4]), _source(worst[4])
            source = {k: v for k, v in src_best.items() if k != "trace" and src_worst.get(k) == v}
            source.update(chosen_trace=best[4].get("id"), rejected_trace=worst[4].get("id"))
            meta = {"source": source, "scores": {"chosen": best[0], "rejected": worst[0]}}
            if score:
                meta["score"] = score
            rows.append(_preference_row(best[2], best[3], worst[3], meta, best[4].get("tools")))
    return rows


def to_trajectories(records: Iterable[Record], *, score: str | None = None,
                    tools_only: bool = False) -> list[dict[str, Any]]:
    """Records -> agent trajectories: the whole conversation with tool calls and tool results in
    order, and the same as `steps` (`{"call_id", "tool", "arguments", "result"}`, arguments as JSON
    text); `reward` is the record's score (None when unscored).

    Args:
        tools_only: keep only the records that called a tool.
    Returns:
        `{"id", "messages", ["tools"], "steps", "reward", "meta": {"source", "scores"}}` rows; the
        contract reads them (steps and reward go to `meta.extra`).
    """
    out = []
    for rec in records:
        messages = _conversation(rec)
        results = {m.get("tool_call_id"): m.get("content") for m in messages if m["role"] == "tool"}
        steps = [{"call_id": c["id"], "tool": c["function"]["name"], "arguments": c["function"]["arguments"],
                  "result": results.get(c["id"])}
                 for m in messages if m["role"] == "assistant" for c in m.get("tool_calls") or []]
        if not messages or (tools_only and not steps):
            continue
        row: dict[str, Any] = {"id": str(rec.get("id")), "messages": messages}
        if rec.get("tools"):
            row["tools"] = copy.deepcopy(rec["tools"])
        row.update(steps=steps, reward=score_value(rec, score),
                   meta={"source": _source(rec), "scores": dict(rec.get("scores") or {})})
        out.append(row)
    return out


def _field_value(value: Any, field: str, single: bool) -> Any:
    if isinstance(value, dict) and field in value:
        return value[field]
    if single and value is not None:
        return text_of(value)
    return None


def to_dspy_examples(records: Iterable[Record], signature: Any = None, *, input_fields: Sequence[str] | None = None,
                     output_field: str | None = None) -> list[Any]:
    """Records -> `dspy.Example`s with `input_fields` marked as inputs and `output_field` as the label.

    An input field's value is the record input's key of that name (`{"question": ...}`), or, for a
    single input field, the input's text (the last user message when the record has no input). The
    label is the output's key of that name, or the output's text (the last assistant message).
    Records missing a value are skipped.

    Args:
        signature: a DSPy signature (class or `"question -> answer"`): its input fields and first
            output field are the defaults.
    Raises:
        InputError: no input or output field given or found; no record has the fields.
    """
    import dspy

    if signature is not None:
        sig = dspy.ensure_signature(signature)
        input_fields = list(input_fields or sig.input_fields)
        output_field = output_field or next(iter(sig.output_fields), None)
    if not input_fields or not output_field:
        raise InputError("to_dspy_examples needs input_fields and output_field (or a signature that has them)")
    single = len(input_fields) == 1
    out = []
    for rec in records:
        messages = _conversation(rec)
        question = rec.get("input")
        if question is None:
            question = next((m["content"] for m in reversed(messages) if m["role"] == "user"), None)
        answer = rec.get("output")
        if answer is None and _answered(messages):
            answer = messages[-1]["content"]
        values = {f: _field_value(question, f, single) for f in input_fields}
        values[output_field] = _field_value(answer, output_field, True)
        if any(v is None for v in values.values()):
            continue
        out.append(dspy.Example(**values).with_inputs(*input_fields))
    if not out:
        raise InputError(f"no record has the fields {', '.join([*input_fields, output_field])}",
                         hint="name the record input's keys in input_fields, or give one input field to use its text")
    return out
