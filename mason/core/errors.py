"""Error types. Each carries the exit code the CLI uses and, where possible, the fix."""

from __future__ import annotations

import difflib

from dataclasses import dataclass


class MasonError(Exception):
    """Base class for errors MASON reports to the user as one clear message (no traceback).

    Attributes:
        exit_code: process exit code the CLI uses for this error.
        hint: how to fix it, printed under the message.
    """

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


@dataclass(frozen=True)
class Problem:
    """One problem in a config file: where (YAML path, line) and what."""

    path: str
    message: str
    line: int | None = None

    def format(self, source: str | None = None) -> str:
        where = source or "<config>"
        if self.line is not None:
            where = f"{where}:{self.line}"
        loc = self.path or "(root)"
        return f"{where}: {loc}: {self.message}"


class ConfigError(MasonError):
    """A pipeline config is invalid. Lists every problem at once."""

    exit_code = 2

    def __init__(self, problems: list[Problem], *, source: str | None = None):
        self.problems = list(problems)
        self.source = source
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} in {source or 'the pipeline config'}:"
        body = "\n".join("  - " + p.format(source) for p in self.problems)
        super().__init__(f"{head}\n{body}")


class InputError(MasonError):
    """Bad input data (missing folder, no usable document, malformed JSONL line...)."""

    exit_code = 1


class TaskNotAvailableError(MasonError):
    """The task exists in the MASON design but this version does not implement it yet."""

    exit_code = 2


class LockError(MasonError):
    """Another `mason run` holds the workspace lock."""

    exit_code = 3


class ModelNotFoundError(MasonError):
    """A model name resolves to nothing usable (no folder, no built-in, not reachable)."""

    exit_code = 1


def did_you_mean(name: str, known: list[str] | tuple[str, ...]) -> str:
    """` (did you mean 'x'?)` for the closest of `known`, else ``."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    if not close:
        close = [k for k in known if k.lower() == name.lower()]
    return f" (did you mean '{close[0]}'?)" if close else ""
