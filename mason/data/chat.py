"""A chat sample as the model sees it: rendered with the tokenizer's own chat template and tokenized with
its loss mask (training and evaluation's perplexity use the same code, so they agree token for token).

Labels cover the assistant turns only (unless `train_on_prompt`): the conversation is rendered prefix by
prefix, each assistant turn's characters are located in the full rendering, and a token is trained on when
it starts inside such a span (offsets from the fast tokenizer). This is exact token by token, needs no
`{% generation %}` markers in the template, and catches templates that are not prefix-stable instead of
silently mislabelling them.

A tokenizer without a chat template (GPT-2, DistilGPT2, most base models) gets MASON's default one
(`ensure_chat_template`), ChatML-shaped and prefix-stable: `<|im_start|>{role}\n{content}{END}\n` per
message, `<|im_start|>assistant\n` to open the answer. END is `<|im_end|>` when the vocabulary has the
ChatML tokens, else the tokenizer's own end-of-sequence token (GPT-2's `<|endoftext|>`), so generation
stops on a token the model already has, without resizing its embeddings; `<|im_start|>` is then plain
text. Training sets it on the tokenizer before saving, so the adapter, the merged model and every
export (GGUF metadata, the Ollama Modelfile, the ONNX folder's tokenizer files) carry the same one.
"""

from __future__ import annotations

import json
from typing import Any

from mason.core.console import info, warn
from mason.core.errors import InputError
from mason.data.samples import Sample

#: the label of a token that is not trained on (PyTorch's cross-entropy ignore index)
IGNORE_INDEX = -100

#: MASON's default chat template (ChatML); without the ChatML tokens, `<|im_end|>` becomes the
#: tokenizer's eos token (`default_chat_template`)
DEFAULT_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + (message['content'] or '') + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def default_chat_template(tokenizer: Any) -> str:
    """MASON's default chat template for `tokenizer`: ChatML, each turn ended by `<|im_end|>` when
    the vocabulary has `<|im_start|>` and `<|im_end|>`, else by the tokenizer's eos token.

    Raises:
        InputError: the tokenizer has neither the ChatML tokens nor an eos token.
    """
    vocab = tokenizer.get_vocab()
    if "<|im_start|>" in vocab and "<|im_end|>" in vocab:
        return DEFAULT_CHAT_TEMPLATE
    eos = getattr(tokenizer, "eos_token", None)
    if not eos:
        raise InputError("the tokenizer has no chat template and no end-of-sequence token to end a turn with",
                         hint="add `chat_template` (and `eos_token`) to its tokenizer_config.json")
    return DEFAULT_CHAT_TEMPLATE.replace("<|im_end|>", str(eos).replace("\\", "\\\\").replace("'", "\\'"))


def ensure_chat_template(tokenizer: Any) -> bool:
    """Give `tokenizer` MASON's default chat template when it has none (one notice line).

    Returns:
        True when the default was set, False when the tokenizer already had a template.
    Raises:
        InputError: see `default_chat_template`.
    """
    if _template_text(tokenizer):
        return False
    tokenizer.chat_template = default_chat_template(tokenizer)
    end = "<|im_end|>" if "<|im_end|>" in tokenizer.chat_template else tokenizer.eos_token
    info(f"the tokenizer has no chat template: using MASON's default (ChatML, turns ended by {end})")
    return True


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
    """Renders conversations with a tokenizer's chat template and finds the assistant spans (a
    tokenizer without a template gets MASON's default, `ensure_chat_template`)."""

    def __init__(self, tokenizer: Any):
        if not getattr(tokenizer, "is_fast", False):
            raise InputError("training needs a fast (Rust) tokenizer: character offsets locate the assistant turns")
        ensure_chat_template(tokenizer)
        template = _template_text(tokenizer)
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
