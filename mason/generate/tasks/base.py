"""What every task generator shares: the context it runs in, its protocol, sample assembly.

A sample follows the data contract (ARCHITECTURE.md): `{"id", "messages", "meta"}` plus
`"chosen"`/`"rejected"` for preference samples. `meta.source` points back to the chunk
(`doc`, `chunk`, `span`) and `meta.prompt_hash` to the teacher request(s) that produced it
(their cache keys joined with ","), so a sample can always be traced and regenerated.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel

from mason.core.hashing import canonical_json, text_sha1
from mason.data.seeds import examples_block
from mason.generate.config import GenerateConfig
from mason.generate.prompts import PromptLibrary
from mason.llm.structured import ask_json

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

# the teacher's own system message (never part of a sample): JSON mode works better with it
TEACHER_SYSTEM = ("You are a meticulous writer of training data for domain assistants. "
                  "You follow the requested JSON format exactly and use only facts from the given source.")


@dataclass
class GenContext:
    """Everything a generator needs besides the chunk.

    Attributes:
        client: the teacher, anything with `async complete(ChatRequest) -> Completion`
            (a `TeacherClient`: cached, retried, rate-limited); None for the extractive teacher.
        prompts: prompt templates (the user's `prompts_dir` first).
        cfg: the stage config (teacher parameters, system prompt, tools, records).
        model_id: the teacher's model id, written to `meta.teacher` and hashed into cache keys.
        seed: seed of every random choice and of the teacher requests.
        examples: seed instructions shown to the teacher in every prompt (`synthetic_data.seeds`).
    """

    client: Any
    prompts: PromptLibrary
    cfg: GenerateConfig
    model_id: str
    seed: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)


@runtime_checkable
class TaskGenerator(Protocol):
    """Turns one chunk into samples of one kind.

    Attributes:
        name: the task type it makes (`question_answering`, `multi_turn`, ...).
    """

    name: str

    async def generate(self, chunk: dict[str, Any], n: int, ctx: GenContext) -> list[dict[str, Any]]:
        """Up to `n` samples from `chunk` (fewer when the chunk has less to offer).

        Raises StructuredOutputError when the teacher gives no usable answer after retries.
        """
        ...


def heading_path(chunk: dict[str, Any]) -> str:
    """The chunk's heading path as text ("Manual > Calibration"), "" when it has none."""
    return " > ".join(h for h in chunk.get("headings") or [] if h)


def chunk_variables(chunk: dict[str, Any], n: int) -> dict[str, Any]:
    """Template variables every built-in prompt can use: text, headings, heading_path, doc, n."""
    return {"text": chunk["text"], "headings": list(chunk.get("headings") or []),
            "heading_path": heading_path(chunk), "doc": chunk.get("doc", ""), "n": n}


def request_params(ctx: GenContext) -> dict[str, Any]:
    """Decoding parameters of the teacher requests (from `cfg.teacher`, seeded)."""
    return {"temperature": ctx.cfg.teacher.temperature, "max_tokens": ctx.cfg.teacher.max_tokens,
            "seed": ctx.seed}


async def ask_teacher(
    ctx: GenContext,
    template: str,
    chunk: dict[str, Any],
    n: int,
    model_cls: type[M],
    *,
    check: Callable[[M], None] | None = None,
    **variables: Any,
) -> tuple[M, list[str]]:
    """Render `template` for `chunk` and ask the teacher for a `model_cls` JSON answer.

    Returns (validated answer, request cache keys). Raises PromptError (template) or
    StructuredOutputError (no usable answer after the retries).
    """
    prompt = ctx.prompts.render(template, **chunk_variables(chunk, n), **variables) + examples_block(ctx.examples)
    messages = [{"role": "system", "content": TEACHER_SYSTEM}, {"role": "user", "content": prompt}]
    return await ask_json(ctx.client, messages, model_cls, model_id=ctx.model_id, check=check, max_items=n,
                          **request_params(ctx))


def source_of(chunk: dict[str, Any]) -> dict[str, Any]:
    """`meta.source` of a sample made from `chunk`."""
    return {"doc": chunk.get("doc"), "chunk": chunk.get("id"), "span": list(chunk.get("span") or [])}


def sample_id(messages: list[dict[str, Any]], chosen: dict | None = None, rejected: dict | None = None) -> str:
    """Sha1 of the canonical JSON of the messages (with chosen and rejected, when given)."""
    if chosen is None and rejected is None:
        return text_sha1(canonical_json(messages))
    return text_sha1(canonical_json({"messages": messages, "chosen": chosen, "rejected": rejected}))


def make_sample(
    messages: list[dict[str, Any]],
    *,
    source: dict[str, Any],
    task: str,
    ctx: GenContext,
    prompt_hashes: Iterable[str],
    chosen: dict[str, Any] | None = None,
    rejected: dict[str, Any] | None = None,
    system_prompt: str | None = None,
    extra: dict[str, Any] | None = None,
    extra_meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble one sample of the data contract.

    `system_prompt` (default `cfg.system_prompt`) goes first in the messages when set.
    `extra` adds top-level keys (e.g. `tools`), `extra_meta` adds keys to `meta`.
    Returns the sample dict; its `id` hashes the final messages (and chosen/rejected).
    """
    system = system_prompt if system_prompt is not None else ctx.cfg.system_prompt
    msgs = ([{"role": "system", "content": system}] if system else []) + list(messages)
    sample: dict[str, Any] = {"id": sample_id(msgs, chosen, rejected), "messages": msgs}
    if chosen is not None or rejected is not None:
        sample["chosen"], sample["rejected"] = chosen, rejected
    sample.update(extra or {})
    hashes = list(dict.fromkeys(h for h in prompt_hashes if h))  # keep order, drop repeats
    sample["meta"] = {"source": source, "task": task, "teacher": ctx.model_id,
                      "prompt_hash": ",".join(hashes), **(extra_meta or {})}
    return sample


def normalize(text: str) -> str:
    """Casefolded text with punctuation and repeated spaces removed (for duplicate checks)."""
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", " ", text.casefold())).strip()


def unique(items: Iterable[T], key: Callable[[T], str]) -> list[T]:
    """`items` without those whose normalized `key` was already seen (order kept)."""
    seen: set[str] = set()
    out = []
    for item in items:
        k = normalize(key(item))
        if k and k not in seen:
            seen.add(k)
            out.append(item)
    return out


def require_some(errors: list[str | None], what: str) -> None:
    """Raise ValueError (shown to the teacher on retry) when every item has an error.

    Items with errors are dropped by the caller; only an answer with nothing usable is retried.
    """
    if errors and all(e is not None for e in errors):
        listed = "; ".join(f"{what} {i}: {e}" for i, e in enumerate(errors[:4]))
        raise ValueError(f"no usable {what}: {listed}")
