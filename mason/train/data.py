"""Training data: load the dataset, pick a stage's subset, split train/eval, and tokenize.

SFT samples are rendered with the tokenizer's own chat template. Labels cover the assistant
turns only (unless `train_on_prompt`): the conversation is rendered prefix by prefix, each
assistant turn's characters are located in the full rendering, and a token is trained on when
it starts inside such a span (offsets from the fast tokenizer). This is exact token by token,
needs no `{% generation %}` markers in the template, and catches templates that are not
prefix-stable instead of silently mislabelling them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mason.core.console import warn
from mason.core.errors import InputError
from mason.data.formats import is_plain_text, is_preference, sample_id

IGNORE_INDEX = -100


@dataclass
class Sample:
    """One contract sample with where it came from (for error messages)."""

    row: dict[str, Any]
    line: int
    source: str

    @property
    def where(self) -> str:
        sid = self.row.get("id") or sample_id(self.row)
        return f"{self.source}:{self.line} (sample {str(sid)[:12]})"


# --------------------------------------------------------------------------- loading


def dataset_path(data: str | None, base_dir: Path, inputs: dict[str, Path]) -> Path:
    """The dataset file: `data` (relative to `base_dir`) or the generate task's samples.jsonl.

    Raises:
        InputError: no `data` and no generate artifact to read.
    """
    if data is not None:
        path = Path(data).expanduser()
        return path if path.is_absolute() else base_dir / path
    folder = inputs.get("generate")
    if folder is None:
        raise InputError(
            "training has no dataset: no `training.data` file and no `synthetic_data` task upstream",
            hint="set `training.data: path/to/dataset.jsonl`, or add a `synthetic_data:` section",
        )
    path = folder / "samples.jsonl"
    if not path.is_file():
        raise InputError(f"the generate artifact {folder} has no samples.jsonl", hint="re-run it with --force")
    return path


def load_samples(path: Path) -> list[Sample]:
    """Every sample of a dataset file (any supported format), converted to the data contract.

    Raises:
        DatasetFileError: missing or unreadable file.
        InputError: a malformed row, as `file:line: why`; an empty file.
    """
    from mason.data.files import load_dataset

    samples = [Sample(row, line, str(path)) for line, row in load_dataset(path)]
    if not samples:
        raise InputError(f"{path} holds no samples")
    return samples


def select(samples: list[Sample], tasks: list[str] | None) -> list[Sample]:
    """The samples whose `meta.task` is one of `tasks` (all of them for None).

    Raises:
        InputError: nothing matches; the message lists the tasks the dataset has.
    """
    if not tasks:
        return samples
    kept = [s for s in samples if (s.row.get("meta") or {}).get("task") in tasks]
    if not kept:
        present = sorted({str((s.row.get("meta") or {}).get("task")) for s in samples})
        raise InputError(
            f"no sample has meta.task in {tasks}", hint=f"tasks in the dataset: {', '.join(present) or 'none'}"
        )
    return kept


def split(samples: list[Sample]) -> tuple[list[Sample], list[Sample]]:
    """(train, eval) by `meta.split`; samples without a split train.

    Raises:
        InputError: every sample is an eval sample.
    """
    train, evals = [], []
    for s in samples:
        (evals if (s.row.get("meta") or {}).get("split") == "eval" else train).append(s)
    if not train:
        raise InputError("every sample has meta.split = eval: nothing to train on")
    return train, evals


# --------------------------------------------------------------------------- chat rendering


def _template_text(tokenizer: Any) -> str:
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):
        return " ".join(str(v) for v in template.values())
    return template or ""


def _fold_tool_calls(messages: list[dict]) -> list[dict]:
    """Tool calls as text, for templates that cannot render them (Hermes-style tags, as Qwen does)."""
    out = []
    for m in messages:
        m = dict(m)
        calls = m.pop("tool_calls", None)
        if calls:
            text = "".join(
                "<tool_call>\n" + json.dumps(c.get("function", c), ensure_ascii=False) + "\n</tool_call>" for c in calls
            )
            m["content"] = ((m.get("content") or "") + "\n" + text).strip()
        m.pop("tool_call_id", None)
        out.append(m)
    return out


class ChatRenderer:
    """Renders conversations with a tokenizer's chat template and finds the assistant spans."""

    def __init__(self, tokenizer: Any):
        if not getattr(tokenizer, "is_fast", False):
            raise InputError("training needs a fast (Rust) tokenizer: character offsets locate the assistant turns")
        template = _template_text(tokenizer)
        if not template:
            raise InputError(
                "the base model's tokenizer has no chat template",
                hint="use an instruct/chat model, or add `chat_template` to its tokenizer_config.json",
            )
        self.tokenizer = tokenizer
        self.native_tools = "tool_calls" in template
        self._warned = False

    def _render(self, messages: list[dict], tools: list | None, generation: bool) -> str:
        kwargs: dict[str, Any] = {"tokenize": False, "add_generation_prompt": generation}
        if tools:
            kwargs["tools"] = tools
        return self.tokenizer.apply_chat_template(messages, **kwargs)

    def messages(self, row: dict[str, Any]) -> list[dict]:
        """The sample's messages as the template will see them (tool calls folded when needed)."""
        messages = [dict(m) for m in row.get("messages") or []]
        if not self.native_tools and any(m.get("tool_calls") for m in messages):
            if not self._warned:
                warn("the chat template cannot render tool calls; they are written as <tool_call> text")
                self._warned = True
            messages = _fold_tool_calls(messages)
        return messages

    def render(self, sample: Sample) -> tuple[str, list[tuple[int, int]]]:
        """The full text and the character spans of the assistant turns (content + end marker).

        Raises:
            InputError: the template renders a prefix differently from the full conversation.
        """
        messages, tools = self.messages(sample.row), sample.row.get("tools")
        full = self._render(messages, tools, generation=False)
        spans = []
        for i, m in enumerate(messages):
            if m.get("role") != "assistant":
                continue
            before = self._render(messages[:i], tools, generation=True) if i else ""
            through = self._render(messages[: i + 1], tools, generation=False)
            if not full.startswith(before) or not full.startswith(through):
                raise InputError(
                    f"{sample.where}: the chat template renders a conversation prefix differently from "
                    "the whole conversation, so the assistant turns cannot be located",
                    hint="set `train_on_prompt: true`, or use a model whose template is prefix-stable",
                )
            # the turn's end marker is trained on (the model must learn to stop); the newline after it is not
            spans.append((len(before), len(through.rstrip())))
        return full, spans


def encode_chat(sample: Sample, renderer: ChatRenderer, max_length: int, train_on_prompt: bool) -> dict[str, list[int]]:
    """Token ids and labels of one SFT sample; labels are -100 outside the assistant turns.

    Raises:
        InputError: no assistant turn, or nothing trainable left after truncation to `max_length`;
            the message names the file line and the sample id.
    """
    text, spans = renderer.render(sample)
    if not spans and not train_on_prompt:
        raise InputError(f"{sample.where}: the sample has no assistant turn to train on")
    enc = renderer.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    labels = []
    for tok, (start, end) in zip(ids, offsets):
        inside = train_on_prompt or any(a <= start < b for a, b in spans)
        labels.append(tok if inside else IGNORE_INDEX)
    n_full = sum(lab != IGNORE_INDEX for lab in labels)
    ids, labels = ids[:max_length], labels[:max_length]
    if all(lab == IGNORE_INDEX for lab in labels[1:]):  # labels shift by one: position 0 is never predicted
        why = "is truncated before its first answer token" if n_full else "has no trainable token"
        raise InputError(
            f"{sample.where}: the sample {why} (max_length {max_length}, {len(enc['input_ids'])} tokens)",
            hint="raise `training.max_length`, shorten the prompt, or drop the sample",
        )
    return {"input_ids": ids, "labels": labels}


def encode_text(sample: Sample, tokenizer: Any, max_length: int) -> dict[str, list[int]]:
    """Token ids and labels of a plain-text sample (a `{"text"}` row): the raw text, without the chat
    template, then the end-of-sequence token; every token is trained on (continued pretraining).

    Raises:
        InputError: the text is empty.
    """
    text = sample.row["messages"][0]["content"]
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if not ids:
        raise InputError(f"{sample.where}: the plain-text sample is empty")
    eos = getattr(tokenizer, "eos_token_id", None)
    if eos is not None:  # the text ends there: the model learns to stop, not to run on into the next sample
        ids = [*ids, eos]
    ids = ids[:max_length]
    return {"input_ids": ids, "labels": list(ids)}


def tokenize_sft(samples: list[Sample], tokenizer: Any, max_length: int, train_on_prompt: bool) -> list[dict]:
    """Encode every SFT sample: chat samples with `encode_chat` (preference samples train on their
    chosen answer), plain-text samples with `encode_text`; both kinds mix in one dataset.

    Raises:
        InputError: listing up to 5 samples that leave nothing to train on, with the count.
    """
    renderer = ChatRenderer(tokenizer)
    rows, errors = [], []
    for s in samples:
        if is_preference(s.row) and s.row.get("chosen"):
            s = Sample({**s.row, "messages": [*s.row["messages"], s.row["chosen"]]}, s.line, s.source)
        try:
            if is_plain_text(s.row):
                rows.append(encode_text(s, tokenizer, max_length))
            else:
                rows.append(encode_chat(s, renderer, max_length, train_on_prompt))
        except InputError as e:
            errors.append(e)
    if errors:
        more = f"\n  ... and {len(errors) - 5} more" if len(errors) > 5 else ""
        text = "\n  ".join(e.message for e in errors[:5])
        raise InputError(f"{len(errors)} of {len(samples)} samples cannot be trained on:\n  {text}{more}",
                         hint=errors[0].hint)
    return rows


# --------------------------------------------------------------------------- preference pairs


def preference_rows(samples: list[Sample], renderer: ChatRenderer) -> list[dict[str, Any]]:
    """Preference samples in TRL's conversational form: {prompt: [...], chosen: [msg], rejected: [msg]}.

    Raises:
        InputError: a sample without both `chosen` and `rejected`, naming it.
    """
    rows = []
    for s in samples:
        chosen, rejected = s.row.get("chosen"), s.row.get("rejected")
        if not chosen or not rejected:
            raise InputError(
                f"{s.where}: DPO needs preference samples with `chosen` and `rejected` answers",
                hint="generate preference data, or use `type: sft`",
            )
        prompt = renderer.messages(s.row)
        answers = renderer.messages({"messages": [chosen, rejected]})
        row = {"prompt": prompt, "chosen": [answers[0]], "rejected": [answers[1]]}
        if s.row.get("tools"):
            row["tools"] = s.row["tools"]
        rows.append(row)
    return rows
