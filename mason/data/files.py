"""Dataset files: read JSONL or JSON-array files row by row (with line numbers), write atomically.

The row-level conversions live in `mason.data.formats`; this module only deals with files.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from mason.core.errors import InputError
from mason.core.io import atomic_write_text
from mason.data.formats import Row, _kind, from_contract, normalize_format, to_contract

_JSON_SPACE = re.compile(r"[ \t\n\r]*")


class DatasetFileError(InputError):
    """The dataset file is missing or cannot be read: a command-line problem, exit code 2."""

    exit_code = 2


def check_readable(path: str | Path) -> Path:
    """The dataset path, after checking that it names a readable file.

    Raises:
        DatasetFileError: missing, a folder, or not readable (exit code 2).
    """
    path = Path(path)
    try:
        open(path, "rb").close()
    except FileNotFoundError:
        raise DatasetFileError(f"{path}: no such file", hint="give the path of a JSONL or JSON dataset file") from None
    except IsADirectoryError:
        raise DatasetFileError(f"{path} is a folder, not a dataset file") from None
    except OSError as e:
        raise DatasetFileError(f"cannot read {path}: {e.strerror or e}") from None
    return path


def _starts_with_bracket(f: BinaryIO) -> bool:
    head = f.read(1 << 16).removeprefix(b"\xef\xbb\xbf")
    while head and not head.strip():
        head = f.read(1 << 16)
    f.seek(0)
    return head.lstrip()[:1] == b"["


def _jsonl_rows(f: BinaryIO) -> Iterator[tuple[int, Any, str | None]]:
    # bytes, not text mode: text mode would also split lines on a bare "\r"
    for lineno, raw in enumerate(f, start=1):
        if lineno == 1:
            raw = raw.removeprefix(b"\xef\xbb\xbf")
        if not raw.strip():
            continue
        try:
            yield lineno, json.loads(raw.decode("utf-8")), None
        except UnicodeDecodeError as e:
            yield lineno, None, f"not valid UTF-8 (byte {e.start + 1} of the line)"
        except json.JSONDecodeError as e:
            yield lineno, None, f"not valid JSON: {e.msg} (column {e.colno})"


def _array_rows(data: bytes) -> Iterator[tuple[int, Any, str | None]]:
    """Elements of a JSON array file, each with the line it starts on."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        yield data.count(b"\n", 0, e.start) + 1, None, "not valid UTF-8"
        return
    decoder, line, counted = json.JSONDecoder(), 1, 0
    pos, first = text.index("[") + 1, True
    while True:
        pos = _JSON_SPACE.match(text, pos).end()
        if first and text.startswith("]", pos):
            pos += 1
            break
        try:
            obj, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            # one syntax error breaks the whole array: there is no next element to resume at
            yield e.lineno, None, f"not valid JSON: {e.msg} (column {e.colno})"
            return
        line, counted = line + text.count("\n", counted, pos), pos  # incremental: O(size), not O(rows x size)
        yield line, obj, None
        pos, first = _JSON_SPACE.match(text, end).end() + 1, False
        if text[pos - 1:pos] == "]":
            break
        if text[pos - 1:pos] != ",":
            yield line + text.count("\n", counted, pos - 1), None, "not valid JSON: expected ',' or ']'"
            return
    if text[pos:].strip():
        yield line + text.count("\n", counted, pos), None, "not valid JSON: text after the closing ']'"


def iter_rows(path: str | Path) -> Iterator[tuple[int, Any, str | None]]:
    """Every row of a JSONL file, or of a JSON array file (the first character is `[`).

    Yields:
        (line, row, None) for each row that is a JSON object; (line, None, message) for a line
        that is not valid JSON or not an object. Blank lines are skipped. A JSON array with a
        syntax error yields one error and ends: nothing after it can be located.
    Raises:
        DatasetFileError: the file is missing or unreadable.
    """
    path = check_readable(path)
    with open(path, "rb") as f:
        rows = _array_rows(f.read()) if _starts_with_bracket(f) else _jsonl_rows(f)
        for line, row, error in rows:
            if error is None and not isinstance(row, dict):
                row, error = None, f"expected a JSON object, got {_kind(row)}"
            yield line, row, error


def load_dataset(path: str | Path, fmt: str = "auto") -> Iterator[tuple[int, Row]]:
    """Read a dataset file (JSONL or JSON array) as data-contract samples.

    Args:
        path: the file.
        fmt: the rows' format, or "auto" to detect it row by row.
    Returns:
        an iterator of (line, sample); the file is checked now and read lazily.
    Raises:
        DatasetFileError: the file is missing or unreadable (raised by this call).
        InputError: an unknown format name (raised by this call); while iterating, a row that
            is not valid JSON or whose shape no format reads, as `file:line: why`.
    """
    name = None if fmt == "auto" else normalize_format(fmt)
    path = check_readable(path)
    return _load(path, name)


def _load(path: Path, fmt: str | None) -> Iterator[tuple[int, Row]]:
    for line, row, error in iter_rows(path):
        if error is not None:
            raise InputError(f"{path}:{line}: {error}", hint="each row must be one JSON object")
        try:
            yield line, to_contract(row, fmt)
        except InputError as e:
            raise InputError(f"{path}:{line}: {e.message}", hint=e.hint) from None


def write_dataset(samples: Iterable[Row], path: str | Path, fmt: str = "openai") -> int:
    """Write contract samples to `path` in `fmt`, atomically (temp file, fsync, rename).

    A `.json` path gets a JSON array; any other path gets JSONL. Nothing is written when a
    sample cannot be converted.

    Returns:
        the number of rows written.
    Raises:
        InputError: an unknown format, or a sample the format cannot hold.
    """
    name = normalize_format(fmt)
    rows = [from_contract(s, name) for s in samples]
    if Path(path).suffix.lower() == ".json":
        text = json.dumps(rows, ensure_ascii=False, indent=2) + "\n"
    else:
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    atomic_write_text(path, text)
    return len(rows)
