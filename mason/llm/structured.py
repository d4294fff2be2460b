"""Getting structured (JSON) answers out of chat models, which do not always return clean JSON.

Three layers:

- `extract_json(text)` finds and parses the JSON value in a model's answer, tolerating what
  models commonly add around or inside it: ```json fences, prose before and after, trailing
  commas, typographic ("smart") quotes, raw newlines inside strings.
- `validate_shape(obj, model_cls)` checks it against a small pydantic model and turns the
  validation errors into one short line a model (or a person) can act on.
- `ask_json(client, messages, model_cls)` asks the teacher in JSON mode and, when the answer
  cannot be used, shows the model its own answer plus the exact error and asks again.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from mason.core.errors import MasonError
from mason.llm.teachers.base import ChatRequest, Completion

M = TypeVar("M", bound=BaseModel)

_FENCE = re.compile(r"```[ \t]*(?:json|JSON|javascript|js)?[ \t]*\n?(.*?)```", re.DOTALL)
_SMART_DOUBLE = str.maketrans({"\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u00ab": '"',
                               "\u00bb": '"'})
_SMART_SINGLE = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'"})
_MAX_STARTS = 20  # candidate opening brackets tried before giving up (prose may contain a few)
_MAX_ERRORS = 4  # validation errors quoted back to the model: more only adds noise


class StructuredOutputError(MasonError):
    """A model's answer is not the JSON asked for (unparseable, or the wrong shape).

    The message is short and specific on purpose: it is shown to the model when asking again.
    """


def _structural(text: str, start: int = 0) -> Iterator[tuple[int, str, bool]]:
    """(index, character, outside a JSON string) for each character from `start`.

    The quote that opens or closes a string counts as outside it, so callers see delimiters.
    """
    in_str = escaped = False
    for i in range(start, len(text)):
        ch = text[i]
        if in_str:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_str = False
                yield i, ch, True
                continue
            yield i, ch, False
            continue
        if ch == '"':
            in_str = True
        yield i, ch, True


def _strip_trailing_commas(text: str) -> str:
    """Remove commas directly before `}` or `]`, outside strings."""
    out: list[str] = []
    for i, ch, outside in _structural(text):
        if outside and ch == "," and text[i + 1:].lstrip()[:1] in ("}", "]"):
            continue
        out.append(ch)
    return "".join(out)


def _balanced_end(text: str, start: int) -> int | None:
    """Index just after the bracket that closes the one at `start` (None when never closed)."""
    stack: list[str] = []
    pairs = {"{": "}", "[": "]"}
    for i, ch, outside in _structural(text, start):
        if not outside:
            continue
        if ch in pairs:
            stack.append(pairs[ch])
        elif ch in "}]":
            if not stack or stack.pop() != ch:
                return None
            if not stack:
                return i + 1
    return None


def _parse_candidate(candidate: str) -> tuple[bool, Any, str]:
    """Try the repairs in order of how little they change the text. Returns (ok, value, error)."""
    variants = [candidate, _strip_trailing_commas(candidate)]
    if any(q in candidate for q in "\u201c\u201d\u201e\u201f\u00ab\u00bb"):
        # smart quotes used as JSON delimiters: only safe to straighten when the plain forms fail
        straight = candidate.translate(_SMART_DOUBLE).translate(_SMART_SINGLE)
        variants += [straight, _strip_trailing_commas(straight)]
    first_error = ""
    for variant in variants:
        try:
            # strict=False: models put raw newlines and tabs inside strings
            return True, json.loads(variant, strict=False), ""
        except json.JSONDecodeError as e:
            first_error = first_error or f"{e.msg} at line {e.lineno} column {e.colno}"
    try:
        # Python-literal answers ({'a': 1}) from models that ignore "JSON"
        value = ast.literal_eval(_strip_trailing_commas(candidate))
        if isinstance(value, dict | list):
            return True, value, ""
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        pass
    return False, None, first_error


def extract_json(text: str) -> Any:
    """Parse the JSON object or array in a model's answer.

    Looks inside a ```json fence first, else at each `{`/`[` in the text (prose around it is
    ignored) and applies small repairs (trailing commas, smart quotes, Python literals).
    Returns the parsed value (a dict or list).
    Raises StructuredOutputError naming the problem (no JSON at all, or the parse error).
    """
    if not text or not text.strip():
        raise StructuredOutputError("the answer is empty; expected a JSON object")
    sources = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    first_error = ""
    for source in sources:
        starts = [m.start() for m in re.finditer(r"[\[{]", source)][:_MAX_STARTS]
        for start in starts:
            end = _balanced_end(source, start)
            candidate = source[start:end] if end is not None else source[start:]
            ok, value, error = _parse_candidate(candidate)
            if ok and isinstance(value, dict | list):
                return value
            if end is None and not first_error:
                error = "the JSON is cut off (an opening bracket is never closed)"
            first_error = first_error or error
    if not first_error:
        raise StructuredOutputError("no JSON object found in the answer")
    raise StructuredOutputError(f"invalid JSON: {first_error}")


def _format_errors(err: ValidationError) -> str:
    parts = []
    for e in err.errors()[:_MAX_ERRORS]:
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        parts.append(f"{loc}: {e['msg']}")
    more = len(err.errors()) - _MAX_ERRORS
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


def validate_shape(obj: Any, schema: type[M]) -> M:
    """Validate parsed JSON against the pydantic model `schema`.

    A bare list where `schema` has exactly one field is wrapped into that field (small models
    often answer `[...]` for `{"pairs": [...]}`).
    Returns the model instance. Raises StructuredOutputError with short readable errors
    (`pairs.0.answer: Field required; ...`).
    """
    fields = list(schema.model_fields)
    if isinstance(obj, list) and len(fields) == 1:
        obj = {fields[0]: obj}
    if not isinstance(obj, dict):
        raise StructuredOutputError(f"expected a JSON object with keys {', '.join(fields)}, got {type(obj).__name__}")
    try:
        return schema.model_validate(obj)
    except ValidationError as e:
        raise StructuredOutputError(f"wrong shape: {_format_errors(e)}") from None


def _retry_message(error: str) -> str:
    return (f"Your answer could not be used: {error}\n"
            "Reply again with only the corrected JSON, in exactly the shape asked for, and nothing else.")


async def ask_json(
    client: Any,
    messages: list[dict[str, Any]],
    model_cls: type[M],
    *,
    retries: int = 2,
    model_id: str | None = None,
    check: Callable[[M], None] | None = None,
    max_items: int | None = None,
    **params: Any,
) -> tuple[M, list[str]]:
    """Ask `client` for a JSON answer of shape `model_cls`, repairing the conversation on failure.

    Args:
        client: anything with `async complete(ChatRequest) -> Completion` (a TeacherClient).
        messages: the conversation to send (not modified).
        model_cls: the pydantic model the answer must validate against.
        retries: extra attempts after the first one.
        model_id: model name for the request cache keys (default: `client.model_id`, if any).
        check: extra semantic check of the validated answer; it raises ValueError or
            StructuredOutputError with a message that is shown to the model on retry.
        max_items: cap on the length of the answer's top-level lists (`maxItems` in the schema):
            a backend that constrains decoding then closes the list instead of running on past
            `max_tokens` (small models asked for 3 pairs otherwise write 10 and get cut off).
        **params: decoding parameters for `ChatRequest.of` (temperature, max_tokens, seed...).

    Returns (validated instance, cache keys of every request made, in order).
    Raises StructuredOutputError when no attempt gave a usable answer (the last error included).
    """
    model = model_id if model_id is not None else str(getattr(client, "model_id", ""))
    conversation = list(messages)
    hashes: list[str] = []
    error = ""
    schema = model_cls.model_json_schema()
    if max_items is not None:
        for prop in (schema.get("properties") or {}).values():
            if prop.get("type") == "array":
                prop["maxItems"] = max(max_items, prop.get("minItems", 0))
    for _ in range(retries + 1):
        request = ChatRequest.of(conversation, json_mode=True, json_schema=schema, **params)
        hashes.append(request.cache_key(model))
        completion: Completion = await client.complete(request)
        text = completion.text or ""
        try:
            value = validate_shape(extract_json(text), model_cls)
            if check is not None:
                check(value)
            return value, hashes
        except (StructuredOutputError, ValueError) as e:
            error = e.message if isinstance(e, MasonError) else str(e)
        # show the model exactly what it said and what was wrong with it
        conversation = conversation + [{"role": "assistant", "content": text},
                                       {"role": "user", "content": _retry_message(error)}]
    raise StructuredOutputError(
        f"the teacher gave no usable {model_cls.__name__} answer in {retries + 1} attempts; last error: {error}"
    )
