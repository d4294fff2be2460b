"""Training data: the dataset tokenized for SFT (with the loss mask of `mason.data.chat`) and rendered into
DPO preference rows. Loading and splitting live in `mason.data.samples`."""

from __future__ import annotations

from typing import Any

from mason.core.errors import InputError
from mason.data.chat import ChatRenderer, encode_chat, encode_text
from mason.data.formats import is_plain_text, is_preference
from mason.data.samples import Sample


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
