"""Word files the way real ones are made: python-docx (Word's own default template) with images,
tables, comments, hyperlinks, headers and footers, a footnote and OMML equations.

python-docx has no API for hyperlinks, footnotes or equations; they are written as the same
WordprocessingML that Word writes, into the same package parts.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from pathlib import Path

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
M = "http://schemas.openxmlformats.org/officeDocument/2006/math"
R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"

# Q = V / t, inline; and a display equation E = m c^2
OMML_INLINE = (
    f'<m:oMath xmlns:m="{M}"><m:r><m:t>Q=</m:t></m:r><m:f><m:num><m:r><m:t>V</m:t></m:r></m:num>'
    "<m:den><m:r><m:t>t</m:t></m:r></m:den></m:f></m:oMath>"
)
OMML_DISPLAY = (
    f'<m:oMathPara xmlns:m="{M}"><m:oMath><m:r><m:t>E=m</m:t></m:r><m:sSup><m:e><m:r><m:t>c</m:t></m:r></m:e>'
    "<m:sup><m:r><m:t>2</m:t></m:r></m:sup></m:sSup></m:oMath></m:oMathPara>"
)

FACTS = {
    "body": "The north pump station lifts 340 litres per second at full load.",
    "link": "Spare parts are listed in the parts catalogue kept by the harbor office.",
    "table": "Impeller",
    "footnote": "Measured by the harbor authority in March 2024.",
    "after_image": "The intake screen is cleaned every Tuesday.",
    "equation_text": "where Q is the flow",
}


def png(width: int = 4, height: int = 4) -> bytes:
    """A small valid RGB PNG (a red square), without any imaging library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def _add_hyperlink(paragraph, url: str, text: str) -> None:  # noqa: ANN001
    from docx.opc.constants import RELATIONSHIP_TYPE
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    rid = paragraph.part.relate_to(url, RELATIONSHIP_TYPE.HYPERLINK, is_external=True)
    link = OxmlElement("w:hyperlink")
    link.set(qn("r:id"), rid)
    run = OxmlElement("w:r")
    t = OxmlElement("w:t")
    t.text = text
    run.append(t)
    link.append(run)
    paragraph._p.append(link)


def real_world_docx(path: Path) -> Path:
    """Write a .docx with headers/footers, a commented run, a hyperlink, an image with alt
    text, a table, an inline and a display equation and a footnote. Returns `path`."""
    import docx
    from docx.oxml import parse_xml
    from docx.shared import Inches

    path = Path(path)
    d = docx.Document()
    d.core_properties.title = "Pump Station Manual"
    d.sections[0].header.paragraphs[0].text = "CONFIDENTIAL - Harbor Works internal"
    d.sections[0].footer.paragraphs[0].text = "Printed copies are uncontrolled"
    d.add_heading("Pump Station Manual", level=1)
    d.add_heading("Overview", level=2)
    body = d.add_paragraph(FACTS["body"])
    if hasattr(d, "add_comment"):  # python-docx >= 1.2
        d.add_comment(body.runs, text="Check this figure with the operator.", author="Reviewer", initials="RV")
    link = d.add_paragraph("Spare parts are listed in the ")
    _add_hyperlink(link, "https://example.com/parts", "parts catalogue")
    link.add_run(" kept by the harbor office.")
    image = path.with_suffix(".png")
    image.write_bytes(png())
    d.add_picture(str(image), width=Inches(0.5))
    d.inline_shapes[0]._inline.docPr.set("descr", "Diagram of the pump")
    image.unlink()
    d.add_paragraph(FACTS["after_image"])
    d.add_heading("Parts", level=2)
    table = d.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Part", "Interval"
    table.cell(1, 0).text, table.cell(1, 1).text = FACTS["table"], "6 months"
    d.add_heading("Flow", level=2)
    eq = d.add_paragraph("Flow follows ")
    eq._p.append(parse_xml(OMML_INLINE))
    eq.add_run(", " + FACTS["equation_text"] + ".")
    d.add_paragraph()._p.append(parse_xml(OMML_DISPLAY))
    note = d.add_paragraph("Peak flow was 410 litres per second")
    note._p.append(parse_xml(f'<w:r xmlns:w="{W}"><w:footnoteReference w:id="1"/></w:r>'))
    d.save(path)
    _add_footnote(path, FACTS["footnote"])
    return path


def _add_footnote(path: Path, text: str) -> None:
    """Add word/footnotes.xml with footnote 1 (and Word's two separator notes) to a saved .docx."""
    footnotes = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<w:footnotes xmlns:w="{W}">'
        '<w:footnote w:type="separator" w:id="-1"><w:p><w:r><w:separator/></w:r></w:p></w:footnote>'
        '<w:footnote w:type="continuationSeparator" w:id="0"><w:p><w:r><w:continuationSeparator/></w:r></w:p>'
        "</w:footnote>"
        f'<w:footnote w:id="1"><w:p><w:r><w:footnoteRef/></w:r><w:r><w:t xml:space="preserve"> {text}</w:t></w:r>'
        "</w:p></w:footnote></w:footnotes>"
    )
    with zipfile.ZipFile(path) as z:
        parts = {i.filename: z.read(i) for i in z.infolist()}
    parts["word/footnotes.xml"] = footnotes.encode()
    rels = parts["word/_rels/document.xml.rels"].decode()
    rel = (f'<Relationship Id="rIdFootnotes" Type="{R}/footnotes" Target="footnotes.xml"/>')
    parts["word/_rels/document.xml.rels"] = rels.replace("</Relationships>", rel + "</Relationships>").encode()
    types = parts["[Content_Types].xml"].decode()
    override = ('<Override PartName="/word/footnotes.xml" ContentType='
                '"application/vnd.openxmlformats-officedocument.wordprocessingml.footnotes+xml"/>')
    parts["[Content_Types].xml"] = types.replace("</Types>", override + "</Types>").encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in parts.items():
            z.writestr(name, data)
