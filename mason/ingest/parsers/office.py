"""Office Open XML packages: the container checks every Office parser makes, and PowerPoint (.pptx)
through markitdown (Word has its own module, `docx`).

markitdown's converters are used directly: `MarkItDown().convert()` would first run magika
file-type detection (a neural model) on every file, which costs more than converting a small
document, and we already know the type from the extension.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

from mason.ingest.parsers.base import ParsedDocument, ParseError, clean_markdown, first_heading, require_text
from mason.ingest.parsers.safety import check_zip

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# name of the stream holding the payload of a password-protected OOXML file ("EncryptedPackage")
_ENCRYPTED_STREAM = "EncryptedPackage".encode("utf-16-le")
_SLIDE_MARK = re.compile(r"<!--\s*Slide number:\s*\d+\s*-->")
_CORE_TITLE = re.compile(rb"<dc:title>([^<]*)</dc:title>")


def check_ooxml_container(path: Path, fmt: str) -> None:
    """Raise ParseError when `path` is not a zip-based Office file, or one that would unpack to too
    much ("unsafe", see `safety.check_zip`).

    Password-protected Office files are OLE compound files holding an `EncryptedPackage`
    stream ("encrypted"); other OLE files are legacy .doc/.ppt saved under the new extension.
    """
    with open(path, "rb") as f:
        head = f.read(8)
        if head == _OLE_MAGIC:
            f.seek(0)
            if _ENCRYPTED_STREAM in f.read(1 << 20):
                raise ParseError("encrypted", f"{fmt} is password protected")
            raise ParseError("corrupt", f"legacy binary Office file, not {fmt}; re-save it as {fmt}")
    if not zipfile.is_zipfile(path):
        raise ParseError("corrupt", f"not a valid {fmt} file (not a zip archive)")
    check_zip(path, fmt)


def core_title(path: Path) -> str | None:
    """The title stored in the file's docProps/core.xml, or None."""
    try:
        with zipfile.ZipFile(path) as z:
            data = z.read("docProps/core.xml")
    except (KeyError, zipfile.BadZipFile, OSError):
        return None
    m = _CORE_TITLE.search(data)
    if not m:
        return None
    import html

    title = html.unescape(m.group(1).decode("utf-8", errors="replace")).strip()
    return title or None


def _convert(converter: Any, path: Path, extension: str, fmt: str) -> str:
    from markitdown import StreamInfo

    try:
        with open(path, "rb") as f:
            result = converter.convert(f, StreamInfo(extension=extension))
    except (zipfile.BadZipFile, KeyError) as e:
        raise ParseError("corrupt", f"damaged {fmt} file ({type(e).__name__}: {e})") from None
    except ParseError:
        raise
    except Exception as e:  # markitdown wraps many libraries (mammoth, python-pptx, lxml)
        raise ParseError("corrupt", f"cannot read {fmt} ({type(e).__name__}: {e})") from None
    return result.markdown or ""


class PptxParser:
    """PowerPoint decks (.pptx) via markitdown's PptxConverter (python-pptx)."""

    name = "markitdown-pptx"
    extensions = (".pptx",)

    def parse(self, path: Path) -> ParsedDocument:
        """Parse one .pptx; slide titles become `#` headings. Raises ParseError."""
        from markitdown.converters import PptxConverter

        path = Path(path)
        check_ooxml_container(path, "PPTX")
        markdown = _convert(PptxConverter(), path, ".pptx", "PPTX")
        slides = len(_SLIDE_MARK.findall(markdown))
        text = clean_markdown(markdown)
        require_text(text, "PPTX")
        return ParsedDocument(
            text=text,
            title=core_title(path) or first_heading(text),
            pages=slides or None,
            parser=self.name,
        )
