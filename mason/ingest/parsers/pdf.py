"""PDF text: pypdfium2 (PDFium, fast) by default, markitdown's pdfminer-based converter as the
fallback for files PDFium refuses and as the `pdf_parser: markitdown` option.

PDFium gives the text of each page as lines. We read a few numbers per line (font size, bold,
baseline, left and right edge: a handful of C calls, not per character) and rebuild what the
chunker needs: paragraphs (a wider gap or a short line ending a sentence closes one), headings
(lines set larger than the body text, or bold standalone lines, become `#` lines ranked by
size), running headers/footers and page numbers removed, and paragraphs that continue across
a page break joined again.
"""

from __future__ import annotations

import ctypes
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mason.ingest.parsers.base import ParsedDocument, ParseError, clean_markdown, mark_ocr, normalize_text, options

_LINE = re.compile(r"[^\r\n]+")
_PAGE_NUMBER = re.compile(r"^(?:page\s*)?[-\u2013(]?\s*\d+\s*[-\u2013)]?(?:\s*(?:/|of)\s*\d+)?$", re.IGNORECASE)
_BULLET = re.compile(r"^(?:[\u2022\u2023\u25aa\u25cf\u00b7\u2013*-]\s|\(?\d{1,3}[.)]\s|\(?[a-z][.)]\s)")
_HAS_LETTER = re.compile(r"[^\W\d_]")
_SENTENCE_END = re.compile(r"[.!?:;\"'\u201d)]$")
_BOLD_NAME = re.compile(r"bold|black|heavy|semibold|demi", re.IGNORECASE)
#: pages with at least this many vector paths (cell borders) are searched for tables
_TABLE_MIN_PATHS = 4
# PDFium joins a word hyphenated at a line end itself and marks the hyphen with U+FFFE. Before
# a lower-case letter it is a word split for justification ("exam-/ple" -> "example"); before
# anything else it is kept as a real hyphen ("well-/Known" -> "well-Known").
_LINE_END_HYPHEN = re.compile("\ufffe(?=[^\\W\\d_])")


@dataclass
class _Line:
    text: str
    size: float
    bold: bool
    x0: float
    x1: float
    y: float  # baseline, PDF user space (grows upwards)
    ocr: bool = False  # read with OCR from a page without a text layer
    table: bool = False  # `text` is a whole Markdown table (see `_insert_tables`)


class _FontReader:
    """(font size, bold) of a char. Bold comes from the weight, or else from the font name
    (the 14 standard PDF fonts report no weight: "Helvetica-Bold" is the only clue)."""

    def __init__(self) -> None:
        import pypdfium2.raw as pdfium_c

        self._c = pdfium_c
        self._buf = ctypes.create_string_buffer(128)
        self._flags = ctypes.c_int()
        self._bold_names: dict[bytes, bool] = {}

    def __call__(self, tp: Any, ci: int) -> tuple[float, bool]:
        c = self._c
        size = round(float(c.FPDFText_GetFontSize(tp, ci)) * 2) / 2
        if c.FPDFText_GetFontWeight(tp, ci) >= 600:
            return size, True
        n = c.FPDFText_GetFontInfo(tp, ci, self._buf, 128, ctypes.byref(self._flags))
        if not 0 < n <= 128:
            return size, False
        name = self._buf.value
        bold = self._bold_names.get(name)
        if bold is None:
            bold = self._bold_names[name] = bool(_BOLD_NAME.search(name.decode("latin-1")))
        return size, bold


def page_lines(textpage: Any, font: _FontReader | None = None) -> list[_Line]:
    """The text lines of one page (a pypdfium2 PdfTextPage) with their layout numbers."""
    import pypdfium2.raw as pdfium_c

    font = font or _FontReader()

    text = textpage.get_text_range()
    if not text.strip():
        return []
    tp = textpage.raw
    x, y = ctypes.c_double(), ctypes.c_double()
    lines: list[_Line] = []
    for m in _LINE.finditer(text):
        content = m.group(0).strip()
        if not content:
            continue
        # text indices count UTF-16 units and generated chars; translate to PDFium char indices
        lead = len(m.group(0)) - len(m.group(0).lstrip())
        first = pdfium_c.FPDFText_GetCharIndexFromTextIndex(tp, m.start() + lead)
        last = pdfium_c.FPDFText_GetCharIndexFromTextIndex(tp, m.start() + len(m.group(0).rstrip()) - 1)
        if first < 0:
            lines.append(_Line(_dehyphenate(content), 0.0, False, 0.0, 0.0, 0.0))
            continue
        size, bold = font(tp, first)
        if bold and last >= 0 and last != first:
            bold = font(tp, last)[1]
        pdfium_c.FPDFText_GetCharOrigin(tp, first, ctypes.byref(x), ctypes.byref(y))
        x0, y0 = x.value, y.value
        x1 = textpage.get_charbox(last, loose=True)[2] if last >= 0 else x0
        lines.append(_Line(_dehyphenate(content), size, bold, x0, x1, y0))
    return lines


def _dehyphenate(text: str) -> str:
    if "\ufffe" not in text:
        return text
    text = _LINE_END_HYPHEN.sub(lambda m: "" if m.string[m.end()].islower() else "-", text)
    return text.replace("\ufffe", "-")


def _strip_running_lines(pages: list[list[_Line]]) -> None:
    """Remove page numbers and headers/footers repeated on most pages, in place.

    A first or last line goes when it is short and, in the same font size and digits aside,
    recurs at that place on at least half the pages (two at least), or when it is a page number
    ("7", "Page 7", "7 of 20", "- 7 -") equal to the page's position. The size keeps a title on
    page 1 that the other pages repeat in small print as their running header.
    """

    def key(line: _Line) -> tuple[str, float]:
        if line.table:
            return "\0table", -1.0  # never a running header
        return re.sub(r"\d+", "#", line.text.lower()), line.size

    tops = Counter(key(p[0]) for p in pages if p)
    bottoms = Counter(key(p[-1]) for p in pages if p)
    need = max(2, (len(pages) + 1) // 2)
    for number, lines in enumerate(pages, start=1):
        for pos, counts in ((-1, bottoms), (0, tops)):
            if not lines:
                continue
            text = lines[pos].text
            if lines[pos].table:
                continue
            page_no = _PAGE_NUMBER.match(text) and re.search(r"\d+", text).group() == str(number)
            # running headers are short; a long line is body text even when it recurs
            if (len(text) <= 80 and counts[key(lines[pos])] >= need) or page_no:
                lines.pop(pos)


@dataclass
class _Layout:
    body_size: float
    pitch: float  # usual baseline distance between two lines of a paragraph
    right: float  # usual right edge of a full body line
    width: float
    levels: dict[float, int]  # heading font size -> heading level


def _analyse(pages: list[list[_Line]]) -> _Layout:
    sizes: Counter[float] = Counter()
    pages = [[ln for ln in lines if not ln.table] for lines in pages]
    for lines in pages:
        for ln in lines:
            sizes[ln.size] += len(ln.text)
    body = sizes.most_common(1)[0][0] if sizes else 0.0
    gaps: Counter[float] = Counter()
    rights, lefts = [], []
    for lines in pages:
        for a, b in zip(lines, lines[1:]):
            if a.size == body == b.size and 0 < a.y - b.y < 3 * body:
                gaps[round(a.y - b.y, 0)] += 1
        rights += [ln.x1 for ln in lines if ln.size == body]
        lefts += [ln.x0 for ln in lines if ln.size == body]
    rights.sort()
    lefts.sort()
    right = rights[int(len(rights) * 0.9)] if rights else 0.0
    left = lefts[len(lefts) // 2] if lefts else 0.0
    head_sizes = sorted({s for s in sizes if s >= body + max(1.0, 0.15 * body)}, reverse=True)
    return _Layout(
        body_size=body,
        pitch=gaps.most_common(1)[0][0] if gaps else 1.2 * body,
        right=right,
        width=max(right - left, 1.0),
        levels={s: min(i + 1, 6) for i, s in enumerate(head_sizes)},
    )


def _heading_level(line: _Line, layout: _Layout, standalone: bool) -> int | None:
    if len(line.text) > 150 or not _HAS_LETTER.search(line.text):
        return None
    if line.size in layout.levels:
        return layout.levels[line.size]
    # a bold line on its own, at body size, that is not a sentence: a run-in section title
    if line.bold and standalone and line.size >= layout.body_size and len(line.text) <= 80:
        if not _SENTENCE_END.search(line.text) and not line.text.endswith(","):
            return min(len(layout.levels) + 1, 6)
    return None


def _breaks_paragraph(a: _Line, b: _Line, layout: _Layout) -> bool:
    gap = a.y - b.y
    if gap <= 0 or gap > 1.3 * max(layout.pitch, 1.0) or abs(a.size - b.size) > 0.5:
        return True
    if _BULLET.match(b.text):
        return True
    # a short line that ends a sentence closes its paragraph (PDFs without paragraph spacing)
    short = a.x1 < layout.right - 0.15 * layout.width
    return short and bool(_SENTENCE_END.search(a.text))


def _join(prev: str, nxt: str) -> str:
    if prev.endswith("-") and prev[-2:-1].isalpha():
        return prev + nxt  # keep the hyphen (it may be a real one); only drop the line break
    return prev + " " + nxt


def _page_blocks(lines: list[_Line], layout: _Layout) -> tuple[list[str], bool]:
    """Paragraphs and headings of one page, in order, and whether the last paragraph runs on
    (its last line is full width, so it probably continues on the next page)."""
    blocks: list[str] = []
    para: str | None = None
    for i, line in enumerate(lines):
        prev = lines[i - 1] if i else None
        nxt = lines[i + 1] if i + 1 < len(lines) else None
        if line.table:
            if para is not None:
                blocks.append(para)
                para = None
            blocks.append(line.text)
            continue
        standalone = (prev is None or _breaks_paragraph(prev, line, layout)) and (
            nxt is None or _breaks_paragraph(line, nxt, layout)
        )
        level = _heading_level(line, layout, standalone)
        if level is not None:
            if para is not None:
                blocks.append(para)
                para = None
            # a heading wrapped over two lines of the same size is one heading
            if blocks and blocks[-1].startswith("#" * level + " ") and prev is not None and prev.size == line.size:
                if not _breaks_paragraph(prev, line, layout) or prev.y - line.y < 1.6 * line.size:
                    blocks[-1] += " " + line.text
                    continue
            blocks.append("#" * level + " " + line.text)
        elif para is None or (prev is not None and _breaks_paragraph(prev, line, layout)):
            if para is not None:
                blocks.append(para)
            para = line.text
        else:
            para = _join(para, line.text)
    if para is not None:
        blocks.append(para)
    runs_on = para is not None and bool(lines) and lines[-1].x1 >= layout.right - 0.1 * layout.width
    return blocks, runs_on


def lines_to_markdown(pages: list[list[_Line]]) -> str:
    """Markdown-ish text of a document given the lines of each page (see module docstring)."""
    _strip_running_lines(pages)
    # font sizes measured by OCR (from box heights) do not compare with a text layer's: each
    # kind of page gets its own body size and heading sizes
    is_ocr = [any(ln.ocr for ln in lines) for lines in pages]
    layouts = {
        kind: _analyse([lines for lines, o in zip(pages, is_ocr, strict=True) if o == kind]) for kind in set(is_ocr)
    }
    out: list[str] = []
    runs_on, prev_ocr = False, False
    for lines, ocr in zip(pages, is_ocr, strict=True):
        blocks, next_runs_on = _page_blocks(lines, layouts[ocr])
        # a paragraph cut by the page break: rejoin it when the previous page ended on a full
        # line, or mid-sentence with the next page going on in lower case (never across OCR pages
        # or tables)
        plain = ("#", "|")
        if out and blocks and not (ocr or prev_ocr) and not out[-1].startswith(plain) and not blocks[0].startswith(plain):
            mid_sentence = not _SENTENCE_END.search(out[-1]) and blocks[0][:1].islower()
            if runs_on or mid_sentence:
                out[-1] = _join(out[-1], blocks.pop(0))
        out.extend([mark_ocr(b) for b in blocks] if ocr else blocks)
        runs_on, prev_ocr = next_runs_on, ocr
    return normalize_text("\n\n".join(out))


class PdfiumParser:
    """PDF via PDFium (pypdfium2): tens of times faster than markitdown's pdfminer path."""

    name = "pypdfium2"
    extensions = (".pdf",)

    def parse(self, path: Path) -> ParsedDocument:
        """Parse one PDF. Raises ParseError: encrypted, empty (no text layer) or corrupt.

        PDFs that PDFium cannot open are retried with pdfminer (markitdown), which accepts
        some damaged files; the result then names `markitdown-pdf` as its parser.
        """
        import pypdfium2 as pdfium

        try:
            pdf = pdfium.PdfDocument(str(path))
        except pdfium.PdfiumError as e:
            if e.err_code == pdfium.raw.FPDF_ERR_PASSWORD:
                raise ParseError("encrypted", "PDF is password protected") from None
            return _fallback(path, f"PDFium: {e}")
        try:
            title = (pdf.get_metadata_dict().get("Title") or "").strip() or None
            pages, ocr_pages, table_pages = self._read_pages(pdf)
        except pdfium.PdfiumError as e:
            return _fallback(path, f"PDFium: {e}")
        finally:
            pdf.close()
        if table_pages:
            _insert_tables(path, pages, table_pages)
        text = lines_to_markdown(pages)
        if not text.strip():
            raise ParseError("empty", _no_text(len(pages), tried_ocr=ocr_pages > 0))
        return ParsedDocument(text=text, title=title, pages=len(pages), parser=self.name, ocr_pages=ocr_pages)

    def _read_pages(self, pdf: Any) -> tuple[list[list[_Line]], int, list[int]]:
        """(lines of each page, pages read with OCR, pages that may hold ruled tables)."""
        import pypdfium2.raw as pdfium_c

        from mason.ingest.parsers.ocr import ocr_enabled, ocr_pdf_page

        use_ocr, limit = ocr_enabled(), options().max_document_chars
        pages: list[list[_Line]] = []
        ocr_pages, table_pages, chars = 0, [], 0
        font = _FontReader()
        for i in range(len(pdf)):
            page = pdf[i]
            textpage = page.get_textpage()
            try:
                lines = page_lines(textpage, font)
                if not lines and use_ocr and pdfium_c.FPDFPage_CountObjects(page.raw) > 0:
                    lines = ocr_pdf_page(page, _Line)
                    for line in lines:
                        line.ocr = True
                    ocr_pages += 1
                elif lines and _count_paths(page, _TABLE_MIN_PATHS) >= _TABLE_MIN_PATHS:
                    table_pages.append(i)
            finally:
                textpage.close()
                page.close()
            pages.append(lines)
            chars += sum(len(line.text) + 1 for line in lines)
            if chars > limit:
                break  # parse_document cuts the text at the limit and says so
        return pages, ocr_pages, table_pages


def _no_text(n_pages: int, tried_ocr: bool) -> str:
    from mason.ingest.parsers.ocr import INSTALL_HINT, ocr_installed

    what = f"PDF has no extractable text on its {n_pages} page(s)" if n_pages else "PDF has no extractable text"
    if tried_ocr:
        return f"{what}, and OCR found none either"
    mode = options().ocr
    if mode == "off":
        return f"{what} (scanned images? OCR is off: knowledge_source.ocr)"
    if not ocr_installed():
        return f"{what} (scanned images? read them with OCR: {INSTALL_HINT})"
    return f"{what} (no page holds anything to read with OCR)"


def _count_paths(page: Any, enough: int) -> int:
    """Vector paths on the page, counted up to `enough` (cell borders make a ruled table)."""
    import pypdfium2.raw as pdfium_c

    n = 0
    for _ in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_PATH], max_depth=3):
        n += 1
        if n >= enough:
            break
    return n


def _insert_tables(path: Path, pages: list[list[_Line]], candidates: list[int]) -> None:
    """Replace the lines of ruled tables found by pdfplumber with one Markdown-table line each.

    Only pages with enough vector paths are opened with pdfplumber (slow); any failure there
    leaves the page's plain lines as they are.
    """
    from mason.ingest.parsers.tables import markdown_table, trim

    try:
        import pdfplumber

        doc = pdfplumber.open(str(path))
    except Exception:  # no tables rather than no document
        return
    with doc:
        for i in candidates:
            try:
                page = doc.pages[i]
                found = [(t.bbox, trim(t.extract())) for t in page.find_tables()]
                height = float(page.height)
            except Exception:
                continue
            lines = pages[i]
            for (x0, top, x1, bottom), rows in found:
                if len(rows) < 2 or len(rows[0]) < 2:
                    continue
                y_hi, y_lo = height - top + 1, height - bottom - 1
                inside = [k for k, ln in enumerate(lines)
                          if not ln.table and y_lo <= ln.y <= y_hi and x0 - 1 <= ln.x0 <= x1 + 1]  # fmt: skip
                if not inside:
                    continue
                first = lines[inside[0]]
                table = _Line(markdown_table(rows), first.size, False, x0, x1, first.y, table=True)
                for k in reversed(inside[1:]):
                    del lines[k]
                lines[inside[0]] = table


class MarkitdownPdfParser:
    """PDF via markitdown's PdfConverter (pdfplumber/pdfminer): slower, sometimes more tolerant."""

    name = "markitdown-pdf"
    extensions = (".pdf",)

    def parse(self, path: Path) -> ParsedDocument:
        """Parse one PDF. Raises ParseError (encrypted, empty or corrupt)."""
        from markitdown import StreamInfo
        from markitdown.converters import PdfConverter

        try:
            with open(path, "rb") as f:
                result = PdfConverter().convert(f, StreamInfo(extension=".pdf"))
        except Exception as e:  # pdfminer raises many unrelated types for damaged files
            if "password" in str(e).lower() or type(e).__name__ == "PDFPasswordIncorrect":
                raise ParseError("encrypted", "PDF is password protected") from None
            raise ParseError("corrupt", f"damaged PDF ({type(e).__name__}: {e})") from None
        raw = result.markdown or ""
        pages = raw.count("\f") + 1 if raw.strip() else None
        text = clean_markdown(raw)
        if not text.strip():
            raise ParseError("empty", _no_text(0, tried_ocr=False))
        return ParsedDocument(text=text, title=result.title, pages=pages, parser=self.name)


def _fallback(path: Path, why: str) -> ParsedDocument:
    try:
        return MarkitdownPdfParser().parse(path)
    except ParseError as e:
        if e.kind == "encrypted":
            raise
        raise ParseError("corrupt", f"damaged PDF ({why}; pdfminer: {e.reason})") from None
