"""Document parsers, chosen by file extension from a registry.

Built-in: PDF (pypdfium2 with OCR for scanned pages and ruled tables, markitdown fallback), DOCX
(mammoth, with fallbacks), PPTX (markitdown), spreadsheets (XLSX, XLS, CSV/TSV, ODS), EPUB, Jupyter
notebooks, JSON / JSON Lines, Outlook .msg, OpenDocument text (.odt), RTF, HTML and saved web
pages, Markdown / reStructuredText / text, and generic XML. Images are read with OCR when
`ocr: on`; audio and video are refused with a reason. Third-party packages add or replace
parsers through the `mason.parsers` entry-point group; each entry point names a factory (usually
the parser class) whose instances follow the `Parser` protocol:

    [project.entry-points."mason.parsers"]
    djvu = "my_pkg.djvu:DjvuParser"      # class with name, extensions, parse(path)

A parser may also have `precheck(path)`, which refuses a file before it is read or hashed, and
`supported = False`, which keeps its extensions out of the "supported formats" list. Parsers read
the stage's settings (OCR mode, limits) through `base.options()`.

Importing this package is cheap: parser modules import their libraries inside `parse`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from mason.ingest.parsers.base import (
    SKIP_KINDS,
    ParsedDocument,
    ParseError,
    ParseOptions,
    Parser,
    SkipKind,
    normalize_text,
    options,
    take_ocr_marks,
    using_options,
)
from mason.ingest.parsers.docx import DocxParser
from mason.ingest.parsers.ebook import EpubParser
from mason.ingest.parsers.html import HtmlParser
from mason.ingest.parsers.ocr import ImageParser, MediaParser
from mason.ingest.parsers.office import PptxParser
from mason.ingest.parsers.opendoc import OpenDocumentParser, RtfParser
from mason.ingest.parsers.outlook import MsgParser
from mason.ingest.parsers.pdf import MarkitdownPdfParser, PdfiumParser
from mason.ingest.parsers.safety import check_size
from mason.ingest.parsers.sheets import CsvParser, XlsParser, XlsxParser
from mason.ingest.parsers.structured import JsonParser, NotebookParser
from mason.ingest.parsers.text import TextParser
from mason.ingest.parsers.xml import XmlParser

__all__ = [
    "ENTRY_POINT_GROUP",
    "PARSERS",
    "PDF_PARSERS",
    "SKIP_KINDS",
    "ParseError",
    "ParseOptions",
    "ParsedDocument",
    "Parser",
    "ParserFactory",
    "SkipKind",
    "cap_text",
    "get_parser",
    "parse_document",
    "register_parser",
    "supported_extensions",
    "using_options",
]

ParserFactory = Callable[[], Parser]
ENTRY_POINT_GROUP = "mason.parsers"

# extension (lower case, with the dot) -> factory of the parser for it
PARSERS: dict[str, ParserFactory] = {}
# the `pdf_parser` config option -> factory; plugins registering ".pdf" replace "pypdfium2"
PDF_PARSERS: dict[str, ParserFactory] = {"pypdfium2": PdfiumParser, "markitdown": MarkitdownPdfParser}

_instances: dict[tuple[str, str], Parser] = {}
_plugins_loaded = False


def register_parser(factory: ParserFactory, extensions: tuple[str, ...] | list[str] | None = None) -> None:
    """Register `factory` for `extensions` (default: the parser's own `extensions`).

    A later registration for the same extension replaces the earlier one.
    """
    exts = extensions if extensions is not None else getattr(factory, "extensions", None)
    if exts is None:
        exts = factory().extensions
    for ext in exts:
        ext = ext.lower() if ext.startswith(".") else "." + ext.lower()
        PARSERS[ext] = factory
        if ext == ".pdf":
            PDF_PARSERS["pypdfium2"] = factory
        for key in [k for k in _instances if k[0] == ext]:
            del _instances[key]


for _factory in (
    PdfiumParser, DocxParser, PptxParser, HtmlParser, TextParser, XmlParser, XlsxParser, XlsParser, CsvParser,
    EpubParser, NotebookParser, JsonParser, MsgParser, OpenDocumentParser, RtfParser, ImageParser, MediaParser,
):  # fmt: skip
    register_parser(_factory)


def load_plugins() -> None:
    """Register the parsers of installed packages (entry-point group `mason.parsers`), once.

    A plugin that fails to load is reported with `warn()` and ignored.
    """
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    from importlib.metadata import entry_points

    from mason.core.console import warn

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            register_parser(ep.load())
        except Exception as e:  # a broken plugin must not stop ingestion of other formats
            warn(f"parser plugin {ep.name!r} ({ep.value}) failed to load: {type(e).__name__}: {e}")


def supported_extensions() -> list[str]:
    """Sorted extensions that have a parser (built-in and plugins), media files left out."""
    load_plugins()
    return sorted(ext for ext, factory in PARSERS.items() if getattr(factory, "supported", True))


def get_parser(path: str | Path, *, pdf_parser: str = "pypdfium2") -> Parser:
    """The parser for `path`'s extension (`pdf_parser` picks the PDF one).

    Raises ParseError("unsupported") when no parser handles the extension, or the parser's
    `precheck` refuses the file (images without OCR, audio, video).
    """
    load_plugins()
    ext = Path(path).suffix.lower()
    key = (ext, pdf_parser if ext == ".pdf" else "")
    parser = _instances.get(key)
    if parser is None:
        factory = PDF_PARSERS.get(pdf_parser) if ext == ".pdf" else PARSERS.get(ext)
        if factory is None:
            what = f"'{ext}' files" if ext else "files without an extension"
            raise ParseError("unsupported", f"no parser for {what} (supported: {' '.join(supported_extensions())})")
        parser = _instances[key] = factory()
    precheck = getattr(parser, "precheck", None)
    if precheck is not None:
        precheck(Path(path))
    return parser


def parse_document(path: str | Path, *, pdf_parser: str = "pypdfium2") -> ParsedDocument:
    """Parse one file into clean text, under the `ParseOptions` in force (`using_options`).

    Returns the ParsedDocument (text normalized, never empty, cut at `max_document_chars` with
    a warning; OCR marks turned into `ocr_spans`). Raises ParseError with a kind (corrupt,
    encrypted, empty, unsupported, unsafe, too_large) for every file that gives no usable text;
    an unexpected exception inside a parser is reported as "corrupt" naming the parser.
    """
    path = Path(path)
    parser = get_parser(path, pdf_parser=pdf_parser)
    if path.stat().st_size == 0:
        raise ParseError("empty", "file is empty (0 bytes)")
    check_size(path)
    try:
        doc = parser.parse(path)
    except (ParseError, MemoryError, KeyboardInterrupt):
        raise
    except RecursionError:
        raise ParseError("corrupt", f"{parser.name}: document is nested too deeply to parse") from None
    except Exception as e:
        raise ParseError("corrupt", f"{parser.name} failed: {type(e).__name__}: {e}") from None
    text = normalize_text(doc.text)  # plugins may return CRLF or trailing blanks
    text = cap_text(text, path.name)
    text, spans = take_ocr_marks(text)
    if not text.strip():
        raise ParseError("empty", "no extractable text")
    if text == doc.text and spans == doc.ocr_spans:
        return doc
    return dataclasses.replace(doc, text=text, ocr_spans=spans or doc.ocr_spans)


def cap_text(text: str, name: str) -> str:
    """`text` cut at the last paragraph break before `max_document_chars`, with a warning."""
    limit = options().max_document_chars
    if len(text) <= limit:
        return text
    from mason.core.console import warn

    cut = text.rfind("\n\n", 0, limit)
    cut = cut if cut > limit // 2 else limit
    warn(f"{name}: text cut at {cut} of {len(text)} characters (knowledge_source.max_document_chars)")
    return text[:cut].rstrip()
