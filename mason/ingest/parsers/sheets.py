"""Spreadsheets and delimited text: Excel (.xlsx/.xlsm with openpyxl, legacy .xls with xlrd), CSV and TSV.

Each sheet becomes a `## Sheet name` section holding a Markdown table (its first non-empty row is
the header; see `tables.markdown_table` for how long tables are cut). Sheets are read row by row
in read-only mode and stop at `max_sheet_rows`: a sheet of a million rows costs that many rows of
reading, not of memory, and the rows left out are reported with a warning. Cell values are the
ones Excel last computed (formulas are not evaluated). Hidden sheets are read too.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from mason.ingest.parsers.base import ParsedDocument, ParseError, normalize_text, options, require_text
from mason.ingest.parsers.office import check_ooxml_container, core_title
from mason.ingest.parsers.tables import markdown_table, trim

_SNIFF_BYTES = 64 << 10


def _capped(rows: Iterable[Sequence[Any]], limit: int) -> tuple[list[Sequence[Any]], int]:
    """(the first `limit` non-empty rows, how many non-empty rows were left out)."""
    kept: list[Sequence[Any]] = []
    dropped = 0
    for row in rows:
        if not any(v not in (None, "") for v in row):
            continue
        if len(kept) < limit:
            kept.append(row)
        else:
            dropped += 1
            if dropped >= 1_000_000:  # counting the rest costs time too: stop counting
                break
    return kept, dropped


def sheets_markdown(sheets: Iterable[tuple[str, Iterable[Sequence[Any]]]], fmt: str, file: str) -> tuple[str, int]:
    """Markdown of (sheet name, rows) pairs: one `##` section per non-empty sheet. Returns (text, sheets)."""
    from mason.core.console import warn

    limit = options().max_sheet_rows
    blocks, n = [], 0
    for name, rows in sheets:
        n += 1
        kept, dropped = _capped(rows, limit)
        table = markdown_table(trim(kept))
        if dropped:
            more = "over 1000000" if dropped >= 1_000_000 else str(dropped)
            warn(f"{file}: {fmt} sheet {name!r} has {more} rows past the first {limit}; they are left out "
                 "(knowledge_source.max_sheet_rows)")  # fmt: skip
        if table:
            blocks.append(f"## {name}\n\n{table}" if name else table)
    return "\n\n".join(blocks), n


class XlsxParser:
    """Excel workbooks (.xlsx, .xlsm) through openpyxl in read-only mode."""

    name = "xlsx"
    extensions = (".xlsx", ".xlsm")

    def parse(self, path: Path) -> ParsedDocument:
        """Parse one workbook; each sheet a section. Raises ParseError (corrupt, encrypted, empty, unsafe)."""
        import openpyxl

        path = Path(path)
        check_ooxml_container(path, "XLSX")
        try:
            wb = openpyxl.load_workbook(path, read_only=True, data_only=True, keep_links=False)
        except (KeyError, ValueError, TypeError, OSError) as e:
            raise ParseError("corrupt", f"cannot read XLSX ({type(e).__name__}: {e})") from None
        try:
            sheets = ((ws.title, ws.iter_rows(values_only=True)) for ws in wb.worksheets)
            text, n = sheets_markdown(sheets, "XLSX", path.name)
        finally:
            wb.close()
        text = normalize_text(text)
        require_text(text, "XLSX workbook")
        return ParsedDocument(text=text, title=core_title(path), pages=n or None, parser=self.name)


class XlsParser:
    """Legacy Excel workbooks (.xls, BIFF) through xlrd."""

    name = "xls"
    extensions = (".xls",)

    def parse(self, path: Path) -> ParsedDocument:
        """Parse one workbook; each sheet a section. Raises ParseError (corrupt, encrypted, empty)."""
        import xlrd

        path = Path(path)
        try:
            book = xlrd.open_workbook(str(path), on_demand=True)
        except xlrd.biffh.XLRDError as e:
            if "encrypt" in str(e).lower():
                raise ParseError("encrypted", "XLS is password protected") from None
            raise ParseError("corrupt", f"cannot read XLS ({e})") from None
        try:
            def rows(sheet: Any) -> Iterator[list[Any]]:
                for r in range(sheet.nrows):
                    yield [_xls_value(cell, book.datemode) for cell in sheet.row(r)]

            sheets = ((name, rows(book.sheet_by_name(name))) for name in book.sheet_names())
            text, n = sheets_markdown(sheets, "XLS", path.name)
        finally:
            book.release_resources()
        text = normalize_text(text)
        require_text(text, "XLS workbook")
        return ParsedDocument(text=text, title=None, pages=n or None, parser=self.name)


def _xls_value(cell: Any, datemode: int) -> Any:
    import xlrd

    if cell.ctype == xlrd.XL_CELL_DATE:
        try:
            return xlrd.xldate.xldate_as_datetime(cell.value, datemode)
        except (ValueError, OverflowError, xlrd.xldate.XLDateError):
            return cell.value
    if cell.ctype == xlrd.XL_CELL_BOOLEAN:
        return bool(cell.value)
    if cell.ctype in (xlrd.XL_CELL_ERROR, xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK):
        return None
    return cell.value


def sniff_encoding(head: bytes) -> str:
    """The encoding of a text file from its first bytes: BOM, UTF-8, else charset detection."""
    for bom, name in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if head.startswith(bom):
            return name
    try:
        head.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as e:
        if e.start >= len(head) - 4:  # a character cut by the end of the sample
            return "utf-8"
    from charset_normalizer import from_bytes

    best = from_bytes(head).best()
    if best is None:
        raise ParseError("corrupt", "binary data, not text in any known character encoding")
    return best.encoding


class CsvParser:
    """Delimited text (.csv, .tsv): one table, streamed, the delimiter sniffed from the first lines."""

    name = "csv"
    extensions = (".csv", ".tsv")

    def parse(self, path: Path) -> ParsedDocument:
        """Parse one file into a Markdown table. Raises ParseError (corrupt, empty)."""
        path = Path(path)
        with open(path, "rb") as f:
            head = f.read(_SNIFF_BYTES)
        if b"\0" in head and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            raise ParseError("corrupt", "binary data, not delimited text")
        encoding = sniff_encoding(head)
        sample = head.decode(encoding, errors="replace")
        if path.suffix.lower() == ".tsv":
            dialect: Any = csv.excel_tab
        else:
            try:
                dialect = csv.Sniffer().sniff(sample[:16384], delimiters=",;\t|")
            except csv.Error:
                dialect = csv.excel
        csv.field_size_limit(1 << 20)
        with open(path, encoding=encoding, errors="replace", newline="") as f:
            try:
                text, _ = sheets_markdown([("", csv.reader(f, dialect))], "CSV", path.name)
            except csv.Error as e:
                raise ParseError("corrupt", f"malformed CSV ({e})") from None
        text = normalize_text(text)
        require_text(text, "CSV file")
        return ParsedDocument(text=text, title=None, pages=None, parser=self.name)

