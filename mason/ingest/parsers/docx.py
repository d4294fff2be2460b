"""Word documents (.docx): mammoth on a repaired copy, with fallbacks so no readable file is lost.

Why not markitdown's `DocxConverter` alone: before mammoth it rewrites `word/document.xml`
(equations to LaTeX) through BeautifulSoup's "xml" parser, and with lxml 6.2 what comes out
has lost its `w:` prefixes, so mammoth finds no body ("Could not find the body element") and
every DOCX was skipped. Here the same repairs are made namespace-aware with lxml, only on the
parts that need them, and mammoth reads the result.

Converters are tried in order; the first that gives text wins and is recorded in
`ParsedDocument.parser` ("docx/mammoth", "docx/markitdown", "docx/xml"), and a fallback is
reported with `warn()` naming the converter that failed and why:

1. **mammoth** on the repaired package: headings, lists, tables, footnotes and endnotes;
   equations (OMML) as `$LaTeX$`; images as their alt text; comments, headers and footers are
   left out (they are review notes and page furniture, not the document's content).
2. **markitdown**'s own DocxConverter (its pre-processing differs: zip name-casing repair).
3. **xml**: the paragraphs' text read straight from WordprocessingML with a recovering parser:
   headings from the paragraph styles, tables as Markdown tables, equations as their text.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable
from pathlib import Path

from mason.ingest.parsers.base import ParsedDocument, ParseError, clean_markdown, first_heading, require_text
from mason.ingest.parsers.office import check_ooxml_container, core_title
from mason.ingest.parsers.tables import markdown_table, trim

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_M = "{http://schemas.openxmlformats.org/officeDocument/2006/math}"
_XML_SPACE = "{http://www.w3.org/XML/1998/namespace}space"
#: the package parts whose text mammoth reads and that can hold equations
_TEXT_PARTS = ("word/document.xml", "word/footnotes.xml", "word/endnotes.xml")
_STYLES = "word/styles.xml"
# mammoth's note links: <a href="#footnote-ref-1" ...>↑</a> back, <a href="#footnote-1" ...>[1]</a> forward
_NOTE_BACKLINK = re.compile(r'\s*<a href="#(?:foot|end)note-ref-[^"]*"[^>]*>.*?</a>')
_NOTE_MARK = re.compile(r'<a href="#(?:foot|end)note-[^"]*"[^>]*>(.*?)</a>')
#: OMML structures whose property child markitdown's converter requires, though OOXML makes it optional
_REQUIRED_PROPERTIES = {"acc": "accPr", "bar": "barPr", "d": "dPr", "f": "fPr", "groupChr": "groupChrPr"}


def _xml_parser(recover: bool = False):  # noqa: ANN202 - lxml type
    from lxml import etree

    # no entity expansion, no network: a .docx is untrusted input
    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True, recover=recover)


# ---------------------------------------------------------------- repairs before mammoth


def omml_to_latex(math) -> str:  # noqa: ANN001 - an lxml element
    """LaTeX for one `m:oMath` element, through markitdown's OMML converter (dwml).

    Falls back to the equation's plain characters when that converter is missing or fails,
    so an equation never costs the paragraph around it.
    """
    from xml.etree.ElementTree import Element

    from lxml import etree

    try:
        from defusedxml import ElementTree
        from markitdown.converter_utils.docx.math.omml import oMath2Latex

        tree = ElementTree.fromstring(etree.tostring(math))
        # dwml indexes these optional property elements directly (KeyError when a writer omits them)
        for name, pr in _REQUIRED_PROPERTIES.items():
            for node in tree.iter(f"{_M}{name}"):
                if node.find(f"{_M}{pr}") is None:
                    node.insert(0, Element(f"{_M}{pr}"))
        return str(oMath2Latex(tree).latex).strip()
    except Exception:  # an internal API of markitdown: any failure means "use the plain text"
        return "".join(t.text or "" for t in math.iter(f"{_M}t")).strip()


def _text_run(text: str):  # noqa: ANN202 - lxml element
    from lxml import etree

    run = etree.Element(f"{_W}r")
    t = etree.SubElement(run, f"{_W}t")
    t.set(_XML_SPACE, "preserve")
    t.text = text
    return run


def equations_to_text(xml: bytes) -> bytes:
    """Replace each OMML equation in a WordprocessingML part by a text run holding its LaTeX:
    `$$...$$` for display equations (`m:oMathPara`), `$...$` inline. Returns the new XML
    (the input itself when it has no equation)."""
    if b"oMath" not in xml:
        return xml
    from lxml import etree

    root = etree.fromstring(xml, parser=_xml_parser())
    for para in list(root.iter(f"{_M}oMathPara")):
        runs = [_text_run(f"$${omml_to_latex(m)}$$") for m in para.iter(f"{_M}oMath")]
        parent = para.getparent()
        if parent is not None and parent.tag != f"{_W}p":  # display math directly in the body
            wrapper = etree.Element(f"{_W}p")
            wrapper.extend(runs)
            runs = [wrapper]
        _replace(para, runs)
    for math in list(root.iter(f"{_M}oMath")):
        _replace(math, [_text_run(f"${omml_to_latex(math)}$")])
    return etree.tostring(root.getroottree(), encoding="UTF-8", xml_declaration=True, standalone=True)


def _replace(element, new: list) -> None:  # noqa: ANN001
    parent = element.getparent()
    if parent is None:
        return
    index = parent.index(element)
    tail = element.tail
    parent.remove(element)
    for offset, node in enumerate(new):
        parent.insert(index + offset, node)
    if new and tail:
        new[-1].tail = tail


def repair_styles(xml: bytes) -> bytes:
    """Make `word/styles.xml` readable by mammoth, which indexes `w:type` and `w:styleId`
    directly: a style without a type is a paragraph style (the OOXML default), one without an
    id cannot be referenced and is dropped. Returns the input itself when nothing needed it."""
    from lxml import etree

    root = etree.fromstring(xml, parser=_xml_parser())
    changed = False
    for style in root.findall(f"{_W}style"):
        if f"{_W}styleId" not in style.attrib:
            root.remove(style)
            changed = True
        elif f"{_W}type" not in style.attrib:
            style.set(f"{_W}type", "paragraph")
            changed = True
    if not changed:
        return xml
    return etree.tostring(root.getroottree(), encoding="UTF-8", xml_declaration=True, standalone=True)


def repaired_package(data: bytes) -> bytes:
    """The .docx bytes with equations turned into text runs and broken styles fixed; the input
    itself when no part needed a change. A part that cannot be repaired is kept as it was."""
    steps: dict[str, Callable[[bytes], bytes]] = {name: equations_to_text for name in _TEXT_PARTS}
    steps[_STYLES] = repair_styles
    with zipfile.ZipFile(io.BytesIO(data)) as zin:
        parts = {info.filename: zin.read(info) for info in zin.infolist()}
    changed = {}
    for name, step in steps.items():
        if name in parts:
            try:
                new = step(parts[name])
            except Exception:  # mammoth may still read the original part; it says so if not
                continue
            if new is not parts[name]:
                changed[name] = new
    if not changed:
        return data
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for name, content in parts.items():
            zout.writestr(name, changed.get(name, content))
    return out.getvalue()


# ---------------------------------------------------------------- the converters


def mammoth_markdown(data: bytes) -> str:
    """Markdown of a .docx through mammoth (HTML) and markdownify. Images become alt text."""
    import mammoth

    from mason.ingest.parsers.html import html_to_markdown

    # images as <img alt> without their bytes: base64 data URIs can be megabytes per image
    no_bytes = mammoth.images.img_element(lambda image: {"src": "", "alt": image.alt_text or ""})
    result = mammoth.convert_to_html(io.BytesIO(repaired_package(data)), convert_image=no_bytes)
    return html_to_markdown(_note_links_to_text(result.value))[0]


def _note_links_to_text(html: str) -> str:
    """Mammoth links each footnote/endnote mark to its note and back (`[1]` and `↑`): keep the
    mark as text, drop the back-link, so the Markdown reads "...per second[1]" and "1. The note."."""
    html = _NOTE_BACKLINK.sub("", html)
    return _NOTE_MARK.sub(r"\1", html)


def markitdown_markdown(data: bytes) -> str:
    """Markdown of a .docx through markitdown's DocxConverter (its own pre-processing)."""
    from markitdown import StreamInfo
    from markitdown.converters import DocxConverter

    return DocxConverter().convert(io.BytesIO(data), StreamInfo(extension=".docx")).markdown or ""


def _heading_level(paragraph) -> int:  # noqa: ANN001
    style = paragraph.find(f"{_W}pPr/{_W}pStyle")
    name = (style.get(f"{_W}val") or "").lower().replace(" ", "") if style is not None else ""
    if name == "title":
        return 1
    if name.startswith("heading") and name[7:].isdigit():
        return min(int(name[7:]), 6)
    return 0


def _paragraph_text(paragraph) -> str:  # noqa: ANN001
    pieces = []
    for node in paragraph.iter(f"{_W}t", f"{_W}tab", f"{_W}br", f"{_M}t"):
        if node.tag == f"{_W}tab":
            pieces.append("\t")
        elif node.tag == f"{_W}br":
            pieces.append("\n")
        else:
            pieces.append(node.text or "")
    return "".join(pieces).strip()


def xml_markdown(data: bytes) -> str:
    """Text of a .docx read straight from `word/document.xml` (recovering from broken XML):
    paragraphs in order, headings from their styles, tables as Markdown tables."""
    from lxml import etree

    with zipfile.ZipFile(io.BytesIO(data)) as z:
        xml = z.read("word/document.xml")
    root = etree.fromstring(xml, parser=_xml_parser(recover=True))
    if root is None:
        return ""
    blocks: list[str] = []
    rows: list[list[str]] = []
    table = None
    for node in root.iter(f"{_W}p", f"{_W}tr"):
        if node.tag == f"{_W}tr":
            if rows and node.getparent() is not table:
                blocks.append(markdown_table(trim(rows)))
                rows = []
            table = node.getparent()
            rows.append([" ".join(_paragraph_text(p) for p in tc.iter(f"{_W}p")).strip() for tc in node.iter(f"{_W}tc")])
            continue
        if any(a.tag == f"{_W}tc" for a in node.iterancestors()):
            continue  # table paragraphs are in their row
        if rows:
            blocks.append(markdown_table(trim(rows)))
            rows = []
        text = _paragraph_text(node)
        level = _heading_level(node)
        blocks.append(f"{'#' * level} {text}" if level and text else text)
    if rows:
        blocks.append(markdown_table(trim(rows)))
    return "\n\n".join(b for b in blocks if b.strip())


#: (name, converter) in the order they are tried
CONVERTERS: tuple[tuple[str, Callable[[bytes], str]], ...] = (
    ("mammoth", mammoth_markdown),
    ("markitdown", markitdown_markdown),
    ("xml", xml_markdown),
)


class DocxParser:
    """Word documents (.docx): mammoth, then markitdown, then the raw XML text (see module doc)."""

    name = "docx"
    extensions = (".docx",)

    def parse(self, path: Path) -> ParsedDocument:
        """Parse one .docx with the first converter that gives text.

        Returns the ParsedDocument (`parser` names the converter used). Raises ParseError:
        "encrypted" (password protected), "corrupt" (not a Word package, or no converter could
        read it: the message has each converter's error), "empty" (no text in it).
        """
        path = Path(path)
        check_ooxml_container(path, "DOCX")
        data = path.read_bytes()
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                z.getinfo("word/document.xml")
        except KeyError:
            raise ParseError("corrupt", "not a Word document: the DOCX package has no word/document.xml") from None
        except zipfile.BadZipFile as e:
            raise ParseError("corrupt", f"damaged DOCX file ({e})") from None
        failures: list[str] = []
        for name, convert in CONVERTERS:
            try:
                text = clean_markdown(convert(data))
            except (MemoryError, KeyboardInterrupt):
                raise
            except Exception as e:  # a converter's bug or a file it cannot read: try the next one
                failures.append(f"{name}: {type(e).__name__}: {e}")
                continue
            if not text.strip():
                failures.append(f"{name}: no text")
                continue
            if failures:
                from mason.core.console import warn

                warn(f"{path.name}: read with {name} after " + "; ".join(failures))
            title = core_title(path) or first_heading(text)
            return ParsedDocument(text=text, title=title, pages=None, parser=f"docx/{name}")
        if all(f.endswith(": no text") for f in failures):
            require_text("", "DOCX")
        raise ParseError("corrupt", "cannot read DOCX (" + "; ".join(failures) + ")")
