"""Load `pipeline.yaml`: YAML with line numbers, `${ENV}` interpolation, and one error listing
every problem (YAML path, line, and a "did you mean" for misspelt keys)."""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from mason.core.errors import ConfigError, Problem
from mason.pipeline.config import PipelineConfig

Loc = tuple[str | int, ...]

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class _Doc:
    """Plain data built from the YAML node tree, plus the line of every node (1-based)."""

    def __init__(self) -> None:
        self.lines: dict[Loc, int] = {}
        self.problems: list[Problem] = []

    def build(self, node: yaml.Node, loc: Loc) -> Any:
        # a mapping value is located at its key's line (set by the caller), not at its first child
        self.lines.setdefault(loc, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = str(key_node.value)
                if key in out:
                    self.problems.append(
                        Problem(_dotted(loc + (key,)), "key appears twice", key_node.start_mark.line + 1)
                    )
                self.lines[loc + (key,)] = key_node.start_mark.line + 1
                out[key] = self.build(value_node, loc + (key,))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, loc + (i,)) for i, item in enumerate(node.value)]
        value = _scalar(node)
        if isinstance(value, str):
            value = self._interpolate(value, loc, node.start_mark.line + 1)
        return value

    def _interpolate(self, text: str, loc: Loc, line: int) -> Any:
        def sub(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            self.problems.append(
                Problem(
                    _dotted(loc),
                    f"environment variable ${{{name}}} is not set "
                    f"(export {name}=... or write ${{{name}:-default}})",
                    line,
                )
            )
            return ""

        if "${" not in text:
            return text
        whole = _ENV.fullmatch(text)
        result = _ENV.sub(sub, text)
        # a value that is exactly one ${VAR} is re-read as YAML so `${EPOCHS}` can be a number
        if whole and result:
            try:
                parsed = yaml.safe_load(result)
            except yaml.YAMLError:
                return result
            if isinstance(parsed, (int, float, bool)):
                return parsed
        return result

    def line_of(self, loc: Loc) -> int | None:
        # the closest enclosing node that has a line (missing keys point at their parent)
        for end in range(len(loc), -1, -1):
            if loc[:end] in self.lines:
                return self.lines[loc[:end]]
        return None


def _scalar(node: yaml.ScalarNode) -> Any:
    # resolve the scalar's tag (int, float, bool, null, str...) the way safe_load would
    return yaml.SafeLoader.construct_object(_SCALAR_LOADER, node, deep=True)


_SCALAR_LOADER = yaml.SafeLoader("")


def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _fields_at(model: type[BaseModel], loc: Loc) -> list[str]:
    """Field names of the model that sits at `loc` (for "did you mean" on unknown keys)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field = current.model_fields.get(str(part))
        if field is None:
            return []
        current = _model_in(field.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _model_in(annotation: Any) -> Any:
    """The BaseModel class inside `X | None`, `list[X]` and similar annotations, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _clean_loc(loc: tuple[Any, ...]) -> Loc:
    # pydantic adds tags like 'function-after[...]' or the model name for unions; drop them
    return tuple(p for p in loc if isinstance(p, int) or ("[" not in str(p) and not str(p)[:1].isupper()))


def _problems_from(err: ValidationError, doc: _Doc) -> list[Problem]:
    problems = []
    for e in err.errors(include_url=False):
        loc = _clean_loc(e["loc"])
        if e["type"] == "extra_forbidden":
            key = str(loc[-1])
            known = _fields_at(PipelineConfig, loc[:-1])
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            msg = f"unknown key '{key}'"
            msg += f" (did you mean '{close[0]}'?)" if close else (f"; known keys: {', '.join(known)}" if known else "")
        elif e["type"] == "missing":
            msg = "required field is missing"
        else:
            msg = e["msg"]
            if "input" in e and not isinstance(e["input"], (dict, list)):
                msg += f" (got {e['input']!r})"
        problems.append(Problem(_dotted(loc), msg, doc.line_of(loc)))
    return problems


def parse_config(data: Any, *, source: str | None = None, doc: _Doc | None = None) -> PipelineConfig:
    """Validate plain data (already loaded YAML) into a `PipelineConfig`.

    Raises:
        ConfigError: listing every problem.
    """
    doc = doc or _Doc()
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([Problem("", "the pipeline file must be a mapping of sections", 1)], source=source)
    problems = list(doc.problems)
    try:
        config = PipelineConfig.model_validate(data)
    except ValidationError as err:
        problems += _problems_from(err, doc)
        config = None
    if problems:
        problems.sort(key=lambda p: (p.line or 0, p.path))
        raise ConfigError(problems, source=source)
    assert config is not None
    return config


def load_yaml_config(path: str | Path) -> PipelineConfig:
    """Read and validate a pipeline YAML file.

    Raises:
        ConfigError: file missing, not YAML, or invalid (all problems at once, with lines).
    """
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise ConfigError([Problem("", f"no such file (looked for {path.resolve()})")], source=source)
    try:
        node = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark else None
        raise ConfigError([Problem("", f"not valid YAML: {getattr(e, 'problem', e)}", line)], source=source) from None
    except UnicodeDecodeError:
        raise ConfigError([Problem("", "not UTF-8 text")], source=source) from None
    doc = _Doc()
    data = doc.build(node, ()) if node is not None else {}
    return parse_config(data, source=source, doc=doc)
