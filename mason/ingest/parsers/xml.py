"""Generic XML (DocBook, JATS, DITA, TEI, exports of wikis and CMSs...) through defusedxml.

The text content is kept in document order. Elements named `title`, `head`, `heading` or
`h1`..`h6` become ATX headings; the level of a `title` is the number of enclosing elements
that carry their own heading, so `<book><title/><chapter><title/>` gives `#` then `##`.
Entity declarations and external references are refused (billion-laughs, XXE).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mason.ingest.parsers.base import ParsedDocument, ParseError, first_heading, normalize_text, require_text

_HEADING_NAMES = {"title", "head", "heading"}
_HN = re.compile(r"^h([1-6])$")
_WS = re.compile(r"\s+")
# a short leaf without sentence punctuation is a field (`<price>3</price>`), not a paragraph:
# consecutive fields share one block, one per line
_FIELD_MAX_CHARS = 80


def _local(tag: Any) -> str:
    if not isinstance(tag, str):  # comments and processing instructions
        return ""
    return tag.rsplit("}", 1)[-1].lower()


def _flat(elem: Any) -> str:
    return _WS.sub(" ", "".join(elem.itertext())).strip()


def _heading_level(name: str, section_level: int) -> int | None:
    m = _HN.match(name)
    if m:
        return int(m.group(1))
    if name in _HEADING_NAMES:
        return max(1, min(section_level, 6))
    return None


def _is_mixed(elem: Any) -> bool:
    """Text directly inside the element (not only in children): a paragraph-like element."""
    if elem.text and elem.text.strip():
        return True
    return any(child.tail and child.tail.strip() for child in elem)


class _Walker:
    """Collects Markdown blocks; short leaf texts (fields) are grouped one per line."""

    def __init__(self) -> None:
        self.blocks: list[str] = []
        self.fields: list[str] = []

    def flush(self) -> None:
        if self.fields:
            self.blocks.append("\n".join(self.fields))
            self.fields = []

    def add(self, text: str) -> None:
        if not text:
            return
        if len(text) <= _FIELD_MAX_CHARS and not re.search(r"[.!?:;]\s", text + " "):
            self.fields.append(text)
        else:
            self.flush()
            self.blocks.append(text)


class _Heading:
    """A heading rendered when its parent is expanded, emitted in document order."""

    def __init__(self, line: str):
        self.line = line


def xml_to_markdown(root: Any) -> str:
    """Markdown-ish text of a parsed XML element tree (see module docstring).

    Walks with an explicit stack rather than recursion: deeply nested XML is legal.
    """
    walker = _Walker()
    stack: list[Any] = [(root, 0)]
    while stack:
        item = stack.pop()
        if item is None:
            walker.flush()
            continue
        if isinstance(item, _Heading):
            walker.flush()
            if item.line.strip("# "):
                walker.blocks.append(item.line)
            continue
        elem, level = item
        children = [c for c in elem if _local(c.tag)]
        if not children or _is_mixed(elem):
            walker.add(_flat(elem))
            continue
        has_heading = any(_heading_level(_local(c.tag), 1) is not None for c in children)
        child_level = level + 1 if has_heading else level
        stack.append(None)
        for child in reversed(children):
            n = _heading_level(_local(child.tag), child_level)
            stack.append(_Heading("#" * n + " " + _flat(child)) if n is not None else (child, child_level))
    walker.flush()
    return "\n\n".join(b for b in walker.blocks if b)


class XmlParser:
    """Generic XML documents."""

    name = "xml"
    extensions = (".xml",)

    def parse(self, path: Path) -> ParsedDocument:
        """Parse one XML file. Raises ParseError (corrupt: malformed or unsafe; empty)."""
        from xml.etree.ElementTree import ParseError as XmlSyntaxError

        import defusedxml
        from defusedxml import ElementTree

        try:
            root = ElementTree.parse(str(path)).getroot()
        except XmlSyntaxError as e:
            raise ParseError("corrupt", f"malformed XML ({e})") from None
        except defusedxml.DefusedXmlException as e:
            raise ParseError("corrupt", f"XML refused for safety: {type(e).__name__} ({e})") from None
        text = normalize_text(xml_to_markdown(root))
        require_text(text, "XML document")
        return ParsedDocument(text=text, title=first_heading(text), pages=None, parser=self.name)
