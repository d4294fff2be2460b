"""The Ollama Modelfile: Jinja chat templates translated to Go templates that render the same text."""

from __future__ import annotations

from pathlib import Path

import pytest

from mason.core.errors import MasonError
from mason.export.modelfile import (
    read_modelfile_template,
    render_chat_template,
    render_ollama_template,
    translate_chat_template,
    write_modelfile,
)

CONVERSATION = [
    {"role": "system", "content": "You are a mason's assistant."},
    {"role": "user", "content": "What holds bricks together?"},
    {"role": "assistant", "content": "Mortar."},
    {"role": "user", "content": "How long does it cure?"},
]
NO_SYSTEM = CONVERSATION[1:]

LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + "
    "message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
MISTRAL_V1 = (
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"
)
MISTRAL_V3 = """{%- if messages[0]["role"] == "system" %}
    {%- set system_message = messages[0]["content"] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}
{{- bos_token }}
{%- for message in loop_messages %}
    {%- if message["role"] == "user" %}
        {%- if loop.last and system_message is defined %}
            {{- "[INST] " + system_message + "\\n\\n" + message["content"] + "[/INST]" }}
        {%- else %}
            {{- "[INST] " + message["content"] + "[/INST]" }}
        {%- endif %}
    {%- elif message["role"] == "assistant" %}
        {{- " " + message["content"]|trim + eos_token}}
    {%- else %}
        {{- raise_exception("Only user and assistant roles are supported!") }}
    {%- endif %}
{%- endfor %}"""
QWEN25 = (
    "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant."
    "<|im_end|>\\n' }}{%- endif %}"
    "{%- for message in messages %}{%- if not (message.role == 'system' and loop.first) %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
GEMMA = (
    "{{ bos_token }}{% for message in messages %}{{ '<start_of_turn>' + message['role'] + '\n' + message['content'] "
    "+ '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)


def _same(template: str, messages: list[dict[str, str]], *, bos: str, eos: str, add_bos: bool) -> None:
    t = translate_chat_template(template, bos_token=bos, eos_token=eos, add_bos=add_bos)
    jinja = render_chat_template(template, messages, bos_token=bos, eos_token=eos)
    ollama = render_ollama_template(t.template, messages, system=t.default_system)
    # when the runtime adds BOS itself the Go template leaves it out
    assert (bos if add_bos else "") + ollama == jinja


def test_tiny_chatml_renders_like_the_tokenizer(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    t = translate_chat_template(tok.chat_template, bos_token=tok.bos_token, eos_token=tok.eos_token)
    assert t.family == "chatml" and t.default_system is None
    assert t.stop == ("<|im_start|>", "<|im_end|>")
    for messages in (CONVERSATION, NO_SYSTEM):
        expected = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        assert render_ollama_template(t.template, messages) == expected
        # our Jinja environment renders like transformers'
        assert render_chat_template(tok.chat_template, messages, bos_token=tok.bos_token,
                                    eos_token=tok.eos_token) == expected


@pytest.mark.parametrize("add_bos", [True, False])
def test_llama3_headers(add_bos: bool) -> None:
    t = translate_chat_template(LLAMA3, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>", add_bos=add_bos)
    assert t.family == "llama3"
    assert t.template.startswith("<|begin_of_text|>") != add_bos
    assert "<|eot_id|>" in t.stop
    for messages in (CONVERSATION, NO_SYSTEM):
        _same(LLAMA3, messages, bos="<|begin_of_text|>", eos="<|eot_id|>", add_bos=add_bos)


def test_mistral_v3_puts_the_system_prompt_in_the_last_user_turn() -> None:
    t = translate_chat_template(MISTRAL_V3, bos_token="<s>", eos_token="</s>", add_bos=True)
    assert t.family == "mistral" and t.supports_system
    assert t.stop == ("[INST]", "[/INST]", "</s>")
    for messages in (CONVERSATION, NO_SYSTEM):
        _same(MISTRAL_V3, messages, bos="<s>", eos="</s>", add_bos=True)
    text = render_ollama_template(t.template, CONVERSATION)
    assert text.endswith("[INST] You are a mason's assistant.\n\nHow long does it cure?[/INST]")


def test_mistral_v1_rejects_system_prompts(tmp_path: Path) -> None:
    t = translate_chat_template(MISTRAL_V1, bos_token="<s>", eos_token="</s>", add_bos=True)
    assert t.family == "mistral" and not t.supports_system
    _same(MISTRAL_V1, NO_SYSTEM, bos="<s>", eos="</s>", add_bos=True)
    assert render_ollama_template(t.template, NO_SYSTEM) == (
        "[INST] What holds bricks together? [/INST]Mortar.</s>[INST] How long does it cure? [/INST]")


def test_qwen25_default_system_becomes_system_line() -> None:
    t = translate_chat_template(QWEN25, eos_token="<|im_end|>")
    assert t.family == "chatml"
    assert t.default_system == "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
    for messages in (CONVERSATION, NO_SYSTEM):
        _same(QWEN25, messages, bos="", eos="<|im_end|>", add_bos=False)


def test_unknown_template_is_a_clear_error() -> None:
    with pytest.raises(MasonError, match="cannot translate the chat template.*start_of_turn"):
        translate_chat_template(GEMMA, bos_token="<bos>", eos_token="<eos>", add_bos=True)


def test_go_template_subset() -> None:
    tpl = ('{{- if .System }}S={{ .System }};{{ end -}}\n  {{ range $i, $m := .Messages }}'
           '{{ if eq $i 0 }}first {{ else if eq .Role "user" }}u {{ else }}o {{ end }}{{ $m.Content }}|{{ end }}'
           '{{ $n := len .Messages }}{{ if and (eq $n 3) (not .Prompt) }}three{{ end }}')
    msgs = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]
    assert render_ollama_template(tpl, msgs) == "first a|o b|u c|three"
    assert render_ollama_template(tpl, msgs, system="X") == "S=X;first X|u a|o b|u c|"
    # consecutive messages of one role merge, as in Ollama
    assert render_ollama_template("{{ range .Messages }}[{{ .Content }}]{{ end }}",
                                  [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]) == "[a\n\nb]"
    with pytest.raises(MasonError, match="unknown function"):
        render_ollama_template("{{ printf .System }}", msgs)
    with pytest.raises(MasonError, match="no .*end"):
        render_ollama_template("{{ if .System }}x", msgs)


def test_write_modelfile(tmp_path: Path, tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"")
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    info = write_modelfile(gguf, tok, tmp_path / "Modelfile", system_prompt="Be brief.",
                           params={"temperature": 0.2, "num_ctx": 512})
    text = info.path.read_text()
    assert text.splitlines()[0] == "FROM ./model.gguf"
    assert 'PARAMETER stop "<|im_end|>"' in text and "PARAMETER temperature 0.2" in text
    assert "PARAMETER num_ctx 512" in text
    template, system = read_modelfile_template(info.path)
    assert system == "Be brief."
    expected = tok.apply_chat_template([{"role": "system", "content": "Be brief."}, *NO_SYSTEM], tokenize=False,
                                       add_generation_prompt=True)
    assert render_ollama_template(template, NO_SYSTEM, system=system) == expected


def test_write_modelfile_without_translation(tmp_path: Path, tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    tok.chat_template = GEMMA
    with pytest.raises(MasonError, match="cannot translate"):
        write_modelfile(tmp_path / "m.gguf", tok, tmp_path / "Modelfile")
    info = write_modelfile(tmp_path / "m.gguf", tok, tmp_path / "Modelfile", strict=False)
    assert info.family is None and "without TEMPLATE" in info.warning
    text = info.path.read_text()
    assert "TEMPLATE" not in text.replace("without TEMPLATE", "") and 'PARAMETER stop "<|im_end|>"' in text
    tok.chat_template = MISTRAL_V1
    with pytest.raises(MasonError, match="rejects system messages"):
        write_modelfile(tmp_path / "m.gguf", tok, tmp_path / "Modelfile", system_prompt="Be brief.")


PHI3 = (
    "{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\n' + message['content'] + "
    "'<|end|>\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}"
    "{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}"
)
GEMMA2_REAL = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}"
    "{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"
)
GEMMA3_REAL = """{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if (message['role'] == "assistant") -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else "") }}
    {%- if message['content'] is string -%}
        {{ message['content'] | trim }}
    {%- else -%}
        {{ raise_exception("Invalid content type") }}
    {%- endif -%}
    {{ '<end_of_turn>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model\n'}}
{%- endif -%}
"""


def test_phi3_and_gemma_templates() -> None:
    phi3 = translate_chat_template(PHI3, bos_token="<s>", eos_token="<|endoftext|>")
    assert phi3.family == "phi3" and "<|end|>" in phi3.stop
    _same(PHI3, CONVERSATION, bos="<s>", eos="<|endoftext|>", add_bos=False)
    gemma2 = translate_chat_template(GEMMA2_REAL, bos_token="<bos>", eos_token="<eos>", add_bos=True)
    assert (gemma2.family, gemma2.supports_system) == ("gemma", False)
    _same(GEMMA2_REAL, NO_SYSTEM, bos="<bos>", eos="<eos>", add_bos=True)
    gemma3 = translate_chat_template(GEMMA3_REAL, bos_token="<bos>", eos_token="<eos>", add_bos=True)
    assert (gemma3.family, gemma3.supports_system) == ("gemma", True)
    _same(GEMMA3_REAL, CONVERSATION, bos="<bos>", eos="<eos>", add_bos=True)
    # the Modelfile's SYSTEM opens the first user turn, as the Jinja template puts a system message
    system = {"role": "system", "content": "Be brief."}
    expected = render_chat_template(GEMMA3_REAL, [system, *NO_SYSTEM], bos_token="<bos>", eos_token="<eos>")
    assert "<bos>" + render_ollama_template(gemma3.template, NO_SYSTEM, system="Be brief.") == expected
