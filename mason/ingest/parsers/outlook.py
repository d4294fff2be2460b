"""Outlook messages (.msg) through markitdown's OutlookMsgConverter (olefile).

The subject becomes the `#` title; sender and recipients stay as `**From:**` / `**To:**` lines
above the body, so a chunk of the mail still says who wrote it.
"""

from __future__ import annotations

import re
from pathlib import Path

from mason.ingest.parsers.base import ParsedDocument, ParseError, clean_markdown, require_text

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_SUBJECT = re.compile(r"^\*\*Subject:\*\*\s*(.+)$", re.MULTILINE)


class MsgParser:
    """Outlook .msg files (OLE compound documents holding MAPI properties)."""

    name = "msg"
    extensions = (".msg",)

    def parse(self, path: Path) -> ParsedDocument:
        """Parse one message: headers and plain-text body. Raises ParseError (corrupt, empty)."""
        from markitdown import StreamInfo
        from markitdown.converters import OutlookMsgConverter

        path = Path(path)
        with open(path, "rb") as f:
            if f.read(8) != _OLE_MAGIC:
                raise ParseError("corrupt", "not an Outlook message (not an OLE compound file)")
        try:
            with open(path, "rb") as f:
                result = OutlookMsgConverter().convert(f, StreamInfo(extension=".msg"))
        except Exception as e:  # olefile raises its own types for damaged files
            raise ParseError("corrupt", f"cannot read Outlook message ({type(e).__name__}: {e})") from None
        markdown = result.markdown or ""
        m = _SUBJECT.search(markdown)
        subject = " ".join(m.group(1).split()) if m else None
        if subject:
            markdown = markdown.replace("# Email Message", f"# {subject}", 1)
            markdown = markdown.replace(m.group(0) + "\n", "", 1)
        markdown = markdown.replace("\n## Content\n", "\n", 1)
        text = clean_markdown(markdown)
        body = text.split("\n\n", 2)[2:] if subject else text
        require_text("".join(body), "Outlook message")
        return ParsedDocument(text=text, title=subject, pages=None, parser=self.name)
