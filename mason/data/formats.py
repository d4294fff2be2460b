"""Dataset formats at the edges: detect a row's format, convert it to the data contract and back.

The data contract (ARCHITECTURE.md) is one JSON object per line in the OpenAI chat format,
`{"id", "messages": [{"role", "content", "tool_calls", "tool_call_id"}], "meta"}`, with an
optional top-level `tools` list; preference samples add `chosen` and `rejected`, one assistant
message each. ShareGPT, Alpaca, prompt/completion, plain text, `{"input","output"}` pairs and
prompt/chosen/rejected rows are converted here, on import and on export, and nowhere else.

Conversion is structural only. A row whose shape cannot be read raises `InputError`; a row that
reads into a questionable conversation (no user turn, empty answer, unknown role) is converted
as it is, so `mason validate` can say exactly what is wrong with it and on which line.
Top-level keys a format does not know go to `meta["extra"]`; `from_contract` puts them back.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any, NamedTuple

from mason.core.errors import InputError
from mason.core.hashing import canonical_json, text_sha1

Row = dict[str, Any]
Message = dict[str, Any]

_DOCS_HINT = "see `mason validate --help` for the formats MASON reads"
_SHAREGPT_ROLES = {
    "human": "user", "user": "user", "gpt": "assistant", "chatgpt": "assistant",
    "assistant": "assistant", "system": "system", "observation": "tool", "tool": "tool",
}
_ROLE_TO_SHAREGPT = {"user": "human", "assistant": "gpt", "system": "system", "tool": "observation"}


class _Unfit(Exception):
    """A contract sample cannot be written in the asked format (the reason is the message)."""


# --------------------------------------------------------------------------- messages


def content_text(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of a list of content parts.

    Returns:
        the text ("" for None or content with no text part).
    """
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def is_preference(sample: Row) -> bool:
    """True when a contract sample is a preference sample (it has `chosen` or `rejected`)."""
    return "chosen" in sample or "rejected" in sample


def is_plain_text(sample: Row) -> bool:
    """True when a contract sample is plain text (a `{"text"}` row): one plain assistant message,
    no prompt, not a preference pair. Training learns every token of it (continued pretraining)."""
    messages = sample.get("messages") or []
    return not is_preference(sample) and len(messages) == 1 and _is_plain(messages[0], "assistant")


def sample_id(sample: Row) -> str:
    """The stable id of a contract sample: sha1 of its canonical messages.

    Preference samples hash `chosen` and `rejected` too: rows sharing a prompt stay distinct.
    """
    if is_preference(sample):
        body: Any = {k: sample.get(k) for k in ("messages", "chosen", "rejected")}
    else:
        body = sample.get("messages", [])
    return text_sha1(canonical_json(body))


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def _rename(table: dict[str, str], role: Any) -> Any:
    # unknown (even non-string) roles pass through unchanged: validation reports them
    return table.get(role, role) if isinstance(role, str) else role


def _message(value: Any, where: str) -> Message:
    # ShareGPT-style turns ({"from", "value"}) are accepted wherever a message is expected
    if not isinstance(value, dict):
        raise InputError(f"`{where}` must be a message object, got {_kind(value)}")
    if "role" not in value and "from" in value:
        rest = {k: v for k, v in value.items() if k not in ("from", "value")}
        return {"role": _rename(_SHAREGPT_ROLES, value["from"]), "content": value.get("value"), **rest}
    return dict(value)


def _messages(value: Any, where: str) -> list[Message]:
    if not isinstance(value, list):
        raise InputError(f"`{where}` must be a list of messages, got {_kind(value)}")
    return [_message(m, f"{where}[{i}]") for i, m in enumerate(value)]


def _answer(value: Any, where: str) -> Message | None:
    """One chosen/rejected answer as an assistant message; None when it is missing."""
    if value is None:
        return None
    if isinstance(value, str):
        return {"role": "assistant", "content": value}
    if isinstance(value, list):
        if len(value) > 1:
            raise InputError(f"`{where}` must be one assistant message, got {len(value)} messages")
        return _message(value[0], where) if value else None
    return _message(value, where)


def _add_answers(body: Row, row: Row) -> Row:
    # the key stays (None when empty) so validation can say "rejected is missing"
    body.update({key: _answer(row[key], key) for key in ("chosen", "rejected") if key in row})
    return body


def _is_plain(message: Message, role: str) -> bool:
    """A message with only a role and string content: what string-only formats can hold."""
    return set(message) == {"role", "content"} and message["role"] == role and isinstance(message["content"], str)


def _str_field(row: Row, key: str, *, optional: bool = False) -> str:
    value = row.get(key)
    if value is None and optional:
        return ""
    if not isinstance(value, str):
        raise InputError(f"`{key}` must be a string, got {_kind(value)}")
    return value


# --------------------------------------------------------------------------- openai


def _openai_in(row: Row) -> Row:
    body: Row = {"messages": _messages(row["messages"], "messages")}
    if row.get("tools") is not None:
        if not isinstance(row["tools"], list):
            raise InputError(f"`tools` must be a list of tool schemas, got {_kind(row['tools'])}")
        body["tools"] = row["tools"]
    return _add_answers(body, row)


# --------------------------------------------------------------------------- sharegpt


def _parse_function_call(value: Any, where: str, start: int) -> list[dict]:
    """A ShareGPT `function_call` value (JSON text: one call or a list) as OpenAI tool calls.

    ShareGPT has no call ids, so they are numbered in conversation order (`call_0`, ...).
    """
    try:
        data = json.loads(value) if isinstance(value, str) else value
    except ValueError as e:
        raise InputError(f"`{where}`: function_call value is not valid JSON ({e})") from None
    calls = []
    for k, item in enumerate(data if isinstance(data, list) else [data]):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise InputError(f"`{where}`: a function call must be an object with a `name`, got {_kind(item)}")
        args = item.get("arguments", {})
        calls.append({
            "id": f"call_{start + k}",
            "type": "function",
            "function": {"name": item["name"],
                         "arguments": args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)},
        })
    return calls


def _sharegpt_turns_in(turns: Any, where: str) -> list[Message]:
    if not isinstance(turns, list):
        raise InputError(f"`{where}` must be a list of turns, got {_kind(turns)}")
    messages: list[Message] = []
    pending: list[str] = []  # ids of calls whose observations have not come yet
    n_calls = 0
    for i, turn in enumerate(turns):
        spot = f"{where}[{i}]"
        if not isinstance(turn, dict):
            raise InputError(f"`{spot}` must be an object with `from` and `value`, got {_kind(turn)}")
        if turn.get("from") == "function_call":
            calls = _parse_function_call(turn.get("value"), spot, n_calls)
            n_calls += len(calls)
            pending = [c["id"] for c in calls]
            prev = messages[-1] if messages else None
            if prev and prev.get("role") == "assistant" and not prev.get("tool_calls"):
                prev["tool_calls"] = calls  # text then its call is one assistant message in OpenAI terms
            else:
                messages.append({"role": "assistant", "content": "", "tool_calls": calls})
            continue
        message = _message(turn, spot)
        if message.get("role") == "tool" and "tool_call_id" not in message and pending:
            message["tool_call_id"] = pending.pop(0)
        messages.append(message)
    return messages


def _tools_in(value: Any) -> list[dict]:
    # LLaMA-Factory keeps tools as JSON text of bare function schemas
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as e:
            raise InputError(f"`tools` is not valid JSON ({e})") from None
    if not isinstance(value, list):
        raise InputError(f"`tools` must be a list of tool schemas, got {_kind(value)}")
    return [t if isinstance(t, dict) and "function" in t else {"type": "function", "function": t} for t in value]


def _sharegpt_in(row: Row) -> Row:
    messages = _sharegpt_turns_in(row["conversations"], "conversations")
    if row.get("system"):
        messages.insert(0, {"role": "system", "content": _str_field(row, "system")})
    body: Row = {"messages": messages}
    if row.get("tools"):
        body["tools"] = _tools_in(row["tools"])
    return _add_answers(body, row)


def _dump_calls(calls: list[dict]) -> str:
    items = []
    for call in calls:
        fn = call.get("function") or {}
        args = fn.get("arguments")
        try:
            args = json.loads(args) if isinstance(args, str) else args
        except ValueError:
            pass  # keep the broken text as it was: exporting must not hide it
        items.append({"name": fn.get("name"), "arguments": args})
    return json.dumps(items[0] if len(items) == 1 else items, ensure_ascii=False)


def _sharegpt_turn(message: Message) -> list[dict]:
    role = message.get("role")
    if role == "assistant" and message.get("tool_calls"):
        turns = [{"from": "gpt", "value": message["content"]}] if content_text(message.get("content")) else []
        return turns + [{"from": "function_call", "value": _dump_calls(message["tool_calls"])}]
    return [{"from": _rename(_ROLE_TO_SHAREGPT, role), "value": message.get("content")}]


def _sharegpt_out(sample: Row) -> Row:
    out: Row = {"conversations": [t for m in sample["messages"] for t in _sharegpt_turn(m)]}
    if sample.get("tools"):
        tools = sample["tools"]
        if all(isinstance(t, dict) and t.get("type") == "function" and "function" in t for t in tools):
            tools = [t["function"] for t in tools]
        out["tools"] = json.dumps(tools, ensure_ascii=False)
    for key in ("chosen", "rejected"):
        if key in sample:
            if sample[key] is None or sample[key].get("tool_calls"):
                raise _Unfit(f"`{key}` is missing or a tool call")
            out[key] = _sharegpt_turn(sample[key])[0]
    return out


# --------------------------------------------------------------------------- alpaca


def _alpaca_in(row: Row) -> Row:
    messages: list[Message] = []
    if row.get("system"):
        messages.append({"role": "system", "content": _str_field(row, "system")})
    history = row.get("history") or []
    if not isinstance(history, list) or not all(isinstance(p, list) and len(p) == 2 for p in history):
        raise InputError("`history` must be a list of [instruction, answer] pairs")
    for question, answer in history:
        messages += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    instruction, extra = _str_field(row, "instruction"), _str_field(row, "input", optional=True)
    messages.append({"role": "user", "content": f"{instruction}\n\n{extra}" if extra else instruction})
    if "output" in row:
        messages.append({"role": "assistant", "content": row["output"]})
    return _add_answers({"messages": messages}, row)


def _alpaca_out(sample: Row) -> Row:
    messages = list(sample["messages"])
    system = messages.pop(0)["content"] if messages and _is_plain(messages[0], "system") else None
    last_answer = None if is_preference(sample) else (messages.pop() if messages else None)
    if last_answer is not None and not _is_plain(last_answer, "assistant"):
        raise _Unfit("the last turn is not a plain assistant answer")
    if len(messages) % 2 != 1:
        raise _Unfit("the turns do not alternate user/assistant")
    pairs = [messages[i:i + 2] for i in range(0, len(messages) - 1, 2)]
    if not all(_is_plain(u, "user") and _is_plain(a, "assistant") for u, a in pairs) or not _is_plain(
            messages[-1], "user"):
        raise _Unfit("it has tool calls, or turns that are not plain user/assistant text")
    out: Row = {"instruction": messages[-1]["content"], "input": ""}
    if last_answer is not None:
        out["output"] = last_answer["content"]
    if system is not None:
        out["system"] = system
    if pairs:
        out["history"] = [[u["content"], a["content"]] for u, a in pairs]
    for key in (k for k in ("chosen", "rejected") if k in sample):
        if sample[key] is None or not _is_plain(sample[key], "assistant"):
            raise _Unfit(f"`{key}` is missing or not a plain assistant answer")
        out[key] = sample[key]["content"]
    return out


# --------------------------------------------------------------------------- preference


def _implicit_prompt(row: Row) -> tuple[list[Message], dict[str, Any]]:
    """Split chosen/rejected given as whole conversations into the shared prompt and the answers."""
    convs = {k: _messages(row[k], k) for k in ("chosen", "rejected") if isinstance(row.get(k), list) and row[k]}
    if not convs:
        raise InputError("a preference row needs `prompt` (or `chosen`/`rejected` as whole conversations)")
    lists = list(convs.values())
    n = min(len(c) for c in lists) - 1  # each side keeps at least its answer
    if len(lists) == 2:
        n = next((i for i in range(n) if lists[0][i] != lists[1][i]), n)
    answers = {k: row.get(k) for k in ("chosen", "rejected") if k in row}
    answers.update({k: c[n:] for k, c in convs.items()})
    return lists[0][:n], answers


def _preference_in(row: Row) -> Row:
    prompt = row.get("prompt")
    if prompt is None:
        messages, answers = _implicit_prompt(row)
    else:
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else _messages(prompt, "prompt")
        answers = row
    return _add_answers({"messages": messages}, answers)


def _preference_out(sample: Row) -> Row:
    if not is_preference(sample):
        raise _Unfit("it is not a preference sample (no chosen/rejected)")
    messages, chosen, rejected = sample["messages"], sample.get("chosen"), sample.get("rejected")
    if chosen is None or rejected is None:
        raise _Unfit("`chosen` or `rejected` is missing")
    plain_answers = _is_plain(chosen, "assistant") and _is_plain(rejected, "assistant")
    if len(messages) == 1 and _is_plain(messages[0], "user") and plain_answers:
        return {"prompt": messages[0]["content"], "chosen": chosen["content"], "rejected": rejected["content"]}
    # TRL's conversational preference form
    return {"prompt": copy.deepcopy(messages), "chosen": [dict(chosen)], "rejected": [dict(rejected)]}


# --------------------------------------------------------------------------- single-turn formats


def _prompt_completion_in(row: Row) -> Row:
    prompt, completion = row["prompt"], row["completion"]
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else _messages(prompt, "prompt")
    if isinstance(completion, str):
        messages.append({"role": "assistant", "content": completion})
    else:
        messages += _messages(completion, "completion")
    return {"messages": messages}


def _prompt_completion_out(sample: Row) -> Row:
    if is_preference(sample):
        raise _Unfit("it is a preference sample (write it as preference)")
    messages = sample["messages"]
    split = max((i + 1 for i, m in enumerate(messages) if m.get("role") == "user"), default=0)
    prompt, completion = messages[:split], messages[split:]
    if [len(prompt), len(completion)] == [1, 1] and _is_plain(prompt[0], "user") and _is_plain(
            completion[0], "assistant"):
        return {"prompt": prompt[0]["content"], "completion": completion[0]["content"]}
    return {"prompt": copy.deepcopy(prompt), "completion": copy.deepcopy(completion)}


def _text_in(row: Row) -> Row:
    # plain text is one assistant message: all of it is trained on (continued pretraining)
    return {"messages": [{"role": "assistant", "content": _str_field(row, "text")}]}


def _text_out(sample: Row) -> Row:
    if not is_plain_text(sample):
        raise _Unfit("only a sample of one plain assistant message is plain text")
    return {"text": sample["messages"][0]["content"]}


def _input_output_in(row: Row) -> Row:
    return {"messages": [{"role": "user", "content": row["input"]}, {"role": "assistant", "content": row["output"]}]}


def _input_output_out(sample: Row) -> Row:
    messages = sample["messages"]
    if is_preference(sample) or len(messages) != 2 or not (
            _is_plain(messages[0], "user") and _is_plain(messages[1], "assistant")):
        raise _Unfit("only one plain user turn and one plain assistant answer fit {input, output}")
    return {"input": messages[0]["content"], "output": messages[1]["content"]}


# --------------------------------------------------------------------------- registry


class _Format(NamedTuple):
    matches: Callable[[Row], bool]
    keys: frozenset[str]  # top-level keys the format consumes (the rest go to meta.extra)
    expects: str
    to_contract: Callable[[Row], Row]
    from_contract: Callable[[Row], Row]


def _has(*keys: str) -> Callable[[Row], bool]:
    return lambda row: all(k in row for k in keys)


def _is_alpaca(row: Row) -> bool:
    return "instruction" in row and ("output" in row or "chosen" in row or "rejected" in row)


# order matters: the first format whose keys a row has is its format
FORMATS: dict[str, _Format] = {
    "openai": _Format(_has("messages"), frozenset({"messages", "tools", "chosen", "rejected"}),
                      "`messages`", _openai_in, copy.deepcopy),
    "sharegpt": _Format(_has("conversations"), frozenset({"conversations", "system", "tools", "chosen", "rejected"}),
                        "`conversations`", _sharegpt_in, _sharegpt_out),
    "alpaca": _Format(_is_alpaca,
                      frozenset({"instruction", "input", "output", "system", "history", "chosen", "rejected"}),
                      "`instruction` + `output`", _alpaca_in, _alpaca_out),
    "preference": _Format(lambda row: "chosen" in row or "rejected" in row, frozenset({"prompt", "chosen", "rejected"}),
                          "`prompt` + `chosen` + `rejected`", _preference_in, _preference_out),
    "prompt_completion": _Format(_has("prompt", "completion"), frozenset({"prompt", "completion"}),
                                 "`prompt` + `completion`", _prompt_completion_in, _prompt_completion_out),
    "text": _Format(_has("text"), frozenset({"text"}), "`text`", _text_in, _text_out),
    "input_output": _Format(_has("input", "output"), frozenset({"input", "output"}),
                            "`input` + `output`", _input_output_in, _input_output_out),
}
_ALIASES = {"contract": "openai", "messages": "openai", "dpo": "preference"}


def normalize_format(fmt: str) -> str:
    """The canonical name of a format (aliases such as `contract` -> `openai`).

    Raises:
        InputError: for a name MASON does not know, listing the known ones.
    """
    name = fmt.strip().lower().replace("-", "_")
    name = _ALIASES.get(name, name)
    if name not in FORMATS:
        raise InputError(f"unknown dataset format {fmt!r}", hint=f"use one of: auto, {', '.join(FORMATS)}")
    return name


def _expected() -> str:
    return "; ".join(f"{spec.expects} ({name})" for name, spec in FORMATS.items())


def detect_format(row: Row) -> str:
    """The format of one row, from its keys.

    Returns:
        a name in `FORMATS`.
    Raises:
        InputError: when the row is not an object or has none of the keys a format needs; the
            message lists the keys found and the keys each format expects.
    """
    if not isinstance(row, dict):
        raise InputError(f"expected a JSON object, got {_kind(row)}")
    for name, spec in FORMATS.items():
        if spec.matches(row):
            return name
    found = ", ".join(f"`{k}`" for k in sorted(row)) or "none"
    raise InputError(f"unknown row shape (keys: {found}); expected one of: {_expected()}", hint=_DOCS_HINT)


def to_contract(row: Row, fmt: str | None = None) -> Row:
    """Convert one row to a data-contract sample.

    Args:
        row: the row as read from the file.
        fmt: its format; None or "auto" detects it per row.
    Returns:
        `{"id", "messages", ["tools"], ["chosen", "rejected"], "meta"}`: the row's `id` (as text)
        or `sample_id` of the converted messages, its `meta`, and unknown keys in `meta["extra"]`.
    Raises:
        InputError: when the row's shape cannot be read as that format (no location: callers
            that know the file and line add them).
    """
    name = detect_format(row) if fmt in (None, "auto") else normalize_format(fmt)
    spec = FORMATS[name]
    if not isinstance(row, dict) or not spec.matches(row):
        found = ", ".join(f"`{k}`" for k in sorted(row)) if isinstance(row, dict) else _kind(row)
        raise InputError(f"the row is not in {name} format: expected {spec.expects} (found: {found or 'no keys'})",
                         hint=_DOCS_HINT)
    meta = row.get("meta") or {}
    if not isinstance(meta, dict):
        raise InputError(f"`meta` must be an object, got {_kind(meta)}")
    meta = dict(meta)
    extra = {k: v for k, v in row.items() if k not in spec.keys and k not in ("id", "meta")}
    if extra:
        meta["extra"] = {**(meta["extra"] if isinstance(meta.get("extra"), dict) else {}), **extra}
    body = spec.to_contract(row)
    rid = row.get("id")
    return {"id": str(rid) if rid not in (None, "") else sample_id(body), **body, "meta": meta}


def from_contract(sample: Row, fmt: str) -> Row:
    """Convert a data-contract sample to a row of `fmt` (the inverse of `to_contract`).

    Rows keep the sample's `id`, its `meta["extra"]` keys at the top level and, when not
    empty, the rest of its `meta`; `openai` rows are the contract sample itself.

    Raises:
        InputError: when the format cannot hold the sample (tool calls as Alpaca, a
            conversation as plain text, ...), naming the sample and the reason.
    """
    name = normalize_format(fmt)
    if name == "openai":
        return copy.deepcopy(sample)
    try:
        body = FORMATS[name].from_contract(sample)
    except _Unfit as e:
        raise InputError(f"sample {sample.get('id')} cannot be written as {name}: {e}",
                         hint="write it as openai (the contract) or sharegpt: they hold any conversation") from None
    except (AttributeError, KeyError, TypeError) as e:
        # a sample that breaks the contract's shape (a tool call that is not an object...)
        raise InputError(f"sample {sample.get('id')} is malformed and cannot be written as {name} ({e!r})",
                         hint="run `mason validate` on the data: it names the problem and the line") from e
    meta = dict(sample.get("meta") or {})
    extra = meta.pop("extra", None)
    extra = extra if isinstance(extra, dict) else {}
    out: Row = {"id": sample["id"]} if sample.get("id") else {}
    out.update(body)
    for key, value in extra.items():
        out.setdefault(key, value)
    if meta:
        out["meta"] = meta
    return out
