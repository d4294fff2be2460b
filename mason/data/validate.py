"""Validate a dataset file: format errors with line numbers, quality scores and issue counts.

Two passes over each row, in order:

1. Format: the row must be JSON, have a shape some format reads (`mason.data.formats`), and
   convert to a well-formed conversation (`check_sample`): known roles in a sensible order, a
   user turn, non-empty answers, tool results that answer an earlier tool call, tool-call
   arguments that are JSON, and for preference rows a `chosen` and a `rejected` that differ.
2. Quality: rows with no format error get the cheap heuristics of `mason.data.quality`
   (too short, repetitive, gibberish, echo...) and a score in [0, 1]. Plain-text rows (one
   assistant message, for continued pretraining) have no question and no answer, so the
   question/answer heuristics do not apply to them: they are not scored.

The dataset's quality is the share of rows with neither a format error nor a quality issue;
those rows are the "clean" samples that `mason validate --filter` keeps.
"""

from __future__ import annotations

import heapq
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mason.core.errors import InputError
from mason.data.files import iter_rows
from mason.data.formats import (
    content_text,
    detect_format,
    is_preference,
    normalize_format,
    to_contract,
)

if TYPE_CHECKING:
    from mason.data.quality import FilterConfig

KNOWN_ROLES = ("system", "user", "assistant", "tool")
# every format error code, with the words the report uses for it
FORMAT_ERRORS: dict[str, str] = {
    "bad_json": "not valid JSON, or not an object",
    "bad_shape": "unreadable row shape",
    "no_messages": "no messages",
    "missing_role": "message without a role",
    "unknown_role": "unknown role",
    "bad_content": "content is not text",
    "no_user_turn": "no user turn",
    "no_assistant_turn": "no assistant turn",
    "empty_user": "empty user turn",
    "empty_assistant": "empty assistant turn",
    "role_order": "roles out of order",
    "bad_tool_call": "malformed tool call",
    "bad_tool_arguments": "tool-call arguments not JSON",
    "missing_tool_call_id": "tool result without tool_call_id",
    "unknown_tool_call_id": "tool_call_id matches no tool call",
    "preference_missing": "chosen/rejected missing or empty",
    "preference_identical": "chosen and rejected identical",
}
MAX_ERRORS_KEPT = 1000  # counts stay exact; only the itemized list is capped
PREVIEW_CHARS = 100

Problem = tuple[str, str]  # (code, message)


# --------------------------------------------------------------------------- format checks


def _check_turns(messages: list[dict]) -> list[Problem]:
    """Roles, content and their order, message by message (1-based numbers in messages)."""
    problems: list[Problem] = []
    prev: str | None = None
    for i, m in enumerate(messages, start=1):
        role = m.get("role")
        if not isinstance(role, str) or not role:
            problems.append(("missing_role", f"message {i} has no role"))
            prev = None
            continue
        if role not in KNOWN_ROLES:
            expected = ", ".join(KNOWN_ROLES)
            problems.append(("unknown_role", f"message {i} has unknown role {role!r} (expected {expected})"))
            prev = None
            continue
        content = m.get("content")
        text = content_text(content).strip()
        if content is not None and not isinstance(content, (str, list)):
            kind = type(content).__name__
            problems.append(("bad_content", f"message {i} ({role}): content must be text, got {kind}"))
        elif role == "assistant" and not text and not m.get("tool_calls"):
            problems.append(("empty_assistant", f"message {i}: empty assistant turn"))
        elif role == "user" and not text:
            problems.append(("empty_user", f"message {i}: empty user turn"))
        if role == "system" and i > 1:
            problems.append(("role_order", f"message {i}: a system message after the conversation started"))
        elif role == prev and role in ("user", "assistant"):
            problems.append(("role_order", f"messages {i - 1} and {i}: two {role} turns in a row"))
        elif role == "tool" and prev not in ("assistant", "tool"):
            problems.append(("role_order", f"message {i}: a tool result that does not follow an assistant tool call"))
        prev = role
    return problems


def _check_call(call: Any, where: str) -> list[Problem]:
    if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
        return [("bad_tool_call", f"{where}: expected {{\"id\", \"type\", \"function\": {{\"name\", \"arguments\"}}}}")]
    fn = call["function"]
    if not isinstance(fn.get("name"), str) or not fn["name"]:
        return [("bad_tool_call", f"{where}: the function has no name")]
    args = fn.get("arguments")
    if isinstance(args, str):
        try:
            json.loads(args)
        except json.JSONDecodeError as e:
            why = f"{e.msg} at column {e.colno}"
            return [("bad_tool_arguments", f"{where} ({fn['name']}): arguments are not valid JSON ({why})")]
    elif args is not None and not isinstance(args, dict):
        return [("bad_tool_arguments", f"{where} ({fn['name']}): arguments must be a JSON object or its text")]
    return []


def _check_tools(messages: list[dict]) -> list[Problem]:
    """Tool calls are well formed, and every tool result answers an earlier call by its id."""
    problems: list[Problem] = []
    call_ids: set[str] = set()
    for i, m in enumerate(messages, start=1):
        calls = m.get("tool_calls")
        if calls is not None:
            if not isinstance(calls, list):
                problems.append(("bad_tool_call", f"message {i}: tool_calls must be a list"))
                calls = []
            elif m.get("role") != "assistant":
                problems.append(("bad_tool_call", f"message {i}: only assistant messages make tool calls"))
            for k, call in enumerate(calls, start=1):
                problems += _check_call(call, f"message {i}, tool call {k}")
                if isinstance(call, dict) and call.get("id"):
                    call_ids.add(str(call["id"]))
        if m.get("role") == "tool":
            call_id = m.get("tool_call_id")
            if not call_id:
                problems.append(("missing_tool_call_id", f"message {i}: tool result without a tool_call_id"))
            elif str(call_id) not in call_ids:
                problems.append(("unknown_tool_call_id",
                                 f"message {i}: tool_call_id {call_id!r} matches no earlier tool call"))
    return problems


def _check_shape(sample: dict) -> list[Problem]:
    """The conversation as a whole: something to learn from, answering a user."""
    messages = sample.get("messages") or []
    roles = [m.get("role") for m in messages]
    if not messages and not is_preference(sample):
        return [("no_messages", "the conversation has no messages")]
    if roles == ["assistant"] and not is_preference(sample):
        return []  # one assistant message is plain text (continued pretraining)
    problems: list[Problem] = []
    if "user" not in roles:
        problems.append(("no_user_turn", "no user turn"))
    if is_preference(sample):
        if roles and roles[-1] == "assistant":
            problems.append(("role_order", "the prompt ends with an assistant turn: chosen/rejected answer nothing"))
        return problems + _check_answers(sample)
    if "assistant" not in roles:
        problems.append(("no_assistant_turn", "no assistant turn: nothing to learn"))
    elif roles[-1] != "assistant":
        problems.append(("role_order", f"the conversation ends with a {roles[-1]} turn, not an assistant answer"))
    return problems


def _check_answers(sample: dict) -> list[Problem]:
    problems: list[Problem] = []
    for key in ("chosen", "rejected"):
        m = sample.get(key)
        if m is None:
            problems.append(("preference_missing", f"{key} is missing"))
        elif m.get("role", "assistant") != "assistant":
            problems.append(("role_order", f"{key} must be an assistant message, not {m.get('role')!r}"))
        elif not content_text(m.get("content")).strip() and not m.get("tool_calls"):
            problems.append(("preference_missing", f"{key} is empty"))
    chosen, rejected = sample.get("chosen"), sample.get("rejected")
    if chosen and rejected and all(
            _same(chosen.get(k), rejected.get(k)) for k in ("content", "tool_calls")):
        problems.append(("preference_identical", "chosen and rejected are identical"))
    return problems


def _same(a: Any, b: Any) -> bool:
    # whitespace around an answer does not make it a different answer
    if isinstance(a, str) and isinstance(b, str):
        return a.strip() == b.strip()
    return a == b


def check_sample(sample: dict) -> list[Problem]:
    """Every format problem of one data-contract sample.

    Returns:
        (code, message) pairs, codes from `FORMAT_ERRORS`; [] when the sample is well formed.
    """
    messages = sample.get("messages") or []
    problems = _check_turns(messages) + _check_tools(messages)
    if any(code in ("missing_role", "unknown_role") for code, _ in problems):
        return problems  # "no assistant turn" and the like would only echo the bad role
    return problems + _check_shape(sample)


# --------------------------------------------------------------------------- the report


@dataclass(frozen=True)
class FormatError:
    """One format problem, on the line of the file where its row starts."""

    line: int
    code: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "code": self.code, "message": self.message}


@dataclass(frozen=True)
class ScoredRow:
    """A row's quality score and issues (for the list of worst examples)."""

    line: int
    id: str
    score: float
    issues: tuple[str, ...]
    preview: str

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "id": self.id, "score": self.score, "issues": list(self.issues),
                "preview": self.preview}


@dataclass
class ValidationReport:
    """What `validate_dataset` found.

    Attributes:
        path: the file validated.
        fmt: the format asked for ("auto" detects it per row).
        rows: rows read (blank lines excluded, unreadable lines included).
        formats: rows per detected format.
        format_errors: the first `MAX_ERRORS_KEPT` format errors, in file order.
        format_error_counts: number of errors per code (exact).
        format_error_rows: rows with at least one format error.
        quality_issue_counts: rows per quality issue code, among well-formed rows.
        quality_issue_rows: well-formed rows with at least one quality issue.
        scored_rows / score_total: for the mean score (plain-text rows are not scored).
        worst: the lowest-scoring rows, worst first.
        samples: (line, contract sample) of the clean rows, for `--filter` (when kept).
    """

    path: Path
    fmt: str = "auto"
    rows: int = 0
    formats: Counter[str] = field(default_factory=Counter)
    format_errors: list[FormatError] = field(default_factory=list)
    format_error_counts: Counter[str] = field(default_factory=Counter)
    format_error_rows: int = 0
    quality_issue_counts: Counter[str] = field(default_factory=Counter)
    quality_issue_rows: int = 0
    scored_rows: int = 0
    score_total: float = 0.0
    worst: list[ScoredRow] = field(default_factory=list)
    samples: list[tuple[int, dict]] = field(default_factory=list)

    @property
    def clean_rows(self) -> int:
        """Rows with neither a format error nor a quality issue."""
        return self.rows - self.format_error_rows - self.quality_issue_rows

    @property
    def quality(self) -> float:
        """Share of clean rows, in [0, 1]; 0.0 for a file with no rows."""
        return self.clean_rows / self.rows if self.rows else 0.0

    @property
    def mean_score(self) -> float | None:
        """Mean quality score of the scored rows; None when no row was scored."""
        return self.score_total / self.scored_rows if self.scored_rows else None

    def passed(self, threshold: float = 0.5) -> bool:
        """Whether the dataset's quality reaches `threshold` (a file with no rows never passes)."""
        return self.rows > 0 and self.quality >= threshold

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready data (without the samples)."""
        mean = self.mean_score
        return {
            "path": str(self.path),
            "format": self.fmt,
            "formats": dict(self.formats),
            "rows": self.rows,
            "clean_rows": self.clean_rows,
            "format_error_rows": self.format_error_rows,
            "quality_issue_rows": self.quality_issue_rows,
            "quality": round(self.quality, 4),
            "mean_score": None if mean is None else round(mean, 4),
            "scored_rows": self.scored_rows,
            "format_error_counts": dict(self.format_error_counts),
            "quality_issue_counts": dict(self.quality_issue_counts),
            "format_errors": [e.to_dict() for e in self.format_errors],
            "format_errors_listed": len(self.format_errors),
            "worst": [w.to_dict() for w in self.worst],
        }

    def _add_errors(self, line: int, problems: list[Problem]) -> None:
        self.format_error_rows += 1
        for code, message in problems:
            self.format_error_counts[code] += 1
            if len(self.format_errors) < MAX_ERRORS_KEPT:
                self.format_errors.append(FormatError(line, code, message))


# --------------------------------------------------------------------------- validation


def _preview(sample: dict) -> str:
    user = next((m for m in sample["messages"] if m.get("role") == "user"), None)
    text = " ".join(content_text((user or sample["messages"][0]).get("content")).split())
    return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS - 1] + "…"


def validate_dataset(path: str | Path, *, fmt: str = "auto", cfg: FilterConfig | None = None,
                     worst: int = 5, keep_samples: bool = True) -> ValidationReport:
    """Check every row of a dataset file (JSONL or JSON array) and score its quality.

    Args:
        path: the dataset file.
        fmt: the rows' format, or "auto" to detect it per row.
        cfg: quality thresholds (default `FilterConfig()`).
        worst: how many of the lowest-scoring rows to keep in the report.
        keep_samples: keep the clean samples in `report.samples` (for filtering).
    Returns:
        the `ValidationReport`; problems in the rows are in it, never raised.
    Raises:
        DatasetFileError: the file is missing or unreadable (exit code 2).
        InputError: an unknown format name.
    """
    # lazily: the heuristics are a stage module, and `mason --help` must not import them
    from mason.data.quality import FilterConfig
    from mason.data.quality import quality_issues, quality_score

    name = None if fmt == "auto" else normalize_format(fmt)
    cfg = cfg or FilterConfig()
    report = ValidationReport(path=Path(path), fmt=name or "auto")
    heap: list[tuple[float, int, ScoredRow]] = []  # max-heap (negated) of the `worst` lowest scores
    for line, row, error in iter_rows(path):
        report.rows += 1
        if error is not None:
            report._add_errors(line, [("bad_json", error)])
            continue
        try:
            sample = to_contract(row, name)
        except InputError as e:
            report._add_errors(line, [("bad_shape", e.message)])
            continue
        report.formats[name or detect_format(row)] += 1
        problems = check_sample(sample)
        if problems:
            report._add_errors(line, problems)
            continue
        issues: list[str] = []
        if [m.get("role") for m in sample["messages"]] != ["assistant"] or is_preference(sample):
            issues = quality_issues(sample, cfg)
            scored = ScoredRow(line, sample["id"], quality_score(sample), tuple(issues), _preview(sample))
            report.scored_rows += 1
            report.score_total += scored.score
            heapq.heappush(heap, (-scored.score, -line, scored))
            if len(heap) > worst:
                heapq.heappop(heap)
        if issues:
            report.quality_issue_rows += 1
            report.quality_issue_counts.update(issues)
        elif keep_samples:
            report.samples.append((line, sample))
    report.worst = sorted((s for _, _, s in heap), key=lambda s: (s.score, s.line))
    return report

