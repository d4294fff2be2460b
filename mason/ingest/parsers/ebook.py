"""E-books (.epub): the chapters in reading order, each one a section.

An EPUB is a zip of XHTML chapters; its package document (OPF) lists them in reading order
(the spine) and its table of contents names them. Each chapter goes through the HTML parser's
clean-up (`html_to_markdown`); a chapter that does not start with a heading gets its name from
the table of contents as a `#` heading, so every chapter is a section. XML is read with
defusedxml (no entity expansion). DRM-protected books are reported as encrypted.
"""

from __future__ import annotations

import posixpath
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from mason.ingest.parsers.base import ParsedDocument, ParseError, normalize_text, require_text
from mason.ingest.parsers.safety import check_zip, read_member

_OPF = "{http://www.idpf.org/2007/opf}"
_DC = "{http://purl.org/dc/elements/1.1/}"
_CONTAINER = "{urn:oasis:names:tc:opendocument:xmlns:container}"
_NCX = "{http://www.daisy.org/z3986/2005/ncx/}"
_XHTML = "{http://www.w3.org/1999/xhtml}"
_EPUB = "{http://www.idpf.org/2007/ops}"
_HTML_TYPES = ("application/xhtml+xml", "text/html")


def _xml(data: bytes) -> Any:
    from defusedxml import ElementTree

    return ElementTree.fromstring(data)


def _resolve(base: str, href: str) -> str:
    href = unquote(href.split("#", 1)[0])
    return posixpath.normpath(posixpath.join(base, href)) if base else posixpath.normpath(href)


def _toc_titles(z: zipfile.ZipFile, manifest: dict[str, tuple[str, str, str]]) -> dict[str, str]:
    """Chapter file -> its name in the table of contents (EPUB 3 nav, else EPUB 2 NCX)."""
    titles: dict[str, str] = {}
    for href, media, props in manifest.values():
        try:
            if "nav" in props.split():
                nav = _xml(read_member(z, href, "EPUB"))
                nav_base = posixpath.dirname(href)
                for a in nav.iter(f"{_XHTML}a"):
                    if a.get("href") and "".join(a.itertext()).strip():
                        titles.setdefault(_resolve(nav_base, a.get("href")), " ".join("".join(a.itertext()).split()))
            elif media == "application/x-dtbncx+xml":
                ncx = _xml(read_member(z, href, "EPUB"))
                ncx_base = posixpath.dirname(href)
                for point in ncx.iter(f"{_NCX}navPoint"):
                    label = point.find(f"{_NCX}navLabel/{_NCX}text")
                    content = point.find(f"{_NCX}content")
                    if label is not None and content is not None and (label.text or "").strip():
                        titles.setdefault(_resolve(ncx_base, content.get("src", "")), label.text.strip())
        except (KeyError, ValueError, SyntaxError):
            continue  # a broken table of contents only costs the chapter names
    return titles


def _encrypted_parts(z: zipfile.ZipFile) -> set[str]:
    try:
        enc = _xml(read_member(z, "META-INF/encryption.xml", "EPUB"))
    except KeyError:
        return set()
    return {ref.get("URI", "") for ref in enc.iter() if ref.tag.endswith("CipherReference")}


class EpubParser:
    """EPUB 2 and 3 e-books."""

    name = "epub"
    extensions = (".epub",)

    def parse(self, path: Path) -> ParsedDocument:
        """Parse one e-book; chapters in reading order, each a section. Raises ParseError."""
        from defusedxml import DefusedXmlException

        from mason.ingest.parsers.html import html_to_markdown

        path = Path(path)
        if not zipfile.is_zipfile(path):
            raise ParseError("corrupt", "not a valid EPUB file (not a zip archive)")
        with zipfile.ZipFile(path) as z:
            check_zip(path, "EPUB", z)
            try:
                container = _xml(read_member(z, "META-INF/container.xml", "EPUB"))
                rootfile = container.find(f".//{_CONTAINER}rootfile")
                opf_path = rootfile.get("full-path") if rootfile is not None else None
                if not opf_path:
                    raise ParseError("corrupt", "EPUB has no package document (META-INF/container.xml)")
                opf = _xml(read_member(z, opf_path, "EPUB"))
            except KeyError as e:
                raise ParseError("corrupt", f"EPUB is missing {e}") from None
            except DefusedXmlException as e:
                raise ParseError("corrupt", f"EPUB XML refused for safety: {type(e).__name__}") from None
            except SyntaxError as e:  # ElementTree.ParseError
                raise ParseError("corrupt", f"malformed EPUB package ({e})") from None
            base = posixpath.dirname(opf_path)
            manifest = {
                item.get("id"): (_resolve(base, item.get("href", "")), item.get("media-type", ""), item.get("properties", ""))
                for item in opf.iter(f"{_OPF}item")
            }  # fmt: skip
            title_el = opf.find(f".//{_DC}title")
            title = (" ".join((title_el.text or "").split()) or None) if title_el is not None else None
            titles = _toc_titles(z, manifest)
            encrypted = _encrypted_parts(z)
            spine = [manifest[ref.get("idref")] for ref in opf.iter(f"{_OPF}itemref") if ref.get("idref") in manifest]
            chapters: list[str] = []
            locked = 0
            for href, media, _ in spine:
                if media not in _HTML_TYPES:
                    continue
                if href in encrypted:
                    locked += 1
                    continue
                try:
                    html = read_member(z, href, "EPUB")
                except KeyError:
                    continue  # listed but missing: a damaged book still has its other chapters
                text, _ = html_to_markdown(html)
                if not text.strip():
                    continue
                name = titles.get(href)
                if name and not text.lstrip().startswith("#"):
                    text = f"# {name}\n\n{text}"
                chapters.append(text)
        if locked and not chapters:
            raise ParseError("encrypted", "EPUB is DRM-protected (its chapters are encrypted)")
        text = normalize_text("\n\n".join(chapters))
        require_text(text, "EPUB")
        return ParsedDocument(text=text, title=title, pages=len(chapters) or None, parser=self.name)
