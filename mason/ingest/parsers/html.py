"""HTML pages and saved web pages (.html, .htm, .xhtml, and single-file .mht/.mhtml archives).

Site chrome (scripts, styles, navigation, page header and footer, forms) is dropped; when the
page marks its content with `<main>` (or a single `<article>`), only that is kept. Headings
become ATX Markdown headings through markdownify (a markitdown dependency).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mason.ingest.parsers.base import ParsedDocument, ParseError, clean_markdown, first_heading, require_text

# Tags whose content is never document text.
_DROP_ALWAYS = (
    "script", "style", "noscript", "template", "nav", "form", "button", "select",
    "iframe", "svg", "canvas", "object", "embed", "link", "meta", "aside",
)  # fmt: skip
# ARIA landmarks of site chrome, for pages that use <div role=...> instead of semantic tags.
_CHROME_ROLES = {"navigation", "banner", "contentinfo", "search", "menu", "menubar", "dialog"}


def mhtml_to_html(data: bytes) -> bytes:
    """The first text/html part of an MHTML archive ("Save page as single file"), as bytes.

    Raises ParseError("corrupt") when the archive has no HTML part.
    """
    import email
    from email import policy

    msg = email.message_from_bytes(data, policy=policy.default)
    for part in msg.walk():
        if part.get_content_type() == "text/html":
            payload = part.get_payload(decode=True)
            if payload:
                charset = part.get_content_charset()
                if charset:
                    # re-encode as UTF-8 with a declaration so BeautifulSoup does not guess
                    text = payload.decode(charset, errors="replace")
                    return b'<meta charset="utf-8">' + text.encode("utf-8")
                return payload
    raise ParseError("corrupt", "MHTML archive has no text/html part")


def _is_chrome(tag: Any) -> bool:
    attrs = getattr(tag, "attrs", None) or {}
    if attrs.get("role") in _CHROME_ROLES or attrs.get("aria-hidden") == "true" or "hidden" in attrs:
        return True
    if tag.name in ("header", "footer"):
        # an <article>'s own <header> usually holds its title: keep it; a page-level one is chrome
        return tag.name == "footer" or tag.find_parent(["article", "main", "section"]) is None
    return False


def clean_soup(soup: Any) -> Any:
    """Remove chrome from a BeautifulSoup tree in place; return the element holding the content."""
    # note: a tag inside an already removed one is marked decomposed; removing it twice fails
    for tag in soup.find_all(_DROP_ALWAYS) + soup.find_all(_is_chrome):
        if not tag.decomposed:
            tag.decompose()
    main = soup.find("main")
    if main is None:
        articles = soup.find_all("article")
        main = articles[0] if len(articles) == 1 else None
    return main or soup.body or soup


def _tidy_tables(root: Any) -> None:
    """Make tables come out as valid Markdown tables: `|` inside a cell escaped, empty rows dropped."""
    from bs4 import NavigableString

    for cell in root.find_all(["td", "th"]):
        for node in cell.find_all(string=lambda t: "|" in t):
            if type(node) is NavigableString:
                node.replace_with(NavigableString(node.replace("|", "\\|")))
    for row in root.find_all("tr"):
        if not row.get_text(strip=True) and not row.find("img"):
            row.decompose()


def html_to_markdown(data: bytes | str) -> tuple[str, str | None]:
    """Convert an HTML page to clean Markdown. Returns (text, title or None)."""
    from bs4 import BeautifulSoup
    from markdownify import MarkdownConverter

    soup = BeautifulSoup(data, "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else None
    root = clean_soup(soup)
    _tidy_tables(root)
    md = MarkdownConverter(
        heading_style="ATX", bullets="-", escape_asterisks=False, escape_underscores=False,
        table_infer_header=True,  # a table without <th> (Word, most pages) uses its first row, not an empty one
    ).convert_soup(root)
    text = clean_markdown(md)
    return text, (title or first_heading(text) or None)


class HtmlParser:
    """HTML files and saved web pages."""

    name = "html"
    extensions = (".html", ".htm", ".xhtml", ".mht", ".mhtml")

    def parse(self, path: Path) -> ParsedDocument:
        """Parse one page. Raises ParseError (corrupt or empty)."""
        data = Path(path).read_bytes()
        if Path(path).suffix.lower() in (".mht", ".mhtml"):
            data = mhtml_to_html(data)
        text, title = html_to_markdown(data)
        require_text(text, "HTML page")
        return ParsedDocument(text=text, title=title, pages=None, parser=self.name)
