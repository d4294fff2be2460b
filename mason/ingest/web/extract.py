"""The text of a fetched page: trafilatura's main-text extraction for HTML, the file parsers for the rest.

trafilatura finds the article in a page (menus, sidebars, cookie banners, footers left out) and
writes it as Markdown with headings and tables. When it finds nothing (a page that is all
navigation, or markup it cannot read) the HTML parser's own clean-up is used instead, so a page
with text is never lost. Other content types (PDF, plain text, Markdown, JSON...) are parsed
from the cached body by the parser of their extension.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from mason.ingest.parsers import ParsedDocument, ParseError, cap_text, parse_document
from mason.ingest.parsers.base import clean_markdown, first_heading, normalize_text

TRAFILATURA = "web/trafilatura"
HTML_FALLBACK = "web/html"
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def html_document(data: bytes, url: str) -> ParsedDocument:
    """Main text of an HTML page as Markdown (trafilatura, else the HTML parser). Raises ParseError("empty")."""
    import trafilatura

    from mason.ingest.parsers.html import html_to_markdown

    try:
        markdown = trafilatura.extract(
            data, url=url, output_format="markdown", include_tables=True, include_links=False,
            include_images=False, include_comments=False, deduplicate=False, with_metadata=False,
        )  # fmt: skip
    except (RecursionError, ValueError, TypeError):  # hostile markup: the HTML parser gets its turn
        markdown = None
    # the title: the article's first heading, else <title> (trafilatura's metadata extraction would
    # find it too, but it also hunts for dates and authors: twice the cost of the extraction itself)
    m = _TITLE.search(data[:100_000])
    title = " ".join(html.unescape(m.group(1).decode("utf-8", errors="replace")).split()) or None if m else None
    text = clean_markdown(markdown or "")
    parser = TRAFILATURA
    if not text.strip():
        text, fallback_title = html_to_markdown(data)
        title, parser = fallback_title or title, HTML_FALLBACK
    text = cap_text(normalize_text(text), url)
    if not text.strip():
        raise ParseError("empty", "web page has no readable text")
    return ParsedDocument(text=text, title=first_heading(text) or title, pages=None, parser=parser)


def page_document(body: Path, url: str, is_html: bool) -> ParsedDocument:
    """Parse a fetched body (stored under the extension of its content type). Raises ParseError."""
    if not is_html:
        return parse_document(body)
    try:
        return html_document(Path(body).read_bytes(), url)
    except (ParseError, MemoryError, KeyboardInterrupt):
        raise
    except RecursionError:
        raise ParseError("corrupt", "web page is nested too deeply to parse") from None
    except Exception as e:
        raise ParseError("corrupt", f"cannot read web page ({type(e).__name__}: {e})") from None
