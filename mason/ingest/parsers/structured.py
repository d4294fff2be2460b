"""JSON-based documents: Jupyter notebooks (.ipynb), JSON (.json) and JSON Lines (.jsonl, .ndjson).

Notebooks: markdown cells as they are (Setext headings made ATX), code cells as fenced code in
the kernel's language, raw cells as plain fences; with `notebook_outputs` the text outputs of
code cells follow their cell as `text` fences (each cut at `_OUTPUT_CHARS`). Images and HTML
outputs are never kept.

JSON is rendered for reading, not for machines: an object's scalar fields become `key: value`
lines, its nested objects `##` sections (down to three levels, deeper ones inline as compact
JSON), a list of flat records with the same keys a Markdown table, other lists bullet points or
one block per item. JSON Lines: one block per line (a table when all lines are flat records
with the same keys). A line that is not JSON is skipped, counted in a warning.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mason.ingest.parsers.base import ParsedDocument, ParseError, first_heading, normalize_text, options, require_text
from mason.ingest.parsers.tables import cell_text, markdown_table
from mason.ingest.parsers.text import decode_bytes, setext_to_atx

_OUTPUT_CHARS = 2000
_MAX_HEADING_DEPTH = 3
_INLINE_CHARS = 80


def _source(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _fence(body: str, lang: str = "") -> str:
    body = body.strip("\n")
    ticks = "```"
    while ticks in body:
        ticks += "`"
    return f"{ticks}{lang}\n{body}\n{ticks}"


def _outputs(cell: dict[str, Any]) -> list[str]:
    texts = []
    for out in cell.get("outputs") or []:
        kind = out.get("output_type")
        if kind == "stream":
            text = out.get("text", "")
        elif kind in ("execute_result", "display_data"):
            text = (out.get("data") or {}).get("text/plain", "")
        elif kind == "error":
            text = f"{out.get('ename', 'Error')}: {out.get('evalue', '')}"
        else:
            continue
        text = "".join(text) if isinstance(text, list) else str(text)
        if text.strip():
            if len(text) > _OUTPUT_CHARS:
                text = text[:_OUTPUT_CHARS] + "\n[... output cut ...]"
            texts.append(_fence(text, "text"))
    return texts


def notebook_markdown(nb: dict[str, Any]) -> str:
    """Markdown of a parsed notebook (see module docstring)."""
    meta = nb.get("metadata") or {}
    lang = (meta.get("kernelspec") or {}).get("language") or (meta.get("language_info") or {}).get("name") or ""
    keep_outputs = options().notebook_outputs
    blocks = []
    for cell in nb.get("cells") or []:
        kind, src = cell.get("cell_type"), _source(cell)
        if kind == "markdown":
            blocks.append(setext_to_atx(src.replace("\r\n", "\n")))
        elif kind == "code":
            if src.strip():
                blocks.append(_fence(src, str(lang)))
            if keep_outputs:
                blocks += _outputs(cell)
        elif kind == "raw" and src.strip():
            blocks.append(_fence(src))
    return "\n\n".join(b for b in blocks if b.strip())


def _load_json(path: Path, what: str) -> Any:
    text = decode_bytes(Path(path).read_bytes())
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ParseError("corrupt", f"malformed {what} ({e})") from None


class NotebookParser:
    """Jupyter notebooks (.ipynb, nbformat 4)."""

    name = "ipynb"
    extensions = (".ipynb",)

    def parse(self, path: Path) -> ParsedDocument:
        """Parse one notebook. Raises ParseError (corrupt, empty)."""
        nb = _load_json(path, "notebook")
        if not isinstance(nb, dict) or not isinstance(nb.get("cells", []), list):
            raise ParseError("corrupt", "not a Jupyter notebook (no list of cells)")
        text = normalize_text(notebook_markdown(nb))
        require_text(text, "notebook")
        title = (nb.get("metadata") or {}).get("title") or first_heading(text)
        return ParsedDocument(text=text, title=title if isinstance(title, str) else None, pages=None, parser=self.name)


# ---------------------------------------------------------------- JSON


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _inline(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return " ".join(value.split())
    if _scalar(value):
        return cell_text(value)
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def _short(value: Any) -> bool:
    """A scalar, or a flat list/object short enough for one `key: value` line."""
    if _scalar(value):
        return True
    items = value.values() if isinstance(value, dict) else value
    return all(_scalar(v) for v in items) and len(_inline(value)) <= _INLINE_CHARS


def _records_table(items: list[Any]) -> str | None:
    """A Markdown table when `items` are flat objects sharing their keys, else None."""
    if len(items) < 2 or not all(isinstance(i, dict) and i and all(_scalar(v) for v in i.values()) for i in items):
        return None
    keys: list[str] = []
    for item in items:
        keys += [k for k in item if k not in keys]
    if len(keys) > 12 or any(len(item) < len(keys) / 2 for item in items):
        return None
    rows = [[cell_text(k) for k in keys]] + [[cell_text(item.get(k)) for k in keys] for item in items]
    return markdown_table(rows)


def json_markdown(value: Any, depth: int = 1) -> str:
    """Readable Markdown of a JSON value (see module docstring)."""
    if _scalar(value):
        return _inline(value)
    if isinstance(value, list):
        table = _records_table(value)
        if table is not None:
            return table
        if all(_short(v) for v in value):
            return "\n".join(f"- {_inline(v)}" for v in value if _inline(v))
        return "\n\n".join(json_markdown(v, depth) for v in value)
    lines, sections = [], []
    for key, item in value.items():
        table = _records_table(item) if isinstance(item, list) else None
        if table is None and (_short(item) or depth > _MAX_HEADING_DEPTH):
            if _inline(item):
                lines.append(f"{key}: {_inline(item)}")
        else:
            body = table or json_markdown(item, depth + 1)
            if body.strip():
                sections.append(f"{'#' * min(depth + 1, 6)} {key}\n\n{body}")
    return "\n\n".join(["\n".join(lines)] * bool(lines) + sections)


class JsonParser:
    """JSON documents (.json) and JSON Lines (.jsonl, .ndjson)."""

    name = "json"
    extensions = (".json", ".jsonl", ".ndjson")

    def parse(self, path: Path) -> ParsedDocument:
        """Parse one file into readable text. Raises ParseError (corrupt, empty)."""
        path = Path(path)
        if path.suffix.lower() == ".json":
            text = json_markdown(_load_json(path, "JSON"))
        else:
            text = self._lines(path)
        text = normalize_text(text)
        require_text(text, "JSON document")
        return ParsedDocument(text=text, title=first_heading(text), pages=None, parser=self.name)

    def _lines(self, path: Path) -> str:
        from mason.core.console import warn

        records, bad = [], 0
        limit = options().max_sheet_rows
        with open(path, "rb") as f:
            for raw in f:
                if not raw.strip():
                    continue
                try:
                    records.append(json.loads(raw))
                except (json.JSONDecodeError, UnicodeDecodeError):
                    bad += 1
                if len(records) >= limit:
                    warn(f"{path.name}: only the first {limit} JSON lines are kept (knowledge_source.max_sheet_rows)")
                    break
        if bad:
            warn(f"{path.name}: {bad} line(s) are not JSON and were skipped")
        if not records and bad:
            raise ParseError("corrupt", "no line of this JSON Lines file is JSON")
        table = _records_table(records)
        if table is not None:
            return table
        return "\n\n".join(json_markdown(r, 2) for r in records)
