"""The quality gate on your own training data: `mason validate`'s checks, run before training.

Each file is validated exactly as `mason validate FILE` does it (`mason.data.validate`): format
errors, then the quality heuristics of `mason.data.quality`. The share of clean rows over all the
files decides:

- at least `WARN_BELOW` (70%): training goes on quietly;
- from `STOP_BELOW` (50%) to 70%: a warning that names the failing rows, the top reasons and the fix;
- below 50%: training stops with that message, unless the caller allows low quality.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mason.core.errors import InputError
from mason.data.validate import FORMAT_ERRORS, ValidationReport, validate_dataset

WARN_BELOW = 0.7
STOP_BELOW = 0.5
TOP_REASONS = 3


@dataclass
class GateResult:
    """What the gate measured over the files.

    Attributes:
        reports: the `mason validate` report of each file.
        level: "ok", "warn" (under `WARN_BELOW`) or "low" (under `STOP_BELOW`).
    """

    reports: list[ValidationReport] = field(default_factory=list)
    level: str = "ok"

    @property
    def rows(self) -> int:
        return sum(r.rows for r in self.reports)

    @property
    def clean(self) -> int:
        return sum(r.clean_rows for r in self.reports)

    @property
    def quality(self) -> float:
        """Share of clean rows over every file (1.0 with no rows: there is nothing to judge)."""
        return self.clean / self.rows if self.rows else 1.0

    def reasons(self) -> Counter[str]:
        """Rows per reason, format errors (in words) and quality issues (by code) together."""
        out: Counter[str] = Counter()
        for r in self.reports:
            out.update({FORMAT_ERRORS.get(code, code): n for code, n in r.format_error_counts.items()})
            out.update(r.quality_issue_counts)
        return out

    def message(self) -> str:
        """One paragraph: failing rows, the top reasons, the files."""
        failed = self.rows - self.clean
        top = ", ".join(f"{why} ({n})" for why, n in self.reasons().most_common(TOP_REASONS))
        files = "; ".join(f"{r.path} ({r.clean_rows}/{r.rows} clean)" for r in self.reports if r.rows)
        return (f"{failed} of {self.rows} training rows ({1 - self.quality:.0%}) fail `mason validate`'s checks; "
                f"top reasons: {top or 'none'}; files: {files}")

    def summary(self) -> dict[str, Any]:
        """For the train report: rows, clean rows and the clean share."""
        return {"rows": self.rows, "clean_rows": self.clean, "clean_share": round(self.quality, 4)}


def fix_hint(setting: str | None = None) -> str:
    """How to fix low-quality data (the same words for the warning and the error); with `setting`,
    also how to train on it anyway."""
    hint = ("see each row's problem with `mason validate FILE`; keep the clean rows with `mason validate FILE "
            "--filter` (writes FILE.filtered.jsonl) and train on that file")
    return hint + (f"; or set `{setting}: true` to train on the rows as they are" if setting else "")


def quality_gate(paths: list[Path], *, allow_low_quality: bool = False,
                 setting: str = "training.allow_low_quality") -> GateResult:
    """Validate `paths` as `mason validate` does and judge the share of clean rows (see the module docstring).

    Returns:
        the result; `level` is "warn" under 70% clean, "low" under 50% when `allow_low_quality` lets
        training go on. The caller prints the warning (`message()` and `fix_hint(setting)`).
    Raises:
        InputError: under 50% clean and not `allow_low_quality`.
        DatasetFileError: a file is missing or unreadable.
    """
    result = GateResult([validate_dataset(p, keep_samples=False, worst=0) for p in paths])
    if not result.rows or result.quality >= WARN_BELOW:
        return result
    if result.quality >= STOP_BELOW:
        result.level = "warn"
        return result
    result.level = "low"
    if not allow_low_quality:
        raise InputError(f"training data quality is {result.quality:.0%} clean, under the {STOP_BELOW:.0%} needed "
                         f"to train: {result.message()}", hint=fix_hint(setting))
    return result
