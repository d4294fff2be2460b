"""The Ollama Modelfile of a GGUF export, with the chat template translated to Go's template syntax.

Ollama formats chats with a Go template, not the tokenizer's Jinja one. Rather than parse Jinja,
`translate_chat_template` renders probe conversations with the Jinja template and keeps the
first known Ollama template (ChatML, also with eos ending the turns as MASON's default template
does for vocabularies without ChatML tokens, Llama 3 headers, Phi-3, Gemma, Mistral [INST] variants) that renders
every probe identically, as Ollama would run it: the Modelfile's SYSTEM is prepended when a
conversation has no system message, which reproduces templates with a default system prompt
(SmolLM2, Qwen2.5). Anything else is a clear error. `render_ollama_template` is a small Go
template interpreter for the subset emitted here, so tests can compare both renderings.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from mason.core.errors import MasonError

_S = {"role": "system", "content": "You answer in one short sentence."}
_U1 = {"role": "user", "content": "What is mortar?"}
_A1 = {"role": "assistant", "content": "A paste of sand, cement and water."}
_U2 = {"role": "user", "content": "And a keystone?"}
#: conversations the Jinja and Go renderings must agree on
PROBES: list[list[dict[str, str]]] = [[_U1], [_S, _U1], [_U1, _A1, _U2], [_S, _U1, _A1, _U2]]

CHATML = ("{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}"
          "<|im_start|>assistant\n")
LLAMA3 = ("{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content }}<|eot_id|>"
          "{{- end }}<|start_header_id|>assistant<|end_header_id|>\n\n")
_LAST_USER_SYSTEM = "{{ if and $.System (eq (len (slice $.Messages $i)) 1) }}{{ $.System }}\n\n{{ end }}"
PHI3 = "{{- range .Messages }}<|{{ .Role }}|>\n{{ .Content }}<|end|>\n{{ end }}<|assistant|>\n"
_GEMMA_TURN = "<start_of_turn>{{ if eq .Role \"assistant\" }}model{{ else }}{{ .Role }}{{ end }}\n"
#: Gemma 1/2 (no system role) and Gemma 3 (the system prompt opens the first user turn)
GEMMA = "{{- range .Messages }}" + _GEMMA_TURN + "{{ .Content }}<end_of_turn>\n{{ end }}<start_of_turn>model\n"
GEMMA3 = ("{{- range $i, $m := .Messages }}{{- if ne .Role \"system\" }}" + _GEMMA_TURN
          + "{{ if and $.System (eq $i 1) }}{{ $.System }}\n\n{{ end }}{{ .Content }}<end_of_turn>\n{{ end }}"
          "{{- end }}<start_of_turn>model\n")


def _mistral(close: str, answer_prefix: str, eos: str, system: bool) -> str:
    return ("{{- range $i, $m := .Messages }}{{- if eq .Role \"user\" }}[INST] "
            + (_LAST_USER_SYSTEM if system else "") + "{{ .Content }}" + close
            + "{{- else if eq .Role \"assistant\" }}" + answer_prefix + "{{ .Content }}" + eos
            + "{{- end }}{{- end }}")


@dataclass(frozen=True)
class OllamaTemplate:
    """A translated chat template.

    Attributes:
        family: `chatml`, `llama3`, `phi3`, `gemma` or `mistral`.
        template: the Go template for the Modelfile's TEMPLATE.
        stop: the Modelfile's `PARAMETER stop` values.
        default_system: the system prompt the Jinja template adds when a chat has none.
        supports_system: False when the Jinja template rejects system messages.
    """

    family: str
    template: str
    stop: tuple[str, ...]
    default_system: str | None = None
    supports_system: bool = True


def _candidates(eos: str) -> list[tuple[str, str, tuple[str, ...], bool]]:
    out = [("chatml", CHATML, ("<|im_start|>", "<|im_end|>"), True),
           ("llama3", LLAMA3, ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"), True)]
    if eos and eos != "<|im_end|>" and "{{" not in eos:
        # MASON's default template for a vocabulary without ChatML tokens: turns end with eos
        out.append(("chatml", CHATML.replace("<|im_end|>", eos), ("<|im_start|>", eos), True))
    out += [("phi3", PHI3, ("<|end|>", "<|user|>", "<|assistant|>"), True),
            ("gemma", GEMMA3, ("<start_of_turn>", "<end_of_turn>"), True),
            ("gemma", GEMMA, ("<start_of_turn>", "<end_of_turn>"), False)]
    for system in (True, False):
        for close in (" [/INST]", "[/INST]"):
            for prefix in ("", " "):
                out.append(("mistral", _mistral(close, prefix, eos, system), ("[INST]", "[/INST]"), system))
    return out


# --------------------------------------------------------------------------------------------
# Jinja rendering, the way transformers renders chat templates


def render_chat_template(template: str, messages: list[dict[str, Any]], *, add_generation_prompt: bool = True,
                         **variables: Any) -> str:
    """Render a Jinja chat template as transformers' `apply_chat_template` does (same
    environment settings, `raise_exception`, `strftime_now`, `tojson`); `variables` are the
    special tokens (`bos_token`, `eos_token`, ...)."""
    from jinja2 import nodes
    from jinja2.exceptions import TemplateError
    from jinja2.ext import Extension, loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Generation(Extension):  # transformers' {% generation %} marker: a no-op for rendering
        tags = frozenset({"generation"})

        def parse(self, parser: Any) -> list[nodes.Node]:
            next(parser.stream)
            return parser.parse_statements(("name:endgeneration",), drop_needle=True)

    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[Generation, loopcontrols])
    env.filters["tojson"] = lambda x, indent=None, separators=None, sort_keys=False: json.dumps(
        x, ensure_ascii=False, indent=indent, separators=separators, sort_keys=sort_keys)
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env.from_string(template).render(messages=messages, add_generation_prompt=add_generation_prompt,
                                            **variables)


def translate_chat_template(template: str, *, bos_token: str = "", eos_token: str = "", add_bos: bool = False,
                            **special_tokens: str) -> OllamaTemplate:
    """The Ollama template that renders like the Jinja chat `template`.

    Args:
        bos_token, eos_token: the tokenizer's special token texts (Jinja variables).
        add_bos: whether the runtime's tokenizer adds BOS itself; then a leading `bos_token`
            in the Jinja output is left out of the Go template (it would be doubled).
    Raises:
        MasonError: the template renders no known shape (the message shows what it renders).
    """
    from jinja2.exceptions import TemplateError

    variables = {"bos_token": bos_token, "eos_token": eos_token, **special_tokens}
    outputs: list[str | None] = []
    for probe in PROBES:
        try:
            outputs.append(render_chat_template(template, probe, **variables))
        except TemplateError:
            outputs.append(None)
    if outputs[0] is None:
        raise MasonError("the chat template fails on a plain user message", hint="fix the tokenizer's chat template")
    # a leading BOS is either written by the template body itself (ChatML whose bos is
    # <|im_start|>) or a real BOS: left to the runtime when it adds one, else kept literally
    ways: list[tuple[str, list[str | None]]] = [("", outputs)]
    if bos_token and all(o.startswith(bos_token) for o in outputs if o is not None):
        if add_bos:
            ways.append(("", [None if o is None else o[len(bos_token):] for o in outputs]))
        else:
            ways.append((bos_token, outputs))
    for family, body, stop, supports_system in _candidates(eos_token):
        for literal, targets in ways:
            go = literal + body
            default = _default_system(go, targets[0])
            if default is not False and _renders_like(go, targets, default, supports_system):
                stops = stop + ((eos_token,) if eos_token and eos_token not in stop else ())
                return OllamaTemplate(family, go, stops, default or None, supports_system)
    raise MasonError(
        "cannot translate the chat template to an Ollama template: it renders "
        f"{(outputs[3] or outputs[2] or '')[:160]!r}, which matches none of ChatML, Llama 3, Phi-3, Gemma or "
        "Mistral [INST]",
        hint="write the Modelfile's TEMPLATE by hand, or let Ollama detect the GGUF's embedded chat template",
    )


def _default_system(go: str, target: str | None) -> str | None | bool:
    # the default system prompt the Jinja template adds to [user] (None: none; False: no fit)
    if target is None:
        return False
    if render_ollama_template(go, PROBES[0]) == target:
        return None
    sentinel = "\x00SYSTEM\x00"
    rendered = render_ollama_template(go, PROBES[0], system=sentinel)
    if sentinel not in rendered:
        return False
    head, tail = rendered.split(sentinel, 1)
    if target.startswith(head) and target.endswith(tail) and len(target) > len(head) + len(tail):
        return target[len(head):len(target) - len(tail)]
    return False


def _renders_like(go: str, targets: list[str | None], default: str | None, supports_system: bool) -> bool:
    for probe, target in zip(PROBES, targets, strict=True):
        has_system = probe[0]["role"] == "system"
        if target is None:
            if not (has_system and not supports_system):
                return False
            continue
        # a template without system support may also drop system messages silently
        if render_ollama_template(go, probe, system=default) != target:
            return False
    return True


# --------------------------------------------------------------------------------------------
# a Go template interpreter for the subset emitted above (and the usual Ollama idioms)

_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.DOTALL)
_TOKEN = re.compile(r'\s*(?:(\()|(\))|("(?:[^"\\]|\\.)*")|(\$\w*(?:\.\w+)*)|(\.\w+(?:\.\w+)*|\.)|(-?\d+)|(\w+))')
_WS = " \t\r\n"


def _lex(template: str) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    pos, trim_next = 0, False
    for m in _ACTION.finditer(template):
        text = template[pos:m.start()]
        if trim_next:
            text = text.lstrip(_WS)
        if m.group(1):
            text = text.rstrip(_WS)
        items += [("text", text), ("action", m.group(2).strip())]
        pos, trim_next = m.end(), bool(m.group(3))
    tail = template[pos:]
    items.append(("text", tail.lstrip(_WS) if trim_next else tail))
    return [i for i in items if i != ("text", "")]


def _parse(items: list[tuple[str, str]], pos: int = 0) -> tuple[list[Any], int, str | None]:
    nodes: list[Any] = []
    while pos < len(items):
        kind, value = items[pos]
        pos += 1
        if kind == "text":
            nodes.append(("text", value))
        elif value.startswith("/*"):
            continue
        elif value == "end" or value == "else" or value.startswith("else "):
            return nodes, pos, value
        elif value.startswith(("if ", "range ")):
            nodes.append(None)
            nodes[-1], pos = _parse_block(value, items, pos)
        elif m := re.fullmatch(r"(\$\w+)\s*(:?=)\s*(.+)", value, re.DOTALL):
            nodes.append(("assign", m.group(1), m.group(3), m.group(2) == ":="))
        else:
            nodes.append(("expr", value))
    return nodes, pos, None


def _parse_block(head: str, items: list[tuple[str, str]], pos: int) -> tuple[Any, int]:
    branches, other = [], None
    cond = head
    while True:
        body, pos, stop = _parse(items, pos)
        if stop is None:
            raise MasonError(f"Go template: {{{{ {head} }}}} has no {{{{ end }}}}")
        branches.append((cond, body))
        if stop == "end":
            break
        if stop == "else":
            other, pos, stop = _parse(items, pos)
            if stop != "end":
                raise MasonError("Go template: {{ else }} must be followed by {{ end }}")
            break
        cond = "if " + stop[len("else if "):]  # "else if X"
    if head.startswith("range "):
        m = re.fullmatch(r"range\s+(?:(\$\w+)\s*(?:,\s*(\$\w+))?\s*:=\s*)?(.+)", head, re.DOTALL)
        assert m is not None
        return ("range", m.group(1), m.group(2), m.group(3), branches[0][1], other), pos
    return ("if", [(c[len("if "):], b) for c, b in branches], other), pos


def _truth(value: Any) -> bool:
    return bool(value) if value is not None else False


def _field(value: Any, path: list[str]) -> Any:
    for name in path:
        value = value.get(name) if isinstance(value, dict) else getattr(value, name, None)
    return value


_FUNCS: dict[str, Callable[..., Any]] = {
    "eq": lambda a, *bs: any(a == b for b in bs),
    "ne": lambda a, b: a != b,
    "and": lambda *xs: next((x for x in xs if not _truth(x)), xs[-1]),
    "or": lambda *xs: next((x for x in xs if _truth(x)), xs[-1]),
    "not": lambda x: not _truth(x),
    "len": len,
    "slice": lambda x, i=None, j=None: x[i:j],
    "index": lambda x, i: x[i],
}


class _Scope:
    def __init__(self, root: Any, dot: Any, variables: list[dict[str, Any]]):
        self.root, self.dot, self.variables = root, dot, variables

    def child(self, dot: Any) -> _Scope:
        return _Scope(self.root, dot, [*self.variables, {}])

    def lookup(self, name: str) -> Any:
        if name == "$":
            return self.root
        for frame in reversed(self.variables):
            if name in frame:
                return frame[name]
        raise MasonError(f"Go template: undefined variable {name}")

    def assign(self, name: str, value: Any, declare: bool) -> None:
        frames = [self.variables[-1]] if declare else [f for f in reversed(self.variables) if name in f][:1]
        if not frames:
            raise MasonError(f"Go template: assignment to undeclared {name}")
        frames[0][name] = value


def _eval(expr: str, scope: _Scope) -> Any:
    tokens = [next(g for g in m.groups() if g is not None) for m in _TOKEN.finditer(expr)]
    if "".join(tokens).replace(" ", "") != expr.replace(" ", "").replace("\n", ""):
        raise MasonError(f"Go template: cannot evaluate {{{{ {expr} }}}} (unsupported syntax)")
    value, rest = _pipeline(tokens, scope)
    if rest:
        raise MasonError(f"Go template: unexpected {' '.join(rest)!r} in {{{{ {expr} }}}}")
    return value


def _pipeline(tokens: list[str], scope: _Scope) -> tuple[Any, list[str]]:
    args: list[Any] = []
    while tokens and tokens[0] != ")":
        tok, tokens = tokens[0], tokens[1:]
        if tok == "(":
            value, tokens = _pipeline(tokens, scope)
            tokens = tokens[1:]  # the ")"
            args.append(value)
        elif tok.startswith('"'):
            args.append(json.loads(tok))
        elif tok.startswith("$"):
            var, *path = tok.split(".")
            args.append(_field(scope.lookup(var), path))
        elif tok.startswith("."):
            args.append(scope.dot if tok == "." else _field(scope.dot, tok[1:].split(".")))
        elif tok.lstrip("-").isdigit():
            args.append(int(tok))
        elif tok in _FUNCS:
            args.append(_FUNCS[tok])
        else:
            raise MasonError(f"Go template: unknown function {tok!r}")
    if args and callable(args[0]):
        return args[0](*args[1:]), tokens
    if len(args) != 1:
        raise MasonError("Go template: an expression must be one value or one function call")
    return args[0], tokens


def _run(nodes: list[Any], scope: _Scope, out: list[str]) -> None:
    for node in nodes:
        kind = node[0]
        if kind == "text":
            out.append(node[1])
        elif kind == "expr":
            value = _eval(node[1], scope)
            out.append("" if value is None else str(value))
        elif kind == "assign":
            scope.assign(node[1], _eval(node[2], scope), node[3])
        elif kind == "if":
            for cond, body in node[1]:
                if _truth(_eval(cond, scope)):
                    _run(body, scope.child(scope.dot), out)
                    break
            else:
                if node[2] is not None:
                    _run(node[2], scope.child(scope.dot), out)
        else:  # range
            _, key_var, value_var, expr, body, other = node
            items = list(_eval(expr, scope) or [])
            for i, item in enumerate(items):
                inner = scope.child(item)
                if key_var and value_var:
                    inner.assign(key_var, i, True)
                    inner.assign(value_var, item, True)
                elif key_var:
                    inner.assign(key_var, item, True)
                _run(body, inner, out)
            if not items and other is not None:
                _run(other, scope.child(scope.dot), out)


def render_ollama_template(template: str, messages: list[dict[str, Any]], system: str | None = None) -> str:
    """Render `messages` with an Ollama Go template the way Ollama's chat endpoint does.

    `system` is the Modelfile's SYSTEM: prepended as a system message when the conversation
    has none. Consecutive messages of one role are merged ("\\n\\n"), `.System` joins the system
    messages, and `.Messages` keeps them (Ollama's `collate`). Generation prompts are whatever
    the template writes after its messages.

    Raises:
        MasonError: the template uses Go template features outside the supported subset.
    """
    msgs = [dict(m) for m in messages]
    if system and (not msgs or msgs[0].get("role") != "system"):
        msgs.insert(0, {"role": "system", "content": system})
    collated: list[dict[str, Any]] = []
    for m in msgs:
        if collated and collated[-1]["Role"] == m["role"]:
            collated[-1]["Content"] += "\n\n" + (m.get("content") or "")
        else:
            collated.append({"Role": m["role"], "Content": m.get("content") or ""})
    systems = [m.get("content") or "" for m in msgs if m.get("role") == "system"]
    root = {"System": "\n\n".join(systems), "Messages": collated, "Prompt": "", "Response": "", "Tools": None}
    nodes, _, stop = _parse(_lex(template))
    if stop is not None:
        raise MasonError(f"Go template: unexpected {{{{ {stop} }}}}")
    out: list[str] = []
    _run(nodes, _Scope(root, root, [{}]), out)
    return "".join(out)


# --------------------------------------------------------------------------------------------
# the Modelfile


@dataclass(frozen=True)
class ModelfileInfo:
    """What `write_modelfile` wrote: the path, the template family (None when the TEMPLATE was
    left out) and why it was left out."""

    path: Path
    family: str | None
    warning: str | None = None


def _quoted(label: str, text: str) -> str:
    if '"""' in text:
        raise MasonError(f'the Modelfile {label} contains """, which a Modelfile cannot quote')
    return f'{label} """{text}"""'


def write_modelfile(gguf_path: Path, tokenizer: Any, out_path: Path, system_prompt: str | None = None,
                    params: dict[str, Any] | None = None, *, strict: bool = True) -> ModelfileInfo:
    """Write an Ollama Modelfile for `gguf_path` (FROM, TEMPLATE, PARAMETER stop, SYSTEM).

    Args:
        tokenizer: a tokenizer folder or a loaded Hugging Face tokenizer (its chat template).
        system_prompt: SYSTEM; default: the template's own default system prompt, if any.
        params: extra `PARAMETER name value` lines (a list value writes one line per item).
        strict: raise when the template cannot be translated; when False, write the Modelfile
            without TEMPLATE (Ollama then detects the GGUF's embedded template) and say why.
    Raises:
        MasonError: untranslatable template (strict), or a system prompt for a template that
            rejects system messages.
    """
    from mason.export.gguf_vocab import special_token_flags

    if isinstance(tokenizer, (str, Path)):
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(tokenizer)
    gguf_path, out_path = Path(gguf_path), Path(out_path)
    template = tokenizer.chat_template if isinstance(tokenizer.chat_template, str) else None
    translated, warning = None, None
    try:
        if template is None:
            raise MasonError("the tokenizer has no chat template", hint="set tokenizer.chat_template")
        translated = translate_chat_template(template, bos_token=tokenizer.bos_token or "",
                                             eos_token=tokenizer.eos_token or "",
                                             add_bos=special_token_flags(tokenizer)[0])
    except MasonError as e:
        if strict:
            raise
        warning = f"Modelfile written without TEMPLATE: {e.message}"
    if system_prompt and translated is not None and not translated.supports_system:
        raise MasonError("this model's chat template rejects system messages, so the Modelfile cannot set SYSTEM",
                         hint="remove system_prompt from the export settings")
    system = system_prompt if system_prompt is not None else (translated.default_system if translated else None)
    lines = [f"FROM ./{Path(os.path.relpath(gguf_path, out_path.parent)).as_posix()}"]
    if warning:
        lines.append(f"# {warning}")
    if translated is not None:
        lines.append(_quoted("TEMPLATE", translated.template))
    stops = translated.stop if translated else tuple(t for t in [tokenizer.eos_token] if t)
    lines += [f"PARAMETER stop {json.dumps(s, ensure_ascii=False)}" for s in stops]
    for key, value in (params or {}).items():
        for v in value if isinstance(value, (list, tuple)) else [value]:
            lines.append(f"PARAMETER {key} {json.dumps(v) if isinstance(v, str) else v}")
    if system:
        lines.append(_quoted("SYSTEM", system))
    tmp = out_path.with_name(out_path.name + ".partial")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, out_path)
    return ModelfileInfo(out_path, translated.family if translated else None, warning)


def read_modelfile_template(path: Path) -> tuple[str | None, str | None]:
    """(TEMPLATE, SYSTEM) of a Modelfile written by `write_modelfile` (None where absent)."""
    text = Path(path).read_text(encoding="utf-8")
    found = {k: re.search(rf'^{k} """(.*?)"""', text, re.DOTALL | re.MULTILINE) for k in ("TEMPLATE", "SYSTEM")}
    return tuple(m.group(1) if m else None for m in found.values())  # type: ignore[return-value]
