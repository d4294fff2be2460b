"""`tool_calling`: the assistant calls one of `cfg.tools`, reads the result, then answers.

The teacher writes the whole exchange as JSON (user message, tool name, arguments, result,
final answer), which works with any backend, including ones without native tool calling. The
sample is then assembled in the OpenAI format: an assistant message with `tool_calls`
(arguments as a JSON string), a `tool` message with the matching `tool_call_id`, and the final
assistant answer. Arguments are checked against the tool's JSON schema (names, required keys,
types, enums) before a sample is kept; the sample carries the tool schemas under `tools`, so a
trainer can render them into the chat template.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field, field_validator

from mason.core.errors import ConfigError, Problem
from mason.core.hashing import stable_hash
from mason.generate.tasks.base import (
    GenContext,
    ask_teacher,
    make_sample,
    require_some,
    source_of,
    unique,
)

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,),
    "array": (list,), "object": (dict,), "null": (type(None),),
}


class ToolExchange(BaseModel):
    user: str = Field(min_length=3)
    tool: str = Field(min_length=1)
    arguments: dict[str, Any]
    result: Any
    answer: str = Field(min_length=1)

    @field_validator("arguments", mode="before")
    @classmethod
    def _json_string(cls, value: Any) -> Any:
        # models often copy the OpenAI wire format, where arguments are a JSON string
        if isinstance(value, str):
            try:
                return json.loads(value or "{}")
            except json.JSONDecodeError:
                raise ValueError("arguments must be a JSON object (or a string holding one)") from None
        return value


class ToolCallingAnswer(BaseModel):
    """What `tool_calling.j2` asks for: `{"conversations": [{"user", "tool", "arguments", "result", "answer"}]}`."""

    conversations: list[ToolExchange] = Field(min_length=1)


def tool_index(tools: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The function definitions of OpenAI-format `tools`, by name.

    Accepts `{"type": "function", "function": {...}}` and bare `{"name", "parameters"}` entries.
    Raises ConfigError when there are no tools or one has no name.
    """
    if not tools:
        raise ConfigError([Problem("synthetic_data.tools", "task_type `tool_calling` needs at least one tool schema")])
    out = {}
    for i, tool in enumerate(tools):
        fn = tool.get("function", tool) if isinstance(tool, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise ConfigError([Problem(f"synthetic_data.tools[{i}]", "a tool needs `function.name` (OpenAI format)")])
        out[fn["name"]] = fn
    return out


def _type_ok(value: Any, declared: Any) -> bool:
    names = declared if isinstance(declared, list) else [declared]
    for name in names:
        kinds = _JSON_TYPES.get(name)
        if kinds is None:
            return True  # an unknown type name: nothing to check against
        # bool is an int in Python, but not an integer or a number in JSON
        if isinstance(value, bool) and name in ("integer", "number"):
            continue
        if isinstance(value, kinds):
            return True
    return False


def argument_errors(arguments: dict[str, Any], function: dict[str, Any]) -> list[str]:
    """What is wrong with `arguments` for the tool `function` (its JSON schema `parameters`).

    Checks required names, unknown names (unless `additionalProperties` allows them), the
    declared JSON types and `enum`s of the top-level arguments.
    Returns readable problems, empty when the arguments fit.
    """
    name = function["name"]
    params = function.get("parameters") or {}
    props: dict[str, Any] = params.get("properties") or {}
    errors = [f"{name}: required argument `{k}` is missing" for k in params.get("required") or []
              if k not in arguments]
    if not params.get("additionalProperties"):
        allowed = ", ".join(props) or "none"
        errors += [f"{name}: unknown argument `{k}` (allowed: {allowed})" for k in arguments if k not in props]
    for key, value in arguments.items():
        spec = props.get(key)
        if not isinstance(spec, dict):
            continue
        if "type" in spec and not _type_ok(value, spec["type"]):
            errors.append(f"{name}: argument `{key}` must be of type {spec['type']}, got {json.dumps(value)}")
        if "enum" in spec and value not in spec["enum"]:
            allowed = json.dumps(spec["enum"])
            errors.append(f"{name}: argument `{key}` must be one of {allowed}, got {json.dumps(value)}")
    return errors


def exchange_problem(ex: ToolExchange, functions: dict[str, dict[str, Any]]) -> str | None:
    """Why `ex` cannot be used (unknown tool, bad arguments, empty result), or None."""
    if ex.tool not in functions:
        return f"tool `{ex.tool}` does not exist (tools: {', '.join(functions)})"
    errors = argument_errors(ex.arguments, functions[ex.tool])
    if errors:
        return "; ".join(errors)
    if ex.result is None or (isinstance(ex.result, str | list | dict) and not ex.result):
        return "the tool result is empty"
    return None


def tool_messages(ex: ToolExchange, call_id: str) -> list[dict[str, Any]]:
    """user -> assistant tool call -> tool result -> assistant answer, in the OpenAI format."""
    result = ex.result if isinstance(ex.result, str) else json.dumps(ex.result, ensure_ascii=False)
    call = {"id": call_id, "type": "function",
            "function": {"name": ex.tool, "arguments": json.dumps(ex.arguments, ensure_ascii=False)}}
    return [
        {"role": "user", "content": ex.user.strip()},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call_id, "content": result},
        {"role": "assistant", "content": ex.answer.strip()},
    ]


class ToolCallingGenerator:
    """Conversations with one validated tool call each."""

    name = "tool_calling"

    async def generate(self, chunk: dict[str, Any], n: int, ctx: GenContext) -> list[dict[str, Any]]:
        """Up to `n` tool-calling samples (exchanges with invalid calls are dropped).

        Raises ConfigError without usable `cfg.tools`, StructuredOutputError when no exchange
        in the teacher's answers is valid after retries (the errors are shown to it each time).
        """
        functions = tool_index(ctx.cfg.tools)

        def check(answer: ToolCallingAnswer) -> None:
            require_some([exchange_problem(ex, functions) for ex in answer.conversations], "conversations")

        answer, hashes = await ask_teacher(
            ctx, "tool_calling", chunk, n, ToolCallingAnswer, check=check,
            tools=ctx.cfg.tools, tools_json=json.dumps(ctx.cfg.tools, indent=2, ensure_ascii=False),
        )
        valid = [ex for ex in answer.conversations if exchange_problem(ex, functions) is None]
        samples = []
        for ex in unique(valid, key=lambda ex: ex.user)[:n]:
            call_id = "call_" + stable_hash([chunk.get("id"), ex.user, ex.tool, ex.arguments], length=24)
            samples.append(make_sample(
                tool_messages(ex, call_id), source=source_of(chunk), task=self.name, ctx=ctx,
                prompt_hashes=hashes, extra={"tools": list(ctx.cfg.tools)}, extra_meta={"tool": ex.tool},
            ))
        return samples
