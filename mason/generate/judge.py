"""LLM-as-judge: score a generated sample against its source chunk and a rubric.

The judge (any client with `async complete(ChatRequest) -> Completion`, such as
`mason.llm.client.TeacherClient`) sees the source chunk, the conversation (for a preference
sample: the prompt and its `chosen` answer) and the rubric, and answers with
`{"scores": {...}, "overall": x, "grounded": true|false, "reason": "..."}` at temperature 0.
The prompt is the Jinja template `prompts/judge.j2` (a `judge.j2` in the user's `prompts_dir`
replaces it).

Judges, small local ones above all, rarely answer in clean JSON. `parse_judgement` accepts
```json fences, prose around the object, single quotes, Python or JSON literals, trailing
commas, scores written as "8/10", "4 out of 5" or "80%", a `"scale": "1-5"` hint (or "1-5" in
the prose) and, as a last resort, `overall: 7` lines in plain prose. Every score is brought to
0-10. An answer that still cannot be read is shown back to the judge with the error, once;
after that the sample gets an unparsable result (`overall` None) and the run goes on.
"""

from __future__ import annotations

import ast
import functools
import json
import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from mason.generate.config import JudgeConfig
from mason.generate.prompts import PromptError, PromptLibrary, undefined_name
from mason.llm.structured import StructuredOutputError, extract_json
from mason.llm.teachers.base import ChatRequest, RetryableTeacherError

DEFAULT_CRITERIA: dict[str, str] = {
    "faithfulness": "Every statement of the answer is supported by the source passage; nothing is "
                    "invented, contradicted or distorted (numbers, names and units exactly as in the source).",
    "relevance": "The answer addresses what the user asked, all of it and nothing beside the point.",
    "clarity": "The answer is well written, well organized and unambiguous, at a sensible length.",
    "usefulness": "The exchange is worth learning from: a realistic question and a specific, "
                  "informative answer that an expert assistant should give.",
}
DEFAULT_RUBRIC = "\n".join(f"- {name} (0-10): {text}" for name, text in DEFAULT_CRITERIA.items())

TEMPLATE = "judge"
MAX_SOURCE_CHARS = 12_000

_NUMBER = r"-?\d+(?:\.\d+)?"
_VALUE = re.compile(rf"^\s*({_NUMBER})\s*(?:(?:/|out\s+of|of)\s*({_NUMBER})|(%))?", re.IGNORECASE)
_RANGE = r"\b([01])\s*(?:-|–|to)\s*(5|10|100)\b"
_SCALE_HINT = re.compile(rf"scale[^0-9\n]{{0,12}}{_RANGE}|{_RANGE}[- ]?(?:point )?scale", re.IGNORECASE)
_KEY_SCALE = re.compile(rf"\(?\s*(?:on\s+)?{_RANGE}\s*\)?")
_PROSE_LINE = re.compile(rf"^[\s*#>\-]*([A-Za-z][A-Za-z _-]{{1,40}}?)\s*\**\s*[:=]\s*\**\s*({_NUMBER}"
                         rf"(?:\s*(?:/|out of)\s*{_NUMBER})?%?)", re.MULTILINE | re.IGNORECASE)
_PROSE_GROUNDED = re.compile(r"grounded\W{0,3}[:=]\s*\**\s*(yes|no|true|false)", re.IGNORECASE)
_OVERALL_KEYS = ("overall", "overall_score", "score", "total", "final_score", "rating")
_SCORES_KEYS = ("scores", "criteria", "ratings", "rubric_scores", "breakdown")
_REASON_KEYS = ("reason", "reasoning", "explanation", "rationale", "justification", "comment")
_GROUNDED_KEYS = ("grounded", "is_grounded", "supported", "faithful")
_SCALE_KEYS = ("scale", "score_scale", "max_score", "out_of", "scale_max")


class JudgeParseError(ValueError):
    """A judge's answer has no usable scores. The message is shown to the judge on the retry."""


@dataclass
class JudgeResult:
    """A judge's verdict on one sample.

    Attributes:
        overall: overall score on 0-10, or None when the judge's answer could not be used.
        scores: per-criterion scores on 0-10.
        grounded: the judge's grounding verdict (None: not asked, not given, or unparsable).
        reason: the judge's explanation, or why the result is unusable.
        raw: the judge's last answer, verbatim.
        attempts: requests made (2 when the first answer had to be repaired).
        error: the parse or request error when `overall` is None.
    """

    overall: float | None
    scores: dict[str, float] = field(default_factory=dict)
    grounded: bool | None = None
    reason: str = ""
    raw: str = ""
    attempts: int = 1
    error: str | None = None

    @property
    def unparsable(self) -> bool:
        """True when there is no usable score."""
        return self.overall is None

    def as_scores(self) -> dict[str, Any]:
        """Entries for a sample's `meta.scores`: `judge`, `judge_<criterion>`, `judge_grounded`."""
        out: dict[str, Any] = {"judge": self.overall}
        out.update({f"judge_{name}": value for name, value in self.scores.items()})
        if self.grounded is not None:
            out["judge_grounded"] = self.grounded
        return out


def passes(result: JudgeResult, threshold: float, *, require_grounded: bool = True) -> bool:
    """Whether a sample with this verdict is kept.

    Returns:
        True when the result has a score >= `threshold` and, if `require_grounded`, the judge did
        not say the answer is ungrounded (a missing verdict does not fail it). Unparsable: False.
    """
    if result.overall is None or result.overall < threshold:
        return False
    return not (require_grounded and result.grounded is False)


# ---------------------------------------------------------------------------- prompt


def _conversation(sample: dict[str, Any]) -> list[dict[str, str]]:
    # Tool calls and tool results are shown as text: the judge only reads them.
    turns = list(sample.get("messages", []))
    if sample.get("chosen") is not None:
        turns.append(sample["chosen"])
    out = []
    for message in turns:
        content = message.get("content")
        if isinstance(content, list):
            content = "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
        text = content or ""
        for call in message.get("tool_calls") or []:
            fn = call.get("function", {})
            text += f"\n[calls tool {fn.get('name')} with {fn.get('arguments')}]"
        out.append({"role": str(message.get("role", "user")), "content": text.strip()})
    return out


@functools.lru_cache(maxsize=8)
def _macros(prompts_dir: str | None) -> tuple[Any, str]:
    source, origin = PromptLibrary(prompts_dir).source(TEMPLATE)
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)
    try:
        return env.from_string(source).module, origin
    except jinja2.TemplateSyntaxError as e:
        raise PromptError(f"prompt template {origin}, line {e.lineno}: {e.message}") from None


def _call(macros: Any, origin: str, name: str, **variables: Any) -> str:
    macro = getattr(macros, name, None)
    if macro is None:
        raise PromptError(f"prompt template {origin} has no `{name}` macro",
                          hint="copy the built-in judge.j2 and keep its macros: system, user, fix")
    try:
        return str(macro(**variables)).strip()
    except jinja2.UndefinedError as e:
        given = ", ".join(variables) or "none"
        raise PromptError(f"prompt template {origin}, macro `{name}` uses `{undefined_name(e)}`, which is not "
                          f"defined (arguments given: {given})") from None
    except TypeError as e:  # the macro's signature does not match
        raise PromptError(f"prompt template {origin}, macro `{name}`: {e}",
                          hint="keep the built-in judge.j2's macro arguments") from None


def judge_messages(sample: dict[str, Any], source_text: str, cfg: JudgeConfig, *,
                   prompts_dir: str | Path | None = None,
                   max_source_chars: int = MAX_SOURCE_CHARS) -> list[dict[str, str]]:
    """The judge's conversation: a system message and a user message with the source chunk,
    the sample's conversation and the rubric (`cfg.rubric`, else `DEFAULT_RUBRIC`).

    Raises:
        PromptError: the template is missing, malformed, or uses an unknown variable.
    """
    macros, origin = _macros(None if prompts_dir is None else str(prompts_dir))
    source = source_text if len(source_text) <= max_source_chars else source_text[:max_source_chars] + " […]"
    custom = bool(cfg.rubric and cfg.rubric.strip())
    user = _call(macros, origin, "user", source=source, conversation=_conversation(sample),
                 rubric=cfg.rubric.strip() if custom else DEFAULT_RUBRIC,
                 criteria=[] if custom else list(DEFAULT_CRITERIA), grounding=cfg.grounding)
    return [{"role": "system", "content": _call(macros, origin, "system")},
            {"role": "user", "content": user}]


# ---------------------------------------------------------------------------- parsing


def _literal(node: ast.AST) -> Any:
    # A safe evaluator for dict/list/number/string literals that also knows JSON's names.
    names = {"true": True, "false": False, "null": None, "True": True, "False": False, "None": None}
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name) and node.id in names:
        return names[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _literal(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.Dict):
        return {_literal(k): _literal(v) for k, v in zip(node.keys, node.values) if k is not None}
    if isinstance(node, ast.List | ast.Tuple):
        return [_literal(e) for e in node.elts]
    raise ValueError(f"not a literal: {type(node).__name__}")


def _python_object(text: str) -> dict[str, Any] | None:
    start = text.find("{")
    end = text.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ast warns about junk like "8/10abc"; we only care if it parses
            value = _literal(ast.parse(text[start:end + 1], mode="eval").body)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    return value if isinstance(value, dict) else None


def _prose_object(text: str) -> dict[str, Any] | None:
    # Last resort for judges that ignore the format: "Faithfulness: 8/10" lines.
    found = {_key(m.group(1)): m.group(2) for m in _PROSE_LINE.finditer(text)}
    overall = next((found.pop(k) for k in _OVERALL_KEYS if k in found), None)
    if overall is None and len(found) < 2:
        return None
    obj: dict[str, Any] = {"scores": found, "overall": overall}
    grounded = _PROSE_GROUNDED.search(text)
    if grounded:
        obj["grounded"] = grounded.group(1)
    return obj


def _key(name: Any) -> str:
    return re.sub(r"[\s-]+", "_", str(name).strip().lower())


def _scale(obj: dict[str, Any], text: str) -> float | None:
    for key in _SCALE_KEYS:
        if key in obj:
            # "1-5", "0 to 10", 5, "out of 5": the largest number is the top of the scale
            numbers = re.findall(r"\d+(?:\.\d+)?", str(obj[key]))
            if numbers and max(map(float, numbers)) > 0:
                return max(map(float, numbers))
    # "on a 1-5 scale" in the prose around the object (a bare "1-5" could be "steps 1-5")
    match = _SCALE_HINT.search(text)
    return float(match.group(2) or match.group(4)) if match else None


def _to_ten(value: Any, scale: float | None, name: str) -> float:
    """A score brought to 0-10. Raises JudgeParseError when it is not a usable number."""
    if isinstance(value, dict):
        value = next((value[k] for k in ("score", "value", "rating") if k in value), None)
    if isinstance(value, bool) or value is None:
        raise JudgeParseError(f"score `{name}` is {json.dumps(value)}, expected a number from 0 to 10")
    denominator: float | None = None
    if isinstance(value, int | float):
        number = float(value)
    else:
        match = _VALUE.match(str(value))
        if not match:
            raise JudgeParseError(f"score `{name}` is {json.dumps(str(value))}, expected a number from 0 to 10")
        number = float(match.group(1))
        denominator = 100.0 if match.group(3) else (float(match.group(2)) if match.group(2) else None)
    denominator = denominator or scale
    if denominator:
        number = number * 10.0 / denominator
    elif number > 10 and number <= 100:
        number /= 10.0  # no hint and above 10: the judge used a 0-100 scale
    if not math.isfinite(number) or number < 0 or number > 10 + 1e-9:
        raise JudgeParseError(f"score `{name}` is out of range: {value}")
    return round(number, 3)


def _grounded(value: Any) -> bool | None:
    if isinstance(value, bool) or value is None:
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "y", "1", "supported", "grounded"):
        return True
    if text in ("false", "no", "n", "0", "partially", "partial", "unsupported", "not grounded"):
        return False
    return None


def _interpret(obj: dict[str, Any], text: str) -> JudgeResult:
    obj = {_key(k): v for k, v in obj.items()}
    scale = _scale(obj, text)
    raw_scores = next((obj[k] for k in _SCORES_KEYS if isinstance(obj.get(k), dict | list)), None)
    if isinstance(raw_scores, list):  # [{"name": "clarity", "score": 8}, ...]
        raw_scores = {item.get("name") or item.get("criterion"): item for item in raw_scores
                      if isinstance(item, dict)}
    if raw_scores is None:  # criteria at the top level: {"faithfulness": 8, "overall": 7}
        skip = set(_OVERALL_KEYS + _REASON_KEYS + _GROUNDED_KEYS + _SCALE_KEYS)
        raw_scores = {k: v for k, v in obj.items() if k not in skip and isinstance(v, int | float | str)
                      and not isinstance(v, bool) and _VALUE.match(str(v))}
    scores: dict[str, float] = {}
    for name, value in raw_scores.items():
        if not name:
            continue
        # "clarity (1-5)": the key carries its own scale
        hint = _KEY_SCALE.search(str(name))
        name = _key(_KEY_SCALE.sub("", str(name))).strip("_") if hint else _key(name)
        scores[name] = _to_ten(value, float(hint.group(2)) if hint else scale, name)
    overall_raw = next((obj[k] for k in _OVERALL_KEYS if obj.get(k) is not None), None)
    if overall_raw is not None:
        overall = _to_ten(overall_raw, scale, "overall")
    elif scores:
        overall = round(sum(scores.values()) / len(scores), 3)
    else:
        raise JudgeParseError('no scores found: expected "scores" and "overall" with numbers from 0 to 10')
    grounded = _grounded(next((obj[k] for k in _GROUNDED_KEYS if k in obj), None))
    reason = next((str(obj[k]) for k in _REASON_KEYS if obj.get(k)), "")
    return JudgeResult(overall=overall, scores=scores, grounded=grounded, reason=reason, raw=text)


def parse_judgement(text: str) -> JudgeResult:
    """Read a judge's answer (see the module docstring for what is tolerated).

    Returns:
        A JudgeResult with `raw=text`, scores on 0-10, `overall` the judge's overall score
        (the mean of the criteria when it gave none).

    Raises:
        JudgeParseError: empty answer, no JSON object or score lines, or scores that are not
            numbers in range; the message says which.
    """
    if not text or not text.strip():
        raise JudgeParseError("the answer is empty; expected a JSON object")
    candidates: list[dict[str, Any]] = []
    error = ""
    try:
        value = extract_json(text)
        if isinstance(value, dict):
            candidates.append(value)
    except StructuredOutputError as e:
        error = e.message
    for fallback in (_python_object, _prose_object):
        found = fallback(text)
        if found is not None:
            candidates.append(found)
    # A judge-shaped object first: extract_json may have found an inner dict (the "scores"
    # of a single-quoted answer it could not read whole) before the Python-literal fallback.
    shaped = set(_OVERALL_KEYS + _SCORES_KEYS)
    candidates.sort(key=lambda obj: not any(_key(k) in shaped for k in obj))
    for obj in candidates:
        try:
            return _interpret(obj, text)
        except JudgeParseError as e:
            error = str(e)
    raise JudgeParseError(error or "no JSON object with scores found in the answer")


# ---------------------------------------------------------------------------- judging


def verdict_schema(cfg: JudgeConfig) -> dict[str, Any]:
    """JSON schema of the verdict, so backends that constrain decoding produce a parsable one."""
    criteria = list(DEFAULT_CRITERIA) if not cfg.rubric else []
    score = {"type": "number", "minimum": 0, "maximum": 10}
    scores: dict[str, Any] = {"type": "object"}
    if criteria:
        scores.update(properties={c: score for c in criteria}, required=criteria)
    else:
        scores["additionalProperties"] = score
    props: dict[str, Any] = {"scores": scores, "overall": score, "reason": {"type": "string"}}
    required = ["scores", "overall", "reason"]
    if cfg.grounding:
        props["grounded"] = {"type": "boolean"}
        required.insert(2, "grounded")
    return {"type": "object", "properties": props, "required": required}


async def judge_sample(client: Any, sample: dict[str, Any], source_text: str, cfg: JudgeConfig, *,
                       prompts_dir: str | Path | None = None, max_tokens: int = 512,
                       max_source_chars: int = MAX_SOURCE_CHARS) -> JudgeResult:
    """Ask the judge to score one sample; repair an unreadable answer once.

    Args:
        client: anything with `async complete(ChatRequest) -> Completion`.
        sample: the sample (data contract).
        source_text: the text of the chunk the sample was made from.
        cfg: rubric (None: `DEFAULT_RUBRIC`) and whether to ask for a grounding verdict.
        prompts_dir: folder with a replacement `judge.j2`.
        max_tokens, max_source_chars: answer budget; longest source excerpt shown.

    Returns:
        A JudgeResult. When both answers are unreadable, or the client raises
        RetryableTeacherError (a bare backend without a retry loop), `overall` is None and
        `error` says why: one bad answer never stops the run. A grounding verdict is dropped
        when `cfg.grounding` is off.

    Raises:
        TeacherError: what TeacherClient raises after its own retries, or for a bad key or an
            unknown model. Every other sample would fail the same way, so the run should stop
            and say so (answers already received stay in the request cache).
        PromptError: a broken `judge.j2`.
    """
    messages = judge_messages(sample, source_text, cfg, prompts_dir=prompts_dir,
                              max_source_chars=max_source_chars)
    conversation = list(messages)
    text, error = "", ""
    for attempt in (1, 2):
        request = ChatRequest.of(conversation, temperature=0.0, max_tokens=max_tokens, json_mode=True,
                                 json_schema=verdict_schema(cfg))
        try:
            text = (await client.complete(request)).text or ""
        except RetryableTeacherError as e:
            return JudgeResult(None, reason=f"judge request failed: {e}", raw=text, attempts=attempt,
                               error=f"request failed: {e}")
        try:
            result = parse_judgement(text)
        except JudgeParseError as e:
            error = str(e)
            macros, origin = _macros(None if prompts_dir is None else str(prompts_dir))
            conversation = conversation + [{"role": "assistant", "content": text},
                                           {"role": "user", "content": _call(macros, origin, "fix", error=error)}]
            continue
        result.attempts = attempt
        if not cfg.grounding:
            result.grounded = None
        return result
    return JudgeResult(None, reason=f"unparsable judge answer: {error}", raw=text, attempts=2, error=error)
