"""Normalized records: the one shape every source resolves to and every transform reads.

    {"id": "<trace or row id>", "input": ..., "output": ..., "messages": [OpenAI chat messages],
     "tool_calls": [OpenAI tool calls, in order], "scores": {"name": value}, "metadata": {...}}

`input`/`output` keep the source's values (text, or JSON objects such as `{"question": ...}`);
`messages` is the conversation as a chat model saw it (tool calls and tool results in order);
`metadata` holds where the record came from (`source`, `trace_id`, `tags`, `timestamp`, ...).
Dataset rows in any format `mason validate` reads become records here too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mason.data.formats import content_text, is_preference, to_contract

RECORD_KEYS = ("id", "input", "output", "messages", "tool_calls", "scores", "metadata")


@dataclass(frozen=True)
class SourceRef:
    """A parsed source URI: `scheme://provider/rest`."""

    uri: str
    scheme: str
    provider: str
    rest: str


def make_record(rid: str, *, input: Any = None, output: Any = None, messages: list[dict[str, Any]] | None = None,
                tool_calls: list[dict[str, Any]] | None = None, scores: dict[str, Any] | None = None,
                metadata: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """A record with every key present (empty values where the source had none)."""
    messages = list(messages or [])
    if tool_calls is None:
        tool_calls = [c for m in messages if m.get("role") == "assistant" for c in m.get("tool_calls") or []]
    rec = {"id": str(rid), "input": input, "output": output, "messages": messages, "tool_calls": list(tool_calls),
           "scores": dict(scores or {}), "metadata": dict(metadata or {})}
    rec.update(extra)
    return rec


def parse_json_text(value: Any) -> Any:
    """LangFuse returns input/output as raw strings: JSON text becomes its value, other text stays."""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped[:1] in ("{", "[", '"'):
            try:
                return json.loads(stripped)
            except ValueError:
                return value
    return value


_TEXT_KEYS = ("content", "text", "answer", "output", "response", "completion", "question", "query", "input", "prompt")


def text_of(value: Any) -> str:
    """The text of an input or output value: a string, a chat message, a list of messages (the last
    one's content), content parts, or a dict with one of the usual text keys; else compact JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        if value and all(isinstance(m, dict) and "role" in m for m in value):
            return content_text(value[-1].get("content"))
        text = content_text(value)
        if text or not value:
            return text
    if isinstance(value, dict):
        if "role" in value and "content" in value:
            return content_text(value.get("content"))
        for key in _TEXT_KEYS:
            if isinstance(value.get(key), str):
                return value[key]
        if len(value) == 1:
            return text_of(next(iter(value.values())))
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def is_messages(value: Any) -> bool:
    """A non-empty list of chat messages (dicts with a `role`)."""
    return isinstance(value, list) and bool(value) and all(isinstance(m, dict) and "role" in m for m in value)


def clean_message(message: dict[str, Any]) -> dict[str, Any]:
    """A chat message reduced to the data contract's keys (role, content, tool_calls, tool_call_id, name)."""
    content = message.get("content")
    out: dict[str, Any] = {"role": message.get("role"), "content": "" if content is None else content}
    if message.get("tool_calls"):
        out["tool_calls"] = [normalize_call(c, i) for i, c in enumerate(message["tool_calls"])]
    for key in ("tool_call_id", "name"):
        if message.get(key) is not None:
            out[key] = message[key]
    return out


def normalize_call(call: dict[str, Any], index: int = 0) -> dict[str, Any]:
    """A tool call in OpenAI's shape, arguments as JSON text: `{id, type: function, function: {name, arguments}}`."""
    fn = call.get("function") if isinstance(call.get("function"), dict) else call
    args = fn.get("arguments", fn.get("args", {}))
    if not isinstance(args, str):
        args = json.dumps(args, ensure_ascii=False, sort_keys=True)
    return {"id": str(call.get("id") or f"call_{index}"), "type": "function",
            "function": {"name": fn.get("name"), "arguments": args}}


def record_from_row(row: dict[str, Any], *, source: str, line: int) -> dict[str, Any]:
    """A dataset row as a record: an already normalized record (what `collect_from` returns) is kept,
    any other row goes through the data contract (`to_contract`: OpenAI chat, ShareGPT, Alpaca,
    prompt/completion, `{"text"}`, `{"input","output"}`, prompt/chosen/rejected).

    Raises:
        InputError: a row no format reads (from `to_contract`).
    """
    if ("scores" in row or "tool_calls" in row or "metadata" in row) and ("input" in row or "messages" in row):
        rec = make_record(str(row.get("id") or f"{source}:{line}"), input=row.get("input"), output=row.get("output"),
                          messages=[clean_message(m) for m in row.get("messages") or []],
                          tool_calls=row.get("tool_calls"), scores=row.get("scores"),
                          metadata=row.get("metadata"))
        for key in ("chosen", "rejected", "tools"):
            if key in row:
                rec[key] = row[key]
        rec["metadata"].setdefault("source", {"dataset": source, "line": line})
        return rec
    sample = to_contract(row)
    messages = [clean_message(m) for m in sample["messages"]]
    meta = dict(sample.get("meta") or {})
    scores = meta.pop("scores", None)
    if scores is None and isinstance(meta.get("score"), (int, float)):
        scores = {"score": meta.pop("score")}
    prompt = messages
    answer: Any = None
    if not is_preference(sample) and messages and messages[-1]["role"] == "assistant":
        prompt, answer = messages[:-1], messages[-1]
    user = next((m for m in reversed(prompt) if m["role"] == "user"), None)
    meta.setdefault("source", {"dataset": source, "line": line})
    rec = make_record(sample["id"], input=content_text(user["content"]) if user else None,
                      output=content_text(answer.get("content")) if answer else None,
                      messages=messages, scores=scores or {}, metadata=meta)
    if sample.get("tools"):
        rec["tools"] = sample["tools"]
    if is_preference(sample):
        rec["chosen"], rec["rejected"] = sample.get("chosen"), sample.get("rejected")
    return rec


def trace_ids(row: dict[str, Any]) -> list[str]:
    """The trace ids a record or a data row came from (`meta.source.trace(s)`, `metadata.trace_id`)."""
    out: list[str] = []
    for holder in (row.get("meta"), row.get("metadata")):
        if not isinstance(holder, dict):
            continue
        src = holder.get("source")
        if isinstance(src, dict):
            for key in ("trace", "chosen_trace", "rejected_trace"):
                if isinstance(src.get(key), str):
                    out.append(src[key])
            out += [t for t in src.get("traces") or [] if isinstance(t, str)]
        if isinstance(holder.get("trace_id"), str):
            out.append(holder["trace_id"])
    return list(dict.fromkeys(out))


# --------------------------------------------------------------------------- shared filters


def score_value(record: dict[str, Any], name: str | None) -> float | None:
    """The record's score `name` (its only score when `name` is None) as a number, or None."""
    scores = record.get("scores") or {}
    if name is None:
        numeric = [v for v in scores.values() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        value: Any = numeric[0] if len(numeric) == 1 else None
    else:
        value = scores.get(name)
    if isinstance(value, bool):
        return float(value)
    return float(value) if isinstance(value, (int, float)) else None


def keep_by_score(records: list[dict[str, Any]], filters: dict[str, Any]) -> list[dict[str, Any]]:
    """Records whose score (`score` names it) is within `min_score`/`max_score`; all when neither is set."""
    lo, hi = filters.get("min_score"), filters.get("max_score")
    if lo is None and hi is None:
        return records
    out = []
    for rec in records:
        value = score_value(rec, filters.get("score"))
        if value is None:
            continue
        if (lo is None or value >= lo) and (hi is None or value <= hi):
            out.append(rec)
    return out
