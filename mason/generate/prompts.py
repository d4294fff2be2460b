"""Prompt templates of the synthetic-data stage: Jinja files, the user's own first.

`PromptLibrary(user_dir)` looks a template up by name (`question_answering` or
`question_answering.j2`) in the user's `prompts_dir`, then in the templates shipped in
`mason/generate/prompts/`. Templates render with `StrictUndefined`: a variable the template
uses but the caller does not give is an error naming the file and the variable, never a
silently empty prompt.
"""

from __future__ import annotations

import importlib.resources
import re
from pathlib import Path
from typing import Any

import jinja2

from mason.core.errors import MasonError

_PACKAGE = "mason.generate"
_FOLDER = "prompts"
_SUFFIX = ".j2"
_UNDEFINED_NAME = re.compile(r"'([^']+)' is undefined|has no attribute '([^']+)'")


class PromptError(MasonError):
    """A prompt template is missing, does not parse, or uses a variable it was not given.

    Attributes:
        variable: the undefined variable's name, when that is the problem (else None).
    """

    def __init__(self, message: str, *, hint: str | None = None, variable: str | None = None):
        super().__init__(message, hint=hint)
        self.variable = variable


def _environment() -> jinja2.Environment:
    # prompts are plain text, not HTML: no autoescaping; keep the template's final newline
    return jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)


def undefined_name(error: jinja2.UndefinedError) -> str:
    """The variable or field a StrictUndefined error is about (the whole message if unknown)."""
    m = _UNDEFINED_NAME.search(str(error))
    if m is None:
        return str(error)
    return m.group(1) or m.group(2)


def render_string(source: str, variables: dict[str, Any], *, label: str) -> str:
    """Render template text `source` with `variables` (StrictUndefined).

    `label` names the template in errors (a file path, or `records.templates[0]`).
    Returns the rendered text. Raises PromptError on a syntax error (with the line) or on a
    variable the template uses but `variables` lacks (naming it and listing those given).
    """
    env = _environment()
    try:
        template = env.from_string(source)
    except jinja2.TemplateSyntaxError as e:
        raise PromptError(f"prompt template {label}, line {e.lineno}: {e.message}") from None
    try:
        return template.render(**variables)
    except jinja2.UndefinedError as e:
        given = ", ".join(sorted(variables)) or "none"
        name = undefined_name(e)
        raise PromptError(
            f"prompt template {label} uses `{name}`, which is not defined (variables given: {given})",
            hint="fix the template's variable name, or give the missing value", variable=name,
        ) from None


class PromptLibrary:
    """Prompt templates by name: the user's `prompts_dir` first, then the built-in ones.

    Attributes:
        user_dir: folder of the user's templates (same file names as the built-in ones), or None.
    """

    def __init__(self, user_dir: Path | str | None = None):
        self.user_dir = Path(user_dir) if user_dir is not None else None
        if self.user_dir is not None and not self.user_dir.is_dir():
            raise PromptError(f"prompts_dir {self.user_dir} is not a folder",
                              hint="create it, or remove `prompts_dir` to use the built-in prompts")
        self._cache: dict[str, tuple[str, str]] = {}

    @staticmethod
    def _file_name(name: str) -> str:
        return name if name.endswith(_SUFFIX) else name + _SUFFIX

    def builtin_names(self) -> list[str]:
        """Names (without `.j2`) of the templates shipped with MASON."""
        folder = importlib.resources.files(_PACKAGE) / _FOLDER
        return sorted(p.name[: -len(_SUFFIX)] for p in folder.iterdir() if p.name.endswith(_SUFFIX))

    def source(self, name: str) -> tuple[str, str]:
        """Text of template `name` and where it came from (a path, or `built-in <file>`).

        Raises PromptError when neither the user's folder nor the package has it.
        """
        file_name = self._file_name(name)
        if file_name in self._cache:
            return self._cache[file_name]
        if self.user_dir is not None and (self.user_dir / file_name).is_file():
            path = self.user_dir / file_name
            found = (path.read_text(encoding="utf-8"), str(path))
        else:
            resource = importlib.resources.files(_PACKAGE) / _FOLDER / file_name
            if not resource.is_file():
                where = f"{self.user_dir} or " if self.user_dir is not None else ""
                raise PromptError(
                    f"no prompt template {file_name} in {where}the built-in prompts",
                    hint=f"built-in templates: {', '.join(self.builtin_names())}",
                )
            found = (resource.read_text(encoding="utf-8"), f"built-in {file_name}")
        self._cache[file_name] = found
        return found

    def render(self, name: str, **variables: Any) -> str:
        """Render template `name` with `variables`.

        Returns the prompt text, stripped of surrounding whitespace.
        Raises PromptError (missing template, syntax error, undefined variable: the message
        names the file and the variable).
        """
        text, origin = self.source(name)
        return render_string(text, variables, label=origin).strip()
