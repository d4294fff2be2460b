"""Plain-text formats: Markdown, reStructuredText and text files, in any common encoding.

Markdown keeps its ATX headings; Setext headings (`Title` over `=====`) and reStructuredText
section adornments become ATX headings so the chunker sees one heading syntax.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from mason.ingest.parsers.base import ParsedDocument, ParseError, first_heading, normalize_text, require_text

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_SETEXT = re.compile(r"^\s{0,3}(=+|-+)\s*$")
_RST_ADORNMENT = re.compile(r"^([=\-`:'\"~^_*+#<>.])\1{2,}\s*$")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_FM_TITLE = re.compile(r"^title:\s*['\"]?(.+?)['\"]?\s*$", re.MULTILINE)


def decode_bytes(data: bytes) -> str:
    """Decode file bytes: BOM first, then strict UTF-8, then charset detection.

    Returns the text. Raises ParseError("corrupt") when no encoding fits (binary data).
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data[len(bom) :].decode(encoding, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    # note: charset detection costs ~ms per 100 kB; only paid for non-UTF-8 files
    from charset_normalizer import from_bytes

    results = from_bytes(data)
    best = results.best()
    if best is None:
        raise ParseError("corrupt", "binary data, not text in any known character encoding")
    # Western European text fits several single-byte code pages almost equally well (cp1257
    # may win by a hair and turn "crème" into "crčme"); Windows-1252 is by far the most common
    # of them, so it wins near-ties. Cyrillic, Greek... stay far off in chaos and are unaffected.
    for match in results:
        if "cp1252" in match.could_be_from_charset and match.chaos <= best.chaos + 0.1:
            return str(match)
    return str(best)


def _in_fence_flags(lines: list[str]) -> list[bool]:
    """For each line, whether it sits inside (or opens/closes) a fenced code block."""
    flags, fence = [], None
    for line in lines:
        m = _FENCE.match(line)
        if fence is None and m:
            fence = m.group(1)[0] * 3
            flags.append(True)
        elif fence is not None:
            flags.append(True)
            if m and m.group(1).startswith(fence):
                fence = None
        else:
            flags.append(False)
    return flags


def setext_to_atx(text: str) -> str:
    """Rewrite Setext headings (a one-line paragraph over `===` or `---`) as `#`/`##` lines.

    A `---` after a blank line stays a thematic break; fenced code is left alone.
    """
    lines = text.split("\n")
    fenced = _in_fence_flags(lines)
    out: list[str] = []
    for i, line in enumerate(lines):
        m = _SETEXT.match(line)
        prev = out[-1] if out else ""
        heading_ok = (
            m is not None
            and not fenced[i]
            and i > 0
            and not fenced[i - 1]
            and prev.strip()
            and not prev.lstrip().startswith(("#", ">", "-", "*", "|"))
            and (i < 2 or not lines[i - 2].strip())
        )
        if heading_ok:
            out[-1] = ("# " if m.group(1)[0] == "=" else "## ") + prev.strip()
        else:
            out.append(line)
    return "\n".join(out)


def rst_to_atx(text: str) -> str:
    """Rewrite reStructuredText section titles as ATX headings.

    Levels follow the order in which adornment styles first appear, as RST itself defines them:
    the first style seen is level 1, the next new one level 2, and so on (capped at 6).
    """
    lines = text.split("\n")
    styles: list[tuple[str, bool]] = []
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        over = _RST_ADORNMENT.match(line)
        # overlined title: ===, Title, ===
        if over and i + 2 < len(lines) and lines[i + 2].strip() == line.strip() and lines[i + 1].strip():
            style, title, step = (line.strip()[0], True), lines[i + 1].strip(), 3
        elif (
            i + 1 < len(lines)
            and line.strip()
            and not _RST_ADORNMENT.match(line)
            and (under := _RST_ADORNMENT.match(lines[i + 1]))
            and len(lines[i + 1].rstrip()) >= len(line.rstrip())
            and (i == 0 or not lines[i - 1].strip())
        ):
            style, title, step = (under.group(1), False), line.strip(), 2
        else:
            out.append(line)
            i += 1
            continue
        if style not in styles:
            styles.append(style)
        out.append("#" * min(styles.index(style) + 1, 6) + " " + title)
        i += step
    return "\n".join(out)


class TextParser:
    """Markdown (.md, .markdown), reStructuredText (.rst) and plain text (.txt, .text)."""

    name = "text"
    extensions = (".md", ".markdown", ".txt", ".text", ".rst")

    def parse(self, path: Path) -> ParsedDocument:
        """Decode and normalize the file. Raises ParseError (corrupt or empty)."""
        raw = decode_bytes(Path(path).read_bytes())
        ext = Path(path).suffix.lower()
        title = None
        if ext in (".md", ".markdown"):
            fm = _FRONT_MATTER.match(raw.replace("\r\n", "\n"))
            if fm:
                t = _FM_TITLE.search(fm.group(1))
                title = t.group(1) if t else None
                raw = raw.replace("\r\n", "\n")[fm.end() :]
            text = normalize_text(setext_to_atx(raw.replace("\r\n", "\n")))
        elif ext == ".rst":
            text = normalize_text(rst_to_atx(raw.replace("\r\n", "\n")))
        else:
            text = normalize_text(raw)
        require_text(text, "file")
        if title is None and ext in (".md", ".markdown", ".rst"):
            title = first_heading(text)
        return ParsedDocument(text=text, title=title, pages=None, parser=self.name)
