"""LibreOffice / OpenDocument files (.odt text, .ods spreadsheets) and Rich Text (.rtf).

OpenDocument is a zip whose `content.xml` holds the text; it is read here with lxml (no entity
expansion, no network), in document order: `text:h` headings at their outline level, paragraphs,
list items as `- ` lines, tables as Markdown tables (each sheet of a spreadsheet a `##` section).
RTF goes through striprtf, which drops the control words and keeps the text.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from mason.ingest.parsers.base import ParsedDocument, ParseError, first_heading, normalize_text, options, require_text
from mason.ingest.parsers.safety import check_zip, read_member
from mason.ingest.parsers.tables import markdown_table, trim

_TEXT = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"
_TABLE = "{urn:oasis:names:tc:opendocument:xmlns:table:1.0}"
_OFFICE = "{urn:oasis:names:tc:opendocument:xmlns:office:1.0}"
_DC = "{http://purl.org/dc/elements/1.1/}"
_SKIP = {f"{_TEXT}note", f"{_TEXT}tracked-changes", f"{_OFFICE}annotation", f"{_TEXT}sequence-decls"}
#: repeated empty rows/columns (a sheet's tail is often "1048000 empty rows"): never expanded
_MAX_REPEAT = 100


def _inline(el: Any) -> str:
    """Text of a paragraph-like element: spaces (`text:s`), tabs and line breaks expanded, notes left out."""
    parts: list[str] = []

    def walk(node: Any) -> None:
        if node.tag in _SKIP:
            return
        if node.text:
            parts.append(node.text)
        for child in node:
            if child.tag == f"{_TEXT}s":
                parts.append(" " * min(int(child.get(f"{_TEXT}c", "1") or 1), 100))
            elif child.tag == f"{_TEXT}tab":
                parts.append("\t")
            elif child.tag == f"{_TEXT}line-break":
                parts.append("\n")
            else:
                walk(child)
            if child.tail:
                parts.append(child.tail)

    walk(el)
    return "".join(parts).strip()


def _table_rows(table: Any, limit: int) -> list[list[str]]:
    """Cell texts of a table's rows, at most `limit` non-empty ones (the rest left out with a warning)."""
    rows: list[list[str]] = []
    for row in table.iter(f"{_TABLE}table-row"):
        if len(rows) > limit:
            from mason.core.console import warn

            warn(f"table {table.get(f'{_TABLE}name')!r} has more than {limit} rows; the rest is left out "
                 "(knowledge_source.max_sheet_rows)")  # fmt: skip
            return rows[:limit]
        cells: list[str] = []
        for cell in row:
            if cell.tag not in (f"{_TABLE}table-cell", f"{_TABLE}covered-table-cell"):
                continue
            text = " ".join(_inline(p) for p in cell.iter(f"{_TEXT}p", f"{_TEXT}h"))
            repeat = int(cell.get(f"{_TABLE}number-columns-repeated", "1") or 1)
            cells += [text] * (min(repeat, _MAX_REPEAT) if text else min(repeat, 1))
        repeat = int(row.get(f"{_TABLE}number-rows-repeated", "1") or 1)
        rows += [cells] * (min(repeat, _MAX_REPEAT) if any(cells) else 1)
    return rows


def _blocks(body: Any, spreadsheet: bool) -> list[str]:
    blocks: list[str] = []
    stack = [iter(body)]
    while stack:
        node = next(stack[-1], None)
        if node is None:
            stack.pop()
            continue
        tag = node.tag
        if tag in _SKIP:
            continue
        if tag == f"{_TEXT}h":
            text = _inline(node)
            level = int(node.get(f"{_TEXT}outline-level", "1") or 1)
            if text:
                blocks.append(f"{'#' * max(1, min(level, 6))} {text}")
        elif tag == f"{_TEXT}p":
            text = _inline(node)
            if text:
                blocks.append(text)
        elif tag == f"{_TEXT}list-item":
            items = [_inline(p) for p in node.iter(f"{_TEXT}p", f"{_TEXT}h")]
            text = " ".join(t for t in items if t)
            if text:
                blocks.append(f"- {text}")
        elif tag == f"{_TABLE}table":
            table = markdown_table(trim(_table_rows(node, options().max_sheet_rows)))
            name = node.get(f"{_TABLE}name")
            if table and spreadsheet and name:
                blocks.append(f"## {name}\n\n{table}")
            elif table:
                blocks.append(table)
        else:
            stack.append(iter(node))
    return blocks


class OpenDocumentParser:
    """OpenDocument text (.odt) and spreadsheets (.ods)."""

    name = "opendocument"
    extensions = (".odt", ".ods")

    def parse(self, path: Path) -> ParsedDocument:
        """Parse one file. Raises ParseError (corrupt, encrypted, empty, unsafe)."""
        from lxml import etree

        path = Path(path)
        fmt = path.suffix.lstrip(".").upper()
        if not zipfile.is_zipfile(path):
            raise ParseError("corrupt", f"not a valid {fmt} file (not a zip archive)")
        parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
        with zipfile.ZipFile(path) as z:
            check_zip(path, fmt, z)
            try:
                manifest = read_member(z, "META-INF/manifest.xml", fmt)
            except KeyError:
                manifest = b""
            if b"encryption-data" in manifest:
                raise ParseError("encrypted", f"{fmt} is password protected")
            try:
                root = etree.fromstring(read_member(z, "content.xml", fmt), parser=parser)
            except KeyError:
                raise ParseError("corrupt", f"not an OpenDocument file: the {fmt} has no content.xml") from None
            except etree.XMLSyntaxError as e:
                raise ParseError("corrupt", f"malformed {fmt} content ({e})") from None
            title = None
            try:
                meta = etree.fromstring(read_member(z, "meta.xml", fmt), parser=parser)
                el = meta.find(f".//{_DC}title")
                title = (el.text or "").strip() or None if el is not None else None
            except (KeyError, etree.XMLSyntaxError):
                pass
        body = root.find(f"{_OFFICE}body")
        if body is None:
            raise ParseError("corrupt", f"{fmt} has no document body")
        text = normalize_text("\n\n".join(_blocks(body, spreadsheet=fmt == "ODS")))
        require_text(text, fmt)
        return ParsedDocument(text=text, title=title or (first_heading(text) if fmt == "ODT" else None), pages=None,
                              parser=self.name)  # fmt: skip


class RtfParser:
    """Rich Text Format (.rtf) through striprtf."""

    name = "rtf"
    extensions = (".rtf",)

    def parse(self, path: Path) -> ParsedDocument:
        """Parse one RTF file into plain paragraphs. Raises ParseError (corrupt, empty)."""
        from striprtf.striprtf import rtf_to_text

        data = Path(path).read_bytes()
        if not data.lstrip().startswith(b"{\\rtf"):
            raise ParseError("corrupt", "not an RTF file (no {\\rtf header)")
        # RTF is 7-bit: non-ASCII text is escaped (\'e9, \u233) and decoded by striprtf
        text = rtf_to_text(data.decode("latin-1"), errors="replace")
        lines = [line.strip() for line in text.split("\n")]
        text = normalize_text("\n\n".join(line for line in lines if line))
        require_text(text, "RTF")
        return ParsedDocument(text=text, title=None, pages=None, parser=self.name)
