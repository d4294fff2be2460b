"""Document parsers, chosen by file extension from a registry.

Built-in: PDF (pypdfium2, markitdown fallback), DOCX (mammoth, with fallbacks), PPTX (markitdown), HTML and saved web
pages, Markdown / reStructuredText / text, and generic XML. Third-party packages add or replace
parsers through the `mason.parsers` entry-point group; each entry point names a factory (usually
the parser class) whose instances follow the `Parser` protocol:

    [project.entry-points."mason.parsers"]
    epub = "my_pkg.epub:EpubParser"      # class with name, extensions, parse(path)

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
    Parser,
    SkipKind,
    normalize_text,
)
from mason.ingest.parsers.html import HtmlParser
from mason.ingest.parsers.docx import DocxParser
from mason.ingest.parsers.office import PptxParser
from mason.ingest.parsers.pdf import MarkitdownPdfParser, PdfiumParser
from mason.ingest.parsers.text import TextParser
from mason.ingest.parsers.xml import XmlParser

__all__ = [
    "ENTRY_POINT_GROUP",
    "PARSERS",
    "PDF_PARSERS",
    "SKIP_KINDS",
    "ParseError",
    "ParsedDocument",
    "Parser",
    "ParserFactory",
    "SkipKind",
    "get_parser",
    "parse_document",
    "register_parser",
    "supported_extensions",
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


for _factory in (PdfiumParser, DocxParser, PptxParser, HtmlParser, TextParser, XmlParser):
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
    """Sorted extensions that have a parser (built-in and plugins)."""
    load_plugins()
    return sorted(PARSERS)


def get_parser(path: str | Path, *, pdf_parser: str = "pypdfium2") -> Parser:
    """The parser for `path`'s extension (`pdf_parser` picks the PDF one).

    Raises ParseError("unsupported") when no parser handles the extension.
    """
    load_plugins()
    ext = Path(path).suffix.lower()
    key = (ext, pdf_parser if ext == ".pdf" else "")
    parser = _instances.get(key)
    if parser is None:
        factory = PDF_PARSERS.get(pdf_parser) if ext == ".pdf" else PARSERS.get(ext)
        if factory is None:
            what = f"'{ext}' files" if ext else "files without an extension"
            raise ParseError("unsupported", f"no parser for {what} (supported: {' '.join(sorted(PARSERS))})")
        parser = _instances[key] = factory()
    return parser


def parse_document(path: str | Path, *, pdf_parser: str = "pypdfium2") -> ParsedDocument:
    """Parse one file into clean text.

    Returns the ParsedDocument (text normalized, never empty). Raises ParseError with a kind
    (corrupt, encrypted, empty, unsupported) for every file that gives no usable text; an
    unexpected exception inside a parser is reported as "corrupt" naming the parser.
    """
    path = Path(path)
    parser = get_parser(path, pdf_parser=pdf_parser)
    if path.stat().st_size == 0:
        raise ParseError("empty", "file is empty (0 bytes)")
    try:
        doc = parser.parse(path)
    except (ParseError, MemoryError, KeyboardInterrupt):
        raise
    except RecursionError:
        raise ParseError("corrupt", f"{parser.name}: document is nested too deeply to parse") from None
    except Exception as e:
        raise ParseError("corrupt", f"{parser.name} failed: {type(e).__name__}: {e}") from None
    text = normalize_text(doc.text)  # plugins may return CRLF or trailing blanks
    if not text.strip():
        raise ParseError("empty", "no extractable text")
    return dataclasses.replace(doc, text=text) if text != doc.text else doc
