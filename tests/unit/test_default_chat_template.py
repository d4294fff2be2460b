"""MASON's default chat template, for tokenizers that have none (GPT-2, DistilGPT2, base models):
ChatML turns, ended by <|im_end|> when the vocabulary has the ChatML tokens, else by eos; prefix-
stable, so the trainer finds the assistant spans; translated to the same Ollama template."""

from __future__ import annotations

from typing import Any

import pytest

from mason.core.errors import InputError
from mason.data.chat import DEFAULT_CHAT_TEMPLATE, default_chat_template, ensure_chat_template
from mason.export.modelfile import render_chat_template, render_ollama_template, translate_chat_template

CONVERSATION = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What holds bricks?"},
                {"role": "assistant", "content": "Mortar."}, {"role": "user", "content": "And arches?"}]


class FakeTokenizer:
    def __init__(self, vocab: dict[str, int], eos: str | None, template: Any = None):
        self.vocab, self.eos_token, self.chat_template = vocab, eos, template

    def get_vocab(self) -> dict[str, int]:
        return self.vocab


def test_chatml_tokens_give_plain_chatml() -> None:
    tok = FakeTokenizer({"<|im_start|>": 1, "<|im_end|>": 2}, "<|im_end|>")
    assert default_chat_template(tok) == DEFAULT_CHAT_TEMPLATE
    text = render_chat_template(DEFAULT_CHAT_TEMPLATE, CONVERSATION[1:3], add_generation_prompt=False)
    assert text == "<|im_start|>user\nWhat holds bricks?<|im_end|>\n<|im_start|>assistant\nMortar.<|im_end|>\n"


def test_without_chatml_tokens_turns_end_with_eos() -> None:
    template = default_chat_template(FakeTokenizer({"<|endoftext|>": 0}, "<|endoftext|>"))
    text = render_chat_template(template, CONVERSATION[:2])
    assert text == ("<|im_start|>system\nBe brief.<|endoftext|>\n<|im_start|>user\nWhat holds bricks?<|endoftext|>\n"
                    "<|im_start|>assistant\n")
    odd = default_chat_template(FakeTokenizer({}, "it's\\"))  # quotes and backslashes stay literal
    assert render_chat_template(odd, CONVERSATION[1:2], add_generation_prompt=False).endswith("it's\\\n")


def test_it_is_prefix_stable() -> None:
    template = default_chat_template(FakeTokenizer({}, "</s>"))
    full = render_chat_template(template, CONVERSATION, add_generation_prompt=False)
    for i in range(len(CONVERSATION)):
        assert full.startswith(render_chat_template(template, CONVERSATION[: i + 1], add_generation_prompt=False))
    # what the trainer renders before the assistant turn (index 2) opens that turn in the full text
    before = render_chat_template(template, CONVERSATION[:2], add_generation_prompt=True)
    assert full.startswith(before) and full[len(before):].startswith("Mortar.</s>")


def test_ensure_sets_it_once_and_keeps_an_existing_template() -> None:
    tok = FakeTokenizer({}, "</s>")
    assert ensure_chat_template(tok) is True and "</s>" in tok.chat_template
    assert ensure_chat_template(tok) is False
    own = FakeTokenizer({}, "</s>", template="{{ messages }}")
    assert ensure_chat_template(own) is False and own.chat_template == "{{ messages }}"
    with pytest.raises(InputError, match="no end-of-sequence token"):
        ensure_chat_template(FakeTokenizer({}, None))


def test_ollama_translation_renders_the_same() -> None:
    template = default_chat_template(FakeTokenizer({}, "<|endoftext|>"))
    translated = translate_chat_template(template, bos_token="<|endoftext|>", eos_token="<|endoftext|>")
    assert translated.family == "chatml" and "<|endoftext|>" in translated.stop
    assert render_ollama_template(translated.template, CONVERSATION) == render_chat_template(template, CONVERSATION)


def test_the_trainer_finds_the_assistant_turns_with_a_gpt2_tokenizer() -> None:
    pytest.importorskip("transformers")
    from mason.data.chat import ChatRenderer, encode_chat
    from mason.data.samples import Sample
    from mason.models.tiny import default_texts, train_tokenizer

    tok = train_tokenizer(default_texts(), vocab_size=400, style="gpt2")
    assert tok.chat_template is None
    renderer = ChatRenderer(tok)  # sets the default
    assert tok.chat_template == default_chat_template(tok)
    sample = Sample({"messages": CONVERSATION[:3]}, 1, "t.jsonl")
    row = encode_chat(sample, renderer, 256, train_on_prompt=False)
    labelled = tok.decode([t for t, lab in zip(row["input_ids"], row["labels"]) if lab != -100])
    assert labelled == "Mortar.<|endoftext|>"  # the answer and its end marker, nothing of the prompt
