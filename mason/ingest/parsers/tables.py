"""Markdown tables from rows of cells: what spreadsheets, PDF and ODT tables and JSON records become.

A long table is written as several tables of a few rows each, each with the header row again,
separated by a blank line: the chunker cuts at blank lines, so every chunk of a table keeps the
names of its columns and a fact in row 900 still says which column it is in.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterable, Sequence
from typing import Any

#: characters of table rows per group (about 400 tokens: a group fits a default 512-token chunk)
GROUP_CHARS = 1500
_WS = re.compile(r"\s+")


def cell_text(value: Any) -> str:
    """One cell as table text: numbers without float noise, dates in ISO form, `|` escaped, one line."""
    if value is None:
        return ""
    if isinstance(value, bool):
        text = "TRUE" if value else "FALSE"
    elif isinstance(value, float):
        text = str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    elif isinstance(value, _dt.datetime):
        text = value.date().isoformat() if value.time() == _dt.time() else value.isoformat(sep=" ")
    elif isinstance(value, _dt.date | _dt.time):
        text = value.isoformat()
    else:
        text = str(value)
    return _WS.sub(" ", text).strip().replace("|", "\\|")


def trim(rows: Iterable[Sequence[Any]]) -> list[list[str]]:
    """Rows as cell texts, without empty rows and without columns that are empty in every row."""
    out = [[cell_text(v) for v in row] for row in rows]
    out = [r for r in out if any(r)]
    if not out:
        return []
    width = max(len(r) for r in out)
    used = [c for c in range(width) if any(c < len(r) and r[c] for r in out)]
    return [[r[c] if c < len(r) else "" for c in used] for r in out]


def _line(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def markdown_table(rows: Sequence[Sequence[str]], *, group_chars: int = GROUP_CHARS) -> str:
    """Markdown for `rows` (cell texts, first row the header), in groups that repeat the header.

    A table of one row is returned as a plain line of its cells. Returns "" for no rows.
    """
    if not rows:
        return ""
    width = max(len(r) for r in rows)
    rows = [list(r) + [""] * (width - len(r)) for r in rows]
    if len(rows) == 1:
        return " | ".join(c for c in rows[0] if c)
    head = _line(rows[0]) + "\n" + _line(["---"] * width)
    groups, current, size = [], [], 0
    for row in rows[1:]:
        line = _line(row)
        if current and size + len(line) > group_chars:
            groups.append(head + "\n" + "\n".join(current))
            current, size = [], 0
        current.append(line)
        size += len(line) + 1
    if current:
        groups.append(head + "\n" + "\n".join(current))
    return "\n\n".join(groups)
