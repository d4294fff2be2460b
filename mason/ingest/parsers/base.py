"""What every document parser returns and raises, and the text clean-up they share.

A parser turns one file into `ParsedDocument.text`: clean, Markdown-ish UTF-8 text where
headings are ATX lines (`# Title`, `## Section`) and paragraphs are separated by one blank
line. The chunker relies on exactly that shape (see `mason.ingest.chunker`).
"""

from __future__ import annotations

import contextlib
import re
import unicodedata
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

SkipKind = Literal["corrupt", "encrypted", "empty", "unsupported", "unsafe", "too_large", "unreachable", "disallowed"]
SKIP_KINDS: tuple[SkipKind, ...] = (
    "corrupt", "encrypted", "empty", "unsupported", "unsafe", "too_large", "unreachable", "disallowed",
)  # fmt: skip

#: private-use characters a parser puts around text it read with OCR; `parse_document` removes them
#: and records the spans in `ParsedDocument.ocr_spans`
OCR_START, OCR_END = "\ue000", "\ue001"
_MARKS = re.compile(f"[{OCR_START}{OCR_END}]")


@dataclass(frozen=True)
class ParsedDocument:
    """The text of one document.

    Attributes:
        text: clean Markdown-ish text (ATX headings, blank line between paragraphs).
        title: the document's title when it declares one (metadata or first heading), else None.
        pages: number of pages or slides where the format has them, else None.
        parser: name of the parser that produced `text` (e.g. "pypdfium2", "docx/mammoth").
        ocr_spans: character spans ([start, end) of `text`) read with OCR, in order.
        ocr_pages: pages (or images) read with OCR.
    """

    text: str
    title: str | None
    pages: int | None
    parser: str
    ocr_spans: tuple[tuple[int, int], ...] = ()
    ocr_pages: int = 0


class ParseError(Exception):
    """A file that cannot give usable text, with the reason a user can act on.

    Attributes:
        kind: "corrupt" (unreadable or malformed), "encrypted" (password protected),
            "empty" (no extractable text), "unsupported" (no parser for the extension, or a
            media file), "unsafe" (a link out of the folder, a zip bomb, not a regular file),
            "too_large" (over `max_file_mb`), and for web pages "unreachable" (HTTP error,
            timeout) or "disallowed" (robots.txt, another site).
        reason: one short sentence for the warning, e.g. "PDF is password protected".
    """

    def __init__(self, kind: SkipKind, reason: str):
        super().__init__(reason)
        self.kind: SkipKind = kind
        self.reason = reason


@runtime_checkable
class Parser(Protocol):
    """A document parser. Register one per format family (see `mason.ingest.parsers`).

    Attributes:
        name: short name recorded in documents.jsonl and in the parse-cache key.
        extensions: lower-case extensions with the dot, e.g. (".docx",).

    Optional: `precheck(path)` raises ParseError to refuse a file before it is read or hashed
    (media files); `supported = False` keeps the extensions out of `supported_extensions()`.
    Settings (OCR mode, limits) come from `options()`; text read with OCR goes between
    `OCR_START` and `OCR_END` (`mark_ocr`).
    """

    name: str
    extensions: tuple[str, ...]

    def parse(self, path: Path) -> ParsedDocument:
        """Parse one file. Raises `ParseError` for files that give no usable text."""
        ...


@dataclass(frozen=True)
class ParseOptions:
    """Settings parsers read through `options()` (the `Parser` protocol takes only a path).

    Attributes:
        ocr: "auto", "on" or "off" (see `IngestConfig.ocr`).
        notebook_outputs: keep the text outputs of notebook code cells.
        max_sheet_rows: rows kept per spreadsheet sheet or CSV file.
        max_document_chars: characters of text kept per document.
        max_file_bytes: larger files are refused; also the most a zip-based document may unpack to.
    """

    ocr: str = "auto"
    notebook_outputs: bool = False
    max_sheet_rows: int = 5000
    max_document_chars: int = 10_000_000
    max_file_bytes: int = 256 << 20


_OPTIONS: ContextVar[ParseOptions] = ContextVar("mason_parse_options", default=ParseOptions())


def options() -> ParseOptions:
    """The parse options in force (defaults outside `using_options`)."""
    return _OPTIONS.get()


@contextlib.contextmanager
def using_options(opts: ParseOptions) -> Iterator[ParseOptions]:
    """Parse with `opts` inside the `with` block."""
    token = _OPTIONS.set(opts)
    try:
        yield opts
    finally:
        _OPTIONS.reset(token)


def take_ocr_marks(text: str) -> tuple[str, tuple[tuple[int, int], ...]]:
    """Remove the OCR marks from `text`: (clean text, spans of the marked text).

    Spans separated only by whitespace are merged; an unclosed mark runs to the end.
    """
    if OCR_START not in text and OCR_END not in text:
        return text, ()
    out: list[str] = []
    spans: list[tuple[int, int]] = []
    length, pos, start = 0, 0, None
    for m in _MARKS.finditer(text):
        out.append(text[pos : m.start()])
        length += m.start() - pos
        pos = m.end()
        if m.group() == OCR_START:
            start = length if start is None else start
        elif start is not None:
            if length > start:
                spans.append((start, length))
            start = None
    out.append(text[pos:])
    clean = "".join(out)
    if start is not None and len(clean) > start:
        spans.append((start, len(clean)))
    merged: list[tuple[int, int]] = []
    for a, b in spans:
        if merged and not clean[merged[-1][1] : a].strip():
            merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    return clean, tuple(merged)


def mark_ocr(text: str) -> str:
    """`text` (stripped) between OCR marks, or "" when it is blank."""
    text = text.strip()
    return f"{OCR_START}{text}{OCR_END}" if text else ""


# Control characters other than tab/newline come from broken encodings and PDF extraction
# artefacts; they confuse tokenizers and JSON viewers alike.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufeff\ufffe\uffff]")
_TRAILING_WS = re.compile(r"[ \t\u00a0]+$", re.MULTILINE)
_BLANK_RUNS = re.compile(r"\n{3,}")
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
# ![alt](data:... or url "title") -> alt ; data URIs can be megabytes of base64
_MD_IMAGE = re.compile(r"!\[([^\]]*)\]\((?:[^()]|\([^()]*\))*\)")
# [text](url) -> text ; links carry no knowledge for Q&A and inflate token counts
_MD_LINK = re.compile(r"(?<!!)\[([^\]]+)\]\((?:[^()\s]|\([^()]*\))*(?:\s+\"[^\"]*\")?\)")
_ATX = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
# a heading line directly followed by text (converters often do this): add the blank line
_HEADING_THEN_TEXT = re.compile(r"^(#{1,6}[ \t][^\n]*)\n(?=[^\n])", re.MULTILINE)


def normalize_text(text: str) -> str:
    """Canonical text: NFC, `\\n` line ends, no control chars, no trailing spaces, at most one
    blank line in a row, no leading/trailing blank lines. Returns the normalized text."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = unicodedata.normalize("NFC", text)
    text = _CONTROL.sub("", text)
    text = _TRAILING_WS.sub("", text)
    text = _BLANK_RUNS.sub("\n\n", text)
    return text.strip("\n ")


def clean_markdown(markdown: str) -> str:
    """Clean Markdown produced by converters: drop HTML comments, replace images by their alt
    text and links by their text, then `normalize_text`. Returns the cleaned text."""
    text = _HTML_COMMENT.sub("", markdown)
    text = _MD_IMAGE.sub(lambda m: m.group(1).strip(), text)
    text = _MD_LINK.sub(lambda m: m.group(1), text)
    text = _HEADING_THEN_TEXT.sub(r"\1\n\n", text)
    return normalize_text(text)


def first_heading(text: str) -> str | None:
    """Text of the first ATX heading of `text` (highest level wins ties by position), or None."""
    best: tuple[int, str] | None = None
    for m in _ATX.finditer(text):
        level = len(m.group(1))
        if best is None or level < best[0]:
            best = (level, m.group(2).strip())
            if level == 1:
                break
    return best[1] if best else None


def require_text(text: str, what: str) -> str:
    """Return `text` if it has any visible character; else raise ParseError("empty").

    `what` names the format in the message, e.g. "DOCX".
    """
    if not text.strip():
        raise ParseError("empty", f"{what} has no extractable text")
    return text
