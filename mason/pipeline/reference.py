"""The README's YAML reference, generated from the config models (a test keeps it in sync).

    python -m mason.pipeline.reference --write README.md
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from mason.pipeline.config import PipelineConfig

START = "<!-- yaml-reference:start -->"
END = "<!-- yaml-reference:end -->"


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if isinstance(annotation, type) else None
    text = text or str(annotation)
    text = re.sub(r"\b(typing|mason(\.\w+)+)\.", "", text)
    return text.replace("NoneType", "null").replace("Literal", "one of ")


def _default(field: Any) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "**required**"
    value = field.default_factory() if field.default_factory is not None else field.default
    if isinstance(value, BaseModel):
        return "see below"
    return f"`{json.dumps(value)}`"


def _nested(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out: list[type[BaseModel]] = []
    for arg in getattr(annotation, "__args__", ()) or ():
        out += _nested(arg)
    return out


def _section(name: str, model: type[BaseModel], lines: list[str], done: set[str]) -> None:
    lines += [f"### `{name}`", "", (model.__doc__ or "").strip().splitlines()[0], ""]
    lines += ["| key | type | default | description |", "|---|---|---|---|"]
    nested: list[tuple[str, type[BaseModel]]] = []
    for key, field in model.model_fields.items():
        desc = (field.description or "").replace("|", "\\|")
        lines.append(f"| `{key}` | {_type_name(field.annotation).replace('|', 'or')} | {_default(field)} | {desc} |")
        for sub in _nested(field.annotation):
            if sub.__name__ not in done:
                nested.append((f"{name}.{key}", sub))
    lines.append("")
    for sub_name, sub in nested:
        done.add(sub.__name__)
        _section(sub_name, sub, lines, done)


def render_reference() -> str:
    """Markdown tables of every section and key of pipeline.yaml."""
    lines = ["Top-level keys of `pipeline.yaml` (unknown keys are errors):", ""]
    lines += ["| key | description |", "|---|---|"]
    for key, field in PipelineConfig.model_fields.items():
        lines.append(f"| `{key}` | {field.description} |")
    lines.append("")
    done: set[str] = set()
    for key, field in PipelineConfig.model_fields.items():
        for model in _nested(field.annotation):
            done.add(model.__name__)
            _section(key, model, lines, done)
    return "\n".join(lines).rstrip() + "\n"


def splice(readme: str, reference: str) -> str:
    """The README text with the block between the markers replaced by `reference`."""
    head, sep, rest = readme.partition(START)
    if not sep:
        raise ValueError(f"README has no {START} marker")
    _, sep, tail = rest.partition(END)
    if not sep:
        raise ValueError(f"README has no {END} marker")
    return f"{head}{START}\n{reference}{END}{tail}"


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--write":
        path = Path(sys.argv[2])
        path.write_text(splice(path.read_text(encoding="utf-8"), render_reference()), encoding="utf-8")
    else:
        sys.stdout.write(render_reference())
