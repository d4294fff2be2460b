"""Record distillation: a prompt template over each row of a JSONL file, answered by the teacher.

`synthetic_data.records` names a JSONL file of structured records (products, places, tickets...)
and one or more Jinja templates ("prompt styles") that turn a row into a user request, e.g.
`Describe {{ name }} in {{ city }} for a tourist.` Each sample is that request and the teacher's
answer; `meta.source.doc` is the record's id (so train/eval splits never share a record) and
`meta.prompt_style` the template's index.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from mason.core.errors import InputError, MasonError
from mason.core.hashing import stable_hash
from mason.core.io import iter_jsonl
from mason.generate.config import RecordsConfig
from mason.generate.prompts import PromptError, render_string
from mason.generate.tasks.base import GenContext, make_sample, request_params
from mason.llm.teachers.base import ChatRequest, TeacherError

TASK = "distillation"


def records_path(cfg: RecordsConfig, base_dir: Path | str) -> Path:
    """The records file, resolved against the pipeline YAML's folder."""
    path = Path(cfg.path).expanduser()
    return path if path.is_absolute() else Path(base_dir) / path


def load_records(cfg: RecordsConfig, base_dir: Path | str) -> list[tuple[int, dict[str, Any]]]:
    """Every record of the JSONL file as (1-based line number, row); blank lines are skipped.

    Raises InputError when the file is missing or empty, or naming `file:line` for a line that
    is not valid JSON or not a JSON object.
    """
    path = records_path(cfg, base_dir)
    if not path.is_file():
        raise InputError(f"records file {path} does not exist",
                         hint="fix `synthetic_data.records.path` (relative to the pipeline YAML's folder)")
    rows = list(iter_jsonl(path))
    if not rows:
        raise InputError(f"records file {path} holds no records")
    return rows


def record_id(record: dict[str, Any], line_no: int, cfg: RecordsConfig) -> str:
    """The record's name: its `id_field` value, else `records:<line>`.

    Raises InputError when `id_field` is set but the record lacks it.
    """
    if cfg.id_field is None:
        return f"records:{line_no}"
    value = record.get(cfg.id_field)
    if value is None or value == "":
        raise InputError(f"{cfg.path}:{line_no}: record has no `{cfg.id_field}` (the `id_field`)",
                         hint=f"give every record a `{cfg.id_field}`, or change `synthetic_data.records.id_field`")
    return str(value)


def template_index_for(line_no: int, n_templates: int, seed: int) -> int:
    """A deterministic prompt style for a record: styles spread evenly over records, per seed."""
    return random.Random(int(stable_hash([seed, "records", line_no]), 16)).randrange(n_templates)


def render_record(cfg: RecordsConfig, template_index: int, record: dict[str, Any], line_no: int) -> str:
    """The user request: `cfg.templates[template_index]` rendered with the record's fields.

    Raises InputError naming the template, the missing field and the record's line (a field the
    template uses but the record lacks), or IndexError for a template index out of range.
    """
    label = f"synthetic_data.records.templates[{template_index}]"
    try:
        return render_string(cfg.templates[template_index], record, label=label).strip()
    except PromptError as e:
        if e.variable is None:  # a syntax error: the template's fault, not the record's
            raise InputError(e.message) from None
        fields = ", ".join(sorted(record)) or "none"
        raise InputError(
            f"{cfg.path}:{line_no}: {label} uses field `{e.variable}`, which this record does not have "
            f"(its fields: {fields})",
            hint=f"add `{e.variable}` to every record, or change {label}",
        ) from None


async def distill(record: dict[str, Any], line_no: int, template_index: int, ctx: GenContext) -> dict[str, Any]:
    """One distillation sample: the rendered request and the teacher's answer.

    Returns a sample whose messages are [system (records.system_prompt, else cfg.system_prompt),
    user, assistant] and whose meta has source {doc: record id, record_line}, task
    "distillation" and prompt_style = `template_index`.
    Raises InputError (missing field, missing id), TeacherError (an empty answer, or what the
    client raises), MasonError when `ctx.cfg.records` is not set.
    """
    cfg = ctx.cfg.records
    if cfg is None:
        raise MasonError("record distillation needs `synthetic_data.records`")
    prompt = render_record(cfg, template_index, record, line_no)
    doc = record_id(record, line_no, cfg)
    system = cfg.system_prompt or ctx.cfg.system_prompt
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    request = ChatRequest.of(messages, **request_params(ctx))
    completion = await ctx.client.complete(request)
    answer = (completion.text or "").strip()
    if not answer:
        raise TeacherError(f"{ctx.model_id} gave an empty answer for record {doc} (line {line_no})")
    return make_sample(
        [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}],
        source={"doc": doc, "record_line": line_no}, task=TASK, ctx=ctx,
        prompt_hashes=[request.cache_key(ctx.model_id)], system_prompt=system or "",
        extra_meta={"prompt_style": template_index},
    )
